"""The measurement table: names, params from the context, running by name, light imports."""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys

import pytest

from agent.measurements import MEASUREMENTS, run_measurement
from agent.measurements.base import MeasurementContext, MeasurementResult, Status
from agent.measurements.cellular import CellularObservationResult
from agent.measurements.ipv6 import Ipv6Params, Ipv6Result
from agent.measurements.latency import LatencyParams, LatencyProtocol, LatencyResult
from agent.measurements.throughput import Direction, ThroughputParams, ThroughputResult
from wardprobe.v1 import results_pb2

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


def test_run_by_name() -> None:
    with socket.create_server(("127.0.0.1", 0), backlog=64) as listener:
        ctx = dataclasses.replace(CTX, tcp_echo_port=int(listener.getsockname()[1]))
        result = run_measurement("latency_tcp", ctx)
    assert isinstance(result, LatencyResult)
    assert result.status is Status.OK, result.status_reason
    assert result.packets_received == result.packets_sent == 10


def test_unknown_name_is_refused() -> None:
    with pytest.raises(KeyError, match="unknown measurement 'speed'"):
        run_measurement("speed", CTX)


@pytest.mark.parametrize(
    ("result_type", "message"),
    [
        (ThroughputResult, results_pb2.ThroughputResult),
        (LatencyResult, results_pb2.LatencyResult),
        (Ipv6Result, results_pb2.Ipv6Result),
        (CellularObservationResult, results_pb2.CellularObservation),
    ],
)
def test_every_result_field_has_its_place_on_the_wire(
    result_type: type[MeasurementResult], message: type[object]
) -> None:
    envelope = {f.name for f in dataclasses.fields(MeasurementResult)}
    body = {f.name for f in dataclasses.fields(result_type)} - envelope
    assert body <= set(message.DESCRIPTOR.fields_by_name)  # type: ignore[attr-defined]


def test_importing_the_measurements_stays_light() -> None:
    code = (
        "import json, sys, agent.measurements; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = set(json.loads(subprocess.check_output([sys.executable, "-c", code], text=True)))
    # libiperf is loaded only in the throughput test's child process.
    assert not loaded & {"scapy", "pyarrow", "duckdb", "iperf3", "numpy", "pandas"}
