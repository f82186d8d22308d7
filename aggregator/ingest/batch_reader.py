"""Reading received batches into raw Arrow columns, in the ingest's worker processes.

`read_batch` parses one message and reads every result into columns; it is
the only per-result Python of the ingest path, so the aggregator runs it in
a pool of processes (it needs nothing but its arguments) and the main
process keeps its GIL for gRPC and the writer. It imports neither DuckDB
nor the aggregator's other modules, to keep the workers small.
aggregator/ingest/commit.py then validates and types whole groups of batches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.ipc
from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet
from google.rpc import code_pb2, error_details_pb2

from wardprobe.v1 import ingest_pb2, results_pb2

log = logging.getLogger(__name__)

# The result kinds are the members of Result's `body` oneof; each has a table.
RESULT_TABLES: tuple[str, ...] = tuple(
    f.name for f in results_pb2.Result.DESCRIPTOR.oneofs_by_name["body"].fields
)


@dataclass(frozen=True)
class IngestLimits:
    """What the aggregator accepts. Documented in docs/ingest.md."""

    max_batch_results: int = 5000
    max_message_bytes: int = 4 * 1024 * 1024
    # A probe clock may run a little ahead; beyond this a time is refused.
    future_tolerance: timedelta = timedelta(minutes=10)
    oldest_measured_at: datetime = datetime(2020, 1, 1, tzinfo=UTC)
    max_text_chars: int = 512
    # Speeds above this are not physically plausible for an access line.
    max_mbps: float = 100_000.0
    max_rtt_ms: float = 60_000.0


# Enum numbers (from the .proto) to the words the store keeps. A number
# missing from a map is refused; None maps "unspecified" to NULL.

Row = tuple[object, ...]

# The columns read from each result, in the order the readers below return
# them. Enums are still numbers here; `_finish` maps them to words.
ENVELOPE_COLUMNS = (
    "index",
    "result_id",
    "claimed_probe_id",
    "ward_code",
    # measured_at as the Timestamp's two fields: any value the wire allows
    # fits in int64 this way, and the converter checks them before combining.
    "measured_at_s",
    "measured_at_nanos",
    "agent_version",
    "interface",
    "network_kind",
    "ip_family",
    "clock_sync",
    "tool",
    "tool_version",
    "server",
    "server_port",
    "duration_s",
    "streams",
    "status",
    "status_reason",
    "status_reason_kind",
)
BODY_COLUMNS: dict[str, tuple[str, ...]] = {
    "throughput": (
        "direction",
        "mbps",
        "bytes_transferred",
        "measured_s",
        "retransmits",
        "omitted_s",
        "link_speed_mbps",
        "mtu",
        "local_address",
        "idle_rtt_median_ms",
        "loaded_rtt_median_ms",
        "loaded_rtt_p95_ms",
        "cross_traffic_bytes_per_s",
        "cpu_load_pct",
        "access_tech",
        "access_tech_end",
        "mcc_mnc",
        "operator_name",
    ),
    "latency": (
        "protocol",
        "target",
        "target_port",
        "packets_sent",
        "packets_received",
        "rtt_min_ms",
        "rtt_median_ms",
        "rtt_p95_ms",
        "rtt_max_ms",
        "jitter_ms",
        "loss_pct",
        "access_tech",
        "mcc_mnc",
        "operator_name",
    ),
    "ipv6": (
        "has_global_address",
        "has_default_route",
        "aaaa_resolves",
        "ipv6_only_tcp_ok",
        "ipv6_only_connect_ms",
        "large_packet_ok",
        "dual_stack_family",
        "ipv6_capable",
        "ipv6_preferred",
        "global_prefix",
    ),
    "cellular": (
        "access_tech",
        "mcc_mnc",
        "operator_name",
        "band",
        "channel",
        "cell_id",
        "tac",
        "rsrp_dbm",
        "rsrq_db",
        "sinr_db",
        "registration_state",
        "modem_model",
        "modem_5g_capable",
        "backend",
        "nr_band",
        "nr_rsrp_dbm",
        "nr_sinr_db",
        "pci",
        "nr_channel",
        "nr_pci",
        "rssi_dbm",
        "rscp_dbm",
        "ecio_db",
        "sinr_raw",
        "sinr_conversion",
        "nr_sinr_raw",
        "nr_sinr_conversion",
    ),
}
# Where each column sits in the message, for the field path of a rejection.


# The readers below are the only per-result Python of the ingest path, so
# they are written out by hand: an optional (proto3 `optional`) field is read
# as `x.f if x.HasField("f") else None`, without a helper call per field.
def _read_envelope(index: int, env: results_pb2.Envelope) -> Row:
    method = env.method
    at = env.measured_at if env.HasField("measured_at") else None
    return (
        index,
        env.result_id,
        env.probe_id,
        env.ward_code,
        (at.seconds if at is not None else None),
        (at.nanos if at is not None else None),
        env.agent_version,
        env.interface,
        env.network_kind,
        env.ip_family,
        env.clock_sync,
        method.tool,
        method.tool_version,
        method.server,
        (method.server_port if method.HasField("server_port") else None),
        (method.duration_s if method.HasField("duration_s") else None),
        (method.streams if method.HasField("streams") else None),
        env.status,
        env.status_reason,
        env.status_reason_kind,
    )


def _read_throughput(body: results_pb2.ThroughputResult) -> Row:
    return (
        body.direction,
        (body.mbps if body.HasField("mbps") else None),
        (body.bytes_transferred if body.HasField("bytes_transferred") else None),
        (body.measured_s if body.HasField("measured_s") else None),
        (body.retransmits if body.HasField("retransmits") else None),
        (body.omitted_s if body.HasField("omitted_s") else None),
        (body.link_speed_mbps if body.HasField("link_speed_mbps") else None),
        (body.mtu if body.HasField("mtu") else None),
        body.local_address,
        (body.idle_rtt_median_ms if body.HasField("idle_rtt_median_ms") else None),
        (body.loaded_rtt_median_ms if body.HasField("loaded_rtt_median_ms") else None),
        (body.loaded_rtt_p95_ms if body.HasField("loaded_rtt_p95_ms") else None),
        (body.cross_traffic_bytes_per_s if body.HasField("cross_traffic_bytes_per_s") else None),
        (body.cpu_load_pct if body.HasField("cpu_load_pct") else None),
        body.access_tech,
        body.access_tech_end,
        body.mcc_mnc,
        body.operator_name,
    )


def _read_latency(body: results_pb2.LatencyResult) -> Row:
    return (
        body.protocol,
        body.target,
        (body.target_port if body.HasField("target_port") else None),
        body.packets_sent,
        body.packets_received,
        (body.rtt_min_ms if body.HasField("rtt_min_ms") else None),
        (body.rtt_median_ms if body.HasField("rtt_median_ms") else None),
        (body.rtt_p95_ms if body.HasField("rtt_p95_ms") else None),
        (body.rtt_max_ms if body.HasField("rtt_max_ms") else None),
        (body.jitter_ms if body.HasField("jitter_ms") else None),
        (body.loss_pct if body.HasField("loss_pct") else None),
        body.access_tech,
        body.mcc_mnc,
        body.operator_name,
    )


def _read_ipv6(body: results_pb2.Ipv6Result) -> Row:
    return (
        (body.has_global_address if body.HasField("has_global_address") else None),
        (body.has_default_route if body.HasField("has_default_route") else None),
        (body.aaaa_resolves if body.HasField("aaaa_resolves") else None),
        (body.ipv6_only_tcp_ok if body.HasField("ipv6_only_tcp_ok") else None),
        (body.ipv6_only_connect_ms if body.HasField("ipv6_only_connect_ms") else None),
        (body.large_packet_ok if body.HasField("large_packet_ok") else None),
        body.dual_stack_family,
        (body.ipv6_capable if body.HasField("ipv6_capable") else None),
        (body.ipv6_preferred if body.HasField("ipv6_preferred") else None),
        body.global_prefix,
    )


def _read_cellular(body: results_pb2.CellularObservation) -> Row:
    return (
        body.access_tech,
        body.mcc_mnc,
        body.operator_name,
        (body.band if body.HasField("band") else None),
        (body.channel if body.HasField("channel") else None),
        body.cell_id,
        body.tac,
        (body.rsrp_dbm if body.HasField("rsrp_dbm") else None),
        (body.rsrq_db if body.HasField("rsrq_db") else None),
        (body.sinr_db if body.HasField("sinr_db") else None),
        body.registration_state,
        body.modem_model,
        (body.modem_5g_capable if body.HasField("modem_5g_capable") else None),
        body.backend,
        (body.nr_band if body.HasField("nr_band") else None),
        (body.nr_rsrp_dbm if body.HasField("nr_rsrp_dbm") else None),
        (body.nr_sinr_db if body.HasField("nr_sinr_db") else None),
        (body.pci if body.HasField("pci") else None),
        (body.nr_channel if body.HasField("nr_channel") else None),
        (body.nr_pci if body.HasField("nr_pci") else None),
        (body.rssi_dbm if body.HasField("rssi_dbm") else None),
        (body.rscp_dbm if body.HasField("rscp_dbm") else None),
        (body.ecio_db if body.HasField("ecio_db") else None),
        (body.sinr_raw if body.HasField("sinr_raw") else None),
        body.sinr_conversion,
        (body.nr_sinr_raw if body.HasField("nr_sinr_raw") else None),
        body.nr_sinr_conversion,
    )


_READERS: dict[str, Callable[[object], Row]] = {
    "throughput": _read_throughput,  # type: ignore[dict-item]
    "latency": _read_latency,  # type: ignore[dict-item]
    "ipv6": _read_ipv6,  # type: ignore[dict-item]
    "cellular": _read_cellular,  # type: ignore[dict-item]
}


_BATCH_FIELD_NUMBERS = frozenset(ingest_pb2.ResultBatch.DESCRIPTOR.fields_by_number)


@dataclass(frozen=True)
class StreamError:
    """The batch as a whole is unusable: the stream ends with this status."""

    code: int  # google.rpc.Code
    message: str
    field: str | None = None


@dataclass(frozen=True)
class ReadOutcome:
    """What a read worker sends back for one raw batch (picklable, compact)."""

    sequence: int = 0
    tables_ipc: dict[str, bytes] = field(default_factory=dict)  # Arrow IPC stream per kind
    rejections: tuple[bytes, ...] = ()  # serialised Rejection messages
    error: StreamError | None = None


def read_batch(
    raw: bytes, raw_types: dict[str, dict[str, pa.DataType]], limits: IngestLimits
) -> ReadOutcome:
    """Parse one received message and read every result into raw columns.

    This is the only per-result Python of the ingest path; the aggregator runs
    it in worker processes (it needs nothing but its arguments), so that it
    does not compete for the GIL with gRPC and the writer thread."""
    if len(raw) > limits.max_message_bytes:
        return ReadOutcome(error=StreamError(
            code_pb2.RESOURCE_EXHAUSTED,
            f"batch of {len(raw)} bytes is over the limit of {limits.max_message_bytes}",
        ))  # fmt: skip
    try:
        batch = ingest_pb2.ResultBatch.FromString(raw)
    except DecodeError as err:
        # The parser's own text is not for clients (docs/ingest.md); it goes to the log.
        log.info("a message that is not a ResultBatch: %s", err)
        return ReadOutcome(error=StreamError(
            code_pb2.INVALID_ARGUMENT, "the message is not a wardprobe.v1.ResultBatch", "batch",
        ))  # fmt: skip
    unknown_fields = UnknownFieldSet(batch)
    for unknown in (unknown_fields[i] for i in range(len(unknown_fields))):
        # A field of a newer agent's batch is unknown here and ignored (protobuf's
        # forward compatibility); one of ours with the wrong wire type parses as
        # unknown too, and that is a corrupt batch: say which.
        if unknown.field_number in _BATCH_FIELD_NUMBERS:
            return ReadOutcome(error=StreamError(
                code_pb2.INVALID_ARGUMENT,
                f"field number {unknown.field_number} has the wrong type (wire type "
                f"{unknown.wire_type}) for a wardprobe.v1.ResultBatch",
                "batch",
            ))  # fmt: skip
    if batch.sequence == 0:
        return ReadOutcome(
            error=StreamError(code_pb2.INVALID_ARGUMENT, "sequence must be > 0", "sequence")
        )
    if len(batch.results) > limits.max_batch_results:
        return ReadOutcome(error=StreamError(
            code_pb2.RESOURCE_EXHAUSTED,
            f"batch of {len(batch.results)} results is over the limit of "
            f"{limits.max_batch_results}",
            "results",
        ))  # fmt: skip
    rows: dict[str, list[Row]] = {t: [] for t in RESULT_TABLES}
    rejections = []
    for index, result in enumerate(batch.results):
        kind = result.WhichOneof("body")
        if not result.HasField("envelope"):
            rejections.append(rejection(index, "", f"results[{index}].envelope", "missing"))
        elif kind is None:
            rejections.append(rejection(
                index, result.envelope.result_id[:64], f"results[{index}].body",
                "no throughput, latency, ipv6 or cellular result",
            ))  # fmt: skip
        else:
            rows[kind].append(
                _read_envelope(index, result.envelope) + _READERS[kind](getattr(result, kind))
            )
    tables_ipc = {}
    for kind, kind_rows in rows.items():
        if not kind_rows:
            continue
        types = raw_types[kind]
        names = ENVELOPE_COLUMNS + BODY_COLUMNS[kind]
        try:
            arrays = [
                pa.array(values, types[name])
                for name, values in zip(names, zip(*kind_rows, strict=True), strict=True)
            ]
        except (pa.ArrowInvalid, OverflowError) as err:
            # Every raw type holds any value its wire type allows, so this is a
            # bug here, not the probe's: the detail is for the log only.
            log.error("cannot read a batch's %s results into columns: %s", kind, err)
            return ReadOutcome(error=StreamError(
                code_pb2.INVALID_ARGUMENT, f"the {kind} results of this batch cannot be read",
                "batch",
            ))  # fmt: skip
        table = pa.Table.from_arrays(arrays, names=list(names))
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        tables_ipc[kind] = sink.getvalue().to_pybytes()
    return ReadOutcome(
        sequence=batch.sequence,
        tables_ipc=tables_ipc,
        rejections=tuple(r.SerializeToString() for r in rejections),
    )


def rejection(
    index: int, result_id: str, field_path: str, reason: str, code: int = code_pb2.INVALID_ARGUMENT
) -> ingest_pb2.Rejection:
    bad_request = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field_path, description=reason)
        ]
    )
    return ingest_pb2.Rejection(
        index=index, result_id=result_id, code=code, bad_request=bad_request
    )
