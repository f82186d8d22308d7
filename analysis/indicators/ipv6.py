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
"""

from __future__ import annotations

from analysis.indicators.context import Context
from analysis.indicators.figures import Figure, Unit


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
