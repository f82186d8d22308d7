"""A figure, and how every indicator makes one from probes.

Each indicator module turns rows into `Unit`s, one per probe (in one ward,
in one group), and `Calc` makes the figures: one per scope (the city and
each ward, or the ward asked for) and group, with the floor ("insufficient
data" below FLOOR_PROBES probes or FLOOR_TESTS tests), the interval
(analysis/indicators/intervals.py) and the targets (analysis/constants.py).
These rules are defined here and nowhere else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from analysis import constants as k
from analysis.indicators.intervals import (
    bootstrap_interval,
    mean,
    median,
    sample_mean_interval,
    wilson,
)

Grouping = Literal["operator", "access_tech", "site_class"]
GROUPINGS: tuple[Grouping, ...] = ("operator", "access_tech", "site_class")
INSUFFICIENT = "insufficient data"
Statistic = Literal["mean", "median", "share", "sample_mean", "ratio"]


@dataclass(frozen=True)
class TargetResult:
    """One target and whether the figure meets it (None: insufficient data)."""

    value: float
    comparator: str
    source: str
    due: str
    met: bool | None


@dataclass(frozen=True)
class BaselineComparison:
    """The doubling ratio of one scope against one 2024 baseline (a
    mobile_download_ratio figure lists every baseline the store has for its
    scope; docs/indicators.md, "The 2024 baseline")."""

    baseline: str  # "probes", "ookla_tiles" or "imported" (analysis/constants.py)
    numerator: str  # what is divided: "probes" (this period's) or "ookla_tiles" (its tiles)
    statistic: str  # "mean" or "median", the same on both sides
    like_with_like: bool  # both sides measured the same way
    used: bool  # this comparison is the figure's value
    source: str  # the baseline in words: who measured it, when, how many
    baseline_mbps: float | None
    baseline_probes: int | None  # the store's 2024 probes behind it
    baseline_tests: int | None
    baseline_devices: int | None  # Ookla: summed over tiles and quarters
    baseline_tiles: int | None  # Ookla: summed over quarters
    baseline_quarters: tuple[str, ...]  # Ookla: "2024Q1", ...
    licence: str | None  # the baseline's licence, when its source states one
    current_mbps: float | None  # this period's figure on the same statistic
    current_quarters: tuple[str, ...]  # the numerator's quarters when it is Ookla's tiles
    value: float | None  # the ratio; None below either side's floor
    ci_low: float | None
    ci_high: float | None
    interval: str  # "bootstrap" or "none"
    status: str  # "ok" or "insufficient data"


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
    # mobile_download_ratio only: the ratio against every 2024 baseline of the
    # scope, and Ookla's tiles against their own 2024 (like with like)
    baselines: tuple[BaselineComparison, ...] = ()


@dataclass(frozen=True)
class ProbeValues:
    """The per-probe values behind one figure (limited probes left out), kept
    when compute_indicators is asked for them: the between-probe spread that
    analysis/sampling.py estimates sample sizes from.

    statistic: how the figure combines them: "mean" or "median" of the
    values, "share" of values >= 0.5, "sample_mean" (a national reference:
    each value is a probe's mean over its samples, the figure weighs them
    by `tests`), or "ratio": the mean of the values over the mean of
    `baseline`, the 2024 probes' values (the ratio to a baseline measured
    in the store). Against an imported baseline, the ratio's values are
    each probe's figure over it, "mean" or "median" as the import says."""

    indicator: str
    scope: str
    group: str | None
    statistic: Statistic
    values: tuple[float, ...]
    tests: tuple[int, ...]
    baseline: tuple[float, ...] = ()


@dataclass(frozen=True)
class Unit:
    """One probe (in one ward) as an indicator sees it."""

    ward_code: int
    group: str | None
    value: float
    tests: int
    limited: bool = False


Scoped = dict[tuple[str, str | None], list[Unit]]


