"""Latency: idle_latency_ms and loaded_latency_ms.

Where each part is defined:
- which tests count: the views latency_checked (idle: ICMP tests) and
  throughput_checked (loaded: round trips while a download ran);
- each probe's latency: the view probe_latency: the median over the
  period's Cần Thơ days of the day's median round trip, so that every day
  weighs the same. The indicators read the same from the daily rollups
  (rollup_latency holds the day's median; units_latency takes the median
  over days), only for speed; tests/analysis/test_views_agree.py holds
  them to the view;
- across probes, here and only here: the median of the probes' latencies,
  the floor, the bootstrap interval, the groups. The view latency_by_ward
  shows analysts the same median per ward and network kind, without the
  floor or an interval.
"""

from __future__ import annotations

from analysis.indicators.context import Context
from analysis.indicators.figures import Figure, Unit


def figures(ctx: Context) -> list[Figure]:
    """The latency figures: median across probes of the probes' medians of daily medians."""
    lat = ctx.rows("units_latency")
    out: list[Figure] = []
    for name, value, tests, note in (
        ("idle_latency_ms", "idle_rtt_ms", "idle_tests", "ICMP round trips"),
        ("loaded_latency_ms", "loaded_rtt_ms", "loaded_tests", "round trips while downloads ran"),
    ):
        out += ctx.calc.mean_figures(
            name,
            "ms",
            [
                Unit(
                    ward_code=r["ward_code"],
                    group=ctx.group(r["probe_id"], ctx.operator_of(r), r["network_kind"]),
                    value=r[value],
                    tests=r[tests],
                )
                for r in lat
                if r[value] is not None
            ],
            statistic="median",
            note=note,
        )
    return out
