-- units_download_by_tech: one row per mobile probe, ward, operator and access
-- technology over the period's days: its mean download on it (Mb/s).
select
    probe_id,
    ward_code,
    operator_name,
    access_tech,
    sum(tests)::bigint as tests,
    sum(sum_mbps) / sum(tests) as mean_mbps
from rollup_download
where local_day >= getvariable('day_from') and local_day < getvariable('day_to')
  and synthetic = getvariable('synthetic')
  and network_kind = 'mobile' and access_tech is not null
group by all
