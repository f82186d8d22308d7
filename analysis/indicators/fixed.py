"""Fixed lines: gigabit_capable_share, fixed_200_share and fixed_download_mean.

Where each part is defined:
- which downloads count: the view throughput_checked;
- each line's figures: the view gigabit_capable (over probe_download): its
  mean download, whether its nearest-rank 90th-percentile download reaches
  gigabit_p90_mbps, and whether its interface is too slow to show it
  (probe-limited). The indicators read the same from the daily rollups
  (rollup_download via units_download), only for speed: the 90th
  percentile from counts, `gigabit_capable` below, since a percentile does
  not add up over days; tests/analysis/test_views_agree.py holds them to
  the view;
- across lines, here and only here: the shares and the mean, the floor,
  the intervals, the groups (a line's ISP with --by operator), the targets.
"""

from __future__ import annotations

from analysis import constants as k
from analysis.indicators.context import Context, Row
from analysis.indicators.figures import Figure, Unit


def gigabit_capable(tests: int, tests_at_gigabit: int) -> bool:
    """Whether the nearest-rank 90th percentile of `tests` downloads reaches the
    gigabit threshold, given how many of them did: it is the ceil(0.9 n)-th
    smallest, so it does when at least n - ceil(0.9 n) + 1 tests reached it."""
    rank = (9 * tests + 9) // 10  # ceil(0.9 n) in integers (0.9 * 10 is not 9 in floats)
    return tests > 0 and tests_at_gigabit >= tests - rank + 1


def line_is_gigabit(row: Row) -> bool:
    """Whether a units_download row's line is gigabit-capable."""
    return gigabit_capable(row["tests"], row["tests_at_gigabit"])


def gigabit_probe_limited(row: Row) -> bool:
    """Whether a units_download row's interface is too slow to show a gigabit line."""
    return row["link_speed_mbps"] is not None and row["link_speed_mbps"] < k.GIGABIT_PORT_MBPS


def figures(ctx: Context) -> list[Figure]:
    """The fixed-line figures."""
    fixed = ctx.fixed
    return [
        *ctx.calc.share_figures(
            "gigabit_capable_share",
            [
                Unit(
                    ward_code=r["ward_code"],
                    group=ctx.fixed_group(r["probe_id"]),
                    value=1.0 if line_is_gigabit(r) else 0.0,
                    tests=r["tests"],
                    limited=gigabit_probe_limited(r),
                )
                for r in fixed
            ],
            note="probe-limited: interface below 1 Gb/s, outside the denominator",
        ),
        *ctx.calc.share_figures(
            "fixed_200_share",
            [
                Unit(
                    ward_code=r["ward_code"],
                    group=ctx.fixed_group(r["probe_id"]),
                    value=1.0 if r["mean_mbps"] >= k.FIXED_200_MBPS else 0.0,
                    tests=r["tests"],
                    limited=r["link_speed_mbps"] is not None
                    and r["link_speed_mbps"] < k.FIXED_200_MBPS,
                )
                for r in fixed
            ],
            note="probe-limited: interface below 200 Mb/s",
        ),
        *ctx.calc.mean_figures(
            "fixed_download_mean",
            "Mb/s",
            [
                Unit(
                    ward_code=r["ward_code"],
                    group=ctx.fixed_group(r["probe_id"]),
                    value=r["mean_mbps"],
                    tests=r["tests"],
                )
                for r in fixed
            ],
        ),
    ]
