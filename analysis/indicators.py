"""The one entry point that computes the plan's indicators.

The definitions are the SQL views in analysis/views/ (one per file, read in
VIEW_ORDER); this module loads them on a connection, sets the period, reads
the probe-level rows and does what SQL is the wrong tool for: the bootstrap
intervals (scipy.stats.bootstrap, resampling probes), Wilson intervals for
shares, the insufficient-data floor and the targets. The CLI
(`wardprobe-aggregator indicators`), the HTTP API and the report all call
`compute_indicators`.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
from scipy import stats  # type: ignore[import-untyped]

from analysis import constants as k
from wardprobe import validity

# The views, in the order they depend on each other.
VIEW_ORDER: tuple[str, ...] = (
    "throughput_checked",
    "latency_checked",
    "cellular_checked",
    "ipv6_checked",
    "exclusions",
    "probe_download",
    "probe_download_by_tech",
    "probe_latency",
    "gigabit_capable",
    "nr_availability",
    "ipv6_capability",
    "latency_by_ward",
    "mobile_download_by_tech",
    "zone_targets",
    "nr_lte_cell_proxy",
    "qcvn126_5g",
    "qcvn34_fixed_lines",
)

Grouping = Literal["operator", "access_tech", "site_class"]
GROUPINGS: tuple[Grouping, ...] = ("operator", "access_tech", "site_class")
TZ = ZoneInfo(k.TIMEZONE)
# With --by operator, a fixed line's group names its ISP (the probes table's
# `isp`, from the registry), kept apart from the mobile operators, some of
# which are ISPs too (Viettel, VNPT, MobiFone).
FIXED_ISP_GROUP = "fixed line: {isp}"
FIXED_ISP_UNKNOWN = "fixed line (ISP not recorded)"


class StoreTooOld(RuntimeError):
    """The store was made by an older release and lacks a column the views read."""


def fixed_line_group(isp: str | None) -> str:
    """The operator group of a fixed line whose site's ISP is `isp` (None: not recorded)."""
    return FIXED_ISP_UNKNOWN if isp is None else FIXED_ISP_GROUP.format(isp=isp)


# Rules a view takes from Python instead of restating them: `{{name}}` in a
# view's file is replaced by this SQL when the view is created.
VIEW_FRAGMENTS: dict[str, Callable[[], str]] = {
    "throughput_exclusion": lambda: validity.throughput_exclusion_sql("t"),
}
_FRAGMENT = re.compile(r"\{\{(\w+)\}\}")


def view_sql(name: str) -> str:
    """The SQL of one view: analysis/views/<name>.sql with its `{{fragment}}`
    markers filled in from VIEW_FRAGMENTS (an unknown one is a KeyError)."""
    text = resources.files("analysis").joinpath("views", f"{name}.sql").read_text("utf-8")
    return _FRAGMENT.sub(lambda m: VIEW_FRAGMENTS[m[1]](), text)


def install_views(con: duckdb.DuckDBPyConnection, *, temporary: bool = True) -> None:
    """Create `indicator_constants` and every view on a connection (temporary:
    in the temp schema, which works on a read-only store)."""
    have = {str(r[0]) for r in con.execute("describe probes").fetchall()}
    missing = [c for c in ("isp", "plan_down_mbps", "plan_up_mbps") if c not in have]
    if missing:
        raise StoreTooOld(
            f"this store's probes table has no {', '.join(missing)} "
            f"column{'s' if len(missing) > 1 else ''} (an older release "
            "made it); open it once with this release's aggregator, which adds it, or read "
            "the snapshot the aggregator publishes"
        )
    temp = "temp " if temporary else ""
    con.execute(
        f"create or replace {temp}table indicator_constants "
        "(name varchar, value double, unit varchar)"
    )
    con.executemany(
        "insert into indicator_constants values (?, ?, ?)", k.indicator_constants_rows()
    )
    for name in VIEW_ORDER:
        con.execute(f"create or replace {temp}view {name} as\n{view_sql(name)}")


# --- periods -----------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """[start, end) in Asia/Ho_Chi_Minh time, with the label it was given."""

    label: str
    start: datetime
    end: datetime

    @property
    def days(self) -> tuple[date, date]:
        """[first, after) Cần Thơ days of the period."""
        return (self.start.date(), self.end.date())


def _local(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=TZ)


