-- pmtu_by_isp: the IPv6 path MTU and the share of probes behind a path-MTU
-- black hole, per network kind and ISP (the ISP recorded for a fixed line's
-- site, the operator of a mobile probe's tests), from the path-MTU searches
-- of the period (variables as in throughput_checked). A probe is behind a
-- black hole when at least half of its searches found one (a lost echo alone
-- does not make one). Sizes in bytes.
with

searches as (
    select s.*
    from ipv6_pmtu s
    where s.measured_at >= coalesce(getvariable('period_from'), '-infinity'::timestamptz)
      and s.measured_at < coalesce(getvariable('period_to'), 'infinity'::timestamptz)
      and s.synthetic = coalesce(getvariable('synthetic'), false)
      and s.status = 'ok' and s.clock_sync = 'synchronised' and s.path_mtu is not null
),

mobile_operator as (
    -- a mobile probe's operator: the one its latency tests ran on most
    select probe_id, mode(operator_name) as operator_name
    from latency
    where network_kind = 'mobile' and operator_name is not null
    group by probe_id
),

per_probe as (
    select
        s.probe_id,
        s.network_kind,
        case when s.network_kind = 'fixed' then p.isp else m.operator_name end as isp,
        count(*) as searches,
        median(s.path_mtu) as path_mtu,
        min(s.path_mtu) as smallest_path_mtu,
        -- shares, 0..1, of the probe's searches
        avg(s.pmtu_blackhole::int) as blackhole_share,
        avg(s.ptb_received::int) as ptb_share
    from searches s
    left join probes p using (probe_id)
    left join mobile_operator m using (probe_id)
    group by all
)

select
    network_kind,
    isp,
    count(*) as probes,
    sum(searches)::bigint as searches,
    median(path_mtu) as path_mtu,
    min(smallest_path_mtu) as smallest_path_mtu,
    -- shares, 0..1, of the probes
    avg((blackhole_share >= 0.5)::int) as blackhole_share,
    avg((ptb_share >= 0.5)::int) as ptb_share
from per_probe
group by network_kind, isp
