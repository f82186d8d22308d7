-- latency_by_ward: per ward and network kind, the median across probes of
-- each probe's median idle latency (ICMP tests) and of its median loaded
-- latency (round trips while its downloads ran): bufferbloat shows as the
-- gap between the two. All figures in milliseconds.
with

idle as (
    select ward_code, network_kind, count(*) as probes, sum(tests) as tests,
           median(idle_rtt_ms) as idle_rtt_ms
    from probe_latency
    group by ward_code, network_kind
),

loaded as (
    select ward_code, network_kind, count(loaded_rtt_ms) as probes, sum(tests) as tests,
           median(loaded_rtt_ms) as loaded_rtt_ms
    from probe_download
    group by ward_code, network_kind
)

select
    ward_code,
    network_kind,
    coalesce(i.probes, 0) as idle_probes,
    coalesce(i.tests, 0) as idle_tests,
    i.idle_rtt_ms,
    coalesce(l.probes, 0) as loaded_probes,
    coalesce(l.tests, 0) as loaded_tests,
    l.loaded_rtt_ms
from idle i
full join loaded l using (ward_code, network_kind)
