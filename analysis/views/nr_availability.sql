-- nr_availability: one row per mobile probe (ward, operator it used most):
-- the time-weighted share of its valid radio observations on NR (5G NSA or
-- SA), whether it saw NR at all, and whether its modem cannot do 5G
-- (probe-limited: outside the 5G shares' denominators).
select
    probe_id,
    ward_code,
    any_value(site_class) as site_class,
    mode(operator_name) as operator_name,
    count(*) as observations,
    sum(weight_s) as observed_s,  -- seconds
    -- a share, 0..1, of the observed time
    sum(case when on_nr then weight_s else 0 end) / sum(weight_s) as nr_time_share,
    bool_or(on_nr) as saw_nr,
    coalesce(not bool_and(modem_5g_capable), false) as probe_limited
from cellular_checked
where excluded_because is null
group by probe_id, ward_code
