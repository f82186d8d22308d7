-- rollup_keys: how many rows each table holds per probe, data kind (real or
-- synthetic) and Cần Thơ day (UTC+7 all year). Results are only ever added,
-- so a (probe, day) whose count changed is exactly one whose rollups are stale.
select 'throughput' as result_table, probe_id, synthetic,
       date '1970-01-01' + ((epoch_us(measured_at) + 25200000000) // 86400000000)::integer
           as local_day,
       count(*) as results
from throughput group by all
union all
select 'latency', probe_id, synthetic,
       date '1970-01-01' + ((epoch_us(measured_at) + 25200000000) // 86400000000)::integer,
       count(*)
from latency group by all
union all
select 'cellular', probe_id, synthetic,
       date '1970-01-01' + ((epoch_us(measured_at) + 25200000000) // 86400000000)::integer,
       count(*)
from cellular group by all
union all
select 'ipv6', probe_id, synthetic,
       date '1970-01-01' + ((epoch_us(measured_at) + 25200000000) // 86400000000)::integer,
       count(*)
from ipv6 group by all
