-- qcvn34_fixed_lines: the national reference for fixed broadband, QCVN
-- 34:2022, line by line: one row per fixed-line probe and ward with its
-- mean download and upload over its valid tests (samples), its plan's
-- advertised speeds (probes.plan_down_mbps, plan_up_mbps: Vd, Vu) and
-- whether the means reach qcvn34_plan_ratio (0.8) of them. A line without a
-- recorded plan has NULL verdicts (not guessed); a probe whose interface
-- negotiated less than 0.8 × the plan cannot show it: probe-limited.
with

k as (
    select max(value) filter (where name = 'qcvn34_plan_ratio') as plan_ratio
    from indicator_constants
),

lines as (
    select
        probe_id,
        ward_code,
        count(*) filter (where direction = 'download') as download_tests,
        -- megabits per second from here on
        avg(mbps) filter (where direction = 'download') as mean_download_mbps,
        count(*) filter (where direction = 'upload') as upload_tests,
        avg(mbps) filter (where direction = 'upload') as mean_upload_mbps,
        max(link_speed_mbps) as link_speed_mbps
    from throughput_checked
    where excluded_because is null and network_kind = 'fixed'
    group by probe_id, ward_code
)

select
    l.probe_id,
    l.ward_code,
    p.isp,
    p.plan_down_mbps,
    p.plan_up_mbps,
    l.download_tests,
    l.mean_download_mbps,
    l.upload_tests,
    l.mean_upload_mbps,
    l.link_speed_mbps,
    p.plan_down_mbps is not null as plan_recorded,
    coalesce(l.link_speed_mbps < k.plan_ratio * p.plan_down_mbps, false)
        as download_probe_limited,
    coalesce(l.link_speed_mbps < k.plan_ratio * p.plan_up_mbps, false) as upload_probe_limited,
    l.mean_download_mbps >= k.plan_ratio * p.plan_down_mbps as download_meets,
    l.mean_upload_mbps >= k.plan_ratio * p.plan_up_mbps as upload_meets
from lines l
cross join k
left join probes p using (probe_id)
