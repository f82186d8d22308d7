-- units_download: one row per probe, ward and network kind over the period's
-- days (getvariable('day_from') <= local_day < getvariable('day_to')) from
-- rollup_download: the probe's mean download (Mb/s), tests, tests at the
-- gigabit threshold, link speed, and the operator it used most.
with

days as (
    select * from rollup_download
    where local_day >= getvariable('day_from') and local_day < getvariable('day_to')
      and synthetic = getvariable('synthetic')
),

operators as (
    select probe_id, ward_code, network_kind, arg_max(operator_name, tests) as operator_name
    from (
        select probe_id, ward_code, network_kind, operator_name, sum(tests) as tests
        from days where operator_name is not null group by all
    )
    group by all
)

select
    d.probe_id,
    d.ward_code,
    d.network_kind,
    o.operator_name,
    sum(d.tests)::bigint as tests,
    sum(d.sum_mbps) / sum(d.tests) as mean_mbps,  -- megabits per second
    sum(d.tests_at_gigabit)::bigint as tests_at_gigabit,
    max(d.link_speed_mbps) as link_speed_mbps
from days d
left join operators o using (probe_id, ward_code, network_kind)
group by d.probe_id, d.ward_code, d.network_kind, o.operator_name
