-- ipv6_capability: one row per probe and network kind: the share of its
-- valid IPv6 checks that found working (capable) and preferred IPv6, and
-- whether that share reaches ipv6_probe_share, which makes the probe count
-- as having working (preferred) IPv6 in the period.
with

k as (
    select max(value) filter (where name = 'ipv6_probe_share') as probe_share
    from indicator_constants
),

per_probe as (
    select
        probe_id,
        ward_code,
        any_value(site_class) as site_class,
        network_kind,
        count(*) as checks,
        -- shares, 0..1, of the probe's checks
        avg(ipv6_capable::int) as capable_share,
        avg(ipv6_preferred::int) as preferred_share
    from ipv6_checked
    where excluded_because is null
    group by probe_id, ward_code, network_kind
)

select
    p.*,
    -- the probe's mobile operator (NULL on fixed lines)
    d.operator_name,
    -- who provides the line: on fixed lines the ISP recorded for the probe's
    -- site (NULL when not recorded), on mobile lines the operator
    case when p.network_kind = 'fixed' then pr.isp else d.operator_name end as isp,
    p.capable_share >= k.probe_share as ipv6_capable,
    p.preferred_share >= k.probe_share as ipv6_preferred
from per_probe p
cross join k
left join probe_download d
    on d.probe_id = p.probe_id and d.ward_code = p.ward_code
    and d.network_kind = p.network_kind and p.network_kind = 'mobile'
left join probes pr on pr.probe_id = p.probe_id
