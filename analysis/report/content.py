"""What the yearly report says, gathered and written out in one language.

Every figure comes from compute_indicators (the year, every ward, the
per-probe values kept), every map from analysis/maps (the same report's
layers), every "more probes" figure from analysis/sampling.py, every word
from analysis/labels.py and every threshold from analysis/constants.py (the
validity rule's from wardprobe/validity.py through it). Nothing here
computes an indicator; it only chooses and words what those give.
"""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

import duckdb

from analysis import constants as k
from analysis import labels
from analysis.catalog import rollup_sql
from analysis.indicators import (
    TZ,
    Figure,
    IndicatorReport,
    TargetResult,
    compute_indicators,
    parse_period,
    set_days,
)
from analysis.indicators.figures import BaselineComparison
from analysis.indicators.ipv6_reference import Ipv6Reference, ProvinceRank
from analysis.indicators.ipv6_services import NAME as SERVICES_INDICATOR
from analysis.indicators.ipv6_services import ServiceIpv6
from analysis.labels import Lang
from analysis.maps.layers import NO_PROBE, WardLayer, layer_from_report
from analysis.maps.png import png_bytes
from analysis.maps.text import interval_text
from analysis.sampling import FloorGap, SamplingPlan, Unsettled, sampling_plan
from analysis.wards import can_tho_wards, data_version

NATIONAL_SOURCES: Final = (k.QCVN126_SOURCE, k.QCVN34_SOURCE)
MET, NOT_MET, INSUFFICIENT = "met", "not met", "insufficient"


@dataclass(frozen=True)
class TargetLine:
    """One target and how the city's figure stands against it."""

    indicator: str
    title: str  # the indicator (and its technology) in words
    target: str  # "≥ 50 %"
    source: str
    due: str
    value: str
    interval: str
    probes: str
    tests: str
    verdict: str  # MET, NOT_MET or INSUFFICIENT (the CSS class too)
    verdict_text: str
    unsettled: bool  # the interval contains the target's value
    anchor: str  # the section that details it


@dataclass(frozen=True)
class WardRow:
    """One ward in an indicator's ward table."""

    code: int
    name: str
    value: str
    interval: str
    probes: str
    tests: str
    limited: str
    status: str
    # per target: (MET, NOT_MET or INSUFFICIENT; the words, "*" after them when unsettled)
    verdicts: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ZoneSiteRow:
    """One probe at a zone site."""

    probe: str
    ward: str
    site_class: str
    saw_nr: str
    gigabit: str


@dataclass(frozen=True)
class ServiceRow:
    """One of the city's services and its IPv6 readiness."""

    service: str
    kind: str
    verdict: str  # MET, NOT_MET or INSUFFICIENT (not decided)
    verdict_text: str
    failing: str  # the reasons of its failing checks ("" when ready)


@dataclass(frozen=True)
class DepartmentTable:
    """One department's services."""

    title: str
    share: str  # "2 of 3 services ready"
    services: tuple[ServiceRow, ...]


@dataclass(frozen=True)
class OfficeRow:
    """One government office's probe and its LAN's IPv6 (ipv6_office_share)."""

    probe: str
    ward: str
    site_class: str
    ipv6: str
    checks: str
    last_check: str
    last_found: str


@dataclass(frozen=True)
class Section:
    """One indicator (one technology of it) in detail: its targets, map and ward table."""

    anchor: str
    title: str
    definition: str
    targets: tuple[TargetLine, ...]
    target_heads: tuple[str, ...]  # the ward table's target columns
    map_uri: str  # the printed map, a data: URI of its PNG
    map_caption: str
    wards: tuple[WardRow, ...]  # wards with a probe
    no_probe: str  # the wards without one, in a sentence ("" when none)
    note: str
    zone_sites: tuple[ZoneSiteRow, ...]
    offices: tuple[OfficeRow, ...] = ()  # ipv6_office_share: each office
    people: str = ""  # nr_population_share: who it weighs by and leaves out
    offices_apart: str = ""  # ipv6_office_share: the offices without a result
    # ipv6_service_ready_share: the city's services, a table per department
    # (no ward table and no map: the services are the city's, not a ward's).
    departments: tuple[DepartmentTable, ...] = ()


@dataclass(frozen=True)
class ReferenceRow:
    """A national reference's figure for the city (per operator for QCVN 126)."""

    regulation: str
    title: str
    group: str
    requirement: str
    value: str
    interval: str
    probes: str
    tests: str
    verdict: str
    verdict_text: str


@dataclass(frozen=True)
class UnsettledRow:
    """A figure whose interval contains a target, and the probes that would settle it."""

    scope: str
    value: str
    interval: str
    spread: str
    probes: str
    needed: str
    more: str


@dataclass(frozen=True)
class UnsettledGroup:
    """The figures of one indicator (and group) whose interval contains one target."""

    title: str
    target: str
    rows: tuple[UnsettledRow, ...]


@dataclass(frozen=True)
class WardList:
    """Wards that share an answer: the same indicator and the same probes to add."""

    title: str
    answer: str
    wards: str
    count: int
    numeric: bool = False  # the answer is a number of probes, not a reason


@dataclass(frozen=True)
class CountRow:
    """Probes counted under one heading (a site class or a ward)."""

    label: str
    fixed: int
    mobile: int
    total: int


@dataclass(frozen=True)
class ExclusionRow:
    table: str
    reason: str
    results: str


@dataclass(frozen=True)
class IspRow:
    """One fixed-line ISP: the probes' IPv6 beside APNIC's rate for its network."""

    isp: str
    probes_share: str
    interval: str
    probes: str
    network: str
    apnic_share: str


@dataclass(frozen=True)
class RankRow:
    """Cần Thơ among the provinces on one metric."""

    metric: str
    day: str
    city: str
    rank: str
    source: str
    verdict: str
    verdict_text: str


