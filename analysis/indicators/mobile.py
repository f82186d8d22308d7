"""Mobile download: mobile_download_mean, mobile_download_ratio and
mobile_download_by_tech.

Where each part is defined:
- which downloads count: the view throughput_checked (wardprobe/validity.py's rule);
- each probe's figure, its mean valid download: the views probe_download
  and, per access technology (a test whose radio changed technology left
  out), probe_download_by_tech. The indicators read the same per-probe
  means from the daily rollups (rollup_download, summed over the period's
  days by units_download and units_download_by_tech), only for speed;
  tests/analysis/test_views_agree.py holds them to the views;
- across probes, here and only here: the probe-balanced mean, the floor,
  the bootstrap interval, the groups, the targets, and the ratio to the
  2024 baseline. The view mobile_download_by_tech shows analysts the same
  mean of the probes' means per ward, operator and technology, without the
  floor or an interval.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from analysis import constants as k
from analysis.indicators.context import Context
from analysis.indicators.figures import (
    INSUFFICIENT,
    BaselineComparison,
    Figure,
    Statistic,
    Unit,
    enough,
    scope_key,
    targets,
)
from analysis.indicators.intervals import bootstrap_interval, mean, median, ratio_of_means
from analysis.periods import parse_period, set_days

if TYPE_CHECKING:
    from analysis.baseline import BaselineRow
    from analysis.ookla import TileFigure

BY_TECH_NOTE = (
    "per access technology, tests whose radio changed technology left out; "
    "a row without a group: no such test in the scope"
)


def figures(ctx: Context) -> tuple[list[Figure], str]:
    """The mobile download figures, and which 2024 baseline the ratio used."""
    current = [
        Unit(
            ward_code=r["ward_code"],
            group=ctx.group(r["probe_id"], ctx.operator_of(r), "all"),
            value=r["mean_mbps"],
            tests=r["tests"],
        )
        for r in ctx.mobile
    ]
    ratio, baseline = ratio_figures(ctx, current)
    return [
        *ctx.calc.mean_figures("mobile_download_mean", "Mb/s", current),
        *ratio,
        *by_tech_figures(ctx),
    ], baseline


def by_tech_figures(ctx: Context) -> list[Figure]:
    """Mobile download per access technology (and operator) against 40/100 Mb/s."""
    by = ctx.calc.by
    units = [
        Unit(
            ward_code=r["ward_code"],
            group=f"access_tech={r['access_tech']}"
            + (f";operator={r['operator_name']}" if by == "operator" else "")
            + (
                f";site_class={ctx.site.get(r['probe_id'], 'unknown')}"
                if by == "site_class"
                else ""
            ),
            value=r["mean_mbps"],
            tests=r["tests"],
        )
        for r in ctx.rows("units_download_by_tech")
    ]
    return ctx.calc.mean_figures(
        "mobile_download_by_tech",
        "Mb/s",
        units,
        target_tech=lambda g: (g or "").split(";")[0].removeprefix("access_tech="),
        note=BY_TECH_NOTE,
    )


@dataclass(frozen=True)
class _Option:
    """One baseline a scope's ratio could use: its comparison, whether its
    baseline clears its floor, the note's words, and the per-probe values
    to keep when it is used (statistic, values, baseline values)."""

    comparison: BaselineComparison
    available: bool
    source: str
    kept: tuple[Statistic, list[float], list[float]]


def _probes_option(values: list[float], base: list[Unit], seed: int) -> _Option:
    """Against the store's own 2024 probes, the same statistic: like with like."""
    base_values = [u.value for u in base]
    base_tests = sum(u.tests for u in base)
    available = enough(len(base_values), base_tests)
    value = low = high = None
    if available and values:
        value = float(np.mean(values) / np.mean(base_values))
        low, high = bootstrap_interval([values, base_values], ratio_of_means, seed)
    source = (
        f"{k.BASELINE_YEAR} measurements in the store "
        f"({len(base_values)} probes, {base_tests} tests, probe-balanced mean)"
    )
    return _Option(
        BaselineComparison(
            baseline="probes",
            numerator="probes",
            statistic="mean",
            like_with_like=True,
            used=False,
            source=source,
            baseline_mbps=float(np.mean(base_values)),
            baseline_probes=len(base_values),
            baseline_tests=base_tests,
            baseline_devices=None,
            baseline_tiles=None,
            baseline_quarters=(),
            licence=None,
            current_mbps=float(np.mean(values)) if values else None,
            current_quarters=(),
            value=value,
            ci_low=low,
            ci_high=high,
            interval="bootstrap",
            status="ok" if value is not None else INSUFFICIENT,
        ),
        available,
        source,
        ("ratio", values, base_values),
    )


