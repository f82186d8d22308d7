"""The pre-test check: the tail of the box's own last test is not a household's stream."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent import netif
from agent.preflight import PreflightLimits, PreflightReading, check_line

WINDOW_S = 0.01  # the verdicts below come from the counters, not from the time


def _counters(moved_per_window: list[int]) -> Iterator[tuple[int, int]]:
    """(rx, tx) counters as netif.byte_counters gives them, read twice a window."""
    total = 0
    for moved in moved_per_window:
        yield (total, 0)
        total += moved
        yield (total, 0)


def _check(
    monkeypatch: pytest.MonkeyPatch, moved_per_window: list[int], relooks: int
) -> tuple[PreflightReading, int]:
    readings = _counters(moved_per_window)
    calls = 0

    def byte_counters(_interface: str) -> tuple[int, int]:
        nonlocal calls
        calls += 1
        return next(readings)

    monkeypatch.setattr(netif, "byte_counters", byte_counters)
    limits = PreflightLimits(max_cpu_load_pct=None, window_s=WINDOW_S, relooks=relooks)
    return check_line("eth0", limits), calls // 2


def test_a_queue_draining_after_the_last_test_does_not_defer_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The first window catches a shaped line's queue still draining (far over
    # 25,000 B/s); the next one sees the line quiet.
    reading, windows = _check(monkeypatch, [200_000, 0, 0], relooks=2)
    assert reading.deferred_reason == ""
    assert windows == 2
    assert reading.cross_traffic_bytes_per_s == 0


def test_a_line_busy_on_every_look_defers_the_test(monkeypatch: pytest.MonkeyPatch) -> None:
    reading, windows = _check(monkeypatch, [200_000, 200_000, 200_000], relooks=2)
    assert windows == 3
    assert reading.deferred_reason.startswith("deferred: cross-traffic of ")
    assert reading.cross_traffic_bytes_per_s is not None
    assert reading.cross_traffic_bytes_per_s > 25_000


def test_without_relooks_one_busy_window_defers(monkeypatch: pytest.MonkeyPatch) -> None:
    reading, windows = _check(monkeypatch, [200_000, 0], relooks=0)
    assert windows == 1
    assert reading.deferred_reason.startswith("deferred: cross-traffic of ")


def test_a_quiet_line_is_looked_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    reading, windows = _check(monkeypatch, [100, 200_000], relooks=2)
    assert (reading.deferred_reason, windows) == ("", 1)


def test_relooks_cannot_be_negative() -> None:
    with pytest.raises(ValueError, match="relooks"):
        PreflightLimits(relooks=-1)
