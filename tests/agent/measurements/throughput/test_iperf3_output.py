"""The iperf3 JSON parser, on real iperf3 3.12 output recorded in tests/fixtures/iperf3."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.measurements.base import IpFamily, ReasonKind, Status
from agent.measurements.throughput import Direction, ThroughputResult, parse_iperf3_json
from tests.agent.measurements.throughput.helpers import params

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "iperf3"
MEASURED_AT = datetime(2026, 11, 23, 23, 29, tzinfo=UTC)


def parse_fixture(name: str, direction: Direction) -> ThroughputResult:
    text = (FIXTURES / name).read_text()
    return parse_iperf3_json(
        text, params=params(direction), server_port=5201, measured_at=MEASURED_AT
    )


def test_download_speed_is_what_the_probe_received() -> None:
    result = parse_fixture("download_reverse.json", Direction.DOWNLOAD)
    assert result.status is Status.OK
    assert (result.status_reason, result.status_reason_kind) == ("", ReasonKind.NONE)
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
    assert result.status_reason_kind is ReasonKind.TOOL_FAILED
    assert "unable to connect to server: Connection refused" in result.status_reason
    assert result.method.tool_version == "iperf 3.12"
    assert result.mbps is None
    assert result.bytes_transferred is None
    assert result.ip_family is None


def test_server_busy_is_its_own_kind_of_failure() -> None:
    result = parse_fixture("server_busy.json", Direction.UPLOAD)
    assert result.status is Status.FAILED
    # What sends the test on to the next port of the pool.
    assert result.status_reason_kind is ReasonKind.SERVER_BUSY
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
    assert result.status_reason_kind is ReasonKind.MALFORMED_OUTPUT
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
    assert result.status_reason_kind is ReasonKind.MALFORMED_OUTPUT
    assert "sum_received" in result.status_reason


def test_output_of_the_other_direction_is_refused() -> None:
    result = parse_fixture("upload.json", Direction.DOWNLOAD)
    assert result.status is Status.FAILED
    assert result.status_reason_kind is ReasonKind.MALFORMED_OUTPUT
    assert "reverse" in result.status_reason
