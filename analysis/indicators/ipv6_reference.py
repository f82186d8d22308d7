"""ipv6_leading_provinces: the city's IPv6 beside the published figures.

87/KH-UBND wants Cần Thơ "among the leading provinces in the IPv6
transition". Nobody measures that one way, so this figure sets side by side
what each source measures, saying how (`Ipv6Reference.methods`):

- per fixed-line ISP, the probes' own ipv6_capable_share (the IPv6 check,
  the same verdict and floor as ipv6_capable_share grouped by operator:
  `operator=fixed line: VNPT`) beside APNIC's IPv6-capable rate of the
  ISP's network (its AS, ISP_ASNS) and APNIC's rate for Vietnam;
- the city's own services' IPv6 readiness (`ServiceReadiness`, given by the
  caller: the services' checks are measured elsewhere) beside the city's
  provincial portal figures;
- Cần Thơ's rank among the provinces with a provincial figure (VNNIC's), per
  metric: rank 1 is the highest share; tied provinces share a rank (one more
  than the provinces strictly above), so "rank 3 of 20, tied with 1 other".
  Leading is LEADING_PROVINCES in analysis/constants.py: the top 10, on
  every metric Cần Thơ has a figure of.

The published figures are the latest dated on or before the period's last
day (analysis/reference_figures.py reads them); a province's rank uses only
the figures of one publication day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from analysis import constants as k
from analysis.indicators.context import Context
from analysis.indicators.figures import Calc, TargetResult, Unit
from analysis.reference_figures import (
    APNIC_METHOD,
    METRICS,
    VNNIC_METHOD,
    ApnicRow,
    latest_apnic,
    latest_provinces,
)
from analysis.wards import CAN_THO_PROVINCE_CODE

INDICATOR: Final = "ipv6_leading_provinces"
ECONOMY: Final = "VN"
# The networks (AS numbers) of the fixed-line ISPs in aggregator/enrolment/
# fixed_isps.csv whose AS is known from the registries (APNIC whois); an ISP
# not listed is shown without an APNIC figure.
ISP_ASNS: Final[dict[str, tuple[int, ...]]] = {
    "VNPT": (45899,),
    "Viettel": (7552,),
    "FPT Telecom": (18403,),
    "CMC Telecom": (45903,),
    "SPT": (7602,),
}
PROBES_METHOD: Final = (
    "the probes' IPv6 check (global address, default route, AAAA, TCP to an "
    f"IPv6-only target, a large packet); a probe counts when at least "
    f"{k.IPV6_PROBE_SHARE:.0%} of its valid checks found working IPv6"
)


@dataclass(frozen=True)
class ServiceReadiness:
    """The share of the city's own services found fully IPv6-ready, as the
    services' indicator computes it (the caller passes it in)."""

    ready_share: float | None  # 0..1; None: insufficient data
    services: int  # services checked
    method: str  # how it was measured, in a sentence


@dataclass(frozen=True)
class ApnicFigure:
    """One APNIC figure as the comparison shows it (shares 0..1)."""

    scope: str  # economy | network
    economy: str
    asn: int | None
    name: str
    capable_share: float
    preferred_share: float
    samples: int
    published_on: date
    source: str


@dataclass(frozen=True)
class IspComparison:
    """One fixed-line ISP: the probes' IPv6-capable share beside APNIC's rate for its AS."""

    isp: str | None  # as the registry holds it; None: not recorded
    probes: int
    checks: int
    probes_capable_share: float | None  # None below the floor
    ci_low: float | None  # Wilson, as ipv6_capable_share's
    ci_high: float | None
    status: str  # ok | insufficient data
    asns: tuple[int, ...]  # the ISP's networks (ISP_ASNS); () when not known
    apnic: ApnicFigure | None  # its (largest by samples) network's figure, if imported


@dataclass(frozen=True)
class ProvinceRank:
    """Cần Thơ among the provinces with a figure of one metric on one day."""

    metric: str
    definition: str
    published_on: date
    source: str
    city_share: float | None  # Cần Thơ's figure, 0..1; None: none published
    rank: int | None  # 1 = highest; None when Cần Thơ has no figure
    tied_with: int  # other provinces with the same figure
    provinces: int  # provinces with a figure that day
    best_share: float
    leading: bool | None  # rank within LEADING_PROVINCES; None without a rank
    text: str  # "rank 3 of 20 provinces with figures (tied with 1 other)"


@dataclass(frozen=True)
class Ipv6Reference:
    """The ipv6_leading_provinces figure for one period."""

    indicator: str
    isps: tuple[IspComparison, ...]
    vietnam: ApnicFigure | None  # APNIC's rate for Vietnam
    economies: tuple[ApnicFigure, ...]  # every imported economy, Vietnam among them
    services: ServiceReadiness | None  # the city's own services (None: not given)
    provinces: tuple[ProvinceRank, ...]  # one per metric with figures
    target: TargetResult  # leading: rank ≤ LEADING_PROVINCES on every metric with a rank
    methods: tuple[tuple[str, str], ...]  # (source, how it measures)
    note: str


def competition_rank(values: dict[int, float], code: int) -> tuple[int, int]:
    """(rank, tied) of `code` among `values`: rank 1 + the number strictly
    higher, tied the number of others equal to it."""
    mine = values[code]
    higher = sum(1 for v in values.values() if v > mine)
    tied = sum(1 for c, v in values.items() if v == mine and c != code)
    return higher + 1, tied


