"""Typed measurement results to wire messages, and back to JSON for people.

The result dataclasses (agent/measurements/) and the proto messages
(proto/wardprobe/v1/results.proto) use the same field names; this module
maps one onto the other by name, so a field added to both needs no code
here. tests/agent/test_wire.py checks that every result field has its
place in the proto. Which body member carries a measurement's result is
in the measurement table (agent/measurements/__init__.py).

Every text of a message `to_proto` makes is flattened on its way out
(`flat_text`): the aggregator refuses a text that holds a control character
or is longer than wardprobe.text.MAX_TEXT_CHARS, and a failure's reason
often quotes a tool's or an exception's text, newlines and all. Flattening
here, the one place every result passes, keeps a measurement from being
refused for what the agent wrote itself.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import uuid6
from google.protobuf import json_format
from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from agent.clock import ClockState
from agent.measurements import MEASUREMENTS
from agent.measurements.base import MeasurementResult
from wardprobe.text import MAX_TEXT_CHARS
from wardprobe.v1 import results_pb2

# Which oneof member of `Result` carries each measurement's body.
BODY_FIELD_BY_MEASUREMENT = {name: entry.body for name, entry in MEASUREMENTS.items()}

_ENVELOPE_FIELDS = {f.name for f in dataclasses.fields(MeasurementResult)}

# A run of control characters (Unicode category Cc: C0, DEL, C1, the set the
# aggregator refuses), with the spaces around it.
_CONTROL_RUN = re.compile(r" *[\x00-\x1f\x7f-\x9f][\x00-\x1f\x7f-\x9f ]*")
_CUT_MARK = "\u2026"  # "…": a person reading the text sees it was cut


@dataclass(frozen=True)
class ProbeContext:
    """What the agent adds to every result: who measured, where, on what line."""

    probe_id: str
    ward_code: int
    agent_version: str
    network_kind: str  # "fixed" | "mobile"


def new_result_id() -> str:
    """A UUIDv7: time-ordered, made on the probe, the store's primary key."""
    return str(uuid6.uuid7())


def _enum_value(descriptor: EnumDescriptor, value: object) -> int:
    """Map "download" to DIRECTION_DOWNLOAD, "ipv6" to IP_FAMILY_IPV6, None to 0."""
    if value is None:
        return 0
    text = value.value if isinstance(value, enum.Enum) else value
    suffix = "_" + str(text).upper()
    for candidate in descriptor.values:
        if candidate.name.endswith(suffix):
            return int(candidate.number)
    raise ValueError(f"{value!r} has no value in enum {descriptor.full_name}")


def to_proto(
    measurement: str,
    result: MeasurementResult,
    probe: ProbeContext,
    clock: ClockState,
    result_id: str | None = None,
) -> results_pb2.Result:
    """The wire message for one result, with the full envelope."""
    message = results_pb2.Result()
    env = message.envelope
    env.result_id = result_id or new_result_id()
    env.measured_at.FromDatetime(result.measured_at.astimezone(UTC))
    env.agent_version = probe.agent_version
    env.interface = result.interface
    env.network_kind = cast(
        results_pb2.NetworkKind, _enum_value(results_pb2.NetworkKind.DESCRIPTOR, probe.network_kind)
    )
    env.ip_family = cast(
        results_pb2.IpFamily, _enum_value(results_pb2.IpFamily.DESCRIPTOR, result.ip_family)
    )
    env.clock_sync = cast(
        results_pb2.ClockSync, _enum_value(results_pb2.ClockSync.DESCRIPTOR, clock)
    )
    env.status = cast(results_pb2.Status, _enum_value(results_pb2.Status.DESCRIPTOR, result.status))
    env.status_reason = result.status_reason
    env.status_reason_kind = cast(
        results_pb2.ReasonKind,
        _enum_value(results_pb2.ReasonKind.DESCRIPTOR, result.status_reason_kind),
    )
    env.ward_code = probe.ward_code
    env.probe_id = probe.probe_id
    _fill(env.method, dataclasses.asdict(result.method))

    body = getattr(message, BODY_FIELD_BY_MEASUREMENT[measurement])
    body.SetInParent()  # an all-unset body (a skipped test) still says its kind
    _fill(
        body,
        {
            f.name: getattr(result, f.name)
            for f in dataclasses.fields(result)
            if f.name not in _ENVELOPE_FIELDS
        },
    )
    flatten_texts(message)
    return message


def flat_text(text: str) -> str:
    """A text the aggregator takes: each run of control characters (a line
    feed, a tab, a NUL, ...) with the spaces around it becomes one space, a
    run at either end goes, and a text longer than MAX_TEXT_CHARS is cut to
    that length, its last character "…". Any other text is returned as it is."""
    if _CONTROL_RUN.search(text) is not None:
        text = _CONTROL_RUN.sub(" ", text).strip(" ")
    if len(text) > MAX_TEXT_CHARS:
        text = text[: MAX_TEXT_CHARS - len(_CUT_MARK)] + _CUT_MARK
    return text


def flatten_texts(message: Message) -> None:
    """Apply `flat_text` to every text field of a message, in place, the
    texts of its nested messages and lists (a traceroute's hops) too."""
    for descriptor, value in message.ListFields():
        if descriptor.type == FieldDescriptor.TYPE_MESSAGE:
            for item in value if descriptor.is_repeated else (value,):
                flatten_texts(item)
        elif descriptor.type == FieldDescriptor.TYPE_STRING:
            if descriptor.is_repeated:
                value[:] = [flat_text(item) for item in value]
            else:
                setattr(message, descriptor.name, flat_text(value))


def _fill(message: Any, values: dict[str, object]) -> None:
    fields = message.DESCRIPTOR.fields_by_name
    for name, value in values.items():
        descriptor = fields.get(name)
        if descriptor is None:
            raise ValueError(f"{message.DESCRIPTOR.full_name} has no field {name!r}")
        if value is None:
            continue  # unset: the proto says "not measured"
        if descriptor.is_repeated:
            # A tuple of dataclasses (a traceroute's hops) or of plain values.
            container = getattr(message, name)
            for item in cast(tuple[object, ...], value):
                if descriptor.message_type is not None:
                    _fill(container.add(), dataclasses.asdict(cast(Any, item)))
                else:
                    container.append(item)
        elif descriptor.type == FieldDescriptor.TYPE_ENUM:
            setattr(message, name, _enum_value(descriptor.enum_type, value))
        else:
            setattr(message, name, value)


def to_json_dict(message: results_pb2.Result) -> dict[str, Any]:
    """A result as a JSON-ready dict with proto field names (for `once` and logs)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def measured_at(message: results_pb2.Result) -> datetime:
    return message.envelope.measured_at.ToDatetime(tzinfo=UTC)
