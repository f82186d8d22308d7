-- units_cellular: one row per mobile probe and ward over the period's days:
-- the time-weighted share on NR (0..1), whether it saw NR, whether its modem
-- cannot do 5G (probe-limited), and the operator it was on most.
select
    probe_id,
    ward_code,
    arg_max(operator_name, observations) as operator_name,
    sum(observations)::bigint as observations,
    sum(nr_weight_s) / sum(weight_s) as nr_time_share,
    bool_or(saw_nr) as saw_nr,
    bool_or(not_5g_capable) as probe_limited
from rollup_cellular
where local_day >= getvariable('day_from') and local_day < getvariable('day_to')
  and synthetic = getvariable('synthetic')
group by all
