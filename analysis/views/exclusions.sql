-- exclusions: how many results of the period do not count, per table, ward
-- and reason (see analysis/constants.py for the validity rules).
select 'throughput' as result_table, ward_code, excluded_because, count(*) as results
from throughput_checked where excluded_because is not null group by all
union all
select 'latency', ward_code, excluded_because, count(*)
from latency_checked where excluded_because is not null group by all
union all
select 'cellular', ward_code, excluded_because, count(*)
from cellular_checked where excluded_because is not null group by all
union all
select 'ipv6', ward_code, excluded_because, count(*)
from ipv6_checked where excluded_because is not null group by all
