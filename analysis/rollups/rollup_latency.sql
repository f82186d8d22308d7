-- rollup_latency: each probe's median idle (ICMP) and loaded (during its
-- downloads) round trip per Cần Thơ day, milliseconds; probe_latency takes
-- the median of these over a period's days.
with

daily as (
    select probe_id, ward_code, synthetic, network_kind, local_day, 'idle' as kind,
           operator_name, rtt_median_ms as rtt_ms
    from latency_checked
    where excluded_because is null and protocol = 'icmp'
    union all
    select probe_id, ward_code, synthetic, network_kind, local_day, 'loaded',
           operator_name, loaded_rtt_median_ms
    from throughput_checked
    where excluded_because is null and direction = 'download'
      and loaded_rtt_median_ms is not null
)

select probe_id, ward_code, synthetic, network_kind, local_day, kind,
       mode(operator_name) as operator_name, count(*) as tests, median(rtt_ms) as rtt_ms
from daily
semi join rollup_dirty d using (probe_id, local_day)
group by probe_id, ward_code, synthetic, network_kind, local_day, kind
