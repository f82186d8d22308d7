-- units_latency: one row per probe, ward and network kind over the period's
-- days: the median of its daily median idle and loaded round trips (ms).
select
    probe_id,
    ward_code,
    network_kind,
    sum(tests) filter (where kind = 'idle')::bigint as idle_tests,
    median(rtt_ms) filter (where kind = 'idle') as idle_rtt_ms,
    sum(tests) filter (where kind = 'loaded')::bigint as loaded_tests,
    median(rtt_ms) filter (where kind = 'loaded') as loaded_rtt_ms
from rollup_latency
where local_day >= getvariable('day_from') and local_day < getvariable('day_to')
  and synthetic = getvariable('synthetic')
group by all
