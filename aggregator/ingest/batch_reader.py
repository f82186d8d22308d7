"""Reading received batches into raw Arrow columns, in the ingest's worker processes.

`read_batch` parses one message and reads every result into columns; it is
the only per-result Python of the ingest path, so the aggregator runs it in
a pool of processes (it needs nothing but its arguments) and the main
process keeps its GIL for gRPC and the writer. It imports neither DuckDB
nor the aggregator's other modules but tables.py (the result tables' columns
and the reader of each, derived from their one declaration), to keep the
workers small. aggregator/ingest/commit.py then validates and types whole
groups of batches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.ipc
from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet
from google.rpc import code_pb2, error_details_pb2

from aggregator.ingest.tables import RESULT_TABLES, TABLES, Row
from wardprobe.text import MAX_TEXT_CHARS
from wardprobe.v1 import ingest_pb2

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestLimits:
    """What the aggregator accepts. Documented in docs/ingest.md."""

    max_batch_results: int = 5000
    max_message_bytes: int = 4 * 1024 * 1024
    # A probe clock may run a little ahead; beyond this a time is refused.
    future_tolerance: timedelta = timedelta(minutes=10)
    oldest_measured_at: datetime = datetime(2020, 1, 1, tzinfo=UTC)
    max_text_chars: int = MAX_TEXT_CHARS  # the agent cuts its texts to it too
    # Received batches not answered yet, over all streams, in bytes as
    # received: beyond it a stream reads its next batch only when others are
    # answered (gRPC's flow control then holds the sender). What bounds the
    # aggregator's memory in a burst: each batch in flight is held as bytes,
    # then as Arrow columns, until its commit.
    max_in_flight_bytes: int = 16 * 1024 * 1024


# Each kind's reader of one result (compiled in tables.py from its declaration).
_READERS = {kind: table.read for kind, table in TABLES.items()}
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
    # What the probe said of its spool (None: an agent older than the fields).
    spool_depth: int | None = None
    spool_dropped: int | None = None


def read_batch(raw: bytes, limits: IngestLimits) -> ReadOutcome:
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
                f"no result: none of {', '.join(RESULT_TABLES)}",
            ))  # fmt: skip
        else:
            rows[kind].append(_READERS[kind](index, result))
    tables_ipc = {}
    for kind, kind_rows in rows.items():
        if not kind_rows:
            continue
        types = TABLES[kind].raw_types
        names = TABLES[kind].read_names
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
        spool_depth=batch.spool_depth if batch.HasField("spool_depth") else None,
        spool_dropped=batch.spool_dropped if batch.HasField("spool_dropped") else None,
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
