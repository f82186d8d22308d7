-- zone_targets: one row per probe at a high-tech park, IT park, R&D centre or
-- industrial zone (the plan's zone targets are 100 % of such sites with 5G
-- service and with gigabit fixed access): its 5G and gigabit figures.
-- NULL where the site has no mobile (or no fixed) measurements in the period.
with

zone_probes as (
    select probe_id, ward_code, ward_name, site_class
    from probes
    -- analysis/constants.py's ZONE_SITE_CLASSES, written in when the view is
    -- created (the snapshot holds it written out)
    where site_class in ({{zone_site_classes}})
)

select
    z.probe_id,
    z.ward_code,
    z.ward_name,
    z.site_class,
    n.nr_time_share,  -- share 0..1 of observed time on NR
    n.saw_nr,
    n.probe_limited as nr_probe_limited,
    g.p90_mbps,  -- megabits per second
    g.gigabit_capable,
    g.gigabit_probe_limited
from zone_probes z
left join nr_availability n on n.probe_id = z.probe_id and n.ward_code = z.ward_code
left join gigabit_capable g on g.probe_id = z.probe_id and g.ward_code = z.ward_code
