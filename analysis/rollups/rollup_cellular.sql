-- rollup_cellular: each probe's valid radio observations per Cần Thơ day and
-- operator: how many, the seconds they stand for, the seconds on NR, whether
-- it saw NR and whether its modem said it cannot do 5G.
select
    probe_id,
    ward_code,
    synthetic,
    local_day,
    operator_name,
    count(*) as observations,
    sum(weight_s) as weight_s,  -- seconds
    sum(case when on_nr then weight_s else 0 end) as nr_weight_s,
    bool_or(on_nr) as saw_nr,
    bool_or(modem_5g_capable = false) as not_5g_capable
from cellular_checked
semi join rollup_dirty d using (probe_id, local_day)
where excluded_because is null
group by all
