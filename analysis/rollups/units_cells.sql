-- units_cells: distinct NR and LTE cells over the period's days per ward and
-- operator (grouping sets: per ward, for the whole city, with and without
-- the operator), for the NR/LTE cell proxy.
select
    ward_code,
    operator_name,
    -- 1 where the row is over all wards (all operators)
    grouping(ward_code) as all_wards,
    grouping(operator_name) as all_operators,
    count(distinct cell_id) filter (where nr_cell) as nr_cells,
    count(distinct cell_id) filter (where lte_cell) as lte_cells,
    sum(observations)::bigint as observations
from rollup_cells
where local_day >= getvariable('day_from') and local_day < getvariable('day_to')
  and synthetic = getvariable('synthetic')
group by grouping sets ((ward_code, operator_name), (ward_code), (operator_name), ())
