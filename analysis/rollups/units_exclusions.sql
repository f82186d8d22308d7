-- units_exclusions: results of the period that do not count, per table,
-- ward and reason.
select result_table, ward_code, excluded_because, sum(results)::bigint as results
from rollup_exclusions
where local_day >= getvariable('day_from') and local_day < getvariable('day_to')
  and synthetic = getvariable('synthetic')
group by all
