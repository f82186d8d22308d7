"""Where more probes would settle the answer.

From compute_indicators' figures (and the per-probe values behind them,
`keep_probe_values=True`), for one period:

- below the floor: every scope (the city and each of the registry's wards,
  those without a probe too) whose figure has fewer than FLOOR_PROBES
  probes or FLOOR_TESTS valid tests, and how many more probes it needs at
  today's test rate, r = tests / probes of the ward's figure (the city's
  figure of the same indicator and group for a ward without a probe):
      more = max(FLOOR_PROBES - probes, ceil((FLOOR_TESTS - tests) / r), 0);
- unsettled: every figure whose 95 % interval contains a target's value,
  so that met / not met is not yet known, and an estimate of the probes
  that would settle it. With d = |value - target| and z = 1.96 (the
  CONFIDENCE of every interval), an interval of half-width z·s/√n leaves
  the target out when
      n ≈ (z·s / d)²            a mean across probes, s the between-probe SD;
      n ≈ (π/2)·(z·s / d)²      a median (its standard error is √(π/2)·s/√n);
      n ≈ z²·p(1-p) / d²        a share p of probes;
      n > z²·t/(1-t)            a share p = 1 (p = 0: n > z²·(1-t)/t), where
                                p(1-p) is 0: the n at which the Wilson
                                interval at that share leaves t out.
  For the national references' means over samples s is the SD of the
  probes' own means (probes are what is sampled). The 2024 ratio
  R = ā / b̄ (today's probes a, 2024's b) has Var R ≈ R²·(s_a²/(n·ā²) +
  s_b²/(n_b·b̄²)); only n grows, so
      n ≈ s_a² / (ā² · ((d / (z·R))² - s_b²/(n_b·b̄²))),
  none when the baseline's term alone is that wide; against an imported
  baseline (taken as exact) the mean's formula on the probes' figures
  over it. The
  total is at least FLOOR_PROBES; `more_probes` is the total less today's
  probes, at least 1 (the interval straddles now). A figure exactly on the
  target, or a share of 100 % against a 100 % target, has no such n:
  `probes_needed` is None and `note` says why.

The estimate assumes the new probes spread like today's; it is a planning
figure, not a promise. docs/report.md states the same.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import duckdb
from scipy import stats  # type: ignore[import-untyped]

from analysis import constants as k
from analysis.indicators import (
    Figure,
    IndicatorReport,
    Period,
    ProbeValues,
    compute_indicators,
)
from analysis.indicators.figures import Statistic
from analysis.indicators.ipv6_services import NAME as SERVICES_INDICATOR
from analysis.wards import can_tho_wards

Z: float = float(stats.norm.ppf(0.5 + k.CONFIDENCE / 2))


@dataclass(frozen=True)
class FloorGap:
    """A figure below the floor and the probes that would lift it."""

    indicator: str
    scope: str  # "city" or the ward's code
    ward_name: str | None  # None for the city
    group: str | None
    probes: int
    tests: int
    tests_per_probe: float | None  # today's rate; None: no probe anywhere to go by
    # "own": the scope's own tests per probe; "city": the city's (a ward without a probe)
    rate_from: Literal["own", "city"] | None
    more_probes: int | None  # None: no rate to go by, or not a matter of probes (note)
    note: str = ""


@dataclass(frozen=True)
class Unsettled:
    """A figure whose 95 % interval contains a target's value."""

    indicator: str
    scope: str  # "city" or the ward's code
    ward_name: str | None
    group: str | None
    unit: str
    value: float
    ci_low: float
    ci_high: float
    target_value: float
    comparator: str
    source: str
    due: str
    met_now: bool  # what the point value says today
    probes: int
    tests: int
    statistic: Statistic
    spread: float  # s (a share: √(p(1-p)))
    probes_needed: int | None  # total probes to settle it; None: see note
    more_probes: int | None
    note: str = ""


