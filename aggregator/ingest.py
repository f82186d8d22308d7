"""From a received batch to rows in the store: validation, columns, group commit.

The servicer (aggregator/server.py) hands each parsed `ResultBatch` to
`BatchConverter.convert`, which checks every result and turns the good ones
into Arrow columns; a bad result becomes a `Rejection` naming the field and
the reason, and never costs the good results of its batch. `GroupCommitter`
then gathers the batches of all streams for a few milliseconds and commits
them with one insert per table, so a whole city's backlog goes in as a few
large inserts rather than many small ones. Acks go out only after the commit.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from google.rpc import code_pb2, error_details_pb2

from aggregator.store import RESULT_TABLES, Store
from wardprobe.v1 import ingest_pb2, results_pb2


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


class InvalidField(Exception):
    """One result fails validation: the field (path in the batch) and why."""

    def __init__(self, field_path: str, reason: str, code: int = code_pb2.INVALID_ARGUMENT):
        super().__init__(f"{field_path}: {reason}")
        self.field_path = field_path
        self.reason = reason
        self.code = code


_NETWORK_KIND = {
    results_pb2.NETWORK_KIND_FIXED: "fixed",
    results_pb2.NETWORK_KIND_MOBILE: "mobile",
}
_IP_FAMILY = {
    results_pb2.IP_FAMILY_UNSPECIFIED: None,
    results_pb2.IP_FAMILY_IPV4: "ipv4",
    results_pb2.IP_FAMILY_IPV6: "ipv6",
}
_CLOCK_SYNC = {
    results_pb2.CLOCK_SYNC_UNSPECIFIED: "unknown",
    results_pb2.CLOCK_SYNC_SYNCHRONISED: "synchronised",
    results_pb2.CLOCK_SYNC_UNSYNCHRONISED: "unsynchronised",
    results_pb2.CLOCK_SYNC_UNKNOWN: "unknown",
}
_STATUS = {
    results_pb2.STATUS_OK: "ok",
    results_pb2.STATUS_FAILED: "failed",
    results_pb2.STATUS_SKIPPED: "skipped",
}
_DIRECTION = {
    results_pb2.DIRECTION_DOWNLOAD: "download",
    results_pb2.DIRECTION_UPLOAD: "upload",
}
_ACCESS_TECH = {
    results_pb2.ACCESS_TECH_UNSPECIFIED: None,
    results_pb2.ACCESS_TECH_NONE: "none",
    results_pb2.ACCESS_TECH_GSM: "gsm",
    results_pb2.ACCESS_TECH_UMTS: "umts",
    results_pb2.ACCESS_TECH_LTE: "lte",
    results_pb2.ACCESS_TECH_NR5G_NSA: "nr5g_nsa",
    results_pb2.ACCESS_TECH_NR5G_SA: "nr5g_sa",
}

# Column order of the values each extractor returns; the store inserts by name.
ENVELOPE_COLUMNS = (
    "result_id", "probe_id", "ward_code", "measured_at", "received_at", "agent_version",
    "interface", "network_kind", "ip_family", "clock_sync", "tool", "tool_version", "server",
    "server_port", "duration_s", "streams", "status", "status_reason",
)
BODY_COLUMNS: dict[str, tuple[str, ...]] = {
    "throughput": (
        "direction", "mbps", "bytes_transferred", "measured_s", "retransmits", "omitted_s",
    ),
    "latency": (
        "protocol", "target", "target_port", "packets_sent", "packets_received", "rtt_min_ms",
        "rtt_median_ms", "rtt_p95_ms", "rtt_max_ms", "jitter_ms", "loss_pct",
    ),
    "ipv6": (
        "has_global_address", "has_default_route", "aaaa_resolves", "ipv6_only_tcp_ok",
        "ipv6_only_connect_ms", "large_packet_ok", "dual_stack_family", "ipv6_capable",
        "ipv6_preferred", "global_prefix",
    ),
    "cellular": (
        "access_tech", "mcc_mnc", "operator_name", "band", "channel", "cell_id", "tac",
        "rsrp_dbm", "rsrq_db", "sinr_db", "registration_state", "modem_model",
        "modem_5g_capable", "backend", "nr_band", "nr_rsrp_dbm", "nr_sinr_db",
    ),
}

Row = tuple[object, ...]


@dataclass
class ConvertedBatch:
    """A batch after validation: Arrow rows per table, and what was refused."""

    sequence: int
    tables: dict[str, pa.Table] = field(default_factory=dict)
    rejections: list[ingest_pb2.Rejection] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return sum(t.num_rows for t in self.tables.values())


class BatchConverter:
    """Validates results and turns them into Arrow tables shaped like the store's."""

    def __init__(
        self,
        arrow_schemas: dict[str, pa.Schema],
        is_known_ward: Callable[[int], bool],
        limits: IngestLimits,
    ) -> None:
        self._schemas = arrow_schemas
        self._is_known_ward = is_known_ward
        self._limits = limits
        for table, body in BODY_COLUMNS.items():
            expected = set(ENVELOPE_COLUMNS) | set(body)
            if set(arrow_schemas[table].names) != expected:
                raise RuntimeError(f"schema.sql and ingest.py disagree on table {table}")

    def convert(
        self, batch: ingest_pb2.ResultBatch, probe_id: str, received_at: datetime
    ) -> ConvertedBatch:
        """Check each result of the batch; keep the good ones as rows."""
        now = received_at
        received_us = _to_micros(received_at)
        latest_us = _to_micros(now + self._limits.future_tolerance)
        oldest_us = _to_micros(self._limits.oldest_measured_at)
        rows: dict[str, list[Row]] = {t: [] for t in RESULT_TABLES}
        out = ConvertedBatch(sequence=batch.sequence)
        seen: set[str] = set()
        for index, result in enumerate(batch.results):
            try:
                table, row = self._convert_one(
                    index, result, probe_id, received_us, oldest_us, latest_us
                )
                if row[0] in seen:
                    raise InvalidField(
                        f"results[{index}].envelope.result_id", "appears twice in this batch"
                    )
                seen.add(str(row[0]))
                rows[table].append(row)
            except InvalidField as err:
                out.rejections.append(_rejection(index, result, err))
        for table, table_rows in rows.items():
            if table_rows:
                out.tables[table] = self._to_arrow(table, table_rows)
        return out

    def _to_arrow(self, table: str, rows: list[Row]) -> pa.Table:
        schema = self._schemas[table]
        names = ENVELOPE_COLUMNS + BODY_COLUMNS[table]
        columns = list(zip(*rows, strict=True))
        arrays = [pa.array(col, type=schema.field(name).type) for name, col in zip(names, columns, strict=True)]
        return pa.Table.from_arrays(arrays, names=list(names))

    def _convert_one(
        self,
        index: int,
        result: results_pb2.Result,
        probe_id: str,
        received_us: int,
        oldest_us: int,
        latest_us: int,
    ) -> tuple[str, Row]:
        path = f"results[{index}]"
        if not result.HasField("envelope"):
            raise InvalidField(f"{path}.envelope", "missing")
        env = result.envelope
        epath = f"{path}.envelope"
        try:
            result_uuid = uuid.UUID(env.result_id)
        except ValueError:
            raise InvalidField(f"{epath}.result_id", f"not a UUID: {env.result_id[:64]!r}") from None
        if result_uuid.version != 7:
            raise InvalidField(f"{epath}.result_id", "must be a UUIDv7 made on the probe")
        if env.probe_id and env.probe_id != probe_id:
            raise InvalidField(
                f"{epath}.probe_id",
                f"claims probe {env.probe_id[:64]!r} but the client certificate is {probe_id!r}",
                code_pb2.PERMISSION_DENIED,
            )
        if not self._is_known_ward(env.ward_code):
            raise InvalidField(
                f"{epath}.ward_code", f"unknown ward code {env.ward_code} (not a Cần Thơ ward)"
            )
        if not env.HasField("measured_at"):
            raise InvalidField(f"{epath}.measured_at", "missing")
        measured_us = env.measured_at.seconds * 1_000_000 + env.measured_at.nanos // 1000
        if measured_us > latest_us:
            raise InvalidField(f"{epath}.measured_at", "is in the future")
        if measured_us < oldest_us:
            raise InvalidField(f"{epath}.measured_at", "is before 2020: the probe clock is wrong")
        network_kind = _NETWORK_KIND.get(env.network_kind)
        if network_kind is None:
            raise InvalidField(f"{epath}.network_kind", "must be fixed or mobile")
        status = _STATUS.get(env.status)
        if status is None:
            raise InvalidField(f"{epath}.status", "must be ok, failed or skipped")
        if env.ip_family not in _IP_FAMILY:
            raise InvalidField(f"{epath}.ip_family", f"unknown value {env.ip_family}")
        if env.clock_sync not in _CLOCK_SYNC:
            raise InvalidField(f"{epath}.clock_sync", f"unknown value {env.clock_sync}")
        method = env.method
        mpath = f"{epath}.method"
        text = self._text
        envelope: Row = (
            str(result_uuid),
            probe_id,
            env.ward_code,
            measured_us,
            received_us,
            text(env.agent_version, f"{epath}.agent_version"),
            text(env.interface, f"{epath}.interface"),
            network_kind,
            _IP_FAMILY[env.ip_family],
            _CLOCK_SYNC[env.clock_sync],
            text(method.tool, f"{mpath}.tool"),
            text(method.tool_version, f"{mpath}.tool_version"),
            text(method.server, f"{mpath}.server"),
            _port(method, "server_port", mpath),
            _number(method, "duration_s", mpath, 0.0, 86_400.0),
            _count(method, "streams", mpath, 1024) if method.HasField("streams") else None,
            status,
            text(env.status_reason, f"{epath}.status_reason") or None,
        )
        kind = result.WhichOneof("body")
        if kind is None:
            raise InvalidField(f"{path}.body", "no throughput, latency, ipv6 or cellular result")
        bpath = f"{path}.{kind}"
        ok = status == "ok"
        if kind == "throughput":
            return kind, envelope + self._throughput(result.throughput, bpath, ok)
        if kind == "latency":
            return kind, envelope + self._latency(result.latency, bpath)
        if kind == "ipv6":
            return kind, envelope + self._ipv6(result.ipv6, bpath)
        return kind, envelope + self._cellular(result.cellular, bpath)

    def _text(self, value: str, field_path: str) -> str:
        if len(value) > self._limits.max_text_chars:
            raise InvalidField(field_path, f"longer than {self._limits.max_text_chars} characters")
        return value

    def _throughput(self, body: results_pb2.ThroughputResult, path: str, ok: bool) -> Row:
        direction = _DIRECTION.get(body.direction)
        if direction is None:
            raise InvalidField(f"{path}.direction", "must be download or upload")
        mbps = _number(body, "mbps", path, 0.0, self._limits.max_mbps)
        if ok and mbps is None:
            raise InvalidField(f"{path}.mbps", "missing on a result with status ok")
        return (
            direction,
            mbps,
            body.bytes_transferred if body.HasField("bytes_transferred") else None,
            _number(body, "measured_s", path, 0.0, 86_400.0),
            _count(body, "retransmits", path, 2**31 - 1) if body.HasField("retransmits") else None,
            _number(body, "omitted_s", path, 0.0, 86_400.0),
        )

    def _latency(self, body: results_pb2.LatencyResult, path: str) -> Row:
        if body.protocol not in ("icmp", "tcp"):
            raise InvalidField(f"{path}.protocol", "must be icmp or tcp")
        if body.packets_received > body.packets_sent:
            raise InvalidField(f"{path}.packets_received", "more replies than requests")
        max_rtt = self._limits.max_rtt_ms
        return (
            body.protocol,
            self._text(body.target, f"{path}.target"),
            _port(body, "target_port", path),
            body.packets_sent,
            body.packets_received,
            _number(body, "rtt_min_ms", path, 0.0, max_rtt),
            _number(body, "rtt_median_ms", path, 0.0, max_rtt),
            _number(body, "rtt_p95_ms", path, 0.0, max_rtt),
            _number(body, "rtt_max_ms", path, 0.0, max_rtt),
            _number(body, "jitter_ms", path, 0.0, max_rtt),
            _number(body, "loss_pct", path, 0.0, 100.0),
        )

    def _ipv6(self, body: results_pb2.Ipv6Result, path: str) -> Row:
        def flag(name: str) -> bool | None:
            return bool(getattr(body, name)) if body.HasField(name) else None

        if body.dual_stack_family not in _IP_FAMILY:
            raise InvalidField(f"{path}.dual_stack_family", f"unknown value {body.dual_stack_family}")
        return (
            flag("has_global_address"),
            flag("has_default_route"),
            flag("aaaa_resolves"),
            flag("ipv6_only_tcp_ok"),
            _number(body, "ipv6_only_connect_ms", path, 0.0, self._limits.max_rtt_ms),
            flag("large_packet_ok"),
            _IP_FAMILY[body.dual_stack_family],
            flag("ipv6_capable"),
            flag("ipv6_preferred"),
            self._text(body.global_prefix, f"{path}.global_prefix") or None,
        )

    def _cellular(self, body: results_pb2.CellularObservation, path: str) -> Row:
        if body.access_tech not in _ACCESS_TECH:
            raise InvalidField(f"{path}.access_tech", f"unknown value {body.access_tech}")
        if body.mcc_mnc and not (body.mcc_mnc.isdigit() and len(body.mcc_mnc) in (5, 6)):
            raise InvalidField(f"{path}.mcc_mnc", "must be 5 or 6 digits")
        text = self._text
        return (
            _ACCESS_TECH[body.access_tech],
            body.mcc_mnc or None,
            text(body.operator_name, f"{path}.operator_name") or None,
            _count(body, "band", path, 1024) if body.HasField("band") else None,
            _count(body, "channel", path, 3_279_165) if body.HasField("channel") else None,
            text(body.cell_id, f"{path}.cell_id") or None,
            text(body.tac, f"{path}.tac") or None,
            # 3GPP TS 36.133 / 38.133 reporting ranges, with a little slack.
            _number(body, "rsrp_dbm", path, -160.0, -30.0),
            _number(body, "rsrq_db", path, -45.0, 20.0),
            _number(body, "sinr_db", path, -30.0, 50.0),
            text(body.registration_state, f"{path}.registration_state") or None,
            text(body.modem_model, f"{path}.modem_model") or None,
            body.modem_5g_capable if body.HasField("modem_5g_capable") else None,
            text(body.backend, f"{path}.backend") or None,
            _count(body, "nr_band", path, 1024) if body.HasField("nr_band") else None,
            _number(body, "nr_rsrp_dbm", path, -160.0, -30.0),
            _number(body, "nr_sinr_db", path, -30.0, 50.0),
        )


