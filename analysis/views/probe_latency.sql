-- probe_latency: one row per probe, ward and network kind: the median of its
-- valid ICMP tests' median round trips (idle latency, ms).
select
    probe_id,
    ward_code,
    any_value(site_class) as site_class,
    network_kind,
    mode(operator_name) as operator_name,
    count(*) as tests,
    median(rtt_median_ms) as idle_rtt_ms  -- milliseconds
from latency_checked
where excluded_because is null and protocol = 'icmp'
group by probe_id, ward_code, network_kind