@dataclass(frozen=True)
class SamplingPlan:
    """Where more probes would settle the answer, for one period."""

    period: Period
    synthetic: bool
    z: float
    below_floor: list[FloorGap]
    unsettled: list[Unsettled]

    def more_probes_by_ward(self, indicator: str, group: str | None = None) -> dict[int, int]:
        """Per ward, the more probes the indicator needs there: to reach the
        floor, else to settle its least settled target (wards not listed need
        none, or no number of probes settles them). For a map layer."""
        out: dict[int, int] = {}
        floor = {
            int(g.scope): g.more_probes
            for g in self.below_floor
            if (g.indicator, g.group) == (indicator, group)
            and g.scope != "city"
            and g.more_probes is not None
        }
        out.update(floor)
        for u in self.unsettled:
            if (u.indicator, u.group) != (indicator, group) or u.scope == "city":
                continue
            if u.more_probes is not None:
                out[int(u.scope)] = max(out.get(int(u.scope), 0), u.more_probes)
        return out


NeedStatus = Literal["below floor", "unsettled", "settled"]


@dataclass(frozen=True)
class WardNeed:
    """One ward on the "more probes" map layer of one indicator (and group)."""

    ward_code: int
    ward_name: str
    status: NeedStatus  # below the floor, an interval containing a target, or neither
    probes: int | None  # None when settled: the indicator's own layer has them
    tests: int | None
    more_probes_to_floor: int | None  # below the floor: the probes to add (None: see note)
    more_probes_to_settle: int | None  # unsettled: the most any straddled target needs
    note: str


def ward_needs(plan: SamplingPlan, indicator: str, group: str | None = None) -> list[WardNeed]:
    """Every ward of the registry for one indicator (and group): what more
    probes would settle there. A ward neither below the floor nor unsettled
    has a figure whose interval leaves every target out."""
    gaps = {
        g.scope: g
        for g in plan.below_floor
        if (g.indicator, g.group) == (indicator, group) and g.scope != "city"
    }
    straddles: dict[str, list[Unsettled]] = {}
    for u in plan.unsettled:
        if (u.indicator, u.group) == (indicator, group) and u.scope != "city":
            straddles.setdefault(u.scope, []).append(u)
    out = []
    for code, info in sorted(can_tho_wards().items()):
        gap, here = gaps.get(str(code)), straddles.get(str(code), [])
        if gap is not None:
            out.append(
                WardNeed(code, info.name, "below floor", gap.probes, gap.tests,
                         gap.more_probes, None, gap.note)
            )  # fmt: skip
        elif here:
            numbers = [u.more_probes for u in here if u.more_probes is not None]
            out.append(
                WardNeed(code, info.name, "unsettled", here[0].probes, here[0].tests, None,
                         max(numbers) if numbers else None,
                         "; ".join(sorted({u.note for u in here if u.note})))
            )  # fmt: skip
        else:
            out.append(WardNeed(code, info.name, "settled", None, None, None, None, ""))
    return out


def needs_geojson(
    plan: SamplingPlan, indicator: str, group: str | None = None
) -> dict[str, object]:
    """The "more probes" layer of one indicator as a GeoJSON FeatureCollection
    (the maps' repaired ward boundaries, WGS 84), for GIS users and the API."""
    from analysis.maps.boundaries import ward_boundaries

    shapes = {b.ward_code: b for b in ward_boundaries()}
    features = []
    for need in ward_needs(plan, indicator, group):
        boundary = shapes.get(need.ward_code)
        props: dict[str, object] = {
            "ward_code": need.ward_code,
            "ward_name": need.ward_name,
            "status": need.status,
            "probes_count": need.probes,
            "tests_count": need.tests,
            "more_probes_to_floor_count": need.more_probes_to_floor,
            "more_probes_to_settle_count": need.more_probes_to_settle,
            "note": need.note,
        }
        features.append(
            {
                "type": "Feature",
                "id": need.ward_code,
                "properties": props,
                "geometry": None if boundary is None else boundary.geojson_geometry(),
            }
        )
    return {
        "type": "FeatureCollection",
        "name": f"more_probes:{indicator}" + (f":{group}" if group else ""),
        "wardprobe": {
            "indicator": indicator,
            "group": group,
            "period": plan.period.label,
            "synthetic": plan.synthetic,
            "floor_probes": k.FLOOR_PROBES,
            "floor_tests": k.FLOOR_TESTS,
            "z": plan.z,
        },
        "features": features,
    }


