"""Many probes, one server: ten probes test "at once" through the server's
shared uplink, and none reports the uplink divided by ten.

The reference server's iperf3 pool takes one test per port; a probe that
finds every port busy gets iperf3's busy answer and backs off (it never
shares a port's test), so each figure that comes back is the uplink's, and
a probe that never got a turn says so instead of reporting a number.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from emulation.shaping import apply_tbf, tbf_params
from tests.agent.measurements.services import (
    namespace_unavailable_reason,
    network_namespace,
    python_in_namespace,
)

_REASON = namespace_unavailable_reason() or (
    "" if shutil.which("iperf3") else "iperf3 is not installed"
)
pytestmark = pytest.mark.skipif(bool(_REASON), reason=_REASON or "-")

PROBES = 10
UPLINK_MBPS = 40.0
SERVER = "198.18.21.2"


def _ip(netns: str, *argv: str) -> None:
    subprocess.run(["ip", "-n", netns, *argv], check=True, capture_output=True, text=True)


@contextmanager
def star() -> Iterator[tuple[list[str], str]]:
    """PROBES probe namespaces on a router, the server behind one shaped uplink."""
    with ExitStack() as stack:
        router = stack.enter_context(network_namespace())
        server = stack.enter_context(network_namespace())
        subprocess.run(
            ["ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True
        )
        _ip(router, "link", "add", "rs", "type", "veth", "peer", "name", "dn0", "netns", server)
        _ip(router, "addr", "add", "198.18.21.1/24", "dev", "rs")
        _ip(server, "addr", "add", f"{SERVER}/24", "dev", "dn0")
        _ip(router, "link", "set", "rs", "up")
        _ip(server, "link", "set", "dn0", "up")
        _ip(server, "route", "add", "default", "via", "198.18.21.1")
        # The server's uplink: what every probe's download shares.
        apply_tbf(server, "dn0", tbf_params(UPLINK_MBPS, queue_ms=50))
        probes = []
        for index in range(PROBES):
            probe = stack.enter_context(network_namespace())
            subnet = f"198.18.{30 + index}"
            _ip(router, "link", "add", f"p{index}", "type", "veth", "peer", "name", "up0",
                "netns", probe)  # fmt: skip
            _ip(router, "addr", "add", f"{subnet}.1/24", "dev", f"p{index}")
            _ip(probe, "addr", "add", f"{subnet}.2/24", "dev", "up0")
            _ip(router, "link", "set", f"p{index}", "up")
            _ip(probe, "link", "set", "up0", "up")
            _ip(probe, "route", "add", "default", "via", f"{subnet}.1")
            probes.append(probe)
        yield probes, server


@contextmanager
def one_port_pool(server: str) -> Iterator[int]:
    """The reference server's pool cut down to one port: the tightest case."""
    process = subprocess.Popen(
        ["ip", "netns", "exec", server, "iperf3", "-s", "-p", "5201", "--forceflush"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "Server listening" in line:
                break
        threading.Thread(target=process.stdout.read, daemon=True).start()
        yield 5201
    finally:
        process.kill()
        process.wait()


CODE = f"""
import dataclasses, json
from agent.measurements.throughput import Direction, ThroughputParams, run
r = run(ThroughputParams(server_host={SERVER!r}, ports=(5201,), direction=Direction.DOWNLOAD,
        duration_s=2, omit_s=1, streams=2, busy_backoff_s=1.0, timeout_s=25.0,
        rtt_samples_idle=0))
print(json.dumps(dataclasses.asdict(r), default=str))
"""


def test_ten_probes_at_once_do_not_report_a_tenth_of_the_uplink() -> None:
    with star() as (probes, server), one_port_pool(server), ThreadPoolExecutor(PROBES) as pool:
        results: list[Any] = list(
            pool.map(lambda ns: python_in_namespace(ns, CODE, timeout_s=60), probes)
        )
    ok = [r for r in results if r["status"] == "ok"]
    refused = [r for r in results if r["status"] != "ok"]
    assert ok, json.dumps(results)[:2000]
    # Each figure is the whole uplink (tbf's payload ceiling is 0.956 x the rate),
    # never a share of it: a tenth would be 4 Mb/s; more than half is the line
    # alone (the bar is low so that a busy machine cannot fail it).
    for result in ok:
        assert UPLINK_MBPS / 2 < result["mbps"] <= UPLINK_MBPS, result
    # A probe that never got a turn says the server was busy; it has no figure.
    for result in refused:
        assert "busy" in result["status_reason"] and result["mbps"] is None, result
