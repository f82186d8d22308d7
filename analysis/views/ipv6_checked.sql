-- ipv6_checked: every IPv6 readiness check of the period (see
-- throughput_checked for the variables), with the reason it does not count.
with

in_period as (
    select i.*
    from ipv6 i
    where i.measured_at >= coalesce(getvariable('period_from'), '-infinity'::timestamptz)
      and i.measured_at < coalesce(getvariable('period_to'), 'infinity'::timestamptz)
      and i.synthetic = coalesce(getvariable('synthetic'), false)
)

select
    i.result_id,
    i.probe_id,
    i.ward_code,
    coalesce(p.site_class, 'unknown') as site_class,
    i.measured_at,
    -- the day in Cần Thơ: Asia/Ho_Chi_Minh is UTC+7 all year (no DST since 1975),
    -- so microseconds + 7 h, whole days since 1970-01-01
    date '1970-01-01'
        + ((epoch_us(i.measured_at) + 25200000000) // 86400000000)::integer as local_day,
    i.synthetic,
    i.network_kind,
    coalesce(i.ipv6_capable, false) as ipv6_capable,
    coalesce(i.ipv6_preferred, false) as ipv6_preferred,
    case
        when i.status <> 'ok' then 'status ' || i.status
        when i.clock_sync <> 'synchronised' then 'clock not synchronised'
        when i.ipv6_capable is null then 'verdict missing'
    end as excluded_because
from in_period i
left join probes p using (probe_id)