@dataclass(frozen=True)
class Ipv6Comparison:
    """ipv6_leading_provinces in words: the ISPs, Vietnam, the ranks, the methods."""

    intro: str
    verdict: str
    verdict_text: str
    isps: tuple[IspRow, ...]
    vietnam: str
    services: str
    ranks: tuple[RankRow, ...]
    no_ranks: str  # the sentence when no provincial figure is there ("" otherwise)
    methods: tuple[str, ...]


@dataclass(frozen=True)
class ReportContent:
    """The whole report in one language, ready for the template."""

    lang: Lang
    year: int
    synthetic: bool
    title: str
    words: dict[str, str]
    cover: tuple[tuple[str, str], ...]
    summary: tuple[TargetLine, ...]
    sections: tuple[Section, ...]
    references: tuple[ReferenceRow, ...]
    unsettled: tuple[UnsettledGroup, ...]
    not_by_probes: tuple[WardList, ...]
    below_floor: tuple[WardList, ...]
    site_counts: tuple[CountRow, ...]
    ward_counts: tuple[CountRow, ...]
    validity: tuple[str, ...]
    baseline: tuple[str, ...]
    method: tuple[tuple[str, tuple[str, ...]], ...]  # annex A.4-A.8: heading, paragraphs
    exclusions: tuple[ExclusionRow, ...]
    # ipv6_leading_provinces (None: the report has no such figure)
    ipv6: Ipv6Comparison | None = None


def _date(day: date, lang: Lang) -> str:
    return f"{day:%d/%m/%Y}" if lang == "vi" else f"{day:%Y-%m-%d}"


def _verdict(met: bool | None) -> str:
    return INSUFFICIENT if met is None else MET if met else NOT_MET


def _verdict_text(verdict: str, lang: Lang) -> str:
    return labels.report_word(verdict if verdict != INSUFFICIENT else "insufficient", lang)


def _source(source: str, lang: Lang) -> str:
    return labels.SOURCES[source][lang] if source in labels.SOURCES else source


def _due(due: str, lang: Lang) -> str:
    return labels.DUE[due][lang] if due in labels.DUE else due


def _target_text(comparator: str, value: float, unit: str, lang: Lang) -> str:
    return f"{labels.COMPARATORS[comparator]} {labels.round_quantity(value, unit, lang)}"


def _title(indicator: str, group: str | None, lang: Lang) -> str:
    text = labels.text(labels.INDICATORS, indicator, lang)
    return f"{text} – {labels.group_label(group, lang)}" if group else text


def _value(f: Figure | None, lang: Lang) -> str:
    if f is None or f.value is None:
        return labels.report_word("insufficient", lang)
    return labels.quantity(f.value, f.unit, lang)


def _anchor(indicator: str, group: str | None) -> str:
    return (indicator + ("-" + group.replace("=", "-").replace(";", "-") if group else "")).lower()


def _matches(result: TargetResult, target: k.Target) -> bool:
    return (result.value, result.comparator, result.source, result.due) == (
        target.value,
        target.comparator,
        target.source,
        target.due,
    )


def plan_targets() -> list[tuple[str, str | None, list[k.Target]]]:
    """The plans' targets (not the national references) by indicator and
    group, in the order analysis/constants.py lists them."""
    out: dict[tuple[str, str | None], list[k.Target]] = {}
    for t in k.TARGETS:
        if t.source in NATIONAL_SOURCES:
            continue
        group = f"access_tech={t.access_tech}" if t.access_tech else None
        out.setdefault((t.indicator, group), []).append(t)
    return [(indicator, group, targets) for (indicator, group), targets in out.items()]


