-- ipv6_offices: one row per probe at a government office (a ward or commune
-- People's Committee, a city department; 87/KH-UBND moves 100 % of their LANs
-- to IPv6): whether its LAN (its fixed-line checks) gives working IPv6 over
-- the period, as ipv6_capability judges every probe, and its last valid
-- check. NULL where the office has no valid check of its LAN in the period.
with

offices as (
    select probe_id, ward_code, ward_name, site_class
    from probes
    -- analysis/constants.py's GOVERNMENT_OFFICE_CLASSES, written in when the
    -- view is created (the snapshot holds it written out)
    where site_class in ({{office_site_classes}})
),

last_check as (
    select
        probe_id,
        ward_code,
        max(measured_at) as last_checked_at,
        arg_max(ipv6_capable, measured_at) as last_check_capable
    from ipv6_checked
    where excluded_because is null and network_kind = 'fixed'
    group by probe_id, ward_code
)

select
    o.probe_id,
    o.ward_code,
    o.ward_name,
    o.site_class,
    c.checks,
    c.capable_share,  -- share 0..1 of its LAN's checks that found working IPv6
    c.ipv6_capable,
    l.last_checked_at,
    l.last_check_capable
from offices o
left join ipv6_capability c
    on c.probe_id = o.probe_id and c.ward_code = o.ward_code and c.network_kind = 'fixed'
left join last_check l on l.probe_id = o.probe_id and l.ward_code = o.ward_code