def probes_to_floor(probes: int, tests: int, tests_per_probe: float | None) -> int | None:
    """More probes for `probes` and `tests` to reach the floor at
    `tests_per_probe` tests each (None: tests are short and there is no rate)."""
    short_probes = max(k.FLOOR_PROBES - probes, 0)
    short_tests = max(k.FLOOR_TESTS - tests, 0)
    if short_tests == 0:
        return short_probes
    if tests_per_probe is None or tests_per_probe <= 0:
        return None
    return max(short_probes, math.ceil(short_tests / tests_per_probe))


def probes_to_settle(
    statistic: Statistic,
    values: Iterable[float],
    value: float,
    target: float,
    baseline: Iterable[float] = (),
) -> tuple[float, int | None, str]:
    """(s, total probes n, note) for a figure `value` of `statistic` over the
    per-probe `values` (and, for a ratio, the baseline's) to lie outside a
    95 % interval around `target` (n is None when no number of probes does
    it; the note says why)."""
    vals = [float(v) for v in values]
    d = abs(value - target)
    if statistic == "ratio":
        return _ratio_probes(vals, [float(b) for b in baseline], value, d)
    if statistic == "share":
        p = value
        s = math.sqrt(max(p * (1 - p), 0.0))
        if p >= 1 and target >= 1:
            return s, None, "every probe meets it and the target is 100 %: only all sites settle it"
        if d == 0:
            return s, None, "the share is exactly the target"
        if p >= 1:
            return s, _at_least_floor(math.floor(Z * Z * target / (1 - target)) + 1), ""
        if p <= 0:
            return s, _at_least_floor(math.floor(Z * Z * (1 - target) / target) + 1), ""
        return s, _at_least_floor(math.ceil(Z * Z * p * (1 - p) / (d * d))), ""
    s = _sd(vals)
    if d == 0:
        return s, None, "the figure is exactly the target"
    if s == 0:
        return s, k.FLOOR_PROBES, ""
    factor = math.pi / 2 if statistic == "median" else 1.0
    return s, _at_least_floor(math.ceil(factor * (Z * s / d) ** 2)), ""


def _ratio_probes(
    values: list[float], baseline: list[float], ratio: float, d: float
) -> tuple[float, int | None, str]:
    """A ratio of today's mean to the baseline's: the baseline's probes are
    fixed, so its share of the variance stays whatever is added today."""
    today, base = sum(values) / len(values), sum(baseline) / len(baseline)
    s_today, s_base = _sd(values), _sd(baseline)
    spread = s_today / base
    if d == 0:
        return spread, None, "the figure is exactly the target"
    room = (d / (Z * ratio)) ** 2 - s_base**2 / (len(baseline) * base**2)
    if room <= 0:
        return spread, None, "the 2024 baseline's own uncertainty covers the distance"
    return spread, _at_least_floor(math.ceil(s_today**2 / (today**2 * room))), ""


def _sd(values: list[float]) -> float:
    """Sample standard deviation (n - 1); 0 for fewer than two values."""
    if len(values) < 2:
        return 0.0
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def _at_least_floor(n: int) -> int:
    return max(n, k.FLOOR_PROBES)


def _enough(f: Figure) -> bool:
    return f.probes >= k.FLOOR_PROBES and f.tests >= k.FLOOR_TESTS


