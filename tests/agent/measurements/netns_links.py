"""A probe namespace with one or two uplinks to a server namespace, for line tests.

Addresses are in 198.18.0.0/15 (benchmarking space), inside namespaces the
test made: nothing leaves this machine. The server answers on 198.18.100.1
(on its loopback, so every uplink reaches it); uplink i is 198.18.(10+i).0/24.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from emulation.shaping import apply_tbf, tbf_params
from tests.agent.measurements.services import network_namespace, running_iperf3_server

SERVER_ADDRESS = "198.18.100.1"

# Python source for code run inside the probe namespace: `settled()` reads the
# uplinks' byte counters, {(device, "rx" | "tx"): bytes}, once they are quiet.
# A finished transfer's bytes still in socket buffers and queues drain after
# it; counted after that, each run's bytes are its own. Which line carried a
# test's bytes is then a count, not a rate this machine has to reach.
LINE_COUNTERS = """
import pathlib, time
def _counters():
    return {(d.name, k): int((d / 'statistics' / f'{k}_bytes').read_text())
            for d in pathlib.Path('/sys/class/net').iterdir()
            if d.name.startswith('up') for k in ('rx', 'tx')}
def settled():
    last = _counters()
    while True:
        time.sleep(0.2)
        now = _counters()
        if now == last:
            return now
        last = now
def line_bytes(before, after):
    moved = {}
    for (device, way), count in after.items():
        moved.setdefault(device, {})[way] = count - before[(device, way)]
    return moved
"""


@dataclass(frozen=True)
class Uplink:
    """One link between the namespaces: shaped rates (None = unshaped) and queue."""

    down_mbps: float | None = None
    up_mbps: float | None = None
    queue_ms: float = 50.0


@dataclass(frozen=True)
class Lines:
    probe: str  # namespace names
    server: str
    interfaces: tuple[str, ...]  # probe-side device of each uplink: up0, up1, ...

    def probe_address(self, index: int) -> str:
        return f"198.18.{10 + index}.2"


def _ip(netns: str, *argv: str) -> None:
    subprocess.run(["ip", "-n", netns, *argv], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def probe_and_server(uplinks: Sequence[Uplink]) -> Iterator[Lines]:
    """Namespaces joined by the uplinks; the probe's default route is uplink 0,
    the others have lower-priority default routes (reachable only when bound)."""
    with network_namespace() as probe, network_namespace() as server:
        _ip(server, "addr", "add", f"{SERVER_ADDRESS}/32", "dev", "lo")
        names = []
        for index, uplink in enumerate(uplinks):
            near, far = f"up{index}", f"dn{index}"
            _ip(probe, "link", "add", near, "type", "veth", "peer", "name", far, "netns", server)
            _ip(probe, "addr", "add", f"198.18.{10 + index}.2/24", "dev", near)
            _ip(server, "addr", "add", f"198.18.{10 + index}.1/24", "dev", far)
            _ip(probe, "link", "set", near, "up")
            _ip(server, "link", "set", far, "up")
            _ip(
                probe, "route", "add", "default", "via", f"198.18.{10 + index}.1",
                "dev", near, "metric", str(100 * (index + 1)),
            )  # fmt: skip
            if uplink.down_mbps is not None:
                apply_tbf(server, far, tbf_params(uplink.down_mbps, queue_ms=uplink.queue_ms))
            if uplink.up_mbps is not None:
                apply_tbf(probe, near, tbf_params(uplink.up_mbps, queue_ms=uplink.queue_ms))
            names.append(near)
        yield Lines(probe=probe, server=server, interfaces=tuple(names))


@contextlib.contextmanager
def iperf3_in(netns: str, port: int = 5201) -> Iterator[int]:
    """`iperf3 -s` inside `netns`, listening once it yields."""
    command = ["ip", "netns", "exec", netns, "iperf3", "-s", "-p", str(port), "--forceflush"]
    with running_iperf3_server(command, netns):
        yield port
