"""A map layer: one indicator's figure in every ward, taken from
compute_indicators and nothing else.

A layer holds all 103 wards of the registry. A ward where compute_indicators
has a figure carries it as it is (value, 95 % interval, probes, tests,
probe-limited probes, status, each target met or not); a ward without one,
or whose figure no probe counted in, has status "no probe". A map never
mixes fixed lines and mobile ones: the indicators whose figure takes both
(IPv6, latency) are mapped per network kind, from compute_indicators' figures
grouped by access technology ("access_tech=fixed", "access_tech=mobile");
the others are of one kind already. An indicator whose figures come in
groups (per access technology, per operator, or any indicator with
--by operator) is mapped one group at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

import duckdb

from analysis import constants as k
from analysis.indicators import Figure, IndicatorReport, Period, TargetResult, compute_indicators
from analysis.indicators.figures import targets as judged_targets
from analysis.maps.boundaries import display_name
from analysis.maps.classes import ColourScale, colour_scale
from analysis.requests import RequestRefused
from analysis.wards import can_tho_wards

MapBy = Literal["operator", "access_tech"]
MAP_BY: Final[tuple[MapBy, ...]] = ("operator", "access_tech")
NO_PROBE: Final = "no probe"
INSUFFICIENT: Final = "insufficient data"
STATUSES: Final = ("ok", INSUFFICIENT, NO_PROBE)

# Every indicator of compute_indicators that has a figure per ward, in the
# report's order.
MAP_INDICATORS: Final[tuple[str, ...]] = (
    "mobile_download_mean",
    "mobile_download_ratio",
    "mobile_download_by_tech",
    "gigabit_capable_share",
    "fixed_200_share",
    "fixed_download_mean",
    "nr_time_share",
    "nr_seen_share",
    "nr_population_share",
    "ipv6_capable_share",
    "ipv6_preferred_share",
    "ipv6_office_share",
    "idle_latency_ms",
    "loaded_latency_ms",
    "zone_nr_share",
    "zone_gigabit_share",
    "nr_lte_cell_ratio",
    "qcvn126_download_mean",
    "qcvn126_upload_mean",
    "qcvn126_download_floor_share",
    "qcvn126_latency_mean",
    "qcvn34_download_share",
    "qcvn34_upload_share",
)
# Their figure takes fixed lines and mobile probes together; mapped per network kind.
PER_NETWORK_KIND: Final = frozenset(
    {"ipv6_capable_share", "ipv6_preferred_share", "idle_latency_ms", "loaded_latency_ms"}
)
# Per access technology whatever the grouping: a map for each technology that has a target.
TARGET_TECHS: Final = tuple(sorted({t.access_tech for t in k.TARGETS if t.access_tech is not None}))
# A figure's unit in property names: value_mbps, ci_low_share, ...
UNIT_SUFFIX: Final[dict[str, str]] = {
    "Mb/s": "mbps",
    "ms": "ms",
    "share": "share",
    "ratio": "ratio",
    "ratio (proxy)": "ratio",
}
_UNIT_OF: Final[dict[str, str]] = {
    "mobile_download_mean": "Mb/s",
    "mobile_download_ratio": "ratio",
    "mobile_download_by_tech": "Mb/s",
    "fixed_download_mean": "Mb/s",
    "idle_latency_ms": "ms",
    "loaded_latency_ms": "ms",
    "nr_lte_cell_ratio": "ratio (proxy)",
    "qcvn126_download_mean": "Mb/s",
    "qcvn126_upload_mean": "Mb/s",
    "qcvn126_latency_mean": "ms",
}


class MapRequestError(RequestRefused):
    """A map asked for what does not exist; `accepted` lists what does (a
    RequestRefused, so that the CLI and the HTTP API refuse it alike)."""

    def __init__(
        self, what: str, asked: str, accepted: Iterable[str], *, problem: str = ""
    ) -> None:
        super().__init__(what, asked, accepted, problem=problem)


@dataclass(frozen=True)
class WardValue:
    """One ward on a map."""

    number: int  # its number on the printed map (registry-code order, from 1)
    ward_code: int
    ward_name: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    probes: int
    tests: int
    probe_limited: int
    status: str  # "ok", "insufficient data" or "no probe"
    targets: tuple[TargetResult, ...]
    # mobile_download_ratio only (compute_indicators' Figure.baselines): the
    # kind of 2024 baseline the ward's value uses ("probes", "ookla_tiles",
    # "imported"; None: none), whether it is like with like, and Ookla's tiles
    # now over their own 2024 where both are imported (like with like)
    baseline: str | None = None
    baseline_like_with_like: bool | None = None
    ookla_tiles_ratio: float | None = None
    # nr_population_share only (compute_indicators' nr_population): the ward's
    # people and those with 5G (its time share × its people; None: no figure)
    population_people: int | None = None
    covered_people: float | None = None


@dataclass(frozen=True)
class WardLayer:
    """One indicator (one group of it) in every ward of the city."""

    indicator: str
    group: str | None
    by: MapBy | None
    period: Period
    synthetic: bool
    unit: str
    wards: tuple[WardValue, ...]  # all wards of the registry, by code
    city: Figure | None  # the city's figure for the same group
    scale: ColourScale
    note: str

    @property
    def unit_suffix(self) -> str:
        """The unit as property names carry it: value_<suffix>."""
        return UNIT_SUFFIX[self.unit]

    @property
    def key(self) -> str:
        """The layer's name: the indicator, and its group after a colon."""
        return self.indicator + (f":{self.group}" if self.group else "")

    @property
    def access_tech(self) -> str | None:
        """The access technology the layer is of, when its group names one."""
        for part in (self.group or "").split(";"):
            key, _, value = part.partition("=")
            if key == "access_tech":
                return value
        return None


