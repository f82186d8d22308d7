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
"""

from __future__ import annotations

from analysis.indicators.context import Context
from analysis.indicators.figures import Figure, Unit


def figures(ctx: Context) -> list[Figure]:
    """The 5G availability figures."""
    cellular = ctx.cellular
    return [
        *ctx.calc.mean_figures(
            "nr_time_share",
            "share",
            [
                Unit(
                    ward_code=r["ward_code"],
                    group=ctx.group(r["probe_id"], ctx.operator_of(r), "all"),
                    value=r["nr_time_share"],
                    tests=r["observations"],
                    limited=bool(r["probe_limited"]),
                )
                for r in cellular
            ],
            note="time-weighted share on NR (NSA or SA), probe-balanced; 4G-only modems apart",
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
                for r in cellular
            ],
            note="share of probes that saw NR at all; 4G-only modems apart",
        ),
    ]