def rank_text(rank: int, tied: int, provinces: int) -> str:
    """ "rank 3 of 20 provinces with figures (tied with 1 other)"."""
    text = f"rank {rank} of {provinces} province{'s' if provinces != 1 else ''} with figures"
    if tied:
        text += f" (tied with {tied} other{'s' if tied != 1 else ''})"
    return text


def _apnic(row: ApnicRow) -> ApnicFigure:
    return ApnicFigure(
        scope=row.scope,
        economy=row.economy,
        asn=row.asn,
        name=row.name,
        capable_share=row.capable_pct / 100.0,
        preferred_share=row.preferred_pct / 100.0,
        samples=row.samples,
        published_on=row.published_on,
        source=row.source,
    )


def province_ranks(ctx: Context, last_day: date) -> tuple[ProvinceRank, ...]:
    """Cần Thơ's rank per metric, on each metric's latest publication day."""
    out = []
    for metric, definition in METRICS.items():
        rows = latest_provinces(ctx.con, metric, last_day)
        if not rows:
            continue
        values = {r.province_code: r.value_pct for r in rows}
        sources = sorted({r.source for r in rows})
        rank = tied = None
        if CAN_THO_PROVINCE_CODE in values:
            rank, tied = competition_rank(values, CAN_THO_PROVINCE_CODE)
        mine = values.get(CAN_THO_PROVINCE_CODE)
        out.append(
            ProvinceRank(
                metric=metric,
                definition=definition,
                published_on=rows[0].published_on,
                source="; ".join(sources),
                city_share=None if mine is None else mine / 100.0,
                rank=rank,
                tied_with=tied or 0,
                provinces=len(values),
                best_share=max(values.values()) / 100.0,
                leading=None if rank is None else rank <= k.LEADING_PROVINCES.value,
                text=(
                    f"no figure for Cần Thơ among {len(values)} provinces"
                    if rank is None
                    else rank_text(rank, tied or 0, len(values))
                ),
            )
        )
    return tuple(out)


def isp_comparisons(ctx: Context, apnic: list[ApnicRow]) -> tuple[IspComparison, ...]:
    """Each fixed-line ISP with probes: their IPv6-capable share (as
    ipv6_capable_share by operator) beside APNIC's rate for the ISP's AS."""
    rows = [r for r in ctx.rows("units_ipv6") if r["network_kind"] == "fixed"]
    units = [
        Unit(
            ward_code=r["ward_code"],
            group=ctx.isp.get(r["probe_id"]) or "",  # "": not recorded
            value=1.0 if r["ipv6_capable"] else 0.0,
            tests=r["checks"],
        )
        for r in rows
    ]
    # A Calc of its own: grouped by ISP, and its figures kept out of the report's spread.
    calc = Calc(ctx.calc.ward, "operator", ctx.calc.seed)
    asked = "city" if ctx.calc.ward is None else str(ctx.calc.ward)
    networks = {r.asn: r for r in apnic if r.scope == "network" and r.economy == ECONOMY}
    out = []
    for figure in calc.share_figures(INDICATOR, units):
        if figure.scope != asked or figure.group is None:
            continue
        isp = figure.group or None
        asns = ISP_ASNS.get(isp or "", ())
        known = [networks[a] for a in asns if a in networks]
        best = max(known, key=lambda r: r.samples) if known else None
        out.append(
            IspComparison(
                isp=isp,
                probes=figure.probes,
                checks=figure.tests,
                probes_capable_share=figure.value,
                ci_low=figure.ci_low,
                ci_high=figure.ci_high,
                status=figure.status,
                asns=asns,
                apnic=None if best is None else _apnic(best),
            )
        )
    return tuple(out)


def figure(ctx: Context, services: ServiceReadiness | None = None) -> Ipv6Reference:
    """The ipv6_leading_provinces figure of the report's period. `services`:
    the services' readiness share, from the services' indicator (None: not
    given, shown as such)."""
    last_day = ctx.period.end.date() - timedelta(days=1)
    apnic = latest_apnic(ctx.con, last_day)
    economies = tuple(_apnic(r) for r in apnic if r.scope == "economy")
    vietnam = next((e for e in economies if e.economy == ECONOMY), None)
    provinces = province_ranks(ctx, last_day)
    # Leading on every published metric, not on the most flattering one.
    ranks = [p.rank for p in provinces if p.rank is not None]
    t = k.LEADING_PROVINCES
    target = TargetResult(
        value=t.value,
        comparator=t.comparator,
        source=t.source,
        due=t.due,
        met=None if not ranks else t.met(float(max(ranks))),
    )
    methods = [("wardprobe", PROBES_METHOD)]
    if apnic:
        methods.append(("APNIC", APNIC_METHOD))
    if provinces:
        methods.append(("VNNIC", VNNIC_METHOD))
    if services is not None:
        methods.append(("wardprobe (services)", services.method))
    return Ipv6Reference(
        indicator=INDICATOR,
        isps=isp_comparisons(ctx, apnic),
        vietnam=vietnam,
        economies=economies,
        services=services,
        provinces=provinces,
        target=target,
        methods=tuple(methods),
        note=(
            f"leading: rank {t.value:g} or better among the provinces with figures on every "
            f"metric (top {t.value:g} of {k.PROVINCES}); the published figures are the latest "
            f"dated on or before {last_day.isoformat()}"
        ),
    )
