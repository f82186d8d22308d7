-- latency_segments: where the round trip goes, per ward, network kind, IP
-- family and operator: the home (probe to its CPE), the access network (CPE
-- to the first hop outside the home) and beyond (from there to the reference
-- server), from the traceroutes of the period (variables as in
-- throughput_checked). Each probe's median per segment first, then the
-- median across the probes, so that a probe tracing often weighs no more.
-- All figures in milliseconds.
with

traces as (
    select t.*
    from traceroute t
    where t.measured_at >= coalesce(getvariable('period_from'), '-infinity'::timestamptz)
      and t.measured_at < coalesce(getvariable('period_to'), 'infinity'::timestamptz)
      and t.synthetic = coalesce(getvariable('synthetic'), false)
      -- a trace counts when it reached the server and every segment's end answered
      and t.status = 'ok' and t.clock_sync = 'synchronised' and t.reached
      and t.home_rtt_ms is not null and t.access_rtt_ms is not null
      and t.target_rtt_ms is not null
),

segments as (
    select
        t.probe_id,
        t.ward_code,
        t.network_kind,
        t.ip_family,
        -- who provides the line: the ISP recorded for a fixed line's site, the
        -- operator a mobile test ran on
        case when t.network_kind = 'fixed' then p.isp else t.operator_name end as operator,
        t.home_rtt_ms as home_ms,
        -- round trips add up along the path: each segment is the difference
        -- between the round trips to its two ends
        t.access_rtt_ms - t.home_rtt_ms as access_ms,
        t.target_rtt_ms - t.access_rtt_ms as beyond_ms,
        t.target_rtt_ms as total_ms
    from traces t
    left join probes p using (probe_id)
),

per_probe as (
    select
        probe_id, ward_code, network_kind, ip_family, operator,
        count(*) as traces,
        median(home_ms) as home_ms,
        median(access_ms) as access_ms,
        median(beyond_ms) as beyond_ms,
        median(total_ms) as total_ms
    from segments
    group by probe_id, ward_code, network_kind, ip_family, operator
)

select
    ward_code,
    network_kind,
    ip_family,
    operator,
    count(*) as probes,
    sum(traces)::bigint as traces,
    median(home_ms) as home_ms,
    median(access_ms) as access_ms,
    median(beyond_ms) as beyond_ms,
    median(total_ms) as total_ms
from per_probe
group by ward_code, network_kind, ip_family, operator