def check_indicator(name: str) -> str:
    """`name` when it is a map indicator; MapRequestError naming every one otherwise."""
    if name not in MAP_INDICATORS:
        raise MapRequestError("indicator", name, MAP_INDICATORS)
    return name


def check_by(by: str | None) -> MapBy | None:
    """`by` as a map grouping; MapRequestError otherwise."""
    if by is None:
        return None
    for accepted in MAP_BY:
        if by == accepted:
            return accepted
    raise MapRequestError("grouping", by, MAP_BY)


def report_grouping(indicator: str, by: MapBy | None) -> MapBy | None:
    """The grouping compute_indicators is asked for to map `indicator` under `by`."""
    if by is None and indicator in PER_NETWORK_KIND:
        return "access_tech"
    return by


def groups(report: IndicatorReport, indicator: str) -> list[str | None]:
    """The groups `indicator` can be mapped for in `report`."""
    found = {f.group for f in report.figures if f.indicator == indicator}
    if indicator == "mobile_download_by_tech" and report.by in (None, "access_tech"):
        found |= {f"access_tech={t}" for t in TARGET_TECHS}
    if len(found) > 1:
        found.discard(None)
    return sorted(found, key=lambda g: g or "") or [None]


def _match_group(asked: str | None, available: list[str | None], indicator: str) -> str | None:
    if asked is None:
        if len(available) == 1:
            return available[0]
        raise MapRequestError(
            "group",
            "",
            [g for g in available if g],
            problem=f"{indicator} comes in groups: give one (--group, or group= in the API)",
        )
    for group in available:
        values = ";".join(p.partition("=")[2] for p in (group or "").split(";"))
        if asked in (group, values):
            return group
    raise MapRequestError(f"group of {indicator}", asked, [g or "" for g in available])