class _Gatherer:
    """The report's figures and words for one language."""

    def __init__(
        self,
        report: IndicatorReport,
        plan: SamplingPlan,
        lang: Lang,
        year: int,
        draw: MapPng,
    ) -> None:
        self.draw = draw
        self.report = report
        self.plan = plan
        self.lang = lang
        self.year = year
        self.figures = {(f.indicator, f.scope, f.group): f for f in report.figures}
        self.unsettled_keys = {
            (u.indicator, u.scope, u.group, u.target_value) for u in plan.unsettled
        }
        self.wards = can_tho_wards()
        self.plan_keys = {(indicator, group) for indicator, group, _ in plan_targets()}

    def w(self, key: str, **fill: object) -> str:
        return labels.report_word(key, self.lang, **fill)

    def target_line(self, indicator: str, group: str | None, t: k.Target) -> TargetLine:
        f = self.figures.get((indicator, "city", group))
        result = next((r for r in f.targets if _matches(r, t)), None) if f else None
        verdict = _verdict(None if result is None else result.met)
        unit = f.unit if f is not None else t.unit
        return TargetLine(
            indicator=indicator,
            title=_title(indicator, group, self.lang),
            target=_target_text(t.comparator, t.value, t.unit, self.lang),
            source=_source(t.source, self.lang),
            due=_due(t.due, self.lang),
            value=_value(f, self.lang),
            interval="–"
            if f is None or f.value is None
            else interval_text(f.ci_low, f.ci_high, unit, self.lang),
            probes=labels.count(0 if f is None else f.probes, self.lang),
            tests=labels.count(0 if f is None else f.tests, self.lang),
            verdict=verdict,
            verdict_text=_verdict_text(verdict, self.lang),
            unsettled=(indicator, "city", group, t.value) in self.unsettled_keys,
            anchor=_anchor(indicator, group),
        )

    def section(
        self, indicator: str, group: str | None, targets: list[k.Target], layer: WardLayer
    ) -> Section:
        lang = self.lang
        rows = []
        no_probe = []
        for ward in layer.wards:
            if ward.status == NO_PROBE:
                no_probe.append(ward.ward_name)
                continue
            verdicts = []
            for t in targets:
                result = next((r for r in ward.targets if _matches(r, t)), None)
                verdict = _verdict(None if result is None else result.met)
                mark = (
                    "*"
                    if (indicator, str(ward.ward_code), group, t.value) in self.unsettled_keys
                    else ""
                )
                text = "–" if verdict == INSUFFICIENT else _verdict_text(verdict, lang)
                verdicts.append((verdict, text + mark))
            rows.append(
                WardRow(
                    code=ward.ward_code,
                    name=ward.ward_name,
                    value=labels.text(labels.STATUSES, ward.status, lang)
                    if ward.value is None
                    else labels.quantity(ward.value, layer.unit, lang),
                    interval=interval_text(ward.ci_low, ward.ci_high, layer.unit, lang),
                    probes=labels.count(ward.probes, lang),
                    tests=labels.count(ward.tests, lang),
                    limited=labels.count(ward.probe_limited, lang),
                    status=labels.text(labels.STATUSES, ward.status, lang),
                    verdicts=tuple(verdicts),
                )
            )
        title = _title(indicator, group, lang)
        period = f"{self.w('period')} {self.report.period.label}"
        return Section(
            anchor=_anchor(indicator, group),
            title=title,
            definition=labels.DEFINITIONS.get(indicator, {}).get(lang, ""),
            targets=tuple(self.target_line(indicator, group, t) for t in targets),
            target_heads=tuple(
                _target_text(t.comparator, t.value, t.unit, lang) + f" ({_due(t.due, lang)})"
                for t in targets
            ),
            map_uri=map_data_uri(layer, lang, self.draw),
            map_caption=self.w("map caption", indicator=title, period=period),
            wards=tuple(rows),
            no_probe=self.w("wards without probe", n=len(no_probe), names=", ".join(no_probe))
            if no_probe
            else "",
            note=layer.note if lang == "en" else "",
            zone_sites=self.zone_sites() if indicator.startswith("zone_") else (),
            offices=self.offices() if indicator == "ipv6_office_share" else (),
            people=self.people() if indicator == "nr_population_share" else "",
            offices_apart=self.w(
                "offices apart",
                apart=sum(1 for o in self.report.offices if o.ipv6_capable is None),
                total=len(self.report.offices),
            )
            if indicator == "ipv6_office_share" and self.report.offices
            else "",
        )

    def offices(self) -> tuple[OfficeRow, ...]:
        """The government offices one by one, as compute_indicators lists them."""

        def found(value: bool | None) -> str:
            if value is None:
                return "–"
            return self.w("ipv6 found" if value else "ipv6 not found")

        return tuple(
            OfficeRow(
                probe=o.probe_id,
                ward=self.ward_name(o.ward_code),
                site_class=labels.site_class(o.site_class, self.lang),
                ipv6=self.w("no check")
                if o.ipv6_capable is None
                else self.w("yes" if o.ipv6_capable else "no"),
                checks="–" if o.checks is None else labels.count(o.checks, self.lang),
                last_check="–"
                if o.last_checked_at is None
                else _date(o.last_checked_at.astimezone(TZ).date(), self.lang),
                last_found=found(o.last_check_capable),
            )
            for o in self.report.offices
        )

    def people(self) -> str:
        """The people nr_population_share weighs by, those with 5G and those left out."""
        wards = [w for w in self.report.nr_population if w.population is not None]
        if not wards:
            return self.w("no people")
        apart = [w for w in wards if w.nr_time_share is None]
        return self.w(
            "people",
            people=labels.count(sum(w.population or 0 for w in wards), self.lang),
            wards=len(wards),
            year=", ".join(sorted({str(w.population_year) for w in wards})),
            source="; ".join(sorted({w.population_source or "" for w in wards})),
            covered=labels.count(round(sum(w.people_covered or 0.0 for w in wards)), self.lang),
            apart_wards=len(apart),
            apart=labels.count(sum(w.population or 0 for w in apart), self.lang),
        )

    def services_section(self, indicator: str, targets: list[k.Target]) -> Section:
        """ipv6_service_ready_share: its targets and a table per department listing
        each service with its failing check; no ward table and no map."""
        by_department: dict[str, list[ServiceIpv6]] = {}
        for service in self.report.services:
            by_department.setdefault(service.department, []).append(service)
        tables = []
        for department, services in sorted(by_department.items()):
            decided = [s for s in services if s.ready is not None]
            rows = []
            for s in services:
                verdict = _verdict(s.ready)
                rows.append(
                    ServiceRow(
                        service=s.hostname,
                        kind=labels.text(labels.SERVICE_KINDS, s.kind, self.lang),
                        verdict=verdict,
                        verdict_text=self.w("not decided")
                        if s.ready is None
                        else self.w("yes" if s.ready else "no"),
                        failing=labels.service_check_reasons(s.why_not or "", self.lang),
                    )
                )
            tables.append(
                DepartmentTable(
                    title=self.w("services of", department=department),
                    share=self.w(
                        "department ready",
                        ready=sum(1 for s in decided if s.ready),
                        decided=len(decided),
                    ),
                    services=tuple(rows),
                )
            )
        city = self.figures.get((indicator, "city", None))
        return Section(
            anchor=_anchor(indicator, None),
            title=_title(indicator, None, self.lang),
            definition=labels.DEFINITIONS.get(indicator, {}).get(self.lang, ""),
            targets=tuple(self.target_line(indicator, None, t) for t in targets),
            target_heads=(),
            map_uri="",
            map_caption="",
            wards=(),
            no_probe="",
            note=city.note if city is not None and self.lang == "en" else "",
            zone_sites=(),
            departments=tuple(tables),
        )

    def zone_sites(self) -> tuple[ZoneSiteRow, ...]:
        def yes_no(value: bool | None) -> str:
            return self.w("unknown") if value is None else self.w("yes" if value else "no")

        return tuple(
            ZoneSiteRow(
                probe=s.probe_id,
                ward=self.ward_name(s.ward_code),
                site_class=labels.site_class(s.site_class, self.lang),
                saw_nr=yes_no(s.saw_nr),
                gigabit=yes_no(s.gigabit_capable),
            )
            for s in self.report.zone_sites
        )

    def references(self) -> tuple[ReferenceRow, ...]:
        lang = self.lang
        rows = []
        for f in self.report.figures:
            if f.scope != "city" or not f.indicator.startswith(("qcvn126_", "qcvn34_")):
                continue
            regulation = k.QCVN126_SOURCE if f.indicator.startswith("qcvn126") else k.QCVN34_SOURCE
            for t in f.targets or (None,):
                verdict = _verdict(None if t is None else t.met)
                rows.append(
                    ReferenceRow(
                        regulation=regulation,
                        title=_capitalised(
                            labels.text(labels.INDICATORS, f.indicator, lang).split(" – ", 1)[-1]
                        ),
                        group=(f.group or "").partition("=")[2],
                        requirement=""
                        if t is None
                        else _target_text(t.comparator, t.value, f.unit, lang),
                        value=_value(f, lang),
                        interval=interval_text(f.ci_low, f.ci_high, f.unit, lang),
                        probes=labels.count(f.probes, lang),
                        tests=labels.count(f.tests, lang),
                        verdict=verdict,
                        verdict_text=_verdict_text(verdict, lang),
                    )
                )
        return tuple(rows)

    def ward_name(self, code: int) -> str:
        info = self.wards.get(code)
        return info.name if info is not None else str(code)

    def scope_name(self, scope: str, name: str | None) -> str:
        return self.w("city") if scope == "city" else (name or scope)

    def in_report(self, indicator: str, group: str | None, scope: str, probes: int) -> bool:
        """What section 4 lists: the plan's targets in the city and the wards
        (for the zone targets only the wards with a zone site), the national
        references for the city. sampling_plan has every indicator (the API)."""
        if (indicator, group) in self.plan_keys:
            return scope == "city" or probes > 0 or not indicator.startswith("zone_")
        return scope == "city" and any(t.indicator == indicator for t in k.TARGETS)

    def unsettled(self) -> tuple[tuple[UnsettledGroup, ...], tuple[WardList, ...]]:
        """Figures with a number of probes that settles them (the city first,
        then the wards needing fewest), and those that no number does, by reason."""
        lang = self.lang
        order = _indicator_order()
        listed = [
            u
            for u in self.plan.unsettled
            if self.in_report(u.indicator, u.group, u.scope, u.probes)
        ]
        numbered: dict[tuple[str, str | None, float], list[Unsettled]] = defaultdict(list)
        for u in listed:
            if u.probes_needed is not None:
                numbered[(u.indicator, u.group, u.target_value)].append(u)
        groups = []
        for (indicator, group, _), members in sorted(
            numbered.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0][1] or "", kv[0][2])
        ):
            members.sort(key=lambda u: (u.scope != "city", u.more_probes or 0, u.scope))
            first = members[0]
            groups.append(
                UnsettledGroup(
                    title=_title(indicator, group, lang),
                    target=_target_text(first.comparator, first.target_value, first.unit, lang)
                    + f" ({_source(first.source, lang)}, {_due(first.due, lang)})",
                    rows=tuple(
                        UnsettledRow(
                            scope=self.scope_name(u.scope, u.ward_name),
                            value=labels.quantity(u.value, u.unit, lang),
                            interval=interval_text(u.ci_low, u.ci_high, u.unit, lang),
                            spread=_spread(u, lang),
                            probes=labels.count(u.probes, lang),
                            needed=labels.count(u.probes_needed or 0, lang),
                            more=labels.count(u.more_probes or 0, lang),
                        )
                        for u in members
                    ),
                )
            )
        grouped: dict[tuple[str, str | None, str, str], list[str]] = defaultdict(list)
        for u in listed:
            if u.probes_needed is None:
                target = _target_text(u.comparator, u.target_value, u.unit, lang)
                grouped[(u.indicator, u.group, target, _why(u, lang))].append(
                    self.scope_name(u.scope, u.ward_name)
                )
        lists = tuple(
            WardList(
                title=f"{_title(ind, grp, lang)}, {target}",
                answer=why,
                wards=", ".join(names),
                count=len(names),
            )
            for (ind, grp, target, why), names in sorted(
                grouped.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0][1] or "")
            )
        )
        return tuple(groups), lists

    def below_floor(self) -> tuple[WardList, ...]:
        """The figures below the floor, by indicator and the probes each needs."""
        lang = self.lang
        order = _indicator_order()
        grouped: dict[tuple[str, str | None, int | None, str], list[FloorGap]] = defaultdict(list)
        for g in self.plan.below_floor:
            if not self.in_report(g.indicator, g.group, g.scope, g.probes):
                continue
            why = "" if g.more_probes is not None else _floor_why(g, lang)
            grouped[(g.indicator, g.group, g.more_probes, why)].append(g)
        out = []
        for (ind, grp, more, why), gaps in sorted(
            grouped.items(),
            key=lambda kv: (order.get(kv[0][0], 99), kv[0][1] or "", kv[0][2] is None,
                            kv[0][2] or 0),
        ):  # fmt: skip
            gaps.sort(key=lambda g: (g.scope != "city", g.scope))
            out.append(
                WardList(
                    title=_title(ind, grp, lang),
                    answer=why or labels.count(more or 0, lang),
                    numeric=not why,
                    wards=", ".join(self.scope_name(g.scope, g.ward_name) for g in gaps),
                    count=len(gaps),
                )
            )
        return tuple(out)


