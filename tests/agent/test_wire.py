"""Typed results to wire messages (agent/wire.py): every field has its place
in the proto, and a result's reason kind travels with it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from agent.clock import ClockState
from agent.measurements import MEASUREMENTS
from agent.measurements.base import MeasurementResult, Method, ReasonKind, Status
from agent.measurements.cellular import CellularObservationResult
from agent.measurements.dns_resolution import DnsQuery, DnsResult
from agent.measurements.ipv6 import Ipv6Result
from agent.measurements.ipv6_pmtu import Ipv6PmtuResult, PacketTooBig
from agent.measurements.latency import LatencyResult
from agent.measurements.throughput import Direction, ThroughputResult
from agent.measurements.traceroute import TracerouteHop, TracerouteResult
from agent.wire import BODY_FIELD_BY_MEASUREMENT, ProbeContext, flat_text, to_json_dict, to_proto
from wardprobe.text import MAX_TEXT_CHARS
from wardprobe.v1 import results_pb2

PROBE = ProbeContext(probe_id="p", ward_code=31135, agent_version="0.1.0", network_kind="fixed")


@pytest.mark.parametrize(
    ("result_type", "message"),
    [
        (ThroughputResult, results_pb2.ThroughputResult),
        (LatencyResult, results_pb2.LatencyResult),
        (Ipv6Result, results_pb2.Ipv6Result),
        (CellularObservationResult, results_pb2.CellularObservation),
        (TracerouteResult, results_pb2.TracerouteResult),
        (TracerouteHop, results_pb2.TracerouteHop),
        (Ipv6PmtuResult, results_pb2.Ipv6PmtuResult),
        (PacketTooBig, results_pb2.PacketTooBig),
        (DnsResult, results_pb2.DnsResult),
        (DnsQuery, results_pb2.DnsQuery),
    ],
)
def test_every_result_field_has_its_place_on_the_wire(
    result_type: type[Any], message: type[object]
) -> None:
    envelope = {f.name for f in dataclasses.fields(MeasurementResult)}
    assert envelope <= set(results_pb2.Envelope.DESCRIPTOR.fields_by_name)
    # A hop or a query is an item of its result's list, not a result.
    body = {f.name for f in dataclasses.fields(result_type)} - envelope
    assert body <= set(message.DESCRIPTOR.fields_by_name)  # type: ignore[attr-defined]


def test_every_measurement_has_a_body_on_the_wire() -> None:
    members = {f.name for f in results_pb2.Result.DESCRIPTOR.oneofs_by_name["body"].fields}
    assert set(BODY_FIELD_BY_MEASUREMENT) == set(MEASUREMENTS)
    assert set(BODY_FIELD_BY_MEASUREMENT.values()) <= members


def test_the_agents_reason_kinds_are_the_protos() -> None:
    on_the_wire = {v.name for v in results_pb2.ReasonKind.DESCRIPTOR.values}
    assert {f"REASON_KIND_{kind.name}" for kind in ReasonKind} == on_the_wire - {
        "REASON_KIND_UNSPECIFIED"
    }


@pytest.mark.parametrize("kind", list(ReasonKind))
def test_the_reason_kind_travels_in_the_envelope(kind: ReasonKind) -> None:
    result = ThroughputResult(
        measured_at=datetime(2026, 11, 24, 1, 0, tzinfo=UTC),
        status=Status.OK if kind is ReasonKind.NONE else Status.FAILED,
        status_reason="" if kind is ReasonKind.NONE else "why, in words",
        status_reason_kind=kind,
        method=Method(tool="iperf3"),
        direction=Direction.DOWNLOAD,
    )
    message = to_proto("download", result, PROBE, ClockState.SYNCHRONISED)
    assert message.envelope.status_reason_kind == results_pb2.ReasonKind.Value(
        f"REASON_KIND_{kind.name}"
    )
    assert to_json_dict(message)["envelope"]["status_reason_kind"] == f"REASON_KIND_{kind.name}"


def test_a_traceroutes_hops_travel_as_a_list_of_messages() -> None:
    result = TracerouteResult(
        measured_at=datetime(2026, 11, 24, 1, 0, tzinfo=UTC),
        status=Status.OK,
        method=Method(tool="scapy-paris-traceroute-udp"),
        protocol="udp",
        target="198.18.0.1",
        hops=(
            TracerouteHop(hop=1, address="198.18.3.0/24", rtts_ms=(0.4, 0.6), probes_sent=3,
                          icmp_type=11, icmp_code=0, segment="home"),
            TracerouteHop(hop=2, probes_sent=3, loss_pct=100.0),
        ),
    )  # fmt: skip

    message = to_proto("traceroute_udp", result, PROBE, ClockState.SYNCHRONISED)

    first, silent = message.traceroute.hops
    assert (first.hop, first.address, list(first.rtts_ms), first.segment) == (
        1, "198.18.3.0/24", [0.4, 0.6], "home",
    )  # fmt: skip
    assert first.HasField("icmp_code") and first.icmp_code == 0  # 0 is a code, not "unset"
    assert not silent.HasField("icmp_type") and silent.loss_pct == 100.0


def test_every_text_leaves_the_agent_flat_and_within_the_ingests_limit() -> None:
    # A resolver's failure quotes an exception's text (newlines, tabs, a NUL):
    # the aggregator would refuse the whole result for it.
    result = DnsResult(
        measured_at=datetime(2026, 11, 24, 1, 0, tzinfo=UTC),
        status=Status.FAILED,
        status_reason="no answer from 198.18.0.53:\n\ttimed out\x00 " + "x" * 600,
        status_reason_kind=ReasonKind.NETWORK_ERROR,
        method=Method(tool="dnspython", tool_version="dnspython\t2.6\r\n"),
        resolver="198.18.0.53",
        queries=(
            DnsQuery(hostname="ref.example", rdtype="A", answers=("198.18.0.1\n",),
                     failed=True, reason="Timeout:\nThe DNS operation timed out.\x85"),
        ),
    )  # fmt: skip

    message = to_proto("dns", result, PROBE, ClockState.SYNCHRONISED)

    reason = message.envelope.status_reason
    assert reason.startswith("no answer from 198.18.0.53: timed out xxx")
    assert len(reason) == MAX_TEXT_CHARS and reason.endswith("…")
    assert message.envelope.method.tool_version == "dnspython 2.6"
    (query,) = message.dns.queries
    assert query.reason == "Timeout: The DNS operation timed out."
    assert list(query.answers) == ["198.18.0.1"]
    # Text without control characters, within the limit, is left exactly as it is.
    assert query.hostname == "ref.example"
    assert flat_text("Cần Thơ  —\u00a0©") == "Cần Thơ  —\u00a0©"