def layer_from_report(
    report: IndicatorReport, indicator: str, group: str | None = None
) -> WardLayer:
    """The layer of `indicator` (for `group`, by its full name "access_tech=lte"
    or its value "lte") from a report of compute_indicators over all wards."""
    check_indicator(indicator)
    if report.ward is not None:
        raise ValueError("a map needs the report of every ward (compute_indicators ward=None)")
    chosen = _match_group(group, groups(report, indicator), indicator)
    figures = [f for f in report.figures if f.indicator == indicator and f.group == chosen]
    city = next((f for f in figures if f.scope == "city"), None)
    by_ward = {int(f.scope): f for f in figures if f.scope != "city"}
    unit = city.unit if city is not None else _UNIT_OF.get(indicator, "share")
    tech = None
    for part in (chosen or "").split(";"):
        if part.startswith("access_tech="):
            tech = part.removeprefix("access_tech=")
    people = (
        {w.ward_code: w for w in report.nr_population} if indicator == "nr_population_share" else {}
    )
    wards = []
    for number, (code, info) in enumerate(sorted(can_tho_wards().items()), start=1):
        f = by_ward.get(code)
        p = people.get(code)
        if f is None or (f.probes == 0 and f.probe_limited == 0):
            wards.append(
                WardValue(
                    number=number,
                    ward_code=code,
                    ward_name=display_name(info.name),
                    value=None,
                    ci_low=None,
                    ci_high=None,
                    probes=0,
                    tests=0 if f is None else f.tests,
                    probe_limited=0,
                    status=NO_PROBE,
                    targets=judged_targets(indicator, None, tech),
                    population_people=None if p is None else p.population,
                )
            )
            continue
        used = next((c for c in f.baselines if c.used), None)
        tiles = next((c for c in f.baselines if c.numerator == "ookla_tiles"), None)
        wards.append(
            WardValue(
                number=number,
                ward_code=code,
                ward_name=display_name(info.name),
                value=f.value,
                ci_low=f.ci_low,
                ci_high=f.ci_high,
                probes=f.probes,
                tests=f.tests,
                probe_limited=f.probe_limited,
                status=f.status,
                targets=f.targets,
                baseline=None if used is None else used.baseline,
                baseline_like_with_like=None if used is None else used.like_with_like,
                ookla_tiles_ratio=None if tiles is None else tiles.value,
                population_people=None if p is None else p.population,
                covered_people=None if p is None else p.people_covered,
            )
        )
    by = report.by if report.by in MAP_BY else None
    return WardLayer(
        indicator=indicator,
        group=chosen,
        by="operator" if by == "operator" else "access_tech" if by == "access_tech" else None,
        period=report.period,
        synthetic=report.synthetic,
        unit=unit,
        wards=tuple(wards),
        city=city,
        scale=colour_scale(indicator, unit, tech),
        note=city.note if city is not None else "",
    )


def ward_layer(
    con: duckdb.DuckDBPyConnection,
    indicator: str,
    period: Period,
    *,
    by: MapBy | None = None,
    group: str | None = None,
    synthetic: bool = False,
) -> WardLayer:
    """The map layer of one indicator (and group) for a period, from compute_indicators."""
    check_indicator(indicator)
    report = compute_indicators(
        con, period, by=report_grouping(indicator, check_by(by)), synthetic=synthetic
    )
    return layer_from_report(report, indicator, group)


def ward_layers(
    con: duckdb.DuckDBPyConnection,
    period: Period,
    *,
    indicators: Iterable[str] = MAP_INDICATORS,
    by: MapBy | None = None,
    synthetic: bool = False,
) -> list[WardLayer]:
    """Every group's layer of each indicator, computing each grouping's report once."""
    wanted = [check_indicator(i) for i in indicators]
    check_by(by)
    reports: dict[MapBy | None, IndicatorReport] = {}
    out = []
    for indicator in wanted:
        grouping = report_grouping(indicator, by)
        if grouping not in reports:
            reports[grouping] = compute_indicators(con, period, by=grouping, synthetic=synthetic)
        report = reports[grouping]
        out += [layer_from_report(report, indicator, g) for g in groups(report, indicator)]
    return out
