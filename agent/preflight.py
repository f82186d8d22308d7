"""The check before a throughput test: is the household using the line, is the box busy?

A speed test run while someone streams a film measures what is left of the
line, not the line; and a probe whose CPU is busy cannot always keep a fast
line full. So before a test the agent reads the interface's byte counters
and /proc/stat over a short window and defers the test when either is above
its limit. The deferral is recorded as a SKIPPED result whose reason starts
with "deferred:" and which carries the observed rate and load, so an analyst
sees how often a line was too busy to test (the scheduler retries sooner).

Defaults, and why:
- 25,000 bytes/s, received and sent together: SamKnows' default for the
  same check. It is ~0.2 Mb/s: background chatter (DNS, NTP, a messaging app)
  stays under it, a video stream or a download does not. Our lines are sold
  in tens to hundreds of Mb/s, so cross-traffic under it moves a result by
  well under 1 %.
- 30 % CPU (all cores together): SamKnows' default too. On a Pi-class box
  iperf3 at 1 Gb/s itself needs a good part of one core (see
  docs/benchmarks.md), so a box already busier than that may read low.
- A 1-second window: long enough to see a stream's bursts (video players
  fetch segments every few seconds, so one second can miss one; that is
  the price of not delaying every test by several seconds), short enough
  that the check costs nothing next to a 10-second test.
- Two more looks (`relooks`) when the first window is over the
  cross-traffic limit: the test before this one is often the box's own
  download, and the queue of a slow shaped line (an LTE cell, a DSL port)
  is still draining into the box when the next test's check starts. That
  tail dies away within a second or two; a household's stream keeps the
  line busy. Only a line still over the limit on the last look defers the
  test, and the reading kept is that last look. A busy line costs the check
  two more seconds; a quiet one nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from agent import netif
from wardprobe import validity

DEFERRED_PREFIX = "deferred: "
PROC_STAT = Path("/proc/stat")

DEFAULT_MAX_CROSS_TRAFFIC_BYTES_PER_S = validity.MAX_CROSS_TRAFFIC_BYTES_PER_S
DEFAULT_MAX_CPU_LOAD_PCT = 30.0
DEFAULT_WINDOW_S = 1.0
DEFAULT_RELOOKS = 2


@dataclass(frozen=True, kw_only=True)
class PreflightLimits:
    """Above these, a test is deferred (None: that check is off)."""

    max_cross_traffic_bytes_per_s: float | None = DEFAULT_MAX_CROSS_TRAFFIC_BYTES_PER_S
    max_cpu_load_pct: float | None = DEFAULT_MAX_CPU_LOAD_PCT
    window_s: float = DEFAULT_WINDOW_S
    relooks: int = DEFAULT_RELOOKS  # more windows while only cross-traffic is over

    def __post_init__(self) -> None:
        if self.window_s <= 0:
            raise ValueError(f"window_s must be positive, got {self.window_s}")
        if self.relooks < 0:
            raise ValueError(f"relooks must be 0 or more, got {self.relooks}")


@dataclass(frozen=True, kw_only=True)
class PreflightReading:
    """What the check saw; `deferred_reason` is "" when the test may run."""

    cross_traffic_bytes_per_s: float | None
    cpu_load_pct: float | None
    deferred_reason: str = ""


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs together, from /proc/stat's first line."""
    try:
        first = PROC_STAT.read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if not first or first[0] != "cpu":
        return None
    values = [int(v) for v in first[1:]]
    # user nice system idle iowait irq softirq steal (guest is inside user already)
    total = sum(values[:8])
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return total - idle, total


def check_line(interface: str, limits: PreflightLimits) -> PreflightReading:
    """Watch `interface` and the CPU for `limits.window_s`; say whether to defer.

    Cross-traffic over the limit is looked at again, up to `limits.relooks`
    more windows, and defers the test only if it is still over on the last
    look (the tail of the box's own previous test drains away; see the
    module's docstring). An interface whose counters cannot be read (none
    given, none found) leaves the cross-traffic figure None and does not
    defer the test.
    """
    reading = _look(interface, limits)
    for _ in range(limits.relooks):
        if not _cross_traffic_over(reading, limits):
            break
        reading = _look(interface, limits)
    return reading


def _cross_traffic_over(reading: PreflightReading, limits: PreflightLimits) -> bool:
    return (
        reading.cross_traffic_bytes_per_s is not None
        and limits.max_cross_traffic_bytes_per_s is not None
        and reading.cross_traffic_bytes_per_s > limits.max_cross_traffic_bytes_per_s
    )


def _look(interface: str, limits: PreflightLimits) -> PreflightReading:
    """One window's reading of the line and the CPU, with its verdict."""
    counters_before = netif.byte_counters(interface) if interface else None
    cpu_before = _cpu_times()
    started = time.monotonic()
    time.sleep(limits.window_s)
    elapsed_s = time.monotonic() - started
    counters_after = netif.byte_counters(interface) if interface else None
    cpu_after = _cpu_times()

    rate: float | None = None
    if counters_before is not None and counters_after is not None:
        moved = sum(counters_after) - sum(counters_before)
        rate = max(0, moved) / elapsed_s
    load: float | None = None
    if cpu_before is not None and cpu_after is not None:
        busy = cpu_after[0] - cpu_before[0]
        total = cpu_after[1] - cpu_before[1]
        load = 100.0 * busy / total if total > 0 else None

    reasons = []
    if (
        rate is not None
        and limits.max_cross_traffic_bytes_per_s is not None
        and rate > limits.max_cross_traffic_bytes_per_s
    ):
        reasons.append(
            f"cross-traffic of {rate:,.0f} B/s on {interface} is above "
            f"{limits.max_cross_traffic_bytes_per_s:,.0f} B/s"
        )
    if load is not None and limits.max_cpu_load_pct is not None and load > limits.max_cpu_load_pct:
        reasons.append(f"CPU load of {load:.0f} % is above {limits.max_cpu_load_pct:g} %")
    return PreflightReading(
        cross_traffic_bytes_per_s=rate,
        cpu_load_pct=load,
        deferred_reason=DEFERRED_PREFIX + "; ".join(reasons) if reasons else "",
    )
