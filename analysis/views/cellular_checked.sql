-- cellular_checked: every radio observation of the period (see
-- throughput_checked for the variables), with the reason it does not count,
-- and the time it stands for: until the probe's next valid observation of
-- the same day, at most cellular_max_gap_s (the last one of a probe's day
-- gets the mean of that day's other gaps, the probe's pace that day; a day's
-- only observation gets cellular_max_gap_s).
with

k as (
    select max(value) filter (where name = 'cellular_max_gap_s') as max_gap_s
    from indicator_constants
),

in_period as (
    select
        c.*,
        -- the Cần Thơ day (see throughput_checked)
        date '1970-01-01'
            + ((epoch_us(c.measured_at) + 25200000000) // 86400000000)::integer as day,
        case
            when c.status <> 'ok' then 'status ' || c.status
            when c.clock_sync <> 'synchronised' then 'clock not synchronised'
            when c.access_tech is null then 'no access technology'
        end as excluded_because
    from cellular c
    where c.measured_at >= coalesce(getvariable('period_from'), '-infinity'::timestamptz)
      and c.measured_at < coalesce(getvariable('period_to'), 'infinity'::timestamptz)
      and c.synthetic = coalesce(getvariable('synthetic'), false)
),

gaps as (
    select
        result_id,
        probe_id,
        day,
        -- seconds to the same probe's next valid observation, capped; NULL for
        -- the day's last, which takes the mean of the others below (least()
        -- alone skips the NULL and would give it the whole cap)
        case when lead(measured_at) over w is not null
            then least(epoch(lead(measured_at) over w) - epoch(measured_at), k.max_gap_s)
        end as gap_s
    from in_period
    cross join k
    where excluded_because is null
    window w as (partition by probe_id, day order by measured_at)
),

typical as (
    select result_id, gap_s, avg(gap_s) over (partition by probe_id, day) as mean_gap_s
    from gaps
)

select
    c.result_id,
    c.probe_id,
    c.ward_code,
    coalesce(p.site_class, 'unknown') as site_class,
    c.measured_at,
    c.day as local_day,
    c.synthetic,
    c.access_tech,
    c.access_tech in ('nr5g_nsa', 'nr5g_sa') as on_nr,
    c.operator_name,
    c.cell_id,
    -- the NR cell it was on, for the cell proxy: an SA cell's id; an NSA
    -- connection's 5G leg by its ward, NR-ARFCN and physical cell id where
    -- the modem gave them (NSA reports no NR cell id; a PCI is unique only
    -- among neighbouring cells, so the ward is part of the key), else its
    -- LTE anchor's id
    case
        when c.access_tech = 'nr5g_sa' then c.cell_id
        when c.access_tech = 'nr5g_nsa' and c.nr_pci is not null
            then 'ward ' || c.ward_code || ' nr-arfcn ' || coalesce(c.nr_channel::varchar, '?')
                || ' pci ' || c.nr_pci
        when c.access_tech = 'nr5g_nsa' then c.cell_id
    end as nr_cell_key,
    c.modem_5g_capable,
    -- seconds this observation stands for (NULL when it does not count)
    case when c.excluded_because is null
        then coalesce(t.gap_s, t.mean_gap_s, k.max_gap_s) end as weight_s,
    c.excluded_because
from in_period c
cross join k
left join typical t using (result_id)
left join probes p using (probe_id)