def _number(message: object, name: str, path: str, low: float, high: float) -> float | None:
    """An optional double field: None when unset; refused when NaN, infinite or out of range."""
    if not message.HasField(name):  # type: ignore[attr-defined]
        return None
    value: float = getattr(message, name)
    if math.isnan(value) or math.isinf(value):
        raise InvalidField(f"{path}.{name}", f"{value} is not a number")
    if value < low or value > high:
        raise InvalidField(f"{path}.{name}", f"{value} is outside [{low:g}, {high:g}]")
    return value


def _count(message: object, name: str, path: str, high: int) -> int:
    value: int = getattr(message, name)
    if value > high:
        raise InvalidField(f"{path}.{name}", f"{value} is larger than {high}")
    return value


def _port(message: object, name: str, path: str) -> int | None:
    if not message.HasField(name):  # type: ignore[attr-defined]
        return None
    value: int = getattr(message, name)
    if not 0 < value < 65536:
        raise InvalidField(f"{path}.{name}", f"{value} is not a TCP/UDP port")
    return value


def _to_micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _rejection(index: int, result: results_pb2.Result, err: InvalidField) -> ingest_pb2.Rejection:
    bad_request = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=err.field_path, description=err.reason)
        ]
    )
    result_id = result.envelope.result_id[:64] if result.HasField("envelope") else ""
    return ingest_pb2.Rejection(
        index=index, result_id=result_id, code=err.code, bad_request=bad_request
    )


