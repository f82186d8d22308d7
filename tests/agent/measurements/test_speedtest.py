"""speedtest-cli against the reference server's Speedtest mini endpoints, on loopback.

Every socket the code opens is recorded (a Python audit hook) and must go to
loopback: speedtest-cli would otherwise fetch its configuration from
www.speedtest.net, which the agent must never let it do.

No test here depends on how fast this machine is: on loopback the test sets
speedtest-cli's clock (how long a transfer measured), and on the shaped lines
the shaper and the test length set the time, the interfaces' byte counters
show which line carried the bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
import types
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import speedtest as speedtest_cli  # type: ignore[import-untyped]

from agent.measurements.base import ReasonKind, Status
from agent.measurements.speedtest import SpeedtestParams, mini_urls, parse_config, run
from agent.measurements.throughput import Direction, ThroughputResult
from aggregator.reference.speedtest_mini import (
    SpeedtestMini,
    SpeedtestMiniConfig,
    config_xml,
    file_bytes,
)
from tests.agent.measurements.netns_links import (
    LINE_COUNTERS,
    SERVER_ADDRESS,
    Uplink,
    probe_and_server,
)
from tests.agent.measurements.services import (
    REPO_ROOT,
    namespace_unavailable_reason,
    python_in_namespace,
)
from wardprobe.validity import INVALID_PREFIX, MIN_MEASURED_S

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
    # One file of each size down and three chunks up (103 MB and 9 MB): the
    # whole set, which the test's clock lets speedtest-cli fetch, stays small.
    server = SpeedtestMini(
        ["127.0.0.1"],
        0,
        SpeedtestMiniConfig(
            download_testlength_s=2,
            upload_testlength_s=2,
            download_threadsperurl=1,
            upload_maxchunkcount=3,
        ),
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
        # Only a guard against a hang: the test's clock, not this, ends the transfers.
        "timeout_s": 240.0,
    }
    values.update(overrides)
    return SpeedtestParams(**values)


class SpeedtestClock:
    """speedtest-cli's clock (the `timeit.default_timer` it reads), set by the
    test: every reading by the thread running the test moves it on by
    `transfer_s`, while speedtest-cli's transfer threads read it unmoved (they
    never run out of time and fetch the whole set). download() and upload()
    read it once before and once after their transfer, so the transfer
    measures exactly `transfer_s`, however long it really took."""

    def __init__(self, transfer_s: float) -> None:
        self.transfer_s = transfer_s
        self._now = 1000.0
        self._runner: int | None = None
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            if threading.get_ident() == self._runner:
                self._now += self.transfer_s
            return self._now

    def run(self, test: SpeedtestParams) -> ThroughputResult:
        """`run(test)` in the calling thread, the one whose readings move the clock."""
        self._runner = threading.get_ident()
        return run(test)


async def measured_over(
    transfer_s: float, test: SpeedtestParams, monkeypatch: pytest.MonkeyPatch
) -> ThroughputResult:
    """`test` run with speedtest-cli's clock saying the transfer took `transfer_s`."""
    clock = SpeedtestClock(transfer_s)
    # speedtest-cli also sleeps through `timeit.time`.
    monkeypatch.setattr(
        speedtest_cli, "timeit", types.SimpleNamespace(default_timer=clock, time=time)
    )
    return await asyncio.to_thread(clock.run, test)


def _figures_kept_but_refused(result: ThroughputResult, transfer_s: float) -> None:
    """A transfer shorter than the validity rule's floor is refused, with the
    figures kept: speedtest-cli's bytes over the clock's duration."""
    assert transfer_s < MIN_MEASURED_S
    assert result.status is Status.FAILED
    assert result.status_reason_kind is ReasonKind.INVALID_TRANSFER
    assert result.status_reason == (
        f"{INVALID_PREFIX}measured over {transfer_s:.2f} s, shorter than {MIN_MEASURED_S:g} s"
    )
    assert result.measured_s == pytest.approx(transfer_s)
    assert result.bytes_transferred is not None and result.bytes_transferred > 8192
    assert result.mbps == pytest.approx(result.bytes_transferred * 8 / transfer_s / 1e6)


