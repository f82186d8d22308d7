-- rollup_latency_tech: the valid latency tests of each probe per Cần Thơ
-- day, network kind, operator, access technology (radio when the test
-- started; NULL on fixed lines) and protocol: how many and the sum of their
-- median round trips, so that a period's mean over tests (QCVN 126's 5G
-- latency) is an exact sum of days.
select
    probe_id,
    ward_code,
    synthetic,
    local_day,
    network_kind,
    operator_name,
    access_tech,
    protocol,
    count(*) as tests,
    sum(rtt_median_ms) as sum_rtt_ms  -- milliseconds, summed over the tests
from latency_checked
semi join rollup_dirty d using (probe_id, local_day)
where excluded_because is null
group by all