def _capitalised(text: str) -> str:
    """The first letter upper-case ("tốc độ ..." after "QCVN 126:2021 – " stands alone)."""
    return text[:1].upper() + text[1:]


def _indicator_order() -> dict[str, int]:
    names: list[str] = []
    for t in k.TARGETS:
        if t.indicator not in names:
            names.append(t.indicator)
    for name in labels.INDICATORS:
        if name not in names:
            names.append(name)
    return {name: i for i, name in enumerate(names)}


def _spread(u: Unsettled, lang: Lang) -> str:
    if u.statistic == "share":
        return labels.number(u.spread, lang, 2)
    unit = "ratio" if u.statistic == "ratio" else u.unit
    return labels.quantity(u.spread, unit, lang)


def _why(u: Unsettled, lang: Lang) -> str:
    if "100 %" in u.note:
        return labels.report_word("all sites", lang)
    if "baseline" in u.note:
        return labels.report_word("baseline too wide", lang)
    return labels.report_word("on target", lang)


def _floor_why(g: FloorGap, lang: Lang) -> str:
    if g.tests_per_probe is None:
        return labels.report_word("no rate", lang)
    return labels.report_word("no baseline here", lang)


MapPng = Callable[[WardLayer, Lang], bytes]


def map_data_uri(layer: WardLayer, lang: Lang, draw: MapPng = png_bytes) -> str:
    """The printed map of a layer (analysis/maps/png.py) as a data: URI, so
    the report is one file."""
    return "data:image/png;base64," + base64.b64encode(draw(layer, lang)).decode("ascii")


