-- units_ipv6: one row per probe, ward and network kind over the period's
-- days: its checks and whether the share that found working (preferred)
-- IPv6 reaches ipv6_probe_share.
with

k as (select value as probe_share from indicator_constants where name = 'ipv6_probe_share')

select
    probe_id,
    ward_code,
    network_kind,
    sum(checks)::bigint as checks,
    sum(capable) / sum(checks) >= any_value(k.probe_share) as ipv6_capable,
    sum(preferred) / sum(checks) >= any_value(k.probe_share) as ipv6_preferred
from rollup_ipv6
cross join k
where local_day >= getvariable('day_from') and local_day < getvariable('day_to')
  and synthetic = getvariable('synthetic')
group by probe_id, ward_code, network_kind
