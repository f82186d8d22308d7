"""The TUN delay line adds the round trip it is asked for, and only that."""

from __future__ import annotations

import os
import re
import statistics
import subprocess

import pytest

from emulation.city import have_netns
from emulation.delayline import SERVER_ADDRESS, routed_line

_HAVE, _WHY = have_netns()
pytestmark = pytest.mark.skipif(not _HAVE, reason=_WHY or "-")


def ping_median_ms(netns: str, count: int = 10) -> float:
    out = subprocess.run(
        ["ip", "netns", "exec", netns, "ping", "-n", "-c", str(count), "-i", "0.05",
         SERVER_ADDRESS],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return statistics.median(float(m) for m in re.findall(r"time=([\d.]+) ms", out))


@pytest.mark.skipif(
    subprocess.run(["which", "ping"], capture_output=True).returncode != 0,
    reason="iputils ping is not installed (apt-get install iputils-ping)",
)
@pytest.mark.parametrize("rtt_ms", [0.0, 20.0])
def test_ping_sees_the_added_delay(rtt_ms: float) -> None:
    with routed_line(f"wdl{os.getpid() % 10000}x{int(rtt_ms)}", rtt_ms=rtt_ms) as (probe, _r, _s):
        median = ping_median_ms(probe)
    assert rtt_ms <= median < rtt_ms + 3.0
