-- ipv6_service_readiness: one row per service of the city's list (its name and
-- kind) checked in the period, with its last decided check: every applicable
-- check passed (ready) or one failed, from whichever site checked it (a probe
-- or the central site). A check the site could not decide (it has no IPv6
-- route of its own, its resolver was silent) does not count; a service never
-- decided in the period is here with ready NULL. 235/KH-UBND moves all the
-- city's IT systems to IPv6, 87/KH-UBND its departments' systems: the target
-- is every service ready (ipv6_service_ready_share).
--
-- A check counts when its run is ok. Its time (measured_at below) is the
-- probe's when the probe's clock was synchronised, else when the aggregator
-- received it: a check is a verdict, not a timing, and its time only places it
-- in the period and orders it, which the aggregator's clock does to within the
-- probe's upload delay (a box without NTP still tells whether a service works).
with

runs as (
    select
        s.probe_id,
        case when s.clock_sync = 'synchronised' then s.measured_at else s.received_at end
            as measured_at,
        s.checks
    from ipv6_services s
    where s.synthetic = coalesce(getvariable('synthetic'), false)
      and s.status = 'ok'
),

checks as (
    select
        probe_id,
        measured_at,
        unnest(checks) as c
    from runs
    where measured_at >= coalesce(getvariable('period_from'), '-infinity'::timestamptz)
      and measured_at < coalesce(getvariable('period_to'), 'infinity'::timestamptz)
),

flat as (
    select
        probe_id,
        measured_at,
        c.hostname as hostname,
        c.kind as kind,
        c.department as department,
        c.ready as ready,
        c.aaaa_ok as aaaa_ok,
        c.web_ok as web_ok,
        c.ns_ok as ns_ok,
        c.mx_ok as mx_ok,
        -- the reasons of the checks that did not pass, in the checks' order (a
        -- name without AAAA fails the web check for the same reason: said once)
        nullif(
            concat_ws(
                ', ',
                c.aaaa_reason,
                case when c.web_reason <> coalesce(c.aaaa_reason, '') then c.web_reason end,
                c.ns_reason,
                c.mx_reason
            ),
            ''
        ) as why_not
    from checks
),

per_service as (
    select
        hostname,
        kind,
        arg_max_null(department, measured_at) as department,
        count(*) as checks,
        count(ready) as decided_checks,
        max(measured_at) filter (where ready is not null) as checked_at,
        arg_max_null(probe_id, measured_at) filter (where ready is not null) as checked_by,
        arg_max_null(ready, measured_at) filter (where ready is not null) as ready,
        arg_max_null(aaaa_ok, measured_at) filter (where ready is not null) as aaaa_ok,
        arg_max_null(web_ok, measured_at) filter (where ready is not null) as web_ok,
        arg_max_null(ns_ok, measured_at) filter (where ready is not null) as ns_ok,
        arg_max_null(mx_ok, measured_at) filter (where ready is not null) as mx_ok,
        -- of the last decided check; else of the last check (why it was undecided)
        -- (arg_max_null: a NULL of the last check is its value, not skipped)
        case
            when count(ready) > 0
                then arg_max_null(why_not, measured_at) filter (where ready is not null)
            else arg_max_null(why_not, measured_at)
        end as why_not
    from flat
    group by hostname, kind
)

select *
from per_service
order by department, hostname, kind