@dataclass(frozen=True)
class CommitCounts:
    stored: int
    duplicates: int


@dataclass
class _Pending:
    batch: ConvertedBatch
    done: asyncio.Future[CommitCounts]


class GroupCommitter:
    """Commits batches from all streams together, a few milliseconds at a time.

    One DuckDB insert per table per group: large inserts are what DuckDB is
    fast at, and the insert runs in a worker thread so the event loop goes on
    parsing the next batches meanwhile."""

    def __init__(self, store: Store, max_delay_s: float = 0.01, max_rows: int = 100_000) -> None:
        self._store = store
        self._max_delay_s = max_delay_s
        self._max_rows = max_rows
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        # One thread: DuckDB has one writing connection.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="duckdb-writer")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="group-commit")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)

    def submit(self, batch: ConvertedBatch) -> asyncio.Future[CommitCounts]:
        """Queue a batch; the future resolves once its rows are committed."""
        done: asyncio.Future[CommitCounts] = asyncio.get_running_loop().create_future()
        if batch.accepted == 0:
            done.set_result(CommitCounts(0, 0))
        else:
            self._queue.put_nowait(_Pending(batch, done))
        return done

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            group = [await self._queue.get()]
            rows = group[0].batch.accepted
            deadline = loop.time() + self._max_delay_s
            while rows < self._max_rows:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), timeout)
                except TimeoutError:
                    break
                group.append(item)
                rows += item.batch.accepted
            try:
                counts = await loop.run_in_executor(self._executor, self._commit, group)
            except Exception as err:  # the store failed (disk full, I/O error): tell every waiter
                for pending in group:
                    if not pending.done.done():
                        pending.done.set_exception(err)
                continue
            for pending, count in zip(group, counts, strict=True):
                if not pending.done.done():
                    pending.done.set_result(count)

    def _commit(self, group: list[_Pending]) -> list[CommitCounts]:
        stored = np.zeros(len(group), dtype=np.int64)
        for table in RESULT_TABLES:
            parts = [(i, p.batch.tables[table]) for i, p in enumerate(group) if table in p.batch.tables]
            if not parts:
                continue
            merged = pa.concat_tables([t for _, t in parts])
            new_ids = self._store.insert_results(table, merged)
            if len(new_ids) == merged.num_rows:
                for i, t in parts:
                    stored[i] += t.num_rows
                continue
            # Some were already stored, or sent twice within this group: find
            # whose, to tell each stream. The first copy of an id is the stored one.
            owner = np.concatenate([np.full(t.num_rows, i) for i, t in parts])
            ids = merged.column("result_id")
            is_new = pc.is_in(ids, value_set=new_ids).to_numpy(zero_copy_only=False)
            first_copy = np.zeros(merged.num_rows, dtype=bool)
            first_copy[np.unique(ids.to_numpy(zero_copy_only=False), return_index=True)[1]] = True
            stored += np.bincount(owner[is_new & first_copy], minlength=len(group))
        return [
            CommitCounts(stored=int(stored[i]), duplicates=p.batch.accepted - int(stored[i]))
            for i, p in enumerate(group)
        ]


def iter_field_violations(ack: ingest_pb2.BatchAck) -> Iterator[tuple[int, str, str]]:
    """(index, field, reason) for every refused result of an ack (for logs and the CLI)."""
    for rejection in ack.rejected:
        for violation in rejection.bad_request.field_violations:
            yield rejection.index, violation.field, violation.description
