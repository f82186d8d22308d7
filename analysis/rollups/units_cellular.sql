-- units_cellular: one row per mobile probe and ward over the period's days:
-- the time-weighted share on NR (0..1), whether it saw NR, whether its modem
-- cannot do 5G (probe-limited), and the operator it was on most (most
-- observations with an operator over the period, as nr_availability's
-- mode; not the operator of its busiest day).
with

days as (
    select * from rollup_cellular
    where local_day >= getvariable('day_from') and local_day < getvariable('day_to')
      and synthetic = getvariable('synthetic')
),

operators as (
    select probe_id, ward_code, arg_max(operator_name, observations) as operator_name
    from (
        select probe_id, ward_code, operator_name, sum(observations) as observations
        from days where operator_name is not null group by all
    )
    group by all
)

select
    d.probe_id,
    d.ward_code,
    o.operator_name,
    sum(d.observations)::bigint as observations,
    sum(d.nr_weight_s) / sum(d.weight_s) as nr_time_share,
    bool_or(d.saw_nr) as saw_nr,
    bool_or(d.not_5g_capable) as probe_limited
from days d
left join operators o using (probe_id, ward_code)
group by d.probe_id, d.ward_code, o.operator_name
