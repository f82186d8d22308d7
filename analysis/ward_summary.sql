-- ward_summary: one row per ward that has probes, for a first look at the
-- data (the demo prints it). Counts every stored test from a probe (not the
-- synthetic generator's); the plan's indicators apply the validity rules.
with

probes_per_ward as (
    select ward_code, any_value(ward_name) as ward_name, count(*) as probes
    from probes
    group by ward_code
),

downloads as (
    -- mbps: megabits per second, as the probe measured it
    select ward_code, mbps
    from throughput
    where direction = 'download' and status = 'ok' and not synthetic
),

idle_latency as (
    -- milliseconds, median of each test's round trips
    select ward_code, rtt_median_ms
    from latency
    where status = 'ok' and not synthetic
),

ipv6_checks as (
    select ward_code, ipv6_capable
    from ipv6
    where status = 'ok' and not synthetic
),

tests_per_ward as (
    select ward_code, count(*) as tests
    from (
        select ward_code from throughput where not synthetic
        union all select ward_code from latency where not synthetic
        union all select ward_code from ipv6 where not synthetic
    )
    group by ward_code
)

select
    p.ward_code,
    p.ward_name,
    p.probes,
    coalesce(t.tests, 0) as tests,
    (select avg(d.mbps) from downloads d where d.ward_code = p.ward_code) as mean_download_mbps,
    (select median(l.rtt_median_ms) from idle_latency l where l.ward_code = p.ward_code)
        as median_latency_ms,
    -- a share, 0..1
    (select avg(case when i.ipv6_capable then 1.0 else 0.0 end)
        from ipv6_checks i where i.ward_code = p.ward_code) as ipv6_share
from probes_per_ward p
left join tests_per_ward t using (ward_code)
order by p.ward_code
