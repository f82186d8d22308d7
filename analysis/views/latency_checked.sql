-- latency_checked: every latency test of the period (see throughput_checked
-- for the period and synthetic variables), with the reason it does not count.
with

k as (
    select max(value) filter (where name = 'min_latency_replies') as min_replies
    from indicator_constants
),

in_period as (
    select l.*
    from latency l
    where l.measured_at >= coalesce(getvariable('period_from'), '-infinity'::timestamptz)
      and l.measured_at < coalesce(getvariable('period_to'), 'infinity'::timestamptz)
      and l.synthetic = coalesce(getvariable('synthetic'), false)
)

select
    l.result_id,
    l.probe_id,
    l.ward_code,
    coalesce(p.site_class, 'unknown') as site_class,
    l.measured_at,
    -- the day in Cần Thơ: Asia/Ho_Chi_Minh is UTC+7 all year (no DST since 1975),
    -- so microseconds + 7 h, whole days since 1970-01-01
    date '1970-01-01'
        + ((epoch_us(l.measured_at) + 25200000000) // 86400000000)::integer as local_day,
    l.synthetic,
    l.network_kind,
    l.protocol,
    l.rtt_median_ms,  -- milliseconds
    l.access_tech,
    l.operator_name,
    case
        when l.status <> 'ok' then 'status ' || l.status
        when l.clock_sync <> 'synchronised' then 'clock not synchronised'
        when l.rtt_median_ms is null or coalesce(l.packets_received, 0) < k.min_replies
            then 'too few replies'
    end as excluded_because
from in_period l
cross join k
left join probes p using (probe_id)