def _exact_option(
    kind: str,
    values: list[float],
    statistic: str,
    base_mbps: float,
    source: str,
    seed: int,
    *,
    tests: int | None = None,
    devices: int | None = None,
    tiles: int | None = None,
    quarters: tuple[str, ...] = (),
    licence: str | None = None,
    available: bool = True,
) -> _Option:
    """Against a figure from outside the probes (Ookla's tiles, an imported
    row), taken as exact: the interval is the probes' own over it."""
    stat = np.median if statistic == "median" else np.mean
    value = low = high = None
    if available and values:
        value = float(stat(values)) / base_mbps
        low_now, high_now = bootstrap_interval(
            [values], median if statistic == "median" else mean, seed
        )
        if low_now is not None and high_now is not None:
            low, high = low_now / base_mbps, high_now / base_mbps
    return _Option(
        BaselineComparison(
            baseline=kind,
            numerator="probes",
            statistic=statistic,
            like_with_like=False,
            used=False,
            source=source,
            baseline_mbps=base_mbps,
            baseline_probes=None,
            baseline_tests=tests,
            baseline_devices=devices,
            baseline_tiles=tiles,
            baseline_quarters=quarters,
            licence=licence,
            current_mbps=float(stat(values)) if values else None,
            current_quarters=(),
            value=value,
            ci_low=low,
            ci_high=high,
            interval="bootstrap",
            status="ok" if value is not None else INSUFFICIENT,
        ),
        available,
        source,
        (
            "median" if statistic == "median" else "mean",
            [v / base_mbps for v in values],
            [],
        ),
    )


def _tiles_option(values: list[float], tiles: TileFigure, seed: int) -> _Option:
    """The probes' mean against Ookla's tiles: phone-app tests, not like with like."""
    source = (
        f"{tiles.label} (tests-weighted mean {tiles.mean_mbps:.1f} Mb/s over {tiles.tests} "
        f"tests, {tiles.devices} devices, {tiles.tiles} tiles; {tiles.licence}; crowd-sourced "
        "phone-app tests, not like with like)"
    )
    return _exact_option(
        "ookla_tiles",
        values,
        "mean",
        tiles.mean_mbps,
        source,
        seed,
        tests=tiles.tests,
        devices=tiles.devices,
        tiles=tiles.tiles,
        quarters=tiles.quarters,
        licence=tiles.licence,
        available=tiles.enough,
    )


def _imported_option(values: list[float], row: BaselineRow, seed: int) -> _Option:
    """Against an imported figure (VNNIC's median, say), on its own statistic."""
    source = (
        f"imported {k.BASELINE_YEAR} {row.statistic} {row.value_mbps:g} Mb/s "
        f"(n={row.sample_size}) from {row.source}"
    )
    if row.statistic == "median":
        source += "; the ratio is the median of the probes' figures over it (median against median)"
    return _exact_option(
        "imported", values, row.statistic, row.value_mbps, source, seed, tests=row.sample_size
    )


def _tiles_to_tiles(now: TileFigure, then: TileFigure) -> BaselineComparison:
    """Ookla's tiles of the period over their own 2024: like with like, the
    probes' ratio's cross-check. Both sides are Ookla's whole tally, not a
    sample of probes: no interval (docs/indicators.md)."""
    value = now.mean_mbps / then.mean_mbps if now.enough and then.enough else None
    return BaselineComparison(
        baseline="ookla_tiles",
        numerator="ookla_tiles",
        statistic="mean",
        like_with_like=True,
        used=False,
        source=f"{then.label} (tests-weighted mean {then.mean_mbps:.1f} Mb/s)",
        baseline_mbps=then.mean_mbps,
        baseline_probes=None,
        baseline_tests=then.tests,
        baseline_devices=then.devices,
        baseline_tiles=then.tiles,
        baseline_quarters=then.quarters,
        licence=then.licence,
        current_mbps=now.mean_mbps,
        current_quarters=now.quarters,
        value=value,
        ci_low=None,
        ci_high=None,
        interval="none",
        status="ok" if value is not None else INSUFFICIENT,
    )