def _probe_counts(
    con: duckdb.DuckDBPyConnection, report: IndicatorReport
) -> list[tuple[int, str, int, int, int]]:
    """(ward, site class, fixed, mobile, all) probes with a valid result in the
    period, from the same per-probe rows the indicators read."""
    set_days(con, report.period, report.synthetic)
    units = " union ".join(
        f"select probe_id, ward_code, {kind} as network_kind from ({rollup_sql(name)})"
        for name, kind in (
            ("units_download", "network_kind"),
            ("units_upload", "network_kind"),
            ("units_latency", "network_kind"),
            ("units_ipv6", "network_kind"),
            ("units_cellular", "'mobile'"),
        )
    )
    rows = con.execute(
        f"with u as ({units}) select u.ward_code, coalesce(p.site_class, 'other'), "
        "count(distinct u.probe_id) filter (where u.network_kind = 'fixed'), "
        "count(distinct u.probe_id) filter (where u.network_kind = 'mobile'), "
        "count(distinct u.probe_id) from u left join probes p using (probe_id) "
        "group by all order by 1, 2"
    ).fetchall()
    return [(int(r[0]), str(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows]


def _count_by(
    rows: Iterable[tuple[int, str, int, int, int]], site_class: bool
) -> dict[int | str, tuple[int, int, int]]:
    """(fixed, mobile, all) probes by ward code or by site class."""
    out: dict[int | str, tuple[int, int, int]] = {}
    for ward, cls, fixed, mobile, total in rows:
        key: int | str = cls if site_class else ward
        f, m, t = out.get(key, (0, 0, 0))
        out[key] = (f + fixed, m + mobile, t + total)
    return out


def _validity(lang: Lang) -> tuple[str, ...]:
    n = labels.number
    if lang == "vi":
        return (
            "Một phép đo tốc độ được tính khi: đo thành công; đồng hồ của đầu đo đã đồng bộ; "
            "lưu lượng khác trên đường truyền không vượt quá "
            f"{n(k.MAX_CROSS_TRAFFIC_BYTES_PER_S, lang, 0)} byte/s; truyền ít nhất "
            f"{n(k.MIN_BYTES_TRANSFERRED, lang, 0)} byte; thời gian đo từ "
            f"{n(k.MIN_MEASURED_S, lang)} s đến {n(k.MAX_MEASURED_S, lang, 0)} s; và tốc độ "
            "báo cáo khớp với số byte chia thời gian trong phạm vi "
            f"{n(100 * k.RATE_TOLERANCE, lang, 0)} %.",
            "Một phép đo độ trễ được tính khi thành công, đồng hồ đã đồng bộ và nhận được ít "
            f"nhất {k.MIN_LATENCY_REPLIES} gói tin phản hồi; một quan sát vô tuyến hoặc một "
            "lần kiểm tra IPv6 được tính khi thành công và đồng hồ đã đồng bộ.",
            "Đầu đo áp dụng cùng quy tắc này trước khi gửi kết quả (wardprobe/validity.py); "
            "kết quả không đạt vẫn được lưu và được đếm theo lý do ở mục A.7.",
        )
    return (
        "A throughput test counts when it completed; the probe's clock was synchronised; "
        "other traffic on the line was not above "
        f"{n(k.MAX_CROSS_TRAFFIC_BYTES_PER_S, lang, 0)} bytes/s; it moved at least "
        f"{n(k.MIN_BYTES_TRANSFERRED, lang, 0)} bytes; it was measured over "
        f"{n(k.MIN_MEASURED_S, lang)} s to {n(k.MAX_MEASURED_S, lang, 0)} s; and its rate "
        "agrees with bytes over time within "
        f"{n(100 * k.RATE_TOLERANCE, lang, 0)} %.",
        "A latency test counts when it completed, the clock was synchronised and at least "
        f"{k.MIN_LATENCY_REPLIES} replies came back; a radio observation or an IPv6 check "
        "when it completed and the clock was synchronised.",
        "The probe applies the same rule before it sends a result (wardprobe/validity.py); "
        "results that fail it are stored and counted by reason in A.7.",
    )


def _method(lang: Lang) -> tuple[tuple[str, tuple[str, ...]], ...]:
    w = labels.report_word
    n = labels.number
    conf = n(100 * k.CONFIDENCE, lang, 0)
    if lang == "vi":
        return (
            (
                w("a4", lang),
                (
                    "Mỗi đầu đo có trọng số như nhau: trước hết tính con số của từng đầu đo "
                    "(ví dụ tốc độ trung bình các phép đo hợp lệ của nó), rồi lấy trung bình "
                    "(hoặc trung vị, tỷ lệ) giữa các đầu đo. Như vậy một đầu đo đo nhiều hơn "
                    "không làm lệch kết quả của phường, xã. Đường truyền cố định và di động "
                    "không bao giờ gộp chung trong một chỉ tiêu.",
                    "Đầu đo không thể hiện được đại lượng cần đo (ví dụ cổng mạng dưới 1 Gb/s "
                    "với chỉ tiêu gigabit, modem chỉ có 4G với chỉ tiêu 5G) được ghi là bị "
                    "giới hạn và không tính vào mẫu số.",
                ),
            ),
            (
                w("a5", lang),
                (
                    f"Khoảng tin cậy {conf} % của trung bình, trung vị và tỷ lệ so với năm 2024 "
                    "được tính bằng bootstrap phân vị, lấy mẫu lại các đầu đo "
                    f"{n(k.BOOTSTRAP_RESAMPLES, lang, 0)} lần (có cố định hạt giống ngẫu nhiên: "
                    "cùng số liệu cho cùng khoảng). Tỷ lệ đầu đo dùng khoảng Wilson. Các quy "
                    "chuẩn quốc gia dùng bootstrap theo cụm (mỗi đầu đo cùng mọi mẫu đo của nó).",
                ),
            ),
            (
                w("a6", lang),
                (
                    f"Một kết quả chỉ được công bố khi có ít nhất {k.FLOOR_PROBES} đầu đo và "
                    f"{k.FLOOR_TESTS} phép đo hợp lệ; dưới ngưỡng này kết quả là «chưa đủ dữ "
                    "liệu», không được đánh giá đạt hay không đạt, và trên bản đồ được tô xám, "
                    "khác với phường, xã chưa có đầu đo (màu trắng).",
                ),
            ),
            (
                w("a8", lang),
                (
                    "Dưới ngưỡng: số đầu đo cần thêm m = max(3 − đầu đo hiện có, ⌈(30 − phép đo "
                    "hiện có) / r⌉), với r là số phép đo mỗi đầu đo trong kỳ (của phường, xã; "
                    "phường, xã chưa có đầu đo: của toàn thành phố).",
                    f"Khoảng tin cậy chứa mục tiêu: với d = |giá trị − mục tiêu| và z = "
                    f"{n(1.96, lang, 2)}, tổng số đầu đo cần để khoảng tin cậy không còn chứa "
                    "mục tiêu là n ≈ (z·s/d)² cho trung bình (s: độ lệch chuẩn giữa các đầu "
                    "đo), n ≈ (π/2)·(z·s/d)² cho trung vị, n ≈ z²·p(1−p)/d² cho tỷ lệ p; khi "
                    "p = 1 (hoặc 0) là n > z²·t/(1−t) (hoặc z²·(1−t)/t), nơi khoảng Wilson "
                    "không còn chứa t. Với tỷ lệ so với năm 2024, phần bất định của số liệu gốc "
                    "không giảm khi thêm đầu đo năm nay; khi riêng phần đó đã lớn hơn d thì "
                    "thêm đầu đo không kết luận được. Tổng số không nhỏ hơn ngưỡng "
                    f"{k.FLOOR_PROBES} đầu đo; số cần thêm ít nhất là 1.",
                ),
            ),
        )
    return (
        (
            w("a4", lang),
            (
                "Every probe weighs the same: each probe's own figure first (for example the "
                "mean of its valid tests), then the mean (or median, or share) across probes. "
                "A probe that tests more does not tilt its ward. Fixed lines and mobile "
                "networks are never mixed in one indicator.",
                "A probe that cannot show what is measured (a port below 1 Gb/s for the "
                "gigabit share, a 4G-only modem for 5G) is probe-limited and left out of the "
                "denominator.",
            ),
        ),
        (
            w("a5", lang),
            (
                f"{conf} % intervals of means, medians and the ratio to 2024 are percentile "
                f"bootstraps resampling probes {n(k.BOOTSTRAP_RESAMPLES, lang, 0)} times "
                "(seeded: the same data gives the same interval). Shares of probes use the "
                "Wilson interval. The national references use a cluster bootstrap (each probe "
                "with all its samples).",
            ),
        ),
        (
            w("a6", lang),
            (
                f"A figure is published only with at least {k.FLOOR_PROBES} probes and "
                f"{k.FLOOR_TESTS} valid tests; below that it is 'insufficient data', judged "
                "neither met nor not met, and drawn grey on the maps, apart from wards without "
                "a probe (white).",
            ),
        ),
        (
            w("a8", lang),
            (
                "Below the floor: more probes m = max(3 − probes, ⌈(30 − tests) / r⌉), r the "
                "tests per probe in the period (the ward's; a ward without a probe: the "
                "city's).",
                "Interval containing the target: with d = |value − target| and z = 1.96, the "
                "total probes for the interval to leave the target out is n ≈ (z·s/d)² for a "
                "mean (s the between-probe standard deviation), n ≈ (π/2)·(z·s/d)² for a "
                "median, n ≈ z²·p(1−p)/d² for a share p; at p = 1 (or 0) n > z²·t/(1−t) (or "
                "z²·(1−t)/t), where the Wilson interval leaves t out. For the ratio to 2024 "
                "the baseline's own uncertainty does not shrink with this year's probes; when "
                "it alone exceeds d, more probes do not settle it. The total is at least the "
                f"floor's {k.FLOOR_PROBES} probes; at least one more.",
            ),
        ),
    )


def _comparison(c: BaselineComparison, lang: Lang) -> str:
    """One 2024 baseline of the city's ratio in a sentence: what it is, how
    much, whether it is like with like, the ratio over it, and whether the
    figure uses it."""
    vi = lang == "vi"
    mbps = "–" if c.baseline_mbps is None else labels.quantity(c.baseline_mbps, "Mb/s", lang)
    if c.baseline == "probes":
        what = (
            f"kết quả đo năm {k.BASELINE_YEAR} của chính hệ thống, {mbps} "
            f"({labels.count(c.baseline_probes or 0, lang)} đầu đo, "
            f"{labels.count(c.baseline_tests or 0, lang)} phép đo hợp lệ)"
            if vi
            else f"the system's own {k.BASELINE_YEAR} results, {mbps} "
            f"({labels.count(c.baseline_probes or 0, lang)} probes, "
            f"{labels.count(c.baseline_tests or 0, lang)} valid tests)"
        )
    elif c.baseline == "ookla_tiles":
        quarters = ", ".join(c.baseline_quarters)
        what = (
            f"dữ liệu mở Ookla ({quarters}), {mbps} "
            f"({labels.count(c.baseline_devices or 0, lang)} thiết bị, "
            f"{labels.count(c.baseline_tiles or 0, lang)} ô bản đồ)"
            if vi
            else f"Ookla's open data ({quarters}), {mbps} "
            f"({labels.count(c.baseline_devices or 0, lang)} devices, "
            f"{labels.count(c.baseline_tiles or 0, lang)} tiles)"
        )
        if c.licence:
            what += f"; {c.licence}"
    else:
        what = (
            f"số liệu nhập từ nguồn ngoài, {c.statistic} {mbps} ({c.source})"
            if vi
            else f"an imported figure, {c.statistic} {mbps} ({c.source})"
        )
    if c.numerator == "ookla_tiles":
        what = (
            f"dữ liệu Ookla năm nay ({', '.join(c.current_quarters)}) so với {what}"
            if vi
            else f"this year's Ookla tiles ({', '.join(c.current_quarters)}) over {what}"
        )
    like = (
        ("cùng cách đo" if c.like_with_like else "cách đo khác nhau, không tương đương")
        if vi
        else ("like with like" if c.like_with_like else "not like with like")
    )
    ratio = (
        labels.report_word("insufficient", lang).lower()
        if c.value is None
        else labels.quantity(c.value, "ratio", lang)
    )
    used = (" – được dùng cho chỉ tiêu" if vi else " – the figure's value") if c.used else ""
    return f"{what[:1].upper()}{what[1:]}; {like}; {'tỷ lệ' if vi else 'ratio'} {ratio}{used}."


def _baseline(report: IndicatorReport, lang: Lang, preference: Sequence[str]) -> list[str]:
    """Every 2024 baseline of the city's ratio (compute_indicators lists them
    on the figure), which one it uses, and the order they are preferred in
    (`preference`: the order compute_indicators was given)."""
    year = k.BASELINE_YEAR
    city = next(
        (
            f
            for f in report.figures
            if (f.indicator, f.scope, f.group) == ("mobile_download_ratio", "city", None)
        ),
        None,
    )
    comparisons = city.baselines if city is not None else ()
    out = [_comparison(c, lang) for c in comparisons]
    if not comparisons:
        out.append(
            f"Chưa có số liệu gốc năm {year} cho toàn thành phố: tỷ lệ so với năm {year} "
            "chưa tính được."
            if lang == "vi"
            else f"There is no {year} baseline for the city: the ratio to {year} cannot be made."
        )
    names = {
        "probes": ("kết quả đo của hệ thống", "the system's own results"),
        "ookla_tiles": ("dữ liệu mở Ookla", "Ookla's open data"),
        "imported": ("số liệu nhập", "imported figures"),
    }
    order = ", ".join(names.get(b, (b, b))[0 if lang == "vi" else 1] for b in preference)
    out.append(
        f"Chỉ tiêu dùng số liệu gốc đầu tiên có được theo thứ tự: {order}; mỗi phường, xã "
        "dùng số liệu gốc của chính nó (docs/indicators.md, «The 2024 baseline»)."
        if lang == "vi"
        else f"The figure uses the first baseline available in this order: {order}; each ward "
        "uses its own (docs/indicators.md, 'The 2024 baseline')."
    )
    return out


def _rank_words(p: ProvinceRank, lang: Lang) -> str:
    w = labels.report_word
    if p.rank is None:
        return w("no city figure", lang, provinces=p.provinces)
    text = w("rank text", lang, rank=p.rank, provinces=p.provinces)
    if p.tied_with:
        text += w("rank tied", lang, tied=p.tied_with, s="s" if p.tied_with > 1 else "")
    return text


def ipv6_comparison(ref: Ipv6Reference | None, lang: Lang) -> Ipv6Comparison | None:
    """ipv6_leading_provinces in the report's words (None without the figure)."""
    if ref is None:
        return None
    w = labels.report_word

    def share(value: float | None) -> str:
        return "–" if value is None else labels.quantity(value, "share", lang)

    verdict = _verdict(ref.target.met)
    methods = [
        w("method wardprobe", lang, share=labels.round_quantity(k.IPV6_PROBE_SHARE, "share", lang))
    ]
    methods += (
        [w("method apnic", lang)]
        if ref.vietnam or ref.economies or any(c.apnic for c in ref.isps)
        else []
    )
    methods += [w("method vnnic", lang)] if ref.provinces else []
    methods += [w("method services", lang, method=ref.services.method)] if ref.services else []
    return Ipv6Comparison(
        intro=w("ipv6 ref intro", lang, top=int(k.LEADING_PROVINCES.value), provinces=k.PROVINCES),
        verdict=verdict,
        verdict_text=_verdict_text(verdict, lang),
        isps=tuple(
            IspRow(
                isp=c.isp or w("isp not recorded", lang),
                probes_share=share(c.probes_capable_share)
                if c.probes_capable_share is not None
                else labels.text(labels.STATUSES, c.status, lang),
                interval=interval_text(c.ci_low, c.ci_high, "share", lang),
                probes=labels.count(c.probes, lang),
                network="–" if c.apnic is None else f"AS{c.apnic.asn}",
                apnic_share="–" if c.apnic is None else share(c.apnic.capable_share),
            )
            for c in ref.isps
        ),
        vietnam=w("apnic none", lang)
        if ref.vietnam is None
        else w(
            "apnic vietnam",
            lang,
            share=share(ref.vietnam.capable_share),
            day=_date(ref.vietnam.published_on, lang),
        ),
        services=w(
            "services ready",
            lang,
            value=w("not measured", lang)
            if ref.services is None or ref.services.ready_share is None
            else share(ref.services.ready_share),
        ),
        ranks=tuple(
            RankRow(
                metric=w(p.metric, lang),
                day=_date(p.published_on, lang),
                city=share(p.city_share),
                rank=_rank_words(p, lang),
                source=p.source,
                verdict=_verdict(p.leading),
                verdict_text=_verdict_text(_verdict(p.leading), lang),
            )
            for p in ref.provinces
        ),
        no_ranks="" if ref.provinces else w("provinces none", lang),
        methods=tuple(methods),
    )


def gather(
    con: duckdb.DuckDBPyConnection,
    year: int,
    lang: Lang = "vi",
    synthetic: bool = False,
    *,
    generated: datetime | None = None,
    map_png: MapPng = png_bytes,
    baselines: Sequence[str] = k.BASELINE_PREFERENCE,
) -> ReportContent:
    """Everything the yearly report says, for `year` (Cần Thơ's calendar year).
    `map_png` draws a layer's printed map (analysis/maps/png.py's, unless the
    caller has them drawn already, as the demo has). `baselines` orders the
    doubling ratio's 2024 baselines, as compute_indicators' does."""
    if lang not in labels.LANGS:
        raise ValueError(f"unknown language {lang!r}; accepted: {', '.join(labels.LANGS)}")
    period = parse_period(f"{year:04d}")
    report = compute_indicators(
        con, period, synthetic=synthetic, keep_probe_values=True, baselines=baselines
    )
    # kinds left out come after, as compute_indicators orders them
    preference = tuple(dict.fromkeys([*baselines, *k.BASELINE_PREFERENCE]))
    plan = sampling_plan(report)
    g = _Gatherer(report, plan, lang, year, map_png)
    w = g.w

    summary = []
    sections = []
    for indicator, group, targets in plan_targets():
        summary += [g.target_line(indicator, group, t) for t in targets]
        if indicator == SERVICES_INDICATOR:
            sections.append(g.services_section(indicator, targets))
            continue
        layer = layer_from_report(report, indicator, group)
        sections.append(g.section(indicator, group, targets, layer))

    # epoch seconds: DuckDB hands a timestamptz to Python only through pytz
    latest = con.execute(
        "select epoch(max(measured_at)) from ("
        + " union all ".join(
            f"select measured_at from {t} where synthetic = ? and measured_at >= ? "
            "and measured_at < ?"
            for t in ("throughput", "latency", "cellular", "ipv6")
        )
        + ")",
        [synthetic, period.start, period.end] * 4,
    ).fetchone()
    latest_text = (
        w("no results")
        if latest is None or latest[0] is None
        else _date(datetime.fromtimestamp(float(latest[0]), TZ).date(), lang)
    )
    made = generated or datetime.now(TZ)
    last_day = (period.end - timedelta(days=1)).date()
    cover = (
        (
            w("period"),
            w("period text", start=_date(period.start.date(), lang), last=_date(last_day, lang)),
        ),
        (w("data source"), w("synthetic source" if synthetic else "probe results")),
        (w("latest result"), latest_text),
        (w("generated"), _date(made.date(), lang)),
        ("", w("registry", n=len(g.wards), version=data_version())),
    )

    counts = _probe_counts(con, report)
    unsettled, not_by_probes = g.unsettled()
    words = {key: entry[lang] for key, entry in labels.REPORT.items()}
    words["title"] = w("title", year=year)
    words["a3"] = w("a3", year=k.BASELINE_YEAR)
    words["s4 intro"] = w("s4 intro", probes=k.FLOOR_PROBES, tests=k.FLOOR_TESTS)
    words["s4.2 intro"] = w("s4.2 intro", probes=k.FLOOR_PROBES, tests=k.FLOOR_TESTS)
    return ReportContent(
        lang=lang,
        year=year,
        synthetic=synthetic,
        title=words["title"],
        words=words,
        cover=cover,
        summary=tuple(summary),
        sections=tuple(sections),
        references=g.references(),
        unsettled=unsettled,
        not_by_probes=not_by_probes,
        below_floor=g.below_floor(),
        site_counts=(
            *(
                CountRow(labels.site_class(str(cls), lang), *n)
                for cls, n in sorted(_count_by(counts, True).items(), key=lambda kv: str(kv[0]))
            ),
            CountRow(
                w("total"),
                sum(r[2] for r in counts),
                sum(r[3] for r in counts),
                sum(r[4] for r in counts),
            ),
        ),
        ward_counts=tuple(
            CountRow(f"{code} {g.wards[int(code)].name if int(code) in g.wards else ''}", *n)
            for code, n in sorted(_count_by(counts, False).items(), key=lambda kv: int(kv[0]))
        ),
        validity=_validity(lang),
        baseline=tuple(_baseline(report, lang, preference)),
        method=_method(lang),
        exclusions=tuple(
            ExclusionRow(
                table=labels.RESULT_TABLES[t][lang] if t in labels.RESULT_TABLES else t,
                reason=labels.exclusion_reason(reason, lang),
                results=labels.count(n, lang),
            )
            for t, reason, n in report.exclusions
        ),
        ipv6=ipv6_comparison(report.ipv6_reference, lang),
    )
