-- rollup_exclusions: results that do not count, per table, probe, ward,
-- Cần Thơ day and reason.
with

excluded as (
    select 'throughput' as result_table, probe_id, ward_code, synthetic, local_day,
           excluded_because
    from throughput_checked where excluded_because is not null
    union all
    select 'latency', probe_id, ward_code, synthetic, local_day, excluded_because
    from latency_checked where excluded_because is not null
    union all
    select 'cellular', probe_id, ward_code, synthetic, local_day, excluded_because
    from cellular_checked where excluded_because is not null
    union all
    select 'ipv6', probe_id, ward_code, synthetic, local_day, excluded_because
    from ipv6_checked where excluded_because is not null
)

select result_table, probe_id, ward_code, synthetic, local_day, excluded_because,
       count(*) as results
from excluded
semi join rollup_dirty d using (probe_id, local_day)
group by all
