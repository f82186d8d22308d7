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

import numpy as np

from analysis import constants as k
from analysis.indicators.context import Context
from analysis.indicators.figures import Figure, Unit, enough, scope_key, targets
from analysis.indicators.intervals import bootstrap_interval, mean, median, ratio_of_means
from analysis.periods import parse_period, set_days

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


def ratio_figures(ctx: Context, current: list[Unit]) -> tuple[list[Figure], str]:
    """Mobile download divided by the 2024 baseline, per scope and group,
    and which baselines were used.

    The baseline is the same statistic over 2024's measurements in the store
    when they clear the floor, otherwise an imported baseline row for the
    scope (its statistic, mean or median, is then used for both)."""
    from analysis.baseline import imported_baselines

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
    imported = imported_baselines(ctx.con, k.BASELINE_YEAR)
    base_scopes = calc.scopes(base_units)
    used: set[str] = set()
    out = []
    for (scope, group), members in sorted(calc.scopes(current).items(), key=scope_key):
        values = [u.value for u in members]
        tests = sum(u.tests for u in members)
        base = base_scopes.get((scope, group), [])
        base_values = [u.value for u in base]
        base_tests = sum(u.tests for u in base)
        enough_now = enough(len(values), tests)
        value = low = high = None
        if enough(len(base_values), base_tests):
            source = (
                f"{k.BASELINE_YEAR} measurements in the store "
                f"({len(base_values)} probes, {base_tests} tests, probe-balanced mean)"
            )
            if enough_now:
                value = float(np.mean(values) / np.mean(base_values))
                low, high = bootstrap_interval([values, base_values], ratio_of_means, calc.seed)
                calc.keep(
                    "mobile_download_ratio",
                    scope,
                    group,
                    "ratio",
                    values,
                    (u.tests for u in members),
                    base_values,
                )
        elif group is None and (row := imported.get(scope)) is not None:
            source = (
                f"imported {k.BASELINE_YEAR} {row.statistic} {row.value_mbps:g} Mb/s "
                f"(n={row.sample_size}) from {row.source}"
            )
            if enough_now:
                fn = np.mean if row.statistic == "mean" else np.median
                value = float(fn(values)) / row.value_mbps
                calc.keep(
                    "mobile_download_ratio",
                    scope,
                    group,
                    "mean" if row.statistic == "mean" else "median",
                    (v / row.value_mbps for v in values),
                    (u.tests for u in members),
                )
                low_now, high_now = bootstrap_interval(
                    [values], mean if row.statistic == "mean" else median, calc.seed
                )
                if low_now is not None and high_now is not None:
                    # the imported figure is taken as exact: only ours varies
                    low, high = low_now / row.value_mbps, high_now / row.value_mbps
        else:
            source = f"no {k.BASELINE_YEAR} baseline for this scope"
        used.add(source.split(" (")[0])
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
                note=f"baseline: {source}",
            )
        )
    return out, "; ".join(sorted(used)) if used else "no mobile results"