def scope_key(item: tuple[tuple[str, str | None], object]) -> tuple[int, str, str]:
    """Figures' order: the city first, then the wards, each by group."""
    (scope, group), _ = item
    return (0 if scope == "city" else 1, scope, group or "")


def enough(probes: int, tests: int) -> bool:
    """Whether a figure clears the floor."""
    return probes >= k.FLOOR_PROBES and tests >= k.FLOOR_TESTS


def status(cleared: bool) -> str:
    """A figure's status."""
    return "ok" if cleared else INSUFFICIENT


def targets(
    name: str, value: float | None, access_tech: str | None = None
) -> tuple[TargetResult, ...]:
    """The targets of an indicator, met or not by `value` (None: not judged)."""
    return tuple(
        TargetResult(
            value=t.value,
            comparator=t.comparator,
            source=t.source,
            due=t.due,
            met=None if value is None else t.met(value),
        )
        for t in k.targets_for(name, access_tech)
    )


@dataclass(frozen=True)
class Calc:
    """What a report asks for (one ward or all, a grouping, the bootstrap's
    seed) and the figures made accordingly."""

    ward: int | None
    by: Grouping | None
    seed: int
    # Where the figures' per-probe values are collected (None: not kept).
    spread: list[ProbeValues] | None = None
    # Which 2024 baseline the doubling ratio uses first (analysis/constants.py).
    baselines: tuple[str, ...] = k.BASELINE_PREFERENCE

    def keep(
        self,
        name: str,
        scope: str,
        group: str | None,
        statistic: Statistic,
        values: Iterable[float],
        tests: Iterable[int],
        baseline: Iterable[float] = (),
    ) -> None:
        """Record one figure's per-probe values, when they are being kept."""
        if self.spread is not None:
            self.spread.append(
                ProbeValues(
                    name, scope, group, statistic, tuple(values), tuple(tests), tuple(baseline)
                )
            )

    def scopes(self, units: Iterable[Unit]) -> Scoped:
        """Units by (scope, group): the city and each ward (or the one ward asked for)."""
        out: Scoped = defaultdict(list)
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

    def group(
        self, *, operator: object = None, tech: object = None, site: object = None
    ) -> str | None:
        """The group a probe counts in under the report's grouping (None: not grouped)."""
        if self.by is None:
            return None
        value = {"operator": operator, "access_tech": tech, "site_class": site}[self.by]
        return f"{self.by}={value if value is not None else 'n/a'}"

    def mean_figures(
        self,
        name: str,
        unit: str,
        units: Iterable[Unit],
        *,
        statistic: Literal["mean", "median"] = "mean",
        target_tech: Callable[[str | None], str | None] = lambda g: None,
        note: str = "",
    ) -> list[Figure]:
        """A probe-balanced statistic of per-probe values, bootstrap interval;
        limited probes apart."""
        figures = []
        for (scope, group), members in sorted(self.scopes(units).items(), key=scope_key):
            used = [u for u in members if not u.limited]
            values = [u.value for u in used]
            tests = sum(u.tests for u in used)
            cleared = enough(len(used), tests)
            across_mean = float(np.mean(values)) if values else None
            across_median = float(np.median(values)) if values else None
            point = across_mean if statistic == "mean" else across_median
            low = high = None
            if cleared:
                low, high = bootstrap_interval(
                    [values], mean if statistic == "mean" else median, self.seed
                )
            shown = point if cleared else None
            self.keep(name, scope, group, statistic, values, (u.tests for u in used))
            figures.append(
                Figure(
                    indicator=name,
                    scope=scope,
                    group=group,
                    unit=unit,
                    value=shown,
                    ci_low=low,
                    ci_high=high,
                    interval="bootstrap",
                    mean=across_mean,
                    median=across_median,
                    probes=len(used),
                    tests=tests,
                    probe_limited=len(members) - len(used),
                    status=status(cleared),
                    targets=targets(name, shown, target_tech(group)),
                    note=note,
                )
            )
        return figures

    def share_figures(
        self,
        name: str,
        units: Iterable[Unit],
        note: str = "",
        *,
        apart: Iterable[Unit] = (),
        apart_note: str = "",
    ) -> list[Figure]:
        """A share of probes (value 1 = yes), Wilson interval; limited probes
        apart. `apart`: probes outside the figure altogether, counted in the
        note of their scope as "{apart_note}: N"."""
        scoped = self.scopes(units)
        set_apart = self.scopes(apart)
        for key in set_apart:
            scoped.setdefault(key, [])
        figures = []
        for (scope, group), members in sorted(scoped.items(), key=scope_key):
            if apart_note:
                n_apart = len(set_apart.get((scope, group), []))
                note_here = "; ".join(x for x in (note, f"{apart_note}: {n_apart}") if x)
            else:
                note_here = note
            used = [u for u in members if not u.limited]
            yes = sum(1 for u in used if u.value >= 0.5)
            tests = sum(u.tests for u in used)
            cleared = enough(len(used), tests)
            share = yes / len(used) if used else None
            low, high = wilson(yes, len(used)) if cleared else (None, None)
            shown = share if cleared else None
            self.keep(name, scope, group, "share", (u.value for u in used), (u.tests for u in used))
            figures.append(
                Figure(
                    indicator=name,
                    scope=scope,
                    group=group,
                    unit="share",
                    value=shown,
                    ci_low=low,
                    ci_high=high,
                    interval="wilson",
                    mean=share,
                    median=None,
                    probes=len(used),
                    tests=tests,
                    probe_limited=len(members) - len(used),
                    status=status(cleared),
                    targets=targets(name, shown),
                    note=note_here,
                )
            )
        return figures

    def sample_figures(
        self,
        name: str,
        unit: str,
        rows: Iterable[tuple[int, str | None, float, int]],
        note: str,
    ) -> list[Figure]:
        """A mean over samples (a national reference's own rule), per operator.

        rows: (ward, group, sum over the probe's samples, its samples), one
        per probe. The value is the sum of the sums over the sum of the
        samples; the interval resamples probes (cluster bootstrap); mean and
        median are across the probes' own means, for comparison with the
        plan's probe-balanced figures."""
        scoped: dict[tuple[str, str | None], list[tuple[float, int]]] = defaultdict(list)
        scoped[("city" if self.ward is None else str(self.ward), None)] = []
        for ward_code, group, total, samples in rows:
            if samples <= 0 or (self.ward is not None and ward_code != self.ward):
                continue
            scoped[("city" if self.ward is None else str(ward_code), group)].append(
                (total, samples)
            )
            if self.ward is None:
                scoped[(str(ward_code), group)].append((total, samples))
        grouped_scopes = {scope for scope, group in scoped if group is not None}
        figures = []
        for (scope, group), members in sorted(scoped.items(), key=scope_key):
            if group is None and scope in grouped_scopes:
                continue  # the placeholder of a scope that has figures
            sums = [m[0] for m in members]
            counts = [m[1] for m in members]
            samples = sum(counts)
            cleared = enough(len(members), samples)
            value = sum(sums) / samples if samples else None
            probe_means = [t / n for t, n in members]
            low, high = sample_mean_interval(sums, counts, self.seed) if cleared else (None, None)
            shown = value if cleared else None
            self.keep(name, scope, group, "sample_mean", probe_means, counts)
            figures.append(
                Figure(
                    indicator=name,
                    scope=scope,
                    group=group,
                    unit=unit,
                    value=shown,
                    ci_low=low,
                    ci_high=high,
                    interval="bootstrap",
                    mean=float(np.mean(probe_means)) if probe_means else None,
                    median=float(np.median(probe_means)) if probe_means else None,
                    probes=len(members),
                    tests=samples,
                    probe_limited=0,
                    status=status(cleared),
                    targets=targets(name, shown),
                    note=note,
                )
            )
        return figures