def ratio_figures(ctx: Context, current: list[Unit]) -> tuple[list[Figure], str]:
    """Mobile download divided by the 2024 baseline, per scope and group,
    and which baselines were used.

    Every baseline the store has for a scope is compared (`Figure.baselines`):
    the same statistic over 2024's measurements in the store, Ookla's 2024
    tiles (the probes' mean over their tests-weighted mean) and each
    imported row (its statistic, mean or median, on both sides). The
    figure's value uses the first of the report's preference
    (Calc.baselines) whose baseline clears its floor. Where Ookla's tiles of
    the period are imported too, their ratio to Ookla's 2024 is listed
    beside (like with like)."""
    from analysis.baseline import imported_rows
    from analysis.ookla import quarters_within, tile_figures

    calc = ctx.calc
    set_days(ctx.con, parse_period(str(k.BASELINE_YEAR)), ctx.synthetic)
    try:
        base_units = [
            Unit(
                ward_code=r["ward_code"],
                group=ctx.group(r["probe_id"], ctx.operator_of(r), "all"),
                value=r["mean_mbps"],
                tests=r["tests"],
            )
            for r in ctx.rows("units_download")
            if r["network_kind"] == "mobile"
        ]
    finally:
        set_days(ctx.con, ctx.period, ctx.synthetic)
    imported = imported_rows(ctx.con, k.BASELINE_YEAR)
    tiles_then = tile_figures(ctx.con, "mobile", ((k.BASELINE_YEAR, q) for q in range(1, 5)))
    tiles_now = tile_figures(ctx.con, "mobile", quarters_within(ctx.period))
    base_scopes = calc.scopes(base_units)
    used: set[str] = set()
    out = []
    for (scope, group), members in sorted(calc.scopes(current).items(), key=scope_key):
        values = [u.value for u in members]
        tests = sum(u.tests for u in members)
        # the probes' side below its floor: every ratio is "insufficient data"
        now = values if enough(len(values), tests) else []
        options = []
        if base := base_scopes.get((scope, group), []):
            options.append(_probes_option(now, base, calc.seed))
        if group is None:
            if (then := tiles_then.get(scope)) is not None:
                options.append(_tiles_option(now, then, calc.seed))
            options += [_imported_option(now, row, calc.seed) for row in imported.get(scope, [])]
        chosen = next(
            (
                o
                for kind in calc.baselines
                for o in options
                if o.comparison.baseline == kind and o.available
            ),
            None,
        )
        comparisons = [
            dataclasses.replace(o.comparison, used=True) if o is chosen else o.comparison
            for o in options
        ]
        if group is None and scope in tiles_then and scope in tiles_now:
            comparisons.append(_tiles_to_tiles(tiles_now[scope], tiles_then[scope]))
        value = low = high = None
        if chosen is None:
            source = f"no {k.BASELINE_YEAR} baseline for this scope"
        else:
            source = chosen.source
            value, low, high = (
                chosen.comparison.value,
                chosen.comparison.ci_low,
                chosen.comparison.ci_high,
            )
            if value is not None:
                statistic, kept, kept_base = chosen.kept
                calc.keep(
                    "mobile_download_ratio",
                    scope,
                    group,
                    statistic,
                    kept,
                    (u.tests for u in members),
                    kept_base,
                )
        used.add(source.split(" (")[0])
        note = f"baseline: {source}"
        cross = next((c for c in comparisons if c.numerator == "ookla_tiles"), None)
        if cross is not None and cross.value is not None:
            note += (
                f"; Ookla tiles {', '.join(cross.current_quarters)} over "
                f"{', '.join(cross.baseline_quarters)}: {cross.value:.3g} "
                "(tiles to tiles, like with like)"
            )
        out.append(
            Figure(
                indicator="mobile_download_ratio",
                scope=scope,
                group=group,
                unit="ratio",
                value=value,
                ci_low=low,
                ci_high=high,
                interval="bootstrap",
                mean=None,
                median=None,
                probes=len(values),
                tests=tests,
                probe_limited=0,
                status="ok" if value is not None else "insufficient data",
                targets=targets("mobile_download_ratio", value),
                note=note,
                baselines=tuple(comparisons),
            )
        )
    return out, "; ".join(sorted(used)) if used else "no mobile results"
