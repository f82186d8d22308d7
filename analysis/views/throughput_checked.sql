-- throughput_checked: every throughput test of the period, with the reason it
-- does not count (excluded_because is NULL for a valid test). The period is
-- [getvariable('period_from'), getvariable('period_to')), unset = unbounded;
-- getvariable('synthetic') = true selects the synthetic generator's rows
-- instead of the probes' (the two never mix).
--
-- excluded_because is the rule the probe applies too, not restated here: the
-- throughput_exclusion marker below is replaced, when the view is created
-- (analysis/catalog.py, install_views), by wardprobe/validity.py's
-- throughput_exclusion_sql('t'), the thresholds written in (the same figures
-- as indicator_constants). The snapshot holds the view with it filled in.
with

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
    {{throughput_exclusion}} as excluded_because
from in_period t
left join probes p using (probe_id)
