"""Zone targets: zone_nr_share and zone_gigabit_share, and the zone sites
one by one.

Where each part is defined:
- which sites are zone sites (high-tech parks, IT parks, R&D centres,
  industrial zones): analysis/constants.py, ZONE_SITE_CLASSES, which the
  view zone_targets has written in when it is created;
- each site's figures: the view zone_targets, which takes them from
  nr_availability and gigabit_capable; the indicators take the same from
  the rollups as analysis/indicators/nr.py and fixed.py do;
  tests/analysis/test_views_agree.py holds the sites to the view;
- across sites, here and only here: the shares, the floor, the Wilson
  intervals, the groups, the targets (100 %).
"""

from __future__ import annotations

from dataclasses import dataclass

from analysis import constants as k
from analysis.indicators.context import Context
from analysis.indicators.figures import Figure, Unit
from analysis.indicators.fixed import gigabit_probe_limited, line_is_gigabit


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


def sites(ctx: Context) -> list[ZoneSite]:
    """The probes at zone sites (in the ward asked for), with their figures."""
    placeholders = ", ".join("?" for _ in k.ZONE_SITE_CLASSES)
    zone_probes = ctx.con.execute(
        f"select probe_id, ward_code, site_class from probes where site_class in ({placeholders}) "
        "order by ward_code, probe_id",
        list(k.ZONE_SITE_CLASSES),
    ).fetchall()
    nr_of = {(r["probe_id"], r["ward_code"]): r for r in ctx.cellular}
    fixed_of = {(r["probe_id"], r["ward_code"]): r for r in ctx.fixed}
    out = []
    for probe_id, ward_code, site_class in zone_probes:
        if ctx.calc.ward is not None and ward_code != ctx.calc.ward:
            continue
        n, f = nr_of.get((probe_id, ward_code)), fixed_of.get((probe_id, ward_code))
        out.append(
            ZoneSite(
                probe_id=probe_id,
                ward_code=ward_code,
                site_class=site_class,
                nr_time_share=None if n is None else n["nr_time_share"],
                saw_nr=None if n is None else bool(n["saw_nr"]),
                nr_probe_limited=None if n is None else bool(n["probe_limited"]),
                gigabit_capable=None if f is None else line_is_gigabit(f),
                gigabit_probe_limited=None if f is None else gigabit_probe_limited(f),
                download_tests=None if f is None else int(f["tests"]),
            )
        )
    return out


def figures(ctx: Context, zone_sites: list[ZoneSite]) -> list[Figure]:
    """The zone shares over the sites."""
    observations = {(r["probe_id"], r["ward_code"]): r["observations"] for r in ctx.cellular}
    return [
        *ctx.calc.share_figures(
            "zone_nr_share",
            [
                Unit(
                    ward_code=s.ward_code,
                    group=ctx.group(s.probe_id, ctx.operator.get((s.probe_id, s.ward_code)), "all"),
                    value=1.0 if s.saw_nr else 0.0,
                    tests=observations[(s.probe_id, s.ward_code)],
                    limited=bool(s.nr_probe_limited),
                )
                for s in zone_sites
                if s.saw_nr is not None
            ],
            note="zone sites whose modem saw NR (5G service)",
        ),
        *ctx.calc.share_figures(
            "zone_gigabit_share",
            [
                Unit(
                    ward_code=s.ward_code,
                    group=ctx.fixed_group(s.probe_id),
                    value=1.0 if s.gigabit_capable else 0.0,
                    tests=s.download_tests or 0,
                    limited=bool(s.gigabit_probe_limited),
                )
                for s in zone_sites
                if s.gigabit_capable is not None
            ],
            note="zone sites with a gigabit-capable fixed line",
        ),
    ]