async def test_download_against_the_mini(
    mini: int, connections: _Connections, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = await measured_over(0.5, params(mini, Direction.DOWNLOAD), monkeypatch)
    _figures_kept_but_refused(result, 0.5)
    assert result.method.tool == "speedtest-cli"
    assert result.method.tool_version.startswith("speedtest-cli 2.")
    assert (result.method.server, result.method.server_port) == ("127.0.0.1", mini)
    assert result.direction is Direction.DOWNLOAD
    # The whole set: one file of each of speedtest-cli's ten sizes (2 x side² bytes).
    assert result.bytes_transferred == sum(2 * side * side for side in (
        350, 500, 750, 1000, 1500, 2000, 2500, 3000, 3500, 4000))  # fmt: skip
    assert result.local_address == "127.0.0.1" and result.interface == "lo"
    assert connections.addresses and set(connections.addresses) == {"127.0.0.1"}


async def test_upload_against_the_mini(
    mini: int, connections: _Connections, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = await measured_over(0.5, params(mini, Direction.UPLOAD, interface="lo"), monkeypatch)
    _figures_kept_but_refused(result, 0.5)
    assert result.direction is Direction.UPLOAD
    assert set(connections.addresses) == {"127.0.0.1"}


@pytest.mark.parametrize("direction", [Direction.DOWNLOAD, Direction.UPLOAD])
async def test_a_transfer_measured_long_enough_counts(
    mini: int, direction: Direction, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = await measured_over(3.0, params(mini, direction), monkeypatch)
    assert result.status is Status.OK, result.status_reason
    assert result.status_reason_kind is ReasonKind.NONE
    assert result.measured_s == pytest.approx(3.0)
    assert result.bytes_transferred is not None
    assert result.mbps == pytest.approx(result.bytes_transferred * 8 / 3.0 / 1e6)


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
from aggregator.reference.speedtest_mini import SpeedtestMini, SpeedtestMiniConfig
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
    each (direction, interface) pair in the Python expression `runs`; each
    result with `line_bytes`: what each uplink (up0, up1, ...) received ("rx")
    and sent ("tx") while it ran, from the interfaces' counters."""
    code = LINE_COUNTERS + (
        "import dataclasses, json\n"
        "from agent.measurements.speedtest import SpeedtestParams, mini_urls, run\n"
        "from agent.measurements.throughput import Direction\n"
        f"c, s = mini_urls({SERVER_ADDRESS!r}, 8080)\n"
        "out = []\n"
        f"for d, i in {runs}:\n"
        "    before = settled()\n"
        # Only a guard against a hang: the mini's 3-s test length ends each transfer.
        "    r = dataclasses.asdict(run(SpeedtestParams(config_url=c, server_url=s,\n"
        "        direction=d, timeout_s=60, interface=i)))\n"
        "    r['line_bytes'] = line_bytes(before, settled())\n"
        "    out.append(r)\n"
        "print(json.dumps(out, default=str))\n"
    )
    results: list[dict[str, Any]] = python_in_namespace(netns, code, timeout_s=240)
    return results


@pytest.mark.skipif(bool(_NETNS_REASON), reason=_NETNS_REASON or "-")
def test_on_a_50_mbps_line_speedtest_cli_reads_the_line() -> None:
    with probe_and_server([Uplink(down_mbps=50, up_mbps=20)]) as lines, _mini_in(lines.server):
        down, up = _speedtests_in(lines.probe, "[(Direction.DOWNLOAD, ''), (Direction.UPLOAD, '')]")
    # The shaped lines set the time: the set of files would take a minute at
    # 50 (20) Mb/s, so speedtest-cli stops at the mini's 3-s test length, and
    # a transfer that long counts however busy this machine is.
    assert down["status"] == "ok", down["status_reason"]
    assert up["status"] == "ok", up["status_reason"]
    assert down["measured_s"] >= 3.0 and up["measured_s"] >= 3.0
    # What speedtest-cli counted is what crossed the line (HTTP bodies: less
    # than the frames), and a line cannot carry more than its rate. tbf counts
    # frames, speedtest-cli HTTP bodies, so its download reads below the rate;
    # its upload counts what was handed to the socket, so bytes still queued
    # can lift it a little above.
    assert 0 < down["bytes_transferred"] <= down["line_bytes"]["up0"]["rx"]
    assert 0 < down["mbps"] <= 50
    assert 0 < up["mbps"] <= 22
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
    # The counters show where the bytes went: the bound upload through up1
    # only, the unbound one through up0, the default route (a line carries
    # the bytes sent, less what a closed connection dropped from its buffer).
    for result, used, other in ((modem, "up1", "up0"), (unbound, "up0", "up1")):
        sent = result["line_bytes"]
        assert sent[used]["tx"] > result["bytes_transferred"] / 2, result
        assert sent[other]["tx"] < result["bytes_transferred"] / 20, result
    # speedtest-cli's upload counts bytes handed to the socket: what still sits
    # in the socket buffer and tbf's queue lifts a slow line's figure (9.2 on
    # 8 Mb/s seen), never to the 40 Mb/s of the default route.
    assert 0 < modem["mbps"] <= 12
