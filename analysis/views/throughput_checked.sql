-- throughput_checked: every throughput test of the period, with the reason it
-- does not count (excluded_because is NULL for a valid test). The period is
-- [getvariable('period_from'), getvariable('period_to')), unset = unbounded;
-- getvariable('synthetic') = true selects the synthetic generator's rows
-- instead of the probes' (the two never mix).
with

k as (
    select
        max(value) filter (where name = 'min_bytes_transferred') as min_bytes,
        max(value) filter (where name = 'min_measured_s') as min_measured_s,
        max(value) filter (where name = 'rate_tolerance') as rate_tolerance,
        max(value) filter (where name = 'max_cross_traffic_bytes_per_s') as max_cross_bps
    from indicator_constants
),

in_period as (
    select t.*
    from throughput t
    where t.measured_at >= coalesce(getvariable('period_from'), '-infinity'::timestamptz)
      and t.measured_at < coalesce(getvariable('period_to'), 'infinity'::timestamptz)
      and t.synthetic = coalesce(getvariable('synthetic'), false)
)

select
    t.result_id,
    t.probe_id,
    t.ward_code,
    coalesce(p.site_class, 'unknown') as site_class,
    t.measured_at,
    -- the day in Cần Thơ: Asia/Ho_Chi_Minh is UTC+7 all year (no DST since 1975),
    -- so microseconds + 7 h, whole days since 1970-01-01
    date '1970-01-01'
        + ((epoch_us(t.measured_at) + 25200000000) // 86400000000)::integer as local_day,
    t.synthetic,
    t.network_kind,
    t.direction,
    t.mbps,  -- megabits per second
    t.link_speed_mbps,
    t.idle_rtt_median_ms,
    t.loaded_rtt_median_ms,
    t.access_tech,
    t.access_tech_end,
    t.operator_name,
    case
        when t.status <> 'ok' then 'status ' || t.status
        when t.clock_sync <> 'synchronised' then 'clock not synchronised'
        when t.cross_traffic_bytes_per_s > k.max_cross_bps then 'cross-traffic'
        when t.mbps is null or t.bytes_transferred is null or t.measured_s is null
            then 'figures missing'
        when t.bytes_transferred < k.min_bytes then 'too little data'
        when t.measured_s < k.min_measured_s then 'too short'
        -- bytes -> megabits per second, to compare with the reported rate
        when abs(t.bytes_transferred * 8.0 / t.measured_s / 1e6 - t.mbps)
            > k.rate_tolerance * t.mbps then 'rate disagrees with bytes/duration'
    end as excluded_because
from in_period t
cross join k
left join probes p using (probe_id)
