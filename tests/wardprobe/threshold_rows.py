"""Stored throughput tests on both sides of every threshold of the validity
rule, made from wardprobe/validity.py's figures (so they follow a change)."""

from __future__ import annotations

import math
from dataclasses import replace

from wardprobe import validity
from wardprobe.validity import StoredThroughput

SECONDS = 10.0
VALID = StoredThroughput(
    status="ok",
    clock_sync="synchronised",
    cross_traffic_bytes_per_s=None,
    bytes_transferred=125_000_000,
    measured_s=SECONDS,
    mbps=100.0,  # 125 MB over 10 s
)


def _moved(size: int, seconds: float) -> float:
    return size * 8 / seconds / 1e6


def _transfer(size: int, seconds: float) -> StoredThroughput:
    """A transfer whose reported rate is exactly what it moved."""
    return replace(VALID, bytes_transferred=size, measured_s=seconds, mbps=_moved(size, seconds))


def threshold_rows() -> list[StoredThroughput]:
    """Rows just below, at and just above each threshold, and one per other reason."""
    least, most = validity.MIN_MEASURED_S, validity.MAX_MEASURED_S
    size = validity.MIN_BYTES_TRANSFERRED
    cross = validity.MAX_CROSS_TRAFFIC_BYTES_PER_S
    moved = _moved(125_000_000, SECONDS)
    # the reported rate that lies exactly at the tolerance, below and above the moved one
    low_rate = moved / (1 + validity.RATE_TOLERANCE)
    high_rate = moved / (1 - validity.RATE_TOLERANCE)
    rows = [
        VALID,
        replace(VALID, status="failed"),
        replace(VALID, status="timeout"),
        replace(VALID, clock_sync="unsynchronised"),
        replace(VALID, cross_traffic_bytes_per_s=0.0),
        replace(VALID, cross_traffic_bytes_per_s=cross),
        replace(VALID, cross_traffic_bytes_per_s=math.nextafter(cross, math.inf)),
        replace(VALID, mbps=None),
        replace(VALID, bytes_transferred=None),
        replace(VALID, measured_s=None),
        replace(VALID, mbps=0.0),
        _transfer(size - 1, SECONDS),
        _transfer(size, SECONDS),
        _transfer(size + 1, SECONDS),
        replace(VALID, measured_s=0.0),
        _transfer(125_000_000, math.nextafter(least, 0.0)),
        _transfer(125_000_000, least),
        _transfer(125_000_000, most),
        _transfer(125_000_000, math.nextafter(most, math.inf)),
        _transfer(125_000_000, 2 * most),
    ]
    for rate in (low_rate, high_rate):
        for mbps in (math.nextafter(rate, 0.0), rate, math.nextafter(rate, math.inf)):
            rows.append(replace(VALID, mbps=mbps))
    return rows
