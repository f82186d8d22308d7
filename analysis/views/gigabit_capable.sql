-- gigabit_capable: one row per fixed-line probe: whether its line is
-- gigabit-capable (90th-percentile download >= gigabit_p90_mbps) and whether
-- its mean download reaches fixed_200_mbps. A probe whose interface
-- negotiated less than the speed asked for cannot show it: probe-limited,
-- outside the share's denominator (a probe that reports no link speed is
-- taken at its word).
with

k as (
    select
        max(value) filter (where name = 'gigabit_p90_mbps') as gigabit_p90_mbps,
        max(value) filter (where name = 'gigabit_port_mbps') as gigabit_port_mbps,
        max(value) filter (where name = 'fixed_200_mbps') as fixed_200_mbps
    from indicator_constants
)

select
    d.probe_id,
    d.ward_code,
    d.site_class,
    d.tests,
    d.mean_mbps,
    d.median_mbps,
    d.p90_mbps,
    d.link_speed_mbps,
    coalesce(d.link_speed_mbps < k.gigabit_port_mbps, false) as gigabit_probe_limited,
    d.p90_mbps >= k.gigabit_p90_mbps as gigabit_capable,
    coalesce(d.link_speed_mbps < k.fixed_200_mbps, false) as fixed_200_probe_limited,
    d.mean_mbps >= k.fixed_200_mbps as mean_at_least_200_mbps
from probe_download d
cross join k
where d.network_kind = 'fixed'