def sampling_plan(report: IndicatorReport) -> SamplingPlan:
    """Where more probes would settle the answer, from a city-wide report
    computed with keep_probe_values=True (ward=None)."""
    if report.ward is not None:
        raise ValueError("sampling_plan needs the report of the whole city (ward=None)")
    wards = can_tho_wards()
    kept: dict[tuple[str, str, str | None], ProbeValues] = {
        (p.indicator, p.scope, p.group): p for p in report.probe_values
    }
    figures = {(f.indicator, f.scope, f.group): f for f in report.figures}
    # The city's services are its whole list, not a sample of probes: no probe
    # added anywhere changes them (analysis/indicators/ipv6_services.py).
    series = [
        (f.indicator, f.group)
        for f in report.figures
        if f.scope == "city" and f.indicator != SERVICES_INDICATOR
    ]
    # the registry's wards, and any other ward a figure names (a store made by hand)
    codes = set(wards) | {int(f.scope) for f in report.figures if f.scope != "city"}
    scopes = ["city", *(str(code) for code in sorted(codes))]

    below: list[FloorGap] = []
    unsettled: list[Unsettled] = []
    for indicator, group in series:
        city = figures[(indicator, "city", group)]
        city_rate = city.tests / city.probes if city.probes else None
        for scope in scopes:
            f = figures.get((indicator, scope, group))
            info = None if scope == "city" else wards.get(int(scope))
            name = None if info is None else info.name
            probes, tests = (f.probes, f.tests) if f is not None else (0, 0)
            if f is None or not _enough(f):
                rate: float | None = None
                rate_from: Literal["own", "city"] | None = None
                if probes:
                    rate, rate_from = tests / probes, "own"
                elif scope != "city" and city_rate is not None:
                    rate, rate_from = city_rate, "city"
                more = probes_to_floor(probes, tests, rate)
                below.append(
                    FloorGap(
                        indicator=indicator,
                        scope=scope,
                        ward_name=name,
                        group=group,
                        probes=probes,
                        tests=tests,
                        tests_per_probe=rate,
                        rate_from=rate_from,
                        more_probes=more,
                        note="" if more is not None else "no probe anywhere to give a test rate",
                    )
                )
                continue
            if f.status != "ok" or f.value is None:
                # Above the floor yet no figure: the 2024 ratio without a baseline here.
                below.append(
                    FloorGap(
                        indicator=indicator,
                        scope=scope,
                        ward_name=name,
                        group=group,
                        probes=probes,
                        tests=tests,
                        tests_per_probe=tests / probes,
                        rate_from="own",
                        more_probes=None,
                        note=f.note or "no figure although above the floor",
                    )
                )
                continue
            unsettled += _unsettled(f, name, kept.get((indicator, scope, group)))
    return SamplingPlan(
        period=report.period,
        synthetic=report.synthetic,
        z=Z,
        below_floor=below,
        unsettled=unsettled,
    )


def _unsettled(f: Figure, name: str | None, kept: ProbeValues | None) -> list[Unsettled]:
    """The targets of one figure (above the floor) that its interval straddles."""
    if f.value is None or f.ci_low is None or f.ci_high is None or kept is None:
        return []  # no interval (the NR/LTE cell count) or no values kept
    out = []
    for t in f.targets:
        if not f.ci_low <= t.value <= f.ci_high:
            continue
        s, needed, note = probes_to_settle(
            kept.statistic, kept.values, f.value, t.value, kept.baseline
        )
        out.append(
            Unsettled(
                indicator=f.indicator,
                scope=f.scope,
                ward_name=name,
                group=f.group,
                unit=f.unit,
                value=f.value,
                ci_low=f.ci_low,
                ci_high=f.ci_high,
                target_value=t.value,
                comparator=t.comparator,
                source=t.source,
                due=t.due,
                met_now=bool(t.met),
                probes=f.probes,
                tests=f.tests,
                statistic=kept.statistic,
                spread=s,
                probes_needed=needed,
                more_probes=None if needed is None else max(needed - f.probes, 1),
                note=note,
            )
        )
    return out


def where_more_probes(
    con: duckdb.DuckDBPyConnection, period: Period, *, synthetic: bool = False
) -> SamplingPlan:
    """compute_indicators for the whole city, then sampling_plan on it."""
    return sampling_plan(
        compute_indicators(con, period, synthetic=synthetic, keep_probe_values=True)
    )
