-- units_qcvn126: one row per mobile probe, ward and operator over the
-- period's days: its 5G samples (tests on NR, NSA or SA, whose radio did not
-- change technology) as sums and counts, which QCVN 126:2021 averages over
-- samples per operator (the probe only serves the interval's resampling).
with

nr as (select unnest(['nr5g_nsa', 'nr5g_sa']) as access_tech),

down as (
    select probe_id, ward_code, operator_name,
           sum(tests)::bigint as download_tests,
           sum(sum_mbps) as download_sum_mbps,  -- megabits per second, summed
           sum(tests_at_qcvn126_floor)::bigint as download_tests_at_floor
    from rollup_download semi join nr using (access_tech)
    where local_day >= getvariable('day_from') and local_day < getvariable('day_to')
      and synthetic = getvariable('synthetic') and network_kind = 'mobile'
    group by all
),

up as (
    select probe_id, ward_code, operator_name,
           sum(tests)::bigint as upload_tests,
           sum(sum_mbps) as upload_sum_mbps  -- megabits per second, summed
    from rollup_upload semi join nr using (access_tech)
    where local_day >= getvariable('day_from') and local_day < getvariable('day_to')
      and synthetic = getvariable('synthetic') and network_kind = 'mobile'
    group by all
),

lat as (
    select probe_id, ward_code, operator_name,
           sum(tests)::bigint as latency_tests,
           sum(sum_rtt_ms) as latency_sum_ms  -- milliseconds, summed
    from rollup_latency_tech semi join nr using (access_tech)
    where local_day >= getvariable('day_from') and local_day < getvariable('day_to')
      and synthetic = getvariable('synthetic') and network_kind = 'mobile'
      and protocol = 'icmp'
    group by all
)

select
    probe_id,
    ward_code,
    operator_name,
    coalesce(download_tests, 0) as download_tests,
    coalesce(download_sum_mbps, 0) as download_sum_mbps,
    coalesce(download_tests_at_floor, 0) as download_tests_at_floor,
    coalesce(upload_tests, 0) as upload_tests,
    coalesce(upload_sum_mbps, 0) as upload_sum_mbps,
    coalesce(latency_tests, 0) as latency_tests,
    coalesce(latency_sum_ms, 0) as latency_sum_ms
from down
full join up using (probe_id, ward_code, operator_name)
full join lat using (probe_id, ward_code, operator_name)
where operator_name is not null
