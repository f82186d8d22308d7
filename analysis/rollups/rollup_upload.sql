-- rollup_upload: the valid uploads of each probe per Cần Thơ day, network
-- kind, operator and access technology (NULL on fixed lines and for a test
-- whose radio changed technology), as rollup_download holds the downloads:
-- sums and counts, for QCVN 126's 5G upload and QCVN 34's fixed-line upload.
select
    t.probe_id,
    t.ward_code,
    t.synthetic,
    t.local_day,
    t.network_kind,
    t.operator_name,
    case when t.access_tech = coalesce(t.access_tech_end, t.access_tech)
        then t.access_tech end as access_tech,
    count(*) as tests,
    sum(t.mbps) as sum_mbps,  -- megabits per second, summed over the tests
    max(t.link_speed_mbps) as link_speed_mbps
from throughput_checked t
semi join rollup_dirty d on d.probe_id = t.probe_id and d.local_day = t.local_day
where t.excluded_because is null and t.direction = 'upload'
group by all
