-- ward_summary: one row per ward that has probes, for a first look at the
-- data (the demo and `wardprobe-aggregator summary` print it). It counts
-- every stored result of the period (see throughput_checked for the period
-- and synthetic variables; unset: all time, the probes' results), valid or
-- not: the plan's indicators apply the validity rules, this does not.
with

throughput_rows as (
    select ward_code, direction, status, mbps
    from throughput
    where measured_at >= coalesce(getvariable('period_from'), '-infinity'::timestamptz)
      and measured_at < coalesce(getvariable('period_to'), 'infinity'::timestamptz)
      and synthetic = coalesce(getvariable('synthetic'), false)
),

latency_rows as (
    select ward_code, status, rtt_median_ms
    from latency
    where measured_at >= coalesce(getvariable('period_from'), '-infinity'::timestamptz)
      and measured_at < coalesce(getvariable('period_to'), 'infinity'::timestamptz)
      and synthetic = coalesce(getvariable('synthetic'), false)
),

ipv6_rows as (
    select ward_code, status, ipv6_capable
    from ipv6
    where measured_at >= coalesce(getvariable('period_from'), '-infinity'::timestamptz)
      and measured_at < coalesce(getvariable('period_to'), 'infinity'::timestamptz)
      and synthetic = coalesce(getvariable('synthetic'), false)
),

probes_per_ward as (
    select ward_code, any_value(ward_name) as ward_name, count(*) as probes
    from probes
    group by ward_code
),

tests_per_ward as (
    select ward_code, count(*) as tests
    from (
        select ward_code from throughput_rows
        union all select ward_code from latency_rows
        union all select ward_code from ipv6_rows
    )
    group by ward_code
),

downloads as (
    -- megabits per second, the mean of the ok downloads as the probes measured them
    select ward_code, avg(mbps) as mean_download_mbps
    from throughput_rows
    where direction = 'download' and status = 'ok'
    group by ward_code
),

latencies as (
    -- milliseconds, the median over ok tests of each test's median round trip
    select ward_code, median(rtt_median_ms) as median_latency_ms
    from latency_rows
    where status = 'ok'
    group by ward_code
),

ipv6_checks as (
    -- a share, 0..1, of the ok checks that found working IPv6
    select ward_code, avg(case when ipv6_capable then 1.0 else 0.0 end) as ipv6_share
    from ipv6_rows
    where status = 'ok'
    group by ward_code
)

select
    p.ward_code,
    p.ward_name,
    p.probes,
    coalesce(t.tests, 0) as tests,
    d.mean_download_mbps,
    l.median_latency_ms,
    i.ipv6_share
from probes_per_ward p
left join tests_per_ward t using (ward_code)
left join downloads d using (ward_code)
left join latencies l using (ward_code)
left join ipv6_checks i using (ward_code)
order by p.ward_code
