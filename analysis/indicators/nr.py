"""5G availability: nr_time_share and nr_seen_share.

Where each part is defined:
- which radio observations count, and the time each stands for (until the
  probe's next one of the same Cần Thơ day, capped at cellular_max_gap_s):
  the view cellular_checked;
- each probe's figures: the view nr_availability: the time-weighted share
  of its observations on NR (NSA or SA), whether it saw NR at all, and
  whether its modem cannot do 5G (probe-limited). The indicators read the
  same from the daily rollups (rollup_cellular's seconds via
  units_cellular), only for speed; tests/analysis/test_views_agree.py holds
  them to the view;
- across probes, here and only here: the mean of the probes' shares and
  the share of probes that saw NR, the floor, the intervals, the groups,
  the targets.

nr_population_share weighs each ward's nr_time_share (the same probes, the
same floor: a ward below it has insufficient data) by the ward's population
(analysis/population.py): sum(people × share) / sum(people) over the wards
with data; the wards without enough data, and the people living in them, are
counted apart, not as wards without 5G. Its interval is the bootstrap of
nr_time_share, resampling the probes within each ward.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.indicators.context import Context
from analysis.indicators.figures import Figure, Unit, enough, scope_key, status, targets
from analysis.indicators.intervals import bootstrap_interval
from analysis.population import Populations, populations

TIME_SHARE_NOTE = "time-weighted share on NR (NSA or SA), probe-balanced; 4G-only modems apart"


@dataclass(frozen=True)
class WardPeopleNr:
    """One ward in nr_population_share (the city's, not grouped)."""

    ward_code: int
    population: int | None  # people; None: no population for the ward
    population_year: int | None  # the year the count is of
    population_source: str | None  # who counted them
    nr_time_share: float | None  # the ward's nr_time_share; None: insufficient data
    people_covered: float | None  # population × nr_time_share, people
    probes: int
    tests: int


def _time_share_units(ctx: Context) -> list[Unit]:
    """Each mobile probe's time share on NR, as nr_time_share counts it."""
    return [
        Unit(
            ward_code=r["ward_code"],
            group=ctx.group(r["probe_id"], ctx.operator_of(r), "all"),
            value=r["nr_time_share"],
            tests=r["observations"],
            limited=bool(r["probe_limited"]),
        )
        for r in ctx.cellular
    ]


def figures(ctx: Context) -> list[Figure]:
    """The 5G availability figures."""
    return [
        *ctx.calc.mean_figures(
            "nr_time_share",
            "share",
            _time_share_units(ctx),
            note=TIME_SHARE_NOTE,
        ),
        *ctx.calc.share_figures(
            "nr_seen_share",
            [
                Unit(
                    ward_code=r["ward_code"],
                    group=ctx.group(r["probe_id"], ctx.operator_of(r), "all"),
                    value=1.0 if r["saw_nr"] else 0.0,
                    tests=r["observations"],
                    limited=bool(r["probe_limited"]),
                )
                for r in ctx.cellular
            ],
            note="share of probes that saw NR at all; 4G-only modems apart",
        ),
    ]


def _weighted(weights: list[float]) -> Any:
    """The population-weighted mean of the wards' means, as
    scipy.stats.bootstrap calls a statistic (one sample per ward)."""
    w = np.asarray(weights, dtype=float)

    def statistic(*samples: Any, axis: int = -1) -> Any:
        means = np.stack([np.mean(s, axis=axis) for s in samples], axis=-1)
        return means @ w / w.sum()

    return statistic


def population_figures(ctx: Context) -> tuple[list[Figure], list[WardPeopleNr]]:
    """nr_population_share for each scope and group, and the city's wards
    one by one (people, the ward's 5G time share, the people covered)."""
    pop = populations(ctx.con, ctx.period.start.year, synthetic=ctx.synthetic)
    people = {} if pop is None else pop.by_ward
    out: list[Figure] = []
    wards_out: list[WardPeopleNr] = []
    for (scope, group), members in sorted(
        ctx.calc.scopes(_time_share_units(ctx)).items(), key=scope_key
    ):
        used = [u for u in members if not u.limited]
        by_ward: dict[int, list[Unit]] = defaultdict(list)
        for u in used:
            by_ward[u.ward_code].append(u)
        # The city stands for every ward with people, measured or not.
        wards = sorted(set(people) | set(by_ward)) if scope == "city" else [int(scope)]
        counted: list[tuple[int, list[Unit]]] = []
        people_apart = wards_apart = no_population = 0
        for code in wards:
            units = by_ward.get(code, [])
            # the ward's own nr_time_share figure: the same floor
            cleared = enough(len(units), sum(u.tests for u in units))
            if code not in people:
                no_population += 1
            elif cleared:
                counted.append((code, units))
            else:
                people_apart += people[code]
                wards_apart += 1
            if scope == "city" and group is None:
                share = float(np.mean([u.value for u in units])) if cleared else None
                wards_out.append(
                    WardPeopleNr(
                        ward_code=code,
                        population=people.get(code),
                        population_year=None if code not in people or pop is None else pop.year,
                        population_source=None
                        if code not in people or pop is None
                        else pop.source_of.get(code),
                        nr_time_share=share,
                        people_covered=None
                        if share is None or code not in people
                        else people[code] * share,
                        probes=len(units),
                        tests=sum(u.tests for u in units),
                    )
                )
        value = low = high = None
        if counted:
            weights = [float(people[code]) for code, _ in counted]
            samples = [[u.value for u in units] for _, units in counted]
            means = [float(np.mean(v)) for v in samples]
            value = float(np.dot(weights, means) / sum(weights))
            low, high = bootstrap_interval(samples, _weighted(weights), ctx.calc.seed)
        behind = [u for _, units in counted for u in units] if counted else used
        out.append(
            Figure(
                indicator="nr_population_share",
                scope=scope,
                group=group,
                unit="share",
                value=value,
                ci_low=low,
                ci_high=high,
                interval="bootstrap",
                mean=value,
                median=None,
                probes=len(behind),
                tests=sum(u.tests for u in behind),
                probe_limited=len(members) - len(used),
                status=status(value is not None),
                targets=targets("nr_population_share", value),
                note=_note(pop, people_apart, wards_apart, no_population),
            )
        )
    return out, wards_out


def _note(pop: Populations | None, people_apart: int, wards_apart: int, no_population: int) -> str:
    """How the figure was weighed, and who is left out of it."""
    if pop is None:
        return "no ward populations in the store (wardprobe-aggregator population import)"
    parts = [
        "each ward's nr_time_share weighted by its population "
        f"({pop.year}: {'; '.join(pop.sources)})",
        f"people in wards without enough data: {people_apart:,} "
        f"({wards_apart} ward{'' if wards_apart == 1 else 's'})",
    ]
    if no_population:
        parts.append(f"wards without a population: {no_population}")
    return "; ".join(parts)
