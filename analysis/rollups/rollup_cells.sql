-- rollup_cells: the distinct cells seen per ward, operator and Cần Thơ day,
-- whether on NR and whether as an LTE cell (an NSA anchor is both), for the
-- NR/LTE cell proxy.
select
    ward_code,
    operator_name,
    synthetic,
    local_day,
    cell_id,
    bool_or(on_nr) as nr_cell,
    bool_or(access_tech in ('lte', 'nr5g_nsa')) as lte_cell,
    count(*) as observations
from cellular_checked
where excluded_because is null and cell_id is not null
  and local_day in (select local_day from rollup_dirty)
group by all
