-- rollup_download: the valid downloads of each probe per Cần Thơ day, network
-- kind, operator and access technology (NULL on fixed lines and for a test
-- whose radio changed technology). Sums and counts only, so that any period's
-- per-probe mean and gigabit test count are exact sums of days; and the
-- downloads at QCVN 126's 30 Mb/s floor, for its share of 5G samples.
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
    count(*) filter (where t.mbps >= (
        select value from indicator_constants where name = 'gigabit_p90_mbps'
    )) as tests_at_gigabit,
    count(*) filter (where t.mbps >= (
        select value from indicator_constants where name = 'qcvn126_download_floor_mbps'
    )) as tests_at_qcvn126_floor,
    max(t.link_speed_mbps) as link_speed_mbps
from throughput_checked t
semi join rollup_dirty d on d.probe_id = t.probe_id and d.local_day = t.local_day
where t.excluded_because is null and t.direction = 'download'
group by all