def parse_period(text: str) -> Period:
    """`2026`, `2026Q3` or `2026-01-01..2026-04-01` (from inclusive, to exclusive)."""
    text = text.strip()
    if re.fullmatch(r"\d{4}", text):
        year = int(text)
        return Period(text, _local(date(year, 1, 1)), _local(date(year + 1, 1, 1)))
    if m := re.fullmatch(r"(\d{4})[Qq]([1-4])", text):
        year, quarter = int(m[1]), int(m[2])
        first = date(year, 3 * quarter - 2, 1)
        after = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
        return Period(f"{year}Q{quarter}", _local(first), _local(after))
    if m := re.fullmatch(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})", text):
        start, end = date.fromisoformat(m[1]), date.fromisoformat(m[2])
        if end <= start:
            raise ValueError(f"period {text!r}: the end must come after the start")
        return Period(text, _local(start), _local(end))
    raise ValueError(f"period {text!r}: expected YYYY, YYYYQn or YYYY-MM-DD..YYYY-MM-DD")


def set_period(con: duckdb.DuckDBPyConnection, period: Period | None, synthetic: bool) -> None:
    """Set the variables the views read (None: all time)."""
    if period is None:
        con.execute("reset variable period_from")
        con.execute("reset variable period_to")
    else:
        con.execute("set variable period_from = ?::timestamptz", [period.start.isoformat()])
        con.execute("set variable period_to = ?::timestamptz", [period.end.isoformat()])
    con.execute("set variable synthetic = ?", [synthetic])


# --- statistics --------------------------------------------------------------


