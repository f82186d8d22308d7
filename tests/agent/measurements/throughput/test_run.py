"""One throughput test from start to end (agent/measurements/throughput/run.py),
against real iperf3 servers on loopback: the port pool, the hard limit, the
kinds of failure."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.measurements.base import IpFamily, ReasonKind, Status
from agent.measurements.throughput import Direction, ThroughputResult, parse_iperf3_json, run
from agent.measurements.throughput.run import _apply_validity
from tests.agent.measurements.services import (
    SilentListener,
    busy_iperf3_server,
    free_tcp_port,
    iperf3_server,
)
from tests.agent.measurements.throughput.helpers import needs_iperf3, params
from wardprobe.validity import INVALID_PREFIX, MIN_MEASURED_S

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "iperf3"


def test_params_refuse_a_timeout_shorter_than_the_test() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        params(duration_s=10, omit_s=2, timeout_s=12.0)
    with pytest.raises(ValueError, match="ports"):
        params(ports=())


# --- the validity rule, on figures the test sets --------------------------------------


def _recorded_download(measured_s: float) -> ThroughputResult:
    """A real iperf3 download (tests/fixtures/iperf3), as if libiperf had
    measured it over `measured_s`: how long a transfer took is the test's
    choice here, not this machine's."""
    recorded = parse_iperf3_json(
        (FIXTURES / "download_reverse.json").read_text(),
        params=params(Direction.DOWNLOAD),
        server_port=5201,
        measured_at=datetime(2026, 11, 23, tzinfo=UTC),
    )
    assert recorded.status is Status.OK and recorded.bytes_transferred is not None
    mbps = recorded.bytes_transferred * 8 / measured_s / 1e6
    return dataclasses.replace(recorded, measured_s=measured_s, mbps=mbps)


def test_a_transfer_too_short_is_refused_with_its_figures() -> None:
    short = _recorded_download(0.4)
    result = _apply_validity(short, params(Direction.DOWNLOAD))
    assert result.status is Status.FAILED
    assert result.status_reason_kind is ReasonKind.INVALID_TRANSFER
    assert result.status_reason == (
        f"{INVALID_PREFIX}measured over 0.40 s, shorter than {MIN_MEASURED_S:g} s"
    )
    assert (result.mbps, result.bytes_transferred, result.measured_s) == (
        short.mbps,
        short.bytes_transferred,
        0.4,
    )


def test_a_transfer_long_enough_counts() -> None:
    long_enough = _recorded_download(MIN_MEASURED_S)
    assert _apply_validity(long_enough, params(Direction.DOWNLOAD)) == long_enough


# --- real iperf3 on loopback ----------------------------------------------------------


@needs_iperf3
def test_download_against_a_real_server() -> None:
    with iperf3_server() as port:
        result = run(params(Direction.DOWNLOAD, ports=(port,), omit_s=1))
    assert result.status is Status.OK, result.status_reason
    assert result.mbps is not None and result.mbps > 0
    assert result.bytes_transferred is not None and result.bytes_transferred > 0
    # libiperf's timer ends the 2-s test (it reports 1.9998 s quiet); the
    # receiver's own count can start a little late on a loaded machine (1.95 s
    # at load 8), and how much later it gets to say so depends on this
    # machine, up to the hard limit.
    assert result.measured_s is not None and 1.8 <= result.measured_s <= 120.0
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
    assert result.status_reason_kind is ReasonKind.NETWORK_ERROR
    assert "127.0.0.1 has no ipv6 address" in result.status_reason


@needs_iperf3
def test_connection_refused() -> None:
    result = run(params(Direction.UPLOAD, ports=(free_tcp_port(),)))
    assert result.status is Status.FAILED
    assert result.status_reason_kind is ReasonKind.TOOL_FAILED
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
    assert result.status_reason_kind is ReasonKind.SERVER_BUSY
    assert result.status_reason.startswith("all iperf3 ports were busy")
    assert str(busy_port) in result.status_reason


@needs_iperf3
def test_hung_server_is_cut_off_at_the_hard_timeout() -> None:
    with SilentListener() as server:
        started = time.monotonic()
        result = run(params(Direction.DOWNLOAD, ports=(server.port,), duration_s=1, timeout_s=3.0))
        elapsed_s = time.monotonic() - started
    # libiperf would wait on the silent server for ever: returning at all, and
    # no sooner than the limit, with TIMEOUT, is the hard limit at work (how
    # soon after it this machine gets back to the caller is not the test's).
    assert result.status is Status.FAILED
    assert result.status_reason_kind is ReasonKind.TIMEOUT
    assert result.status_reason.startswith("timed out after 3 s")
    assert elapsed_s >= 3.0
