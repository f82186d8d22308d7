-- mobile_download_by_tech: per ward, operator and access technology, the
-- probe-balanced mean download (mean of the probes' own means) and the
-- median of the probes' means, with the probes and tests behind them.
-- Compare with 40 Mb/s on 4G (lte) and 100 Mb/s on 5G (235/KH-UBND).
select
    ward_code,
    operator_name,
    access_tech,
    count(*) as probes,
    sum(tests)::bigint as tests,
    avg(mean_mbps) as mean_mbps,  -- megabits per second
    median(mean_mbps) as median_mbps
from probe_download_by_tech
group by ward_code, operator_name, access_tech
