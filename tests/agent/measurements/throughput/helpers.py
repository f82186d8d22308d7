"""What the throughput tests share: test params on loopback, the iperf3 check."""

from __future__ import annotations

import shutil

import pytest

from agent.measurements.throughput import Direction, ThroughputParams

needs_iperf3 = pytest.mark.skipif(
    shutil.which("iperf3") is None, reason="iperf3 is not installed (apt-get install iperf3)"
)


def params(
    direction: Direction = Direction.DOWNLOAD,
    ports: tuple[int, ...] = (5201,),
    host: str = "127.0.0.1",
    **overrides: object,
) -> ThroughputParams:
    """A short test (2 s, 2 streams, no warm-up) against `host`."""
    values: dict[str, object] = {
        "server_host": host,
        "ports": ports,
        "direction": direction,
        "duration_s": 2,
        "streams": 2,
        "omit_s": 0,
        # A guard against a hang, far beyond the 2 s: no test should fail
        # because this machine is busy (tests of the limit pass their own).
        "timeout_s": 120.0,
    }
    values.update(overrides)
    return ThroughputParams(**values)  # type: ignore[arg-type]
