-- probe_download_by_tech: one row per mobile probe, ward, operator and access
-- technology: the probe's mean download on that technology. A test whose
-- radio changed technology between its start and its end belongs to neither
-- and is left out here (it still counts in probe_download).
select
    probe_id,
    ward_code,
    any_value(site_class) as site_class,
    operator_name,
    access_tech,
    count(*) as tests,
    avg(mbps) as mean_mbps,  -- megabits per second
    median(mbps) as median_mbps
from throughput_checked
where excluded_because is null
  and direction = 'download'
  and network_kind = 'mobile'
  and access_tech is not null
  and access_tech = coalesce(access_tech_end, access_tech)
group by probe_id, ward_code, operator_name, access_tech
