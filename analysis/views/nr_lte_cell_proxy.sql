-- nr_lte_cell_proxy: A PROXY, not a count of base stations. The plan's "5G
-- stations >= 50 % of 4G stations" cannot be measured by probes; this is the
-- number of distinct NR cells versus distinct LTE cells the probes' modems
-- were on, per ward and operator. An NSA connection is on two cells: its
-- LTE anchor (cell_id, an LTE cell) and its 5G leg (nr_cell_key: NR-ARFCN
-- and physical cell id; the anchor's id where the modem did not give them).
with

cells as (
    select
        ward_code,
        operator_name,
        probe_id,
        on_nr,
        access_tech,
        cell_id,
        nr_cell_key
    from cellular_checked
    where excluded_because is null
      and (nr_cell_key is not null or (access_tech in ('lte', 'nr5g_nsa') and cell_id is not null))
)

select
    ward_code,
    operator_name,
    count(distinct nr_cell_key) as nr_cells,
    count(distinct cell_id) filter (where access_tech in ('lte', 'nr5g_nsa')) as lte_cells,
    -- a ratio of cell counts (target of the stations it stands in for: 0.5)
    count(distinct nr_cell_key)
        / nullif(count(distinct cell_id) filter (where access_tech in ('lte', 'nr5g_nsa')), 0)
        as nr_lte_ratio,
    count(*) as observations,
    count(distinct probe_id) as probes,
    'proxy: distinct cells observed, not base stations' as label
from cells
group by ward_code, operator_name
