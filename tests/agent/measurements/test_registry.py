"""The measurement table: names, what each entry says of its test, params from the
context, running by name, light imports."""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from agent.measurements import MEASUREMENTS, Measurement, RadioFraming, run_measurement, throughput
from agent.measurements.base import (
    MeasurementContext,
    MeasurementResult,
    Method,
    ReasonKind,
    Status,
)
from agent.measurements.dns_resolution import DnsParams
from agent.measurements.ipv6 import Ipv6Params
from agent.measurements.ipv6_pmtu import PmtuParams
from agent.measurements.latency import LatencyParams, LatencyProtocol, LatencyResult
from agent.measurements.throughput import Direction, ThroughputParams
from agent.measurements.traceroute import TracerouteParams

CTX = MeasurementContext(
    server_host="127.0.0.1",
    iperf3_ports=(5201, 5202),
    tcp_echo_port=7007,
    ipv6_only_host="v6only.wardprobe.test",
    dns_server="127.0.0.1",
    interface="lo",
    throughput_duration_s=10,
    throughput_streams=4,
    timeout_s=40.0,
)


def test_the_table_names_every_measurement() -> None:
    assert set(MEASUREMENTS) == {
        "download",
        "upload",
        "speedtest_download",
        "speedtest_upload",
        "latency_icmp",
        "latency_tcp",
        "ipv6",
        "cellular",
        "traceroute",
        "traceroute_udp",
        "traceroute_tcp",
        "ipv6_pmtu",
        "dns",
        "ipv6_services",
    }
    for name, entry in MEASUREMENTS.items():
        assert entry.name == name


def test_params_come_from_the_context() -> None:
    download = MEASUREMENTS["download"].params_from(CTX)
    assert isinstance(download, ThroughputParams)
    assert download.direction is Direction.DOWNLOAD
    assert download.ports == (5201, 5202)
    assert (download.duration_s, download.streams) == (10, 4)
    assert (download.interface, download.timeout_s) == ("lo", 40.0)
    upload = MEASUREMENTS["upload"].params_from(CTX)
    assert isinstance(upload, ThroughputParams) and upload.direction is Direction.UPLOAD
    icmp = MEASUREMENTS["latency_icmp"].params_from(CTX)
    assert isinstance(icmp, LatencyParams) and icmp.protocol is LatencyProtocol.ICMP
    tcp = MEASUREMENTS["latency_tcp"].params_from(CTX)
    assert isinstance(tcp, LatencyParams) and tcp.port == 7007
    ipv6 = MEASUREMENTS["ipv6"].params_from(CTX)
    assert isinstance(ipv6, Ipv6Params) and ipv6.ipv6_only_host == "v6only.wardprobe.test"
    # The path tests go to the reference server and the IPv6-only target by default.
    trace = MEASUREMENTS["traceroute_tcp"].params_from(CTX)
    assert isinstance(trace, TracerouteParams)
    assert trace.targets == ("127.0.0.1", "v6only.wardprobe.test") and trace.port == 7007
    configured = dataclasses.replace(CTX, traceroute_targets=("198.18.0.1",))
    assert MEASUREMENTS["traceroute"].params_from(configured).targets == ("198.18.0.1",)
    pmtu = MEASUREMENTS["ipv6_pmtu"].params_from(CTX)
    assert isinstance(pmtu, PmtuParams) and pmtu.target == "v6only.wardprobe.test"
    # The DNS test asks the reference server's resolver and the system's, for its names.
    dns = MEASUREMENTS["dns"].params_from(CTX)
    assert isinstance(dns, DnsParams)
    assert (dns.names, dns.resolvers, dns.system_resolver) == (
        ("v6only.wardprobe.test",),
        ("127.0.0.1",),
        True,
    )


def test_run_by_name() -> None:
    with socket.create_server(("127.0.0.1", 0), backlog=64) as listener:
        ctx = dataclasses.replace(CTX, tcp_echo_port=int(listener.getsockname()[1]))
        result = run_measurement("latency_tcp", ctx)
    assert isinstance(result, LatencyResult)
    assert result.status is Status.OK, result.status_reason
    assert result.packets_received == result.packets_sent == 10


def test_the_table_says_which_tests_are_bulk_transfers() -> None:
    bulk = {"download", "upload", "speedtest_download", "speedtest_upload"}
    # Each of them waits for the probe's slot at the shared server, counts
    # against a mobile line's byte budget, and on the mobile line is framed
    # by radio observations before and after (a handover during it shows).
    assert {n for n, m in MEASUREMENTS.items() if m.needs_slot} == bulk
    assert {n for n, m in MEASUREMENTS.items() if m.budgeted} == bulk
    radio = {n: m.radio for n, m in MEASUREMENTS.items()}
    assert {n for n, r in radio.items() if r is RadioFraming.BEFORE_AND_AFTER} == bulk
    assert {n for n, r in radio.items() if r is RadioFraming.BEFORE} == {
        "latency_icmp",
        "latency_tcp",
        "traceroute",
        "traceroute_udp",
        "traceroute_tcp",
    }
    assert radio["ipv6"] is radio["cellular"] is RadioFraming.NONE
    assert radio["ipv6_pmtu"] is radio["dns"] is RadioFraming.NONE


def test_a_budgeted_measurement_needs_its_skipped_builder() -> None:
    with pytest.raises(ValueError, match="skipped"):
        Measurement("bulk", throughput.download_params_from, throughput.run, body="throughput",
                    budgeted=True)  # fmt: skip


def test_a_result_says_its_reason_kind_exactly_when_it_is_not_ok() -> None:
    now, method = datetime.now(UTC), Method(tool="icmp")
    with pytest.raises(ValueError, match="failed result cannot have reason kind none"):
        MeasurementResult(measured_at=now, method=method, status=Status.FAILED, status_reason="x")
    with pytest.raises(ValueError, match="ok result cannot have reason kind timeout"):
        MeasurementResult(
            measured_at=now, method=method, status=Status.OK, status_reason_kind=ReasonKind.TIMEOUT
        )


def test_unknown_name_is_refused() -> None:
    with pytest.raises(KeyError, match="unknown measurement 'speed'"):
        run_measurement("speed", CTX)


def test_importing_the_measurements_stays_light() -> None:
    code = (
        "import json, sys, agent.measurements; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = set(json.loads(subprocess.check_output([sys.executable, "-c", code], text=True)))
    # libiperf is loaded only in the throughput test's child process.
    assert not loaded & {"scapy", "pyarrow", "duckdb", "iperf3", "numpy", "pandas"}
