"""Throughput with iperf3: the JSON parser on recorded outputs, then real tests on loopback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

from agent.measurements.base import MALFORMED_PREFIX, IpFamily, Status
from agent.measurements.throughput import (
    Direction,
    ThroughputParams,
    ThroughputResult,
    parse_iperf3_json,
    run,
)
from tests.agent.measurements.services import (
    SilentListener,
    busy_iperf3_server,
    free_tcp_port,
    iperf3_server,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "iperf3"
MEASURED_AT = datetime(2026, 11, 23, 23, 29, tzinfo=UTC)

needs_iperf3 = pytest.mark.skipif(
    shutil.which("iperf3") is None, reason="iperf3 is not installed (apt-get install iperf3)"
)


def params(
    direction: Direction = Direction.DOWNLOAD,
    ports: tuple[int, ...] = (5201,),
    host: str = "127.0.0.1",
    **overrides: object,
) -> ThroughputParams:
    values: dict[str, object] = {
        "server_host": host,
        "ports": ports,
        "direction": direction,
        "duration_s": 2,
        "streams": 2,
        "omit_s": 0,
        "timeout_s": 20.0,
    }
    values.update(overrides)
    return ThroughputParams(**values)  # type: ignore[arg-type]


def parse_fixture(name: str, direction: Direction) -> ThroughputResult:
    text = (FIXTURES / name).read_text()
    return parse_iperf3_json(
        text, params=params(direction), server_port=5201, measured_at=MEASURED_AT
    )


# --- the parser, on real iperf3 3.12 output ------------------------------------------


def test_download_speed_is_what_the_probe_received() -> None:
    result = parse_fixture("download_reverse.json", Direction.DOWNLOAD)
    assert result.status is Status.OK
    assert result.status_reason == ""
    assert result.direction is Direction.DOWNLOAD
    # end.sum_received of the recorded reverse-mode test, in 10^6 bit/s.
    assert result.mbps == pytest.approx(23772.755548866676)
    assert result.bytes_transferred == 5943197802
    assert result.measured_s == pytest.approx(2.000003)
    # In reverse mode the sender is the server; libiperf reports its retransmissions.
    assert result.retransmits == 14
    assert result.omitted_s == 1.0
    assert result.ip_family is IpFamily.IPV4
    assert result.measured_at == MEASURED_AT
    assert result.method.tool == "iperf3"
    assert result.method.tool_version == "iperf 3.12"
    assert result.method.server == "127.0.0.1"
    assert result.method.server_port == 5201
    assert result.method.duration_s == 2.0
    assert result.method.streams == 2


def test_upload_speed_is_what_the_server_received() -> None:
    result = parse_fixture("upload.json", Direction.UPLOAD)
    assert result.status is Status.OK
    assert result.direction is Direction.UPLOAD
    assert result.mbps == pytest.approx(20504.7577672775)
    assert result.bytes_transferred == 5129306165
    assert result.measured_s == pytest.approx(2.001216)
    assert result.retransmits == 11


def test_family_comes_from_the_connection() -> None:
    result = parse_fixture("download_reverse_ipv6.json", Direction.DOWNLOAD)
    assert result.status is Status.OK
    assert result.ip_family is IpFamily.IPV6


def test_connection_refused_is_the_tools_failure() -> None:
    result = parse_fixture("connection_refused.json", Direction.UPLOAD)
    assert result.status is Status.FAILED
    assert "unable to connect to server: Connection refused" in result.status_reason
    assert not result.status_reason.startswith(MALFORMED_PREFIX)
    assert result.method.tool_version == "iperf 3.12"
    assert result.mbps is None
    assert result.bytes_transferred is None
    assert result.ip_family is None


def test_server_busy_is_the_tools_failure() -> None:
    result = parse_fixture("server_busy.json", Direction.UPLOAD)
    assert result.status is Status.FAILED
    assert "the server is busy running a test" in result.status_reason


def test_truncated_output_is_malformed() -> None:
    text = (FIXTURES / "download_reverse.json").read_text()
    result = parse_iperf3_json(
        text[: len(text) // 2],
        params=params(Direction.DOWNLOAD),
        server_port=5201,
        measured_at=MEASURED_AT,
    )
    assert result.status is Status.FAILED
    assert result.status_reason.startswith(MALFORMED_PREFIX)
    assert result.mbps is None


def test_output_without_the_end_sums_is_malformed() -> None:
    document = json.loads((FIXTURES / "download_reverse.json").read_text())
    del document["end"]["sum_received"]
    result = parse_iperf3_json(
        json.dumps(document),
        params=params(Direction.DOWNLOAD),
        server_port=5201,
        measured_at=MEASURED_AT,
    )
    assert result.status is Status.FAILED
    assert result.status_reason.startswith(MALFORMED_PREFIX)
    assert "sum_received" in result.status_reason


def test_output_of_the_other_direction_is_refused() -> None:
    result = parse_fixture("upload.json", Direction.DOWNLOAD)
    assert result.status is Status.FAILED
    assert result.status_reason.startswith(MALFORMED_PREFIX)
    assert "reverse" in result.status_reason


def test_params_refuse_a_timeout_shorter_than_the_test() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        params(duration_s=10, omit_s=2, timeout_s=12.0)
    with pytest.raises(ValueError, match="ports"):
        params(ports=())


# --- real iperf3 on loopback ----------------------------------------------------------


@needs_iperf3
def test_download_against_a_real_server() -> None:
    with iperf3_server() as port:
        result = run(params(Direction.DOWNLOAD, ports=(port,), omit_s=1))
    assert result.status is Status.OK, result.status_reason
    assert result.mbps is not None and result.mbps > 0
    assert result.bytes_transferred is not None and result.bytes_transferred > 0
    assert result.measured_s == pytest.approx(2.0, abs=0.5)
    assert result.omitted_s == 1.0
    assert result.ip_family is IpFamily.IPV4
    assert result.method.server_port == port
    assert result.method.tool_version.startswith("iperf 3")


@needs_iperf3
def test_upload_against_a_real_server_bound_to_loopback_interface() -> None:
    with iperf3_server() as port:
        result = run(params(Direction.UPLOAD, ports=(port,), interface="lo"))
    assert result.status is Status.OK, result.status_reason
    assert result.direction is Direction.UPLOAD
    assert result.mbps is not None and result.mbps > 0
    assert result.interface == "lo"


@needs_iperf3
def test_ipv6_server_reports_ipv6() -> None:
    with iperf3_server("::1") as port:
        result = run(params(Direction.DOWNLOAD, ports=(port,), host="::1"))
    assert result.status is Status.OK, result.status_reason
    assert result.ip_family is IpFamily.IPV6


@needs_iperf3
def test_family_preference_picks_the_address() -> None:
    with iperf3_server() as port:
        result = run(
            params(Direction.DOWNLOAD, ports=(port,), host="localhost", ip_family=IpFamily.IPV4)
        )
    assert result.status is Status.OK, result.status_reason
    assert result.ip_family is IpFamily.IPV4
    assert result.method.server == "localhost"


def test_family_that_the_server_lacks_fails_with_the_reason() -> None:
    result = run(params(ports=(free_tcp_port(),), ip_family=IpFamily.IPV6))
    assert result.status is Status.FAILED
    assert "127.0.0.1 has no ipv6 address" in result.status_reason


@needs_iperf3
def test_connection_refused() -> None:
    result = run(params(Direction.UPLOAD, ports=(free_tcp_port(),)))
    assert result.status is Status.FAILED
    assert "Connection refused" in result.status_reason
    assert result.method.tool_version == "iperf 3.12"


@needs_iperf3
def test_busy_port_moves_on_to_the_next_port() -> None:
    with busy_iperf3_server() as busy_port, iperf3_server() as free_port:
        result = run(params(Direction.DOWNLOAD, ports=(busy_port, free_port)))
    assert result.status is Status.OK, result.status_reason
    assert result.method.server_port == free_port


@needs_iperf3
def test_all_ports_busy_gives_up() -> None:
    with busy_iperf3_server() as busy_port:
        result = run(params(Direction.DOWNLOAD, ports=(busy_port, busy_port), busy_backoff_s=0.0))
    assert result.status is Status.FAILED
    assert result.status_reason.startswith("all iperf3 ports were busy")
    assert str(busy_port) in result.status_reason


@needs_iperf3
def test_hung_server_is_cut_off_at_the_hard_timeout() -> None:
    with SilentListener() as server:
        started = time.monotonic()
        result = run(params(Direction.DOWNLOAD, ports=(server.port,), duration_s=1, timeout_s=3.0))
        elapsed_s = time.monotonic() - started
    assert result.status is Status.FAILED
    assert result.status_reason.startswith("timed out after 3 s")
    # The call returns at its hard limit, not whenever libiperf gives up (it never would).
    assert elapsed_s < 3.0 + 5.0


@needs_iperf3
def test_the_child_does_not_outlive_a_killed_agent() -> None:
    code = (
        "import sys; from agent.measurements.throughput import Direction, ThroughputParams, run; "
        "run(ThroughputParams(server_host='127.0.0.1', ports=(int(sys.argv[1]),), "
        "direction=Direction.DOWNLOAD, duration_s=1, omit_s=0, timeout_s=60.0))"
    )
    with SilentListener() as server:
        agent = subprocess.Popen([sys.executable, "-c", code, str(server.port)])
        try:
            # Wait until libiperf is inside its test: connected to the silent server.
            deadline = time.monotonic() + 20
            while not server.accepted and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.accepted, "libiperf never connected"
            children = psutil.Process(agent.pid).children()
            assert children, "the iperf3 child process is missing"
            agent.kill()  # an agent restart or crash in the middle of a test
            agent.wait()
            _gone, alive = psutil.wait_procs(children, timeout=10)
            assert not alive, "the iperf3 child outlived its agent"
        finally:
            agent.kill()
            agent.wait()
