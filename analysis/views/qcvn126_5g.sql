-- qcvn126_5g: the national reference for 5G, QCVN 126:2021, by its own
-- rules: averages over measurement samples (valid tests), not over probes,
-- per operator, for each ward and for the whole city (ward_code NULL). A 5G
-- sample is a valid mobile test on NR (nr5g_nsa or nr5g_sa) whose radio did
-- not change technology during it (access_tech_end, where reported, is the
-- same); latency is the mean of the NR ICMP tests' median round trips.
-- Kept apart from the plan's probe-balanced indicators.
with

k as (
    select
        max(value) filter (where name = 'qcvn126_download_mbps') as download_mbps,
        max(value) filter (where name = 'qcvn126_upload_mbps') as upload_mbps,
        max(value) filter (where name = 'qcvn126_download_floor_mbps') as floor_mbps,
        max(value) filter (where name = 'qcvn126_floor_share') as floor_share,
        max(value) filter (where name = 'qcvn126_latency_ms') as latency_ms
    from indicator_constants
),

samples as (
    -- throughput samples, megabits per second
    select ward_code, operator_name, probe_id, direction as kind, mbps as value
    from throughput_checked
    where excluded_because is null
      and network_kind = 'mobile'
      and access_tech in ('nr5g_nsa', 'nr5g_sa')
      and access_tech = coalesce(access_tech_end, access_tech)
    union all
    -- latency samples, milliseconds
    select ward_code, operator_name, probe_id, 'latency', rtt_median_ms
    from latency_checked
    where excluded_because is null
      and network_kind = 'mobile'
      and protocol = 'icmp'
      and access_tech in ('nr5g_nsa', 'nr5g_sa')
),

per_operator as (
    select
        ward_code,
        operator_name,
        count(distinct probe_id) as probes,
        count(*) filter (where kind = 'download') as download_samples,
        avg(value) filter (where kind = 'download') as mean_download_mbps,
        -- a share, 0..1, of the download samples
        avg((value >= k.floor_mbps)::int) filter (where kind = 'download')
            as download_floor_share,
        count(*) filter (where kind = 'upload') as upload_samples,
        avg(value) filter (where kind = 'upload') as mean_upload_mbps,
        count(*) filter (where kind = 'latency') as latency_samples,
        avg(value) filter (where kind = 'latency') as mean_latency_ms
    from samples
    cross join k
    where operator_name is not null
    group by grouping sets ((ward_code, operator_name, k.floor_mbps), (operator_name, k.floor_mbps))
)

select
    p.*,
    p.mean_download_mbps >= k.download_mbps as download_met,
    p.mean_upload_mbps >= k.upload_mbps as upload_met,
    p.download_floor_share >= k.floor_share as download_floor_met,
    p.mean_latency_ms <= k.latency_ms as latency_met,
    'national reference (QCVN 126:2021), over samples' as label
from per_operator p
cross join k
