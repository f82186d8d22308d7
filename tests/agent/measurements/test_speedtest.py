"""speedtest-cli against the reference server's Speedtest mini endpoints, on loopback.

Every socket the code opens is recorded (a Python audit hook) and must go to
loopback: speedtest-cli would otherwise fetch its configuration from
www.speedtest.net, which the agent must never let it do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from agent.measurements.base import ReasonKind, Status
from agent.measurements.speedtest import SpeedtestParams, mini_urls, parse_config, run
from agent.measurements.throughput import Direction, ThroughputResult
from aggregator.speedtest_mini import SpeedtestMini, SpeedtestMiniConfig, config_xml, file_bytes
from tests.agent.measurements.netns_links import SERVER_ADDRESS, Uplink, probe_and_server
from tests.agent.measurements.services import (
    REPO_ROOT,
    namespace_unavailable_reason,
    python_in_namespace,
)
from wardprobe.validity import INVALID_PREFIX

_NETNS_REASON = namespace_unavailable_reason()


class _Connections:
    """Addresses of every socket connect() in this process while `recording`."""

    def __init__(self) -> None:
        self.recording = False
        self.addresses: list[str] = []
        self._lock = threading.Lock()

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if self.recording and event == "socket.connect":
            address = args[1]
            with self._lock:
                self.addresses.append(str(address[0]) if isinstance(address, tuple) else "?")


_CONNECTIONS = _Connections()
sys.addaudithook(_CONNECTIONS.hook)  # audit hooks cannot be removed; it only records


@pytest.fixture
def connections() -> Iterator[_Connections]:
    _CONNECTIONS.addresses.clear()
    _CONNECTIONS.recording = True
    try:
        yield _CONNECTIONS
    finally:
        _CONNECTIONS.recording = False


@pytest.fixture
async def mini() -> AsyncIterator[int]:
    # Short test lengths keep the suite quick; the protocol is the same.
    server = SpeedtestMini(
        ["127.0.0.1"], 0, SpeedtestMiniConfig(download_testlength_s=2, upload_testlength_s=2)
    )
    await server.start()
    assert server.port is not None
    try:
        yield server.port
    finally:
        await server.stop()


def params(port: int, direction: Direction, **overrides: Any) -> SpeedtestParams:
    config_url, server_url = mini_urls("127.0.0.1", port)
    values: dict[str, Any] = {
        "config_url": config_url,
        "server_url": server_url,
        "direction": direction,
        "timeout_s": 30.0,
    }
    values.update(overrides)
    return SpeedtestParams(**values)


def _figures_but_too_quick(result: ThroughputResult) -> None:
    """Loopback moves speedtest-cli's whole file set in under a second: the
    validity rule refuses a transfer that short, but the figures are kept."""
    assert result.status is Status.FAILED
    assert result.status_reason_kind is ReasonKind.INVALID_TRANSFER
    assert result.status_reason.startswith(INVALID_PREFIX + "measured over"), result.status_reason


async def test_download_against_the_mini(mini: int, connections: _Connections) -> None:
    result = await asyncio.to_thread(run, params(mini, Direction.DOWNLOAD))
    _figures_but_too_quick(result)
    assert result.method.tool == "speedtest-cli"
    assert result.method.tool_version.startswith("speedtest-cli 2.")
    assert (result.method.server, result.method.server_port) == ("127.0.0.1", mini)
    assert result.direction is Direction.DOWNLOAD
    assert result.mbps is not None and result.mbps > 0
    assert result.bytes_transferred is not None and result.bytes_transferred > 8192
    assert result.measured_s is not None and result.measured_s > 0
    assert result.local_address == "127.0.0.1" and result.interface == "lo"
    assert connections.addresses and set(connections.addresses) == {"127.0.0.1"}


async def test_upload_against_the_mini(mini: int, connections: _Connections) -> None:
    result = await asyncio.to_thread(run, params(mini, Direction.UPLOAD, interface="lo"))
    _figures_but_too_quick(result)
    assert result.direction is Direction.UPLOAD
    assert result.mbps is not None and result.mbps > 0
    assert set(connections.addresses) == {"127.0.0.1"}


async def test_a_configuration_that_cannot_be_read_fails_without_reaching_out(
    mini: int, connections: _Connections
) -> None:
    broken = params(mini, Direction.DOWNLOAD, config_url=f"http://127.0.0.1:{mini}/nothing.php")
    result = await asyncio.to_thread(run, broken)
    assert result.status is Status.FAILED
    assert result.status_reason_kind is ReasonKind.TOOL_FAILED
    assert result.status_reason.startswith("speedtest-cli failed:")
    assert result.mbps is None
    assert set(connections.addresses) == {"127.0.0.1"}


async def test_the_mini_endpoints(mini: int) -> None:
    base = f"http://127.0.0.1:{mini}/speedtest"

    def fetch(url: str, data: bytes | None = None) -> bytes:
        with urllib.request.urlopen(url, data=data, timeout=10) as response:
            body: bytes = response.read()
            return body

    assert await asyncio.to_thread(fetch, f"{base}/latency.txt?x=1") == b"test=test\n"
    jpg = await asyncio.to_thread(fetch, f"{base}/random350x350.jpg?x=2.0")
    assert len(jpg) == file_bytes(350) == 245_000
    answer = await asyncio.to_thread(fetch, f"{base}/upload.php?x=3", b"a" * 100_000)
    assert answer == b"size=100000"
    config = parse_config(await asyncio.to_thread(fetch, f"{base}/speedtest-config.php"))
    assert config["threads"] == {"download": 8, "upload": 4}
    assert config["length"] == {"download": 2, "upload": 2}


def test_config_document_parses_as_speedtest_cli_would() -> None:
    config = parse_config(config_xml(SpeedtestMiniConfig(), "198.18.0.2"))
    assert config["client"]["ip"] == "198.18.0.2"
    assert config["sizes"]["upload"][0] == 524288  # ratio 5
    assert config["upload_max"] >= 50


_MINI_IN_NAMESPACE = """
import asyncio, sys
from aggregator.speedtest_mini import SpeedtestMini, SpeedtestMiniConfig
async def main():
    mini = SpeedtestMini([sys.argv[1]], 8080, SpeedtestMiniConfig(
        download_testlength_s=3, upload_testlength_s=3))
    await mini.start()
    print("listening", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


@contextlib.contextmanager
def _mini_in(netns: str) -> Iterator[None]:
    """The reference server's speedtest mini inside `netns`, on SERVER_ADDRESS:8080."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", _MINI_IN_NAMESPACE, SERVER_ADDRESS],
        stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "listening"
        yield
    finally:
        server.kill()
        server.wait()


def _speedtests_in(netns: str, runs: str) -> list[dict[str, Any]]:
    """The agent's speedtest backend inside `netns` against the mini, once for
    each (direction, interface) pair in the Python expression `runs`."""
    code = (
        "import dataclasses, json\n"
        "from agent.measurements.speedtest import SpeedtestParams, mini_urls, run\n"
        "from agent.measurements.throughput import Direction\n"
        f"c, s = mini_urls({SERVER_ADDRESS!r}, 8080)\n"
        "out = [dataclasses.asdict(run(SpeedtestParams(config_url=c, server_url=s, "
        f"direction=d, timeout_s=30, interface=i))) for d, i in {runs}]\n"
        "print(json.dumps(out, default=str))\n"
    )
    results: list[dict[str, Any]] = python_in_namespace(netns, code, timeout_s=90)
    return results


@pytest.mark.skipif(bool(_NETNS_REASON), reason=_NETNS_REASON or "-")
def test_on_a_50_mbps_line_speedtest_cli_reads_the_line() -> None:
    with probe_and_server([Uplink(down_mbps=50, up_mbps=20)]) as lines, _mini_in(lines.server):
        down, up = _speedtests_in(lines.probe, "[(Direction.DOWNLOAD, ''), (Direction.UPLOAD, '')]")
    assert down["status"] == "ok", down["status_reason"]
    assert up["status"] == "ok", up["status_reason"]
    # tbf counts frames, speedtest-cli counts HTTP bodies over a clock that
    # includes connection set-up: below the shaped rate. Its upload counts what
    # was handed to the socket, so bytes still queued can lift it a little above.
    # (Wide lower bounds: the suite shares two cores with busier tests.)
    assert 25 < down["mbps"] <= 50
    assert 8 < up["mbps"] <= 22
    assert down["interface"] == "up0" and down["local_address"] == lines.probe_address(0)
    assert down["method"]["tool"] == "speedtest-cli"


@pytest.mark.skipif(bool(_NETNS_REASON), reason=_NETNS_REASON or "-")
def test_speedtest_cli_bound_to_the_modem_leaves_through_it_whatever_the_default_route() -> None:
    """Fixed line up0 (default route, 40 Mb/s up), modem up1 (8 Mb/s up). The
    upload is the direction that shows it: bound by source address alone it
    would leave through up0, the default route, and read far above 8."""
    with probe_and_server([Uplink(up_mbps=40), Uplink(up_mbps=8)]) as lines, _mini_in(lines.server):
        unbound, modem = _speedtests_in(
            lines.probe, "[(Direction.UPLOAD, ''), (Direction.UPLOAD, 'up1')]"
        )
    assert unbound["status"] == modem["status"] == "ok", (unbound, modem)
    assert modem["interface"] == "up1" and modem["local_address"] == lines.probe_address(1)
    assert unbound["interface"] == "up0"
    # speedtest-cli's upload counts bytes handed to the socket: what still sits
    # in the socket buffer and tbf's queue lifts a slow line's figure (9.2 on
    # 8 Mb/s seen); through the 40 Mb/s default route it would read above 20.
    assert 3 < modem["mbps"] <= 12 < 20 < unbound["mbps"]
