-- probe_latency: one row per probe, ward and network kind: its idle latency
-- (valid ICMP tests' median round trips) and its loaded latency (median
-- round trip while its valid downloads ran), each the median over the
-- days of the period of the day's median, so that every day weighs the
-- same however many tests it had. Milliseconds.
with

daily as (
    select probe_id, ward_code, site_class, network_kind, local_day, 'idle' as kind,
           operator_name, rtt_median_ms as rtt_ms
    from latency_checked
    where excluded_because is null and protocol = 'icmp'
    union all
    select probe_id, ward_code, site_class, network_kind, local_day, 'loaded',
           operator_name, loaded_rtt_median_ms
    from throughput_checked
    where excluded_because is null and direction = 'download'
      and loaded_rtt_median_ms is not null
),

per_day as (
    select probe_id, ward_code, any_value(site_class) as site_class, network_kind, local_day,
           kind, mode(operator_name) as operator_name, count(*) as tests,
           median(rtt_ms) as rtt_ms
    from daily
    group by probe_id, ward_code, network_kind, local_day, kind
)

select
    probe_id,
    ward_code,
    any_value(site_class) as site_class,
    network_kind,
    mode(operator_name) as operator_name,
    sum(tests) filter (where kind = 'idle')::bigint as idle_tests,
    median(rtt_ms) filter (where kind = 'idle') as idle_rtt_ms,
    sum(tests) filter (where kind = 'loaded')::bigint as loaded_tests,
    median(rtt_ms) filter (where kind = 'loaded') as loaded_rtt_ms
from per_day
group by probe_id, ward_code, network_kind
