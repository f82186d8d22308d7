-- nr_lte_cell_proxy: A PROXY, not a count of base stations. The plan's "5G
-- stations >= 50 % of 4G stations" cannot be measured by probes; this is the
-- number of distinct NR cells versus distinct LTE cells the probes' modems
-- were on, per ward and operator. An NSA connection's cell_id is its LTE
-- anchor: it counts as an LTE cell and, being NR-capable, as an NR cell.
select
    ward_code,
    operator_name,
    count(distinct cell_id) filter (where access_tech in ('nr5g_nsa', 'nr5g_sa')) as nr_cells,
    count(distinct cell_id) filter (where access_tech in ('lte', 'nr5g_nsa')) as lte_cells,
    -- a ratio of cell counts (target of the stations it stands in for: 0.5)
    count(distinct cell_id) filter (where access_tech in ('nr5g_nsa', 'nr5g_sa'))
        / nullif(count(distinct cell_id) filter (where access_tech in ('lte', 'nr5g_nsa')), 0)
        as nr_lte_ratio,
    count(*) as observations,
    count(distinct probe_id) as probes,
    'proxy: distinct cells observed, not base stations' as label
from cellular_checked
where excluded_because is null and cell_id is not null
group by ward_code, operator_name
