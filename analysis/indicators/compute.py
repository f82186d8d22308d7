"""compute_indicators: every indicator of the plan for a period, in one report.

It prepares the connection (the views, and the daily rollups: the
snapshot's own or built here), sets the period's days, reads what the
families share (analysis/indicators/context.py) and asks each family's
module for its figures, in the order the report lists them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from analysis import constants as k
from analysis.catalog import install_views, rollup_sql
from analysis.indicators import (
    cell_proxy,
    fixed,
    ipv6,
    ipv6_reference,
    ipv6_services,
    latency,
    mobile,
    nr,
    qcvn,
    zones,
)
from analysis.indicators.context import Context
from analysis.indicators.figures import Calc, Figure, Grouping, ProbeValues
from analysis.indicators.ipv6 import OfficeIpv6
from analysis.indicators.ipv6_reference import Ipv6Reference
from analysis.indicators.ipv6_services import ServiceIpv6
from analysis.indicators.nr import WardPeopleNr
from analysis.indicators.zones import ZoneSite
from analysis.periods import Period, set_days
from analysis.rollups import has_rollups, refresh_rollups, rollups_fit


@dataclass(frozen=True)
class IndicatorReport:
    """Everything `compute_indicators` found for one period."""

    period: Period
    ward: int | None
    by: Grouping | None
    synthetic: bool
    figures: list[Figure]
    exclusions: list[tuple[str, str, int]]  # (table, reason, results)
    zone_sites: list[ZoneSite]
    baseline: str
    # Each figure's per-probe values, when asked for (keep_probe_values).
    probe_values: list[ProbeValues] = field(default_factory=list)
    # ipv6_leading_provinces: the probes' IPv6 beside APNIC's and the provinces'.
    ipv6_reference: Ipv6Reference | None = None
    # The government offices one by one, with their LAN's IPv6 (ipv6_office_share).
    offices: list[OfficeIpv6] = field(default_factory=list)
    # The city's services one by one, with their IPv6 readiness (ipv6_service_ready_share).
    services: list[ServiceIpv6] = field(default_factory=list)
    # nr_population_share's wards one by one: people, 5G time share, people covered.
    nr_population: list[WardPeopleNr] = field(default_factory=list)


def open_store(path: Path | str) -> duckdb.DuckDBPyConnection:
    """Open a store (or the analyst snapshot) read-only, for compute_indicators."""
    return duckdb.connect(str(path), read_only=True)


def prepare(con: duckdb.DuckDBPyConnection) -> str:
    """Install the views and make sure rollups are there: the snapshot's own
    (as fresh as the snapshot) or temporary ones, built or brought up to date
    from the store. Returns which."""
    install_views(con, temporary=True)
    # A snapshot published by another release may have counted by other
    # definitions: then its rollups are not used, but built again here.
    if has_rollups(con, temporary=False) and rollups_fit(con, temporary=False):
        return "snapshot rollups"
    refresh_rollups(con, temporary=True)
    return "rollups built from the store"


def compute_indicators(
    con: duckdb.DuckDBPyConnection,
    period: Period,
    *,
    ward: int | None = None,
    by: Grouping | None = None,
    synthetic: bool = False,
    seed: int = 20260101,
    keep_probe_values: bool = False,
    baselines: Sequence[str] = k.BASELINE_PREFERENCE,
) -> IndicatorReport:
    """Every indicator of DESIGN.md for a period, for the city and each ward
    (or one ward), optionally grouped by operator, access technology or site
    class. `synthetic` selects the synthetic generator's rows instead of
    the probes'. The bootstrap is seeded: the same data gives the same
    intervals. `keep_probe_values` keeps every figure's per-probe values in
    the report (for analysis/sampling.py's sample sizes). `baselines` orders
    the kinds of 2024 baseline the doubling ratio uses (analysis/constants.py's
    BASELINE_KINDS; kinds left out come after, in the default order); a kind
    that is none of them is a ValueError."""
    unknown = [b for b in baselines if b not in k.BASELINE_KINDS]
    if unknown:
        raise ValueError(
            f"unknown baseline {', '.join(unknown)}; expected {', '.join(k.BASELINE_KINDS)}"
        )
    order = tuple(dict.fromkeys([*baselines, *k.BASELINE_PREFERENCE]))
    prepare(con)
    set_days(con, period, synthetic)
    spread: list[ProbeValues] | None = [] if keep_probe_values else None
    ctx = Context.load(con, period, Calc(ward, by, seed, spread, order), synthetic=synthetic)
    mobile_figures, baseline = mobile.figures(ctx)
    zone_sites = zones.sites(ctx)
    office_list = ipv6.offices(ctx)
    # The services are the city's: a ward's report has none.
    service_list = ipv6_services.services(con, period, synthetic) if ward is None else []
    people_figures, people_wards = nr.population_figures(ctx)
    figures = [
        *mobile_figures,
        *fixed.figures(ctx),
        *nr.figures(ctx),
        *people_figures,
        *ipv6.figures(ctx),
        *ipv6.office_figures(ctx, office_list),
        *ipv6_services.figures(ctx, service_list),
        *latency.figures(ctx),
        *zones.figures(ctx, zone_sites),
        *cell_proxy.figures(ctx),
        *qcvn.figures(ctx),
    ]
    return IndicatorReport(
        period=period,
        ward=ward,
        by=by,
        synthetic=synthetic,
        figures=figures,
        exclusions=exclusions(con, ward),
        zone_sites=zone_sites,
        baseline=baseline,
        probe_values=spread or [],
        # The city's services beside APNIC's and the provinces' figures.
        ipv6_reference=ipv6_reference.figure(
            ctx, services=ipv6_services.readiness_of(service_list) if service_list else None
        ),
        offices=office_list,
        services=service_list,
        nr_population=people_wards,
    )


def exclusions(con: duckdb.DuckDBPyConnection, ward: int | None) -> list[tuple[str, str, int]]:
    """(table, reason, results) of the period's results that do not count,
    most first within each table, reasons with the same count by name, so
    every reader lists them in one order (from units_exclusions over
    rollup_exclusions; the view exclusions is the same count for analysts)."""
    where = "" if ward is None else f" where ward_code = {int(ward)}"
    return [
        (str(r[0]), str(r[1]), int(r[2]))
        for r in con.execute(
            "select result_table, excluded_because, sum(results)::bigint from ("
            + rollup_sql("units_exclusions")
            + ")"
            + where
            + " group by all order by 1, 3 desc, 2"
        ).fetchall()
    ]
