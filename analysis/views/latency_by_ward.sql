-- latency_by_ward: per ward and network kind, the median across probes of
-- each probe's idle latency (ICMP tests) and of its loaded latency (round
-- trips while its downloads ran), see probe_latency: bufferbloat shows as the
-- gap between the two. All figures in milliseconds.
select
    ward_code,
    network_kind,
    count(idle_rtt_ms) as idle_probes,
    coalesce(sum(idle_tests), 0)::bigint as idle_tests,
    median(idle_rtt_ms) as idle_rtt_ms,
    count(loaded_rtt_ms) as loaded_probes,
    coalesce(sum(loaded_tests), 0)::bigint as loaded_tests,
    median(loaded_rtt_ms) as loaded_rtt_ms
from probe_latency
group by ward_code, network_kind
