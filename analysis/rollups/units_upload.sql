-- units_upload: one row per probe, ward and network kind over the period's
-- days from rollup_upload: the probe's mean upload (Mb/s), tests and link
-- speed, as units_download gives the downloads.
select
    probe_id,
    ward_code,
    network_kind,
    sum(tests)::bigint as tests,
    sum(sum_mbps) / sum(tests) as mean_mbps,  -- megabits per second
    max(link_speed_mbps) as link_speed_mbps
from rollup_upload
where local_day >= getvariable('day_from') and local_day < getvariable('day_to')
  and synthetic = getvariable('synthetic')
group by all
