-- rollup_cells: the distinct cells seen per ward, operator and Cần Thơ day,
-- whether as an NR cell and whether as an LTE cell, for the NR/LTE cell
-- proxy. An NSA observation is on two cells (its LTE anchor and its 5G leg,
-- see nr_lte_cell_proxy) but counts once in `observations`. `cell_id` holds
-- the cell's key: its id, or an NSA leg's "ward W nr-arfcn N pci P".
with

keyed as (
    select ward_code, operator_name, synthetic, local_day,
           nr_cell_key as cell_id, true as nr_cell, false as lte_cell, 1 as counted
    from cellular_checked
    where excluded_because is null and nr_cell_key is not null
    union all
    select ward_code, operator_name, synthetic, local_day,
           cell_id, false as nr_cell, true as lte_cell,
           -- counted on its NR side when it has one
           case when nr_cell_key is null then 1 else 0 end as counted
    from cellular_checked
    where excluded_because is null and cell_id is not null
      and access_tech in ('lte', 'nr5g_nsa')
)

select
    ward_code,
    operator_name,
    synthetic,
    local_day,
    cell_id,
    bool_or(nr_cell) as nr_cell,
    bool_or(lte_cell) as lte_cell,
    sum(counted)::bigint as observations
from keyed
where local_day in (select local_day from rollup_dirty)
group by all