def wilson(successes: int, n: int, confidence: float = k.CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a share, within [0, 1]; a share of exactly 0
    (1) has its lower (upper) bound exactly 0 (1)."""
    if n == 0:
        return (math.nan, math.nan)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # At p = 0 (1) the bound is 0 (1) in exact arithmetic, but centre - half
    # rounds to 5.55e-17 (and centre + half to 0.9999999999999999).
    low = 0.0 if successes <= 0 else min(1.0, max(0.0, centre - half))
    high = 1.0 if successes >= n else min(1.0, max(0.0, centre + half))
    return (low, high)


def bootstrap_interval(
    samples: Sequence[Sequence[float]],
    statistic: Callable[..., Any],
    seed: int,
) -> tuple[float | None, float | None]:
    """95 % percentile bootstrap interval, resampling the probes of each sample."""
    # Sorted: the probes come in the order DuckDB's parallel scan gave them,
    # and the same seed must give the same interval for the same probes.
    arrays = [np.sort(np.asarray(s, dtype=float)) for s in samples]
    if any(a.size < 2 for a in arrays):
        return (None, None)
    if all(np.all(a == a[0]) for a in arrays) and len(arrays) == 1:
        value = float(statistic(arrays[0], axis=-1))
        return (value, value)
    result = stats.bootstrap(
        tuple(arrays),
        statistic,
        n_resamples=k.BOOTSTRAP_RESAMPLES,
        confidence_level=k.CONFIDENCE,
        method="percentile",
        vectorized=True,
        paired=False,
        rng=np.random.default_rng(seed),
    )
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


def _mean(a: Any, axis: int = -1) -> Any:
    return np.mean(a, axis=axis)


def _median(a: Any, axis: int = -1) -> Any:
    return np.median(a, axis=axis)


def _ratio_of_means(a: Any, b: Any, axis: int = -1) -> Any:
    return np.mean(a, axis=axis) / np.mean(b, axis=axis)


def _ratio_of_medians(a: Any, b: Any, axis: int = -1) -> Any:
    return np.median(a, axis=axis) / np.median(b, axis=axis)


def _ratio_of_sums(a: Any, b: Any, axis: int = -1) -> Any:
    return np.sum(a, axis=axis) / np.sum(b, axis=axis)


def sample_mean_interval(
    sums: Sequence[float], counts: Sequence[float], seed: int
) -> tuple[float | None, float | None]:
    """95 % percentile bootstrap interval of a mean over samples (sum of the
    probes' sums over the sum of their counts), resampling probes with their
    samples (a cluster bootstrap: one probe's tests are not independent)."""
    order = np.lexsort((np.asarray(counts, dtype=float), np.asarray(sums, dtype=float)))
    a = np.asarray(sums, dtype=float)[order]
    b = np.asarray(counts, dtype=float)[order]
    if a.size < 2:
        return (None, None)
    ratios = a / b
    if np.all(ratios == ratios[0]):
        return (float(ratios[0]), float(ratios[0]))
    result = stats.bootstrap(
        (a, b),
        _ratio_of_sums,
        n_resamples=k.BOOTSTRAP_RESAMPLES,
        confidence_level=k.CONFIDENCE,
        method="percentile",
        vectorized=True,
        paired=True,
        rng=np.random.default_rng(seed),
    )
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


# --- results -----------------------------------------------------------------


@dataclass(frozen=True)
class TargetResult:
    """One target and whether the figure meets it (None: insufficient data)."""

    value: float
    comparator: str
    source: str
    due: str
    met: bool | None


@dataclass(frozen=True)
class Figure:
    """One indicator for one scope (the city or a ward) and group."""

    indicator: str
    scope: str  # "city" or the ward's code
    group: str | None  # e.g. "operator=Viettel"; None when not grouped
    unit: str
    value: float | None  # None when insufficient data
    ci_low: float | None
    ci_high: float | None
    interval: str  # "bootstrap" (probes resampled), "wilson" or "none"
    mean: float | None  # across probes
    median: float | None  # across probes
    probes: int
    tests: int
    probe_limited: int
    status: str  # "ok" or "insufficient data"
    targets: tuple[TargetResult, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class ZoneSite:
    """One probe at a zone site and its 5G and gigabit figures (None: the site
    has no valid mobile, or fixed, results in the period)."""

    probe_id: str
    ward_code: int
    site_class: str
    nr_time_share: float | None
    saw_nr: bool | None
    nr_probe_limited: bool | None
    gigabit_capable: bool | None
    gigabit_probe_limited: bool | None
    download_tests: int | None


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


@dataclass(frozen=True)
class _Unit:
    """One probe (in one ward) as an indicator sees it."""

    ward_code: int
    group: str | None
    value: float
    tests: int
    limited: bool = False


@dataclass
class _Calc:
    period: Period
    ward: int | None
    by: Grouping | None
    seed: int
    figures: list[Figure] = field(default_factory=list)

    def scopes(self, units: Iterable[_Unit]) -> dict[tuple[str, str | None], list[_Unit]]:
        """Units by (scope, group): the city and each ward (or the one ward asked for)."""
        out: dict[tuple[str, str | None], list[_Unit]] = defaultdict(list)
        asked = "city" if self.ward is None else str(self.ward)
        if self.by is None:
            # The scope asked for gets its figure even without data: "insufficient data".
            out[(asked, None)] = []
        for u in units:
            if self.ward is not None and u.ward_code != self.ward:
                continue
            out[("city" if self.ward is None else str(u.ward_code), u.group)].append(u)
            if self.ward is None:
                out[(str(u.ward_code), u.group)].append(u)
        if not out.get((asked, None)) and any(s == asked and g for s, g in out):
            # An indicator that comes in groups anyway (per access technology)
            # has its figures there; the empty group-less one would only read
            # "insufficient data, 0 probes" beside them.
            out.pop((asked, None), None)
        return out

    def targets(
        self, name: str, value: float | None, access_tech: str | None = None
    ) -> tuple[TargetResult, ...]:
        return tuple(
            TargetResult(
                t.value, t.comparator, t.source, t.due, None if value is None else t.met(value)
            )
            for t in k.targets_for(name, access_tech)
        )

    def mean_figure(
        self,
        name: str,
        unit: str,
        units: Iterable[_Unit],
        *,
        statistic: Literal["mean", "median"] = "mean",
        target_tech: Callable[[str | None], str | None] = lambda g: None,
        note: str = "",
    ) -> None:
        """A probe-balanced statistic of per-probe values, bootstrap interval."""
        for (scope, group), members in sorted(self.scopes(units).items(), key=_scope_key):
            used = [u for u in members if not u.limited]
            values = [u.value for u in used]
            tests = sum(u.tests for u in used)
            enough = len(used) >= k.FLOOR_PROBES and tests >= k.FLOOR_TESTS
            mean = float(np.mean(values)) if values else None
            median = float(np.median(values)) if values else None
            point = mean if statistic == "mean" else median
            low = high = None
            if enough:
                low, high = bootstrap_interval(
                    [values], _mean if statistic == "mean" else _median, self.seed
                )
            shown = point if enough else None
            self.figures.append(
                Figure(
                    name,
                    scope,
                    group,
                    unit,
                    shown,
                    low,
                    high,
                    "bootstrap",
                    mean,
                    median,
                    len(used),
                    tests,
                    len(members) - len(used),
                    "ok" if enough else "insufficient data",
                    self.targets(name, shown, target_tech(group)),
                    note,
                )
            )

    def share_figure(
        self,
        name: str,
        units: Iterable[_Unit],
        note: str = "",
        *,
        apart: Iterable[_Unit] = (),
        apart_note: str = "",
    ) -> None:
        """A share of probes (value 1 = yes), Wilson interval; limited probes
        apart. `apart`: probes outside the figure altogether, counted in the
        note of their scope as "{apart_note}: N"."""
        scoped = self.scopes(units)
        set_apart = self.scopes(apart)
        for key in set_apart:
            scoped.setdefault(key, [])
        for (scope, group), members in sorted(scoped.items(), key=_scope_key):
            if apart_note:
                n_apart = len(set_apart.get((scope, group), []))
                note_here = "; ".join(x for x in (note, f"{apart_note}: {n_apart}") if x)
            else:
                note_here = note
            used = [u for u in members if not u.limited]
            yes = sum(1 for u in used if u.value >= 0.5)
            tests = sum(u.tests for u in used)
            enough = len(used) >= k.FLOOR_PROBES and tests >= k.FLOOR_TESTS
            share = yes / len(used) if used else None
            low, high = wilson(yes, len(used)) if enough else (None, None)
            shown = share if enough else None
            self.figures.append(
                Figure(
                    name,
                    scope,
                    group,
                    "share",
                    shown,
                    low,
                    high,
                    "wilson",
                    share,
                    None,
                    len(used),
                    tests,
                    len(members) - len(used),
                    "ok" if enough else "insufficient data",
                    self.targets(name, shown),
                    note_here,
                )
            )

    def sample_figure(
        self,
        name: str,
        unit: str,
        rows: Iterable[tuple[int, str | None, float, int]],
        note: str,
    ) -> None:
        """A mean over samples (a national reference's own rule), per operator.

        rows: (ward, group, sum over the probe's samples, its samples), one
        per probe. The value is the sum of the sums over the sum of the
        samples; the interval resamples probes (cluster bootstrap); mean and
        median are across the probes' own means, for comparison with the
        plan's probe-balanced figures."""
        scoped: dict[tuple[str, str | None], list[tuple[float, int]]] = defaultdict(list)
        if self.ward is None:
            scoped[("city", None)] = []
        else:
            scoped[(str(self.ward), None)] = []
        for ward_code, group, total, samples in rows:
            if samples <= 0 or (self.ward is not None and ward_code != self.ward):
                continue
            scoped[("city" if self.ward is None else str(ward_code), group)].append(
                (total, samples)
            )
            if self.ward is None:
                scoped[(str(ward_code), group)].append((total, samples))
        grouped_scopes = {scope for scope, group in scoped if group is not None}
        for (scope, group), members in sorted(
            scoped.items(), key=lambda item: _scope_key((item[0], []))
        ):
            if group is None and scope in grouped_scopes:
                continue  # the placeholder of a scope that has figures
            sums = [m[0] for m in members]
            counts = [m[1] for m in members]
            samples = sum(counts)
            enough = len(members) >= k.FLOOR_PROBES and samples >= k.FLOOR_TESTS
            value = sum(sums) / samples if samples else None
            probe_means = [t / n for t, n in members]
            low, high = sample_mean_interval(sums, counts, self.seed) if enough else (None, None)
            shown = value if enough else None
            self.figures.append(
                Figure(
                    name,
                    scope,
                    group,
                    unit,
                    shown,
                    low,
                    high,
                    "bootstrap",
                    float(np.mean(probe_means)) if probe_means else None,
                    float(np.median(probe_means)) if probe_means else None,
                    len(members),
                    samples,
                    0,
                    "ok" if enough else "insufficient data",
                    self.targets(name, shown),
                    note,
                )
            )


def _scope_key(item: tuple[tuple[str, str | None], list[_Unit]]) -> tuple[int, str, str]:
    (scope, group), _ = item
    return (0 if scope == "city" else 1, scope, group or "")


def _group(
    by: Grouping | None, *, operator: Any = None, tech: Any = None, site: Any = None
) -> str | None:
    if by is None:
        return None
    value = {"operator": operator, "access_tech": tech, "site_class": site}[by]
    return f"{by}={value if value is not None else 'n/a'}"


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def units_sql(name: str) -> str:
    """The SQL text of analysis/rollups/<name>.sql."""
    return resources.files("analysis").joinpath("rollups", f"{name}.sql").read_text("utf-8")


def _set_days(con: duckdb.DuckDBPyConnection, period: Period, synthetic: bool) -> None:
    first, after = period.days
    con.execute("set variable day_from = ?::date", [first])
    con.execute("set variable day_to = ?::date", [after])
    con.execute("set variable synthetic = ?", [synthetic])


def gigabit_capable(tests: int, tests_at_gigabit: int) -> bool:
    """Whether the nearest-rank 90th percentile of `tests` downloads reaches the
    gigabit threshold, given how many of them did: it is the ceil(0.9 n)-th
    smallest, so it does when at least n - ceil(0.9 n) + 1 tests reached it."""
    rank = (9 * tests + 9) // 10  # ceil(0.9 n) in integers (0.9 * 10 is not 9 in floats)
    return tests > 0 and tests_at_gigabit >= tests - rank + 1


# --- the entry point ---------------------------------------------------------


def open_store(path: Path | str) -> duckdb.DuckDBPyConnection:
    """Open a store (or the analyst snapshot) read-only, for compute_indicators."""
    return duckdb.connect(str(path), read_only=True)


def prepare(con: duckdb.DuckDBPyConnection) -> str:
    """Install the views and make sure rollups are there: the snapshot's own
    (as fresh as the snapshot) or temporary ones, built or brought up to date
    from the store. Returns which."""
    from analysis.rollups import has_rollups, refresh_rollups, rollups_fit

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
) -> IndicatorReport:
    """Every indicator of DESIGN.md for a period, for the city and each ward
    (or one ward), optionally grouped by operator, access technology or site
    class. `synthetic` selects the synthetic generator's rows instead of
    the probes'. The bootstrap is seeded: the same data gives the same
    intervals."""
    calc = _Calc(period, ward, by, seed)
    prepare(con)
    _set_days(con, period, synthetic)
    probe_rows = con.execute("select probe_id, site_class, isp from probes").fetchall()
    site = {str(r[0]): str(r[1]) for r in probe_rows}
    # the fixed-broadband ISP of each probe's site, as the registry holds it now
    fixed_isp = {str(r[0]): None if r[2] is None else str(r[2]) for r in probe_rows}

    def group(probe: str, operator: Any = None, tech: Any = None) -> str | None:
        return _group(by, operator=operator, tech=tech, site=site.get(probe, "unknown"))

    def fixed_group(probe: str) -> str | None:
        """A fixed line's group: by operator, its site's ISP."""
        return group(probe, fixed_line_group(fixed_isp.get(probe)), "fixed")

    downloads = _rows(con, units_sql("units_download"))
    cellular = _rows(con, units_sql("units_cellular"))
    # a probe's operator: the one its mobile tests (or, failing those, its modem) used most
    operator = {(r["probe_id"], r["ward_code"]): r["operator_name"] for r in cellular}
    operator.update(
        {
            (r["probe_id"], r["ward_code"]): r["operator_name"]
            for r in downloads
            if r["network_kind"] == "mobile" and r["operator_name"] is not None
        }
    )

    def operator_of(r: dict[str, Any]) -> str:
        if r.get("network_kind") == "fixed":
            return fixed_line_group(fixed_isp.get(r["probe_id"]))
        return str(operator.get((r["probe_id"], r["ward_code"])) or "unknown")

    mobile = [r for r in downloads if r["network_kind"] == "mobile"]
    fixed = [r for r in downloads if r["network_kind"] == "fixed"]

    # Mobile download (all technologies), probe-balanced mean, and the ratio.
    mobile_units = [
        _Unit(
            r["ward_code"], group(r["probe_id"], operator_of(r), "all"), r["mean_mbps"], r["tests"]
        )
        for r in mobile
    ]
    calc.mean_figure("mobile_download_mean", "Mb/s", mobile_units)
    baseline_note = _mobile_ratio(con, calc, mobile_units, synthetic, group, operator_of)
    _set_days(con, period, synthetic)

    # Mobile download per access technology (and operator) against 40/100 Mb/s.
    tech_units = [
        _Unit(
            r["ward_code"],
            f"access_tech={r['access_tech']}"
            + (f";operator={r['operator_name']}" if by == "operator" else "")
            + (f";site_class={site.get(r['probe_id'], 'unknown')}" if by == "site_class" else ""),
            r["mean_mbps"],
            r["tests"],
        )
        for r in _rows(con, units_sql("units_download_by_tech"))
    ]
    calc.mean_figure(
        "mobile_download_by_tech",
        "Mb/s",
        tech_units,
        target_tech=lambda g: (g or "").split(";")[0].removeprefix("access_tech="),
        note=BY_TECH_NOTE,
    )

    # Fixed lines: gigabit-capable share, 200 Mb/s share, mean download.
    port = k.GIGABIT_PORT_MBPS
    capable = {
        (r["probe_id"], r["ward_code"]): gigabit_capable(r["tests"], r["tests_at_gigabit"])
        for r in fixed
    }
    limited = {
        (r["probe_id"], r["ward_code"]): r["link_speed_mbps"] is not None
        and r["link_speed_mbps"] < port
        for r in fixed
    }
    calc.share_figure(
        "gigabit_capable_share",
        [
            _Unit(
                r["ward_code"],
                fixed_group(r["probe_id"]),
                1.0 if capable[(r["probe_id"], r["ward_code"])] else 0.0,
                r["tests"],
                limited[(r["probe_id"], r["ward_code"])],
            )
            for r in fixed
        ],
        note="probe-limited: interface below 1 Gb/s, outside the denominator",
    )
    calc.share_figure(
        "fixed_200_share",
        [
            _Unit(
                r["ward_code"],
                fixed_group(r["probe_id"]),
                1.0 if r["mean_mbps"] >= k.FIXED_200_MBPS else 0.0,
                r["tests"],
                r["link_speed_mbps"] is not None and r["link_speed_mbps"] < k.FIXED_200_MBPS,
            )
            for r in fixed
        ],
        note="probe-limited: interface below 200 Mb/s",
    )
    calc.mean_figure(
        "fixed_download_mean",
        "Mb/s",
        [
            _Unit(
                r["ward_code"],
                fixed_group(r["probe_id"]),
                r["mean_mbps"],
                r["tests"],
            )
            for r in fixed
        ],
    )

    # 5G availability.
    calc.mean_figure(
        "nr_time_share",
        "share",
        [
            _Unit(
                r["ward_code"],
                group(r["probe_id"], operator_of(r), "all"),
                r["nr_time_share"],
                r["observations"],
                bool(r["probe_limited"]),
            )
            for r in cellular
        ],
        note="time-weighted share on NR (NSA or SA), probe-balanced; 4G-only modems apart",
    )
    calc.share_figure(
        "nr_seen_share",
        [
            _Unit(
                r["ward_code"],
                group(r["probe_id"], operator_of(r), "all"),
                1.0 if r["saw_nr"] else 0.0,
                r["observations"],
                bool(r["probe_limited"]),
            )
            for r in cellular
        ],
        note="share of probes that saw NR at all; 4G-only modems apart",
    )

    # IPv6: working and preferred, per probe.
    v6 = _rows(con, units_sql("units_ipv6"))
    for name, column in (
        ("ipv6_capable_share", "ipv6_capable"),
        ("ipv6_preferred_share", "ipv6_preferred"),
    ):
        calc.share_figure(
            name,
            [
                _Unit(
                    r["ward_code"],
                    group(r["probe_id"], operator_of(r), r["network_kind"]),
                    1.0 if r[column] else 0.0,
                    r["checks"],
                )
                for r in v6
            ],
        )

    # Latency: median across probes of the probes' medians of daily medians.
    lat = _rows(con, units_sql("units_latency"))
    for name, value, tests, note in (
        ("idle_latency_ms", "idle_rtt_ms", "idle_tests", "ICMP round trips"),
        ("loaded_latency_ms", "loaded_rtt_ms", "loaded_tests", "round trips while downloads ran"),
    ):
        calc.mean_figure(
            name,
            "ms",
            [
                _Unit(
                    r["ward_code"],
                    group(r["probe_id"], operator_of(r), r["network_kind"]),
                    r[value],
                    r[tests],
                )
                for r in lat
                if r[value] is not None
            ],
            statistic="median",
            note=note,
        )

    # Zone targets: sites at high-tech parks, IT parks, R&D centres, industrial zones.
    zone_probes = con.execute(
        "select probe_id, ward_code, site_class from probes where site_class in "
        f"{tuple(k.ZONE_SITE_CLASSES)!r} order by ward_code, probe_id"
    ).fetchall()
    nr_of = {(r["probe_id"], r["ward_code"]): r for r in cellular}
    fixed_of = {(r["probe_id"], r["ward_code"]): r for r in fixed}
    zone_sites = []
    for probe_id, ward_code, site_class in zone_probes:
        if ward is not None and ward_code != ward:
            continue
        key = (probe_id, ward_code)
        n, f = nr_of.get(key), fixed_of.get(key)
        zone_sites.append(
            ZoneSite(
                probe_id,
                ward_code,
                site_class,
                None if n is None else n["nr_time_share"],
                None if n is None else bool(n["saw_nr"]),
                None if n is None else bool(n["probe_limited"]),
                None if f is None else capable[key],
                None if f is None else limited[key],
                None if f is None else int(f["tests"]),
            )
        )
    calc.share_figure(
        "zone_nr_share",
        [
            _Unit(
                s.ward_code,
                group(s.probe_id, operator.get((s.probe_id, s.ward_code)), "all"),
                1.0 if s.saw_nr else 0.0,
                nr_of[(s.probe_id, s.ward_code)]["observations"],
                bool(s.nr_probe_limited),
            )
            for s in zone_sites
            if s.saw_nr is not None
        ],
        note="zone sites whose modem saw NR (5G service)",
    )
    calc.share_figure(
        "zone_gigabit_share",
        [
            _Unit(
                s.ward_code,
                fixed_group(s.probe_id),
                1.0 if s.gigabit_capable else 0.0,
                s.download_tests or 0,
                bool(s.gigabit_probe_limited),
            )
            for s in zone_sites
            if s.gigabit_capable is not None
        ],
        note="zone sites with a gigabit-capable fixed line",
    )

    _cell_proxy(con, calc, cellular)
    _national_references(con, calc, fixed, fixed_group)
    exclusions = [
        (str(r[0]), str(r[1]), int(r[2]))
        for r in con.execute(
            "select result_table, excluded_because, sum(results)::bigint from ("
            + units_sql("units_exclusions")
            + ")"
            + ("" if ward is None else f" where ward_code = {int(ward)}")
            + " group by all order by 1, 3 desc"
        ).fetchall()
    ]
    return IndicatorReport(
        period, ward, by, synthetic, calc.figures, exclusions, zone_sites, baseline_note
    )


BY_TECH_NOTE = (
    "per access technology, tests whose radio changed technology left out; "
    "a row without a group: no such test in the scope"
)
QCVN126_NOTE = (
    "national reference (QCVN 126:2021): {what} over the operator's 5G samples "
    "(valid tests on NR, NSA or SA), not probe-balanced"
)
QCVN34_NOTE = (
    "national reference (QCVN 34:2022): share of fixed lines whose mean {what} over "
    "their tests (samples) is >= 0.8 x the plan's advertised {speed}; probe-limited: "
    "interface below 0.8 x the plan"
)


def _national_references(
    con: duckdb.DuckDBPyConnection,
    calc: _Calc,
    fixed: list[dict[str, Any]],
    fixed_group: Callable[[str], str | None],
) -> None:
    """QCVN 126:2021 (5G, per operator) and QCVN 34:2022 (fixed lines against
    their plans), each by its own rules: over samples, apart from the plan's
    probe-balanced indicators."""
    nr = _rows(con, units_sql("units_qcvn126"))
    for name, total, count, what in (
        ("qcvn126_download_mean", "download_sum_mbps", "download_tests", "mean download"),
        ("qcvn126_upload_mean", "upload_sum_mbps", "upload_tests", "mean upload"),
        (
            "qcvn126_download_floor_share",
            "download_tests_at_floor",
            "download_tests",
            f"share of download samples >= {k.QCVN126_DOWNLOAD_FLOOR_MBPS:g} Mb/s",
        ),
        ("qcvn126_latency_mean", "latency_sum_ms", "latency_tests", "mean ICMP median RTT"),
    ):
        unit = "share" if name.endswith("share") else "ms" if "latency" in name else "Mb/s"
        calc.sample_figure(
            name,
            unit,
            [
                (
                    int(r["ward_code"]),
                    f"operator={r['operator_name']}",
                    float(r[total]),
                    int(r[count]),
                )
                for r in nr
            ],
            QCVN126_NOTE.format(what=what),
        )

    # QCVN 34:2022: each fixed line's sample means against its plan.
    plans = {
        str(r[0]): (r[1], r[2])
        for r in con.execute("select probe_id, plan_down_mbps, plan_up_mbps from probes").fetchall()
    }
    uploads = {
        (r["probe_id"], r["ward_code"]): r
        for r in _rows(con, units_sql("units_upload"))
        if r["network_kind"] == "fixed"
    }
    downloads = {(r["probe_id"], r["ward_code"]): r for r in fixed}
    ratio = k.QCVN34_PLAN_RATIO
    for name, lines, plan_index, what, speed in (
        ("qcvn34_download_share", downloads, 0, "download", "download speed (Vd)"),
        ("qcvn34_upload_share", uploads, 1, "upload", "upload speed (Vu)"),
    ):
        recorded: list[_Unit] = []
        unrecorded: list[_Unit] = []
        for key, r in sorted(lines.items()):
            plan = plans.get(key[0], (None, None))[plan_index]
            # the interface's speed as either direction's tests reported it
            links = [
                x["link_speed_mbps"]
                for x in (downloads.get(key), uploads.get(key))
                if x is not None and x["link_speed_mbps"] is not None
            ]
            link = max(links) if links else None
            line = _Unit(
                r["ward_code"],
                fixed_group(r["probe_id"]),
                1.0 if plan is not None and r["mean_mbps"] >= ratio * plan else 0.0,
                r["tests"],
                plan is not None and link is not None and link < ratio * plan,
            )
            (recorded if plan is not None else unrecorded).append(line)
        calc.share_figure(
            name,
            recorded,
            QCVN34_NOTE.format(what=what, speed=speed),
            apart=unrecorded,
            apart_note="lines apart, plan not recorded",
        )


def _cell_proxy(
    con: duckdb.DuckDBPyConnection, calc: _Calc, cellular: list[dict[str, Any]]
) -> None:
    """Distinct NR vs LTE cells (a proxy for the stations target), per ward and operator."""
    by_operator = calc.by == "operator"
    probes: dict[tuple[str, str | None], set[str]] = defaultdict(set)
    for r in cellular:
        for scope in ("city", str(r["ward_code"])):
            probes[(scope, r["operator_name"] if by_operator else None)].add(r["probe_id"])
    rows = sorted(
        _rows(con, units_sql("units_cells")),
        key=lambda r: (not r["all_wards"], r["ward_code"] or 0, r["operator_name"] or ""),
    )
    for r in rows:
        if bool(r["all_operators"]) == by_operator or r["observations"] is None:
            continue  # the other grouping; or the empty grand total of no rows
        scope = "city" if r["all_wards"] else str(r["ward_code"])
        if calc.ward is not None and scope != str(calc.ward):
            continue
        grp = r["operator_name"] if by_operator else None
        n_probes = len(probes[(scope, grp)])
        ratio = r["nr_cells"] / r["lte_cells"] if r["lte_cells"] else None
        enough = n_probes >= k.FLOOR_PROBES and r["observations"] >= k.FLOOR_TESTS
        shown = ratio if enough else None
        calc.figures.append(
            Figure(
                "nr_lte_cell_ratio",
                scope,
                f"operator={grp}" if by_operator else None,
                "ratio (proxy)",
                shown,
                None,
                None,
                "none",
                None,
                None,
                n_probes,
                int(r["observations"]),
                0,
                "ok" if enough else "insufficient data",
                calc.targets("nr_lte_cell_ratio", shown),
                f"PROXY for 5G stations >= 50 % of 4G stations: {int(r['nr_cells'])} NR vs "
                f"{int(r['lte_cells'])} LTE distinct cells observed, not base stations",
            )
        )


def _mobile_ratio(
    con: duckdb.DuckDBPyConnection,
    calc: _Calc,
    current: list[_Unit],
    synthetic: bool,
    group_of: Callable[..., str | None],
    operator_of: Callable[[dict[str, Any]], str],
) -> str:
    """Mobile download divided by the 2024 baseline, per scope and group.

    The baseline is the same statistic over 2024's measurements in the store
    when they clear the floor, otherwise an imported baseline row for the
    scope (its statistic, mean or median, is then used for both)."""
    from aggregator.baseline import imported_baselines

    _set_days(con, parse_period(str(k.BASELINE_YEAR)), synthetic)
    base_units = [
        _Unit(
            r["ward_code"],
            group_of(r["probe_id"], operator_of(r), "all"),
            r["mean_mbps"],
            r["tests"],
        )
        for r in _rows(con, units_sql("units_download"))
        if r["network_kind"] == "mobile"
    ]
    imported = imported_baselines(con, k.BASELINE_YEAR)
    base_scopes = calc.scopes(base_units)
    used: set[str] = set()
    for (scope, group), members in sorted(calc.scopes(current).items(), key=_scope_key):
        values = [u.value for u in members]
        tests = sum(u.tests for u in members)
        base = base_scopes.get((scope, group), [])
        base_values = [u.value for u in base]
        base_tests = sum(u.tests for u in base)
        enough_now = len(values) >= k.FLOOR_PROBES and tests >= k.FLOOR_TESTS
        value = low = high = None
        if len(base_values) >= k.FLOOR_PROBES and base_tests >= k.FLOOR_TESTS:
            source = (
                f"{k.BASELINE_YEAR} measurements in the store "
                f"({len(base_values)} probes, {base_tests} tests, probe-balanced mean)"
            )
            if enough_now:
                value = float(np.mean(values) / np.mean(base_values))
                low, high = bootstrap_interval([values, base_values], _ratio_of_means, calc.seed)
        elif group is None and (row := imported.get(scope)) is not None:
            source = (
                f"imported {k.BASELINE_YEAR} {row.statistic} {row.value_mbps:g} Mb/s "
                f"(n={row.sample_size}) from {row.source}"
            )
            if enough_now:
                fn = np.mean if row.statistic == "mean" else np.median
                value = float(fn(values)) / row.value_mbps
                low_now, high_now = bootstrap_interval(
                    [values], _mean if row.statistic == "mean" else _median, calc.seed
                )
                if low_now is not None and high_now is not None:
                    # the imported figure is taken as exact: only ours varies
                    low, high = low_now / row.value_mbps, high_now / row.value_mbps
        else:
            source = f"no {k.BASELINE_YEAR} baseline for this scope"
        used.add(source.split(" (")[0])
        calc.figures.append(
            Figure(
                "mobile_download_ratio",
                scope,
                group,
                "ratio",
                value,
                low,
                high,
                "bootstrap",
                None,
                None,
                len(values),
                tests,
                0,
                "ok" if value is not None else "insufficient data",
                calc.targets("mobile_download_ratio", value),
                f"baseline: {source}",
            )
        )
    return "; ".join(sorted(used)) if used else "no mobile results"
