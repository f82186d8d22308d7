"""Typed results to wire messages (agent/wire.py): every field has its place
in the proto, and a result's reason kind travels with it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from agent.clock import ClockState
from agent.measurements import MEASUREMENTS
from agent.measurements.base import MeasurementResult, Method, ReasonKind, Status
from agent.measurements.cellular import CellularObservationResult
from agent.measurements.ipv6 import Ipv6Result
from agent.measurements.latency import LatencyResult
from agent.measurements.throughput import Direction, ThroughputResult
from agent.wire import BODY_FIELD_BY_MEASUREMENT, ProbeContext, to_json_dict, to_proto
from wardprobe.v1 import results_pb2

PROBE = ProbeContext(probe_id="p", ward_code=31135, agent_version="0.1.0", network_kind="fixed")


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
    assert envelope <= set(results_pb2.Envelope.DESCRIPTOR.fields_by_name)
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
