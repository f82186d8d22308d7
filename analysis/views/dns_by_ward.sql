-- dns_by_ward: DNS failures and resolution time per ward, network kind and
-- kind of resolver (the probe's own, `system`, or a configured one), from the
-- DNS tests of the period (variables as in throughput_checked). The failure
-- share is over all queries; the resolution time is the median across
-- probes of each probe's median, in milliseconds.
with

runs as (
    select d.*
    from dns d
    where d.measured_at >= coalesce(getvariable('period_from'), '-infinity'::timestamptz)
      and d.measured_at < coalesce(getvariable('period_to'), 'infinity'::timestamptz)
      and d.synthetic = coalesce(getvariable('synthetic'), false)
      -- a resolver that answered nothing is a failed run: its queries count as failures
      and d.status in ('ok', 'failed') and d.clock_sync = 'synchronised'
      and d.queries_sent > 0
),

per_probe as (
    select
        probe_id,
        ward_code,
        network_kind,
        resolver_kind,
        sum(queries_sent) as queries,
        sum(queries_failed) as failed,
        median(time_median_ms) as resolution_ms
    from runs
    group by probe_id, ward_code, network_kind, resolver_kind
)

select
    ward_code,
    network_kind,
    resolver_kind,
    count(*) as probes,
    sum(queries)::bigint as queries,
    sum(failed)::bigint as failed_queries,
    -- share, 0..1, of the queries
    sum(failed) / sum(queries) as failure_share,
    median(resolution_ms) as resolution_ms
from per_probe
group by ward_code, network_kind, resolver_kind
