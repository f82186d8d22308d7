-- probe_download: one row per probe, ward and network kind over the period's
-- valid download tests: the probe's own mean, median and 90th percentile
-- (nearest rank), so that every indicator can weigh probes equally however
-- often they test. A probe that moved ward mid-period is one row per ward.
select
    probe_id,
    ward_code,
    any_value(site_class) as site_class,
    network_kind,
    -- the operator the probe used most (mobile lines; NULL on fixed lines)
    mode(operator_name) as operator_name,
    count(*) as tests,
    -- megabits per second from here on
    avg(mbps) as mean_mbps,
    median(mbps) as median_mbps,
    quantile_disc(mbps, 0.9) as p90_mbps,
    -- tests that reached the gigabit threshold (the 90th percentile reaches it
    -- exactly when at least tests - ceil(0.9 tests) + 1 of them do)
    count(*) filter (where mbps >= (
        select value from indicator_constants where name = 'gigabit_p90_mbps'
    )) as tests_at_gigabit,
    max(link_speed_mbps) as link_speed_mbps
from throughput_checked
where excluded_because is null and direction = 'download'
group by probe_id, ward_code, network_kind
