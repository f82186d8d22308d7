"""IPv6: ipv6_capable_share and ipv6_preferred_share.

Where each part is defined:
- which checks count: the view ipv6_checked;
- each probe's verdicts: the view ipv6_capability: working (preferred)
  IPv6 when at least ipv6_probe_share of its valid checks found it. The
  indicators read the same from the daily rollups (rollup_ipv6's counts via
  units_ipv6), only for speed; tests/analysis/test_views_agree.py holds
  them to the view;
- across probes, here and only here: the shares, the floor, the Wilson
  intervals, the groups (a fixed line's ISP, a mobile probe's operator).

ipv6_office_share is the same verdict on the government offices only (site
classes GOVERNMENT_OFFICE_CLASSES in analysis/constants.py: ward offices and
city departments), on their LAN (the fixed line; an office box's own modem is
not the office's network), each office listed with its last valid check (the
view ipv6_offices for analysts; tests/analysis/test_views_agree.py holds the
list to it). Offices without a valid check in the period are counted apart,
not as offices without IPv6.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from analysis import constants as k
from analysis.indicators.context import Context
from analysis.indicators.figures import Figure, Unit
from analysis.periods import set_period

OFFICE_NOTE = "government offices (ward offices, city departments) whose LAN gives working IPv6"
OFFICE_APART = "offices without a valid IPv6 check of their LAN"


@dataclass(frozen=True)
class OfficeIpv6:
    """One government office's probe and its LAN's IPv6 (None: no valid check
    of its LAN in the period)."""

    probe_id: str
    ward_code: int
    site_class: str  # ward_office or city_department
    checks: int | None  # valid checks of its LAN in the period
    ipv6_capable: bool | None  # the period's verdict, as ipv6_capable_share's
    last_checked_at: datetime | None  # its last valid check
    last_check_capable: bool | None  # what that check found


def figures(ctx: Context) -> list[Figure]:
    """The IPv6 figures: working and preferred, per probe."""
    v6 = ctx.rows("units_ipv6")
    out: list[Figure] = []
    for name, column in (
        ("ipv6_capable_share", "ipv6_capable"),
        ("ipv6_preferred_share", "ipv6_preferred"),
    ):
        out += ctx.calc.share_figures(
            name,
            [
                Unit(
                    ward_code=r["ward_code"],
                    group=ctx.group(r["probe_id"], ctx.operator_of(r), r["network_kind"]),
                    value=1.0 if r[column] else 0.0,
                    tests=r["checks"],
                )
                for r in v6
            ],
        )
    return out


def offices(ctx: Context) -> list[OfficeIpv6]:
    """The government offices' probes (in the ward asked for), each with its
    LAN's IPv6 verdict over the period and its last valid check."""
    placeholders = ", ".join("?" for _ in k.GOVERNMENT_OFFICE_CLASSES)
    office_probes = ctx.con.execute(
        f"select probe_id, ward_code, site_class from probes where site_class in ({placeholders}) "
        "order by ward_code, probe_id",
        list(k.GOVERNMENT_OFFICE_CLASSES),
    ).fetchall()
    if not office_probes:
        return []
    verdicts = {
        (r["probe_id"], r["ward_code"]): r
        for r in ctx.rows("units_ipv6")
        if r["network_kind"] == "fixed"
    }
    # The last check is not in the daily rollups: read from ipv6_checked, for
    # the offices only (a few rows of the period's checks).
    set_period(ctx.con, ctx.period, ctx.synthetic)
    # As microseconds since the epoch: a timestamptz would need pytz to be fetched.
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    last = {
        (str(r[0]), int(r[1])): (epoch + timedelta(microseconds=int(r[2])), bool(r[3]))
        for r in ctx.con.execute(
            "select probe_id, ward_code, epoch_us(max(measured_at)), "
            "arg_max(ipv6_capable, measured_at) "
            "from ipv6_checked where excluded_because is null and network_kind = 'fixed' "
            f"and site_class in ({placeholders}) group by probe_id, ward_code",
            list(k.GOVERNMENT_OFFICE_CLASSES),
        ).fetchall()
    }
    out = []
    for probe_id, ward_code, site_class in office_probes:
        if ctx.calc.ward is not None and ward_code != ctx.calc.ward:
            continue
        v = verdicts.get((probe_id, ward_code))
        at, found = last.get((probe_id, ward_code), (None, None))
        out.append(
            OfficeIpv6(
                probe_id=probe_id,
                ward_code=ward_code,
                site_class=site_class,
                checks=None if v is None else int(v["checks"]),
                ipv6_capable=None if v is None else bool(v["ipv6_capable"]),
                last_checked_at=at,
                last_check_capable=found,
            )
        )
    return out


def office_figures(ctx: Context, office_list: list[OfficeIpv6]) -> list[Figure]:
    """ipv6_office_share: the share of offices whose LAN gives working IPv6,
    against 100 %; offices without a result counted apart in the note."""

    def unit(o: OfficeIpv6) -> Unit:
        return Unit(
            ward_code=o.ward_code,
            group=ctx.fixed_group(o.probe_id),
            value=1.0 if o.ipv6_capable else 0.0,
            tests=o.checks or 0,
        )

    return ctx.calc.share_figures(
        "ipv6_office_share",
        [unit(o) for o in office_list if o.ipv6_capable is not None],
        OFFICE_NOTE,
        apart=[unit(o) for o in office_list if o.ipv6_capable is None],
        apart_note=OFFICE_APART,
    )
