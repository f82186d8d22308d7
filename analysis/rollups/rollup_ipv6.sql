-- rollup_ipv6: each probe's valid IPv6 checks per Cần Thơ day and network
-- kind, and how many found working and preferred IPv6.
select
    probe_id,
    ward_code,
    synthetic,
    local_day,
    network_kind,
    count(*) as checks,
    count(*) filter (where ipv6_capable) as capable,
    count(*) filter (where ipv6_preferred) as preferred
from ipv6_checked
semi join rollup_dirty d using (probe_id, local_day)
where excluded_because is null
group by all
