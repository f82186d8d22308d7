"""From read batches to rows in the store: validation, typing, group commit.

A read worker has turned each received message into raw Arrow columns per
result kind (`read_batch`, aggregator/ingest/batch_reader.py); the servicer
(aggregator/ingest/service.py) makes that a `ReadBatch` with the probe as the
registry has it now and submits it to `GroupCommitter`. The committer gathers
the batches of all streams for a few milliseconds, `BatchConverter.check`
checks the whole group's columns at once (vectorised rules, one per field and
reason) and types the good rows as the store's tables, and the group is
committed with one insert per table, so a whole city's backlog goes in as a
few large inserts rather than many small ones. A bad result becomes a
`Rejection` naming the field and the reason, and never costs the good
results of its batch. Acks go out only after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc
from google.rpc import code_pb2

from aggregator.enrolment.registry import ProbeIdentity, WardPeriod
from aggregator.ingest.batch_reader import (
    BODY_COLUMNS,
    ENVELOPE_COLUMNS,
    RESULT_TABLES,
    IngestLimits,
    ReadOutcome,
    rejection,
)
from aggregator.ingest.store import Store
from wardprobe.v1 import ingest_pb2, results_pb2

_NETWORK_KIND: dict[int, str | None] = {
    results_pb2.NETWORK_KIND_FIXED: "fixed",
    results_pb2.NETWORK_KIND_MOBILE: "mobile",
}
_IP_FAMILY: dict[int, str | None] = {
    results_pb2.IP_FAMILY_UNSPECIFIED: None,
    results_pb2.IP_FAMILY_IPV4: "ipv4",
    results_pb2.IP_FAMILY_IPV6: "ipv6",
}
_CLOCK_SYNC: dict[int, str | None] = {
    results_pb2.CLOCK_SYNC_UNSPECIFIED: "unknown",
    results_pb2.CLOCK_SYNC_SYNCHRONISED: "synchronised",
    results_pb2.CLOCK_SYNC_UNSYNCHRONISED: "unsynchronised",
    results_pb2.CLOCK_SYNC_UNKNOWN: "unknown",
}
_STATUS: dict[int, str | None] = {
    results_pb2.STATUS_OK: "ok",
    results_pb2.STATUS_FAILED: "failed",
    results_pb2.STATUS_SKIPPED: "skipped",
}
# The words are the proto's names (REASON_KIND_DEFERRED: "deferred"), so a kind
# added to results.proto is accepted without an edit here. Unspecified: an agent
# from before the field, whose reasons are not classified (NULL).
_REASON_KIND: dict[int, str | None] = {
    value.number: value.name.removeprefix("REASON_KIND_").lower() if value.number else None
    for value in results_pb2.ReasonKind.DESCRIPTOR.values
}
_DIRECTION: dict[int, str | None] = {
    results_pb2.DIRECTION_DOWNLOAD: "download",
    results_pb2.DIRECTION_UPLOAD: "upload",
}
_ACCESS_TECH: dict[int, str | None] = {
    results_pb2.ACCESS_TECH_UNSPECIFIED: None,
    results_pb2.ACCESS_TECH_NONE: "none",
    results_pb2.ACCESS_TECH_GSM: "gsm",
    results_pb2.ACCESS_TECH_UMTS: "umts",
    results_pb2.ACCESS_TECH_LTE: "lte",
    results_pb2.ACCESS_TECH_NR5G_NSA: "nr5g_nsa",
    results_pb2.ACCESS_TECH_NR5G_SA: "nr5g_sa",
}
_SINR_CONVERSION: dict[int, str | None] = {
    results_pb2.SINR_CONVERSION_UNSPECIFIED: None,
    results_pb2.SINR_CONVERSION_AS_PRINTED: "as_printed",
    results_pb2.SINR_CONVERSION_TENTHS: "tenths",
    results_pb2.SINR_CONVERSION_FIFTHS_MINUS_20: "fifths_minus_20",
}


_ENVELOPE_PATHS = {
    "result_id": "envelope.result_id",
    "claimed_probe_id": "envelope.probe_id",
    "ward_code": "envelope.ward_code",
    "measured_at": "envelope.measured_at",
    "measured_at_s": "envelope.measured_at.seconds",
    "measured_at_nanos": "envelope.measured_at.nanos",
    "agent_version": "envelope.agent_version",
    "interface": "envelope.interface",
    "network_kind": "envelope.network_kind",
    "ip_family": "envelope.ip_family",
    "clock_sync": "envelope.clock_sync",
    "tool": "envelope.method.tool",
    "tool_version": "envelope.method.tool_version",
    "server": "envelope.method.server",
    "server_port": "envelope.method.server_port",
    "duration_s": "envelope.method.duration_s",
    "streams": "envelope.method.streams",
    "status": "envelope.status",
    "status_reason": "envelope.status_reason",
    "status_reason_kind": "envelope.status_reason_kind",
}
# Text columns stored as NULL when the probe sent "".
_EMPTY_IS_NULL = frozenset({
    "status_reason", "global_prefix", "mcc_mnc", "operator_name", "cell_id", "tac",
    "registration_state", "modem_model", "backend", "local_address",
})  # fmt: skip

# Plausible ranges of the numeric columns, inclusive; outside is refused.
# RSRP/RSRQ/SINR: 3GPP TS 36.133 / 38.133 reporting ranges with some slack.
_DAY_S = 86_400.0
_RANGES: dict[str, tuple[float, float]] = {
    "duration_s": (0.0, _DAY_S), "streams": (0, 1024), "server_port": (1, 65535),
    "target_port": (1, 65535), "measured_s": (0.0, _DAY_S), "omitted_s": (0.0, _DAY_S),
    "retransmits": (0, 2**31 - 1), "loss_pct": (0.0, 100.0), "band": (0, 1024),
    "nr_band": (0, 1024), "channel": (0, 3_279_165), "rsrp_dbm": (-160.0, -30.0),
    "nr_rsrp_dbm": (-160.0, -30.0), "rsrq_db": (-45.0, 20.0), "sinr_db": (-30.0, 50.0),
    "nr_sinr_db": (-30.0, 50.0), "packets_sent": (0, 2**31 - 1),
    # Physical cell ids: LTE 0-503, NR 0-1007 (TS 36.211 / 38.211).
    "pci": (0, 1007), "nr_pci": (0, 1007), "nr_channel": (0, 3_279_165),
    # RSSI, RSCP (TS 25.133 reports -120..-25 dBm), Ec/Io (-24..0 dB), with
    # slack; a raw SINR in any unit a firmware prints (tenths: +-600).
    "rssi_dbm": (-160.0, -10.0), "rscp_dbm": (-160.0, -10.0), "ecio_db": (-50.0, 10.0),
    "sinr_raw": (-1000.0, 1000.0), "nr_sinr_raw": (-1000.0, 1000.0),
    "packets_received": (0, 2**31 - 1),
    # MTU: the loopback interface has 65536.
    "link_speed_mbps": (0.0, 1_000_000.0), "mtu": (68, 65536), "cpu_load_pct": (0.0, 100.0),
    "cross_traffic_bytes_per_s": (0.0, 1e12), "idle_rtt_median_ms": (0.0, 60_000.0),
    "loaded_rtt_median_ms": (0.0, 60_000.0), "loaded_rtt_p95_ms": (0.0, 60_000.0),
}  # fmt: skip
_UUID7 = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
# Unicode's control characters (category Cc: C0, DEL, C1). NUL truncates text
# in C tools, the others forge lines and terminal escapes in logs and reports.
_CONTROL = r"[\x{0}-\x{1f}\x{7f}-\x{9f}]"
# Read columns that are not stored as they are.
_RAW_ONLY = frozenset({"index", "claimed_probe_id", "measured_at_s", "measured_at_nanos"})
# measured_at seconds are clamped to this before the conversion to
# microseconds, so that no value the wire allows overflows int64; the clamped
# time is still refused as in the future or before 2020.
_CLAMP_S = 2**40

_ENUMS: dict[str, dict[int, str | None]] = {
    "network_kind": _NETWORK_KIND, "ip_family": _IP_FAMILY, "clock_sync": _CLOCK_SYNC,
    "status": _STATUS, "status_reason_kind": _REASON_KIND, "direction": _DIRECTION,
    "dual_stack_family": _IP_FAMILY, "access_tech": _ACCESS_TECH, "access_tech_end": _ACCESS_TECH,
    "sinr_conversion": _SINR_CONVERSION, "nr_sinr_conversion": _SINR_CONVERSION,
}  # fmt: skip


@dataclass
class ReadBatch:
    """A batch after reading: raw Arrow columns per result kind, and the
    results refused already for their structure (no envelope, no body)."""

    sequence: int
    probe_id: str
    received_at: datetime
    tables: dict[str, pa.Table]
    rejections: list[ingest_pb2.Rejection]
    # the probe's wards as the registry had them when the batch was read
    ward_history: tuple[WardPeriod, ...] = ()

    @property
    def result_count(self) -> int:
        return sum(t.num_rows for t in self.tables.values())

    @classmethod
    def from_outcome(
        cls, outcome: ReadOutcome, probe: ProbeIdentity, received_at: datetime
    ) -> ReadBatch:
        """The batch a read worker returned, from `probe` as the registry has it now."""
        tables = {
            kind: pa.ipc.open_stream(data).read_all() for kind, data in outcome.tables_ipc.items()
        }
        rejections = [ingest_pb2.Rejection.FromString(r) for r in outcome.rejections]
        history = probe.ward_history or (WardPeriod(probe.ward_code, received_at),)
        return cls(outcome.sequence, probe.probe_id, received_at, tables, rejections, history)


@dataclass
class CheckedGroup:
    """Batches after validation, ready for the store."""

    tables: dict[str, pa.Table]  # accepted rows per table
    owners: dict[str, np.ndarray]  # for each accepted row, the batch it came from
    indexes: dict[str, np.ndarray]  # and its index in that batch
    rejections: list[list[ingest_pb2.Rejection]]  # per batch, ordered by index


class _Verdicts:
    """The first reason each row of one table is refused (later rules don't overwrite)."""

    def __init__(self, indexes: np.ndarray, kind: str) -> None:
        self.indexes = indexes
        self.kind = kind
        self.bad = np.zeros(len(indexes), dtype=bool)
        self.found: dict[int, tuple[str, str, int]] = {}

    def flag(
        self,
        mask: pa.Array | pa.ChunkedArray | np.ndarray,
        column: str,
        reason: Callable[[int], str],
        code: int = code_pb2.INVALID_ARGUMENT,
    ) -> None:
        """Refuse the rows where `mask` is true, unless already refused."""
        if not isinstance(mask, np.ndarray):
            mask = pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
        new = mask & ~self.bad
        if not new.any():
            return
        path = _ENVELOPE_PATHS.get(column, f"{self.kind}.{column}")
        for row in np.flatnonzero(new):
            self.found[int(row)] = (f"results[{self.indexes[row]}].{path}", reason(int(row)), code)
        self.bad |= mask


class BatchConverter:
    """Validates and types whole groups of read batches at once (`check`,
    vectorised, in the writer thread), and tells the read workers the raw
    column types to read into (`raw_types`)."""

    def __init__(
        self,
        arrow_schemas: dict[str, pa.Schema],
        known_wards: frozenset[int],
        limits: IngestLimits,
    ) -> None:
        self._schemas = arrow_schemas
        self._known_wards = pa.array(sorted(known_wards), pa.int64())
        self._limits = limits
        self._raw_types: dict[str, dict[str, pa.DataType]] = {}
        for table, body in BODY_COLUMNS.items():
            schema = arrow_schemas[table]
            stored = (
                (set(ENVELOPE_COLUMNS) - _RAW_ONLY)
                | set(body)
                | {
                    "measured_at",  # from measured_at_s and _nanos
                    "probe_id",
                    "received_at",
                    "synthetic",  # set here, never by a probe
                }
            )
            if set(schema.names) != stored:
                raise RuntimeError(f"schema.sql and ingest.py disagree on table {table}")
            self._raw_types[table] = {
                name: _raw_type(name, schema) for name in ENVELOPE_COLUMNS + body
            }

    def check(self, batches: list[ReadBatch]) -> CheckedGroup:
        """Validate the rows of several batches together; type the good ones."""
        rejections = [list(b.rejections) for b in batches]
        tables: dict[str, pa.Table] = {}
        owners: dict[str, np.ndarray] = {}
        indexes: dict[str, np.ndarray] = {}
        for kind in RESULT_TABLES:
            parts = [(n, b) for n, b in enumerate(batches) if kind in b.tables]
            if not parts:
                continue
            merged = pa.concat_tables([b.tables[kind] for _, b in parts])
            col = {name: merged.column(name).combine_chunks() for name in merged.column_names}
            sizes = [b.tables[kind].num_rows for _, b in parts]
            owner = np.repeat(np.array([n for n, _ in parts], dtype=np.int64), sizes)
            # Per-row copies of per-batch values, built in C (no Python loop per row).
            position = pa.array(np.repeat(np.arange(len(parts), dtype=np.int32), sizes))
            col["probe_id"] = pa.DictionaryArray.from_arrays(
                position, pa.array([b.probe_id for _, b in parts], pa.string())
            ).cast(pa.string())
            col["received_at"] = pa.array(
                np.repeat(np.array([_to_micros(b.received_at) for _, b in parts]), sizes)
            )
            verdicts = _Verdicts(col["index"].to_numpy(zero_copy_only=False), kind)
            self._check_measured_at(col, verdicts)
            col["registry_ward"] = _registry_wards(
                col["measured_at"], [b.ward_history for _, b in parts], sizes
            )
            self._check(kind, col, verdicts)
            # The ward a result is stored under is the registry's, never the envelope's.
            col["ward_code"] = col.pop("registry_ward")
            for row, (path, reason, code) in verdicts.found.items():
                result_id = str(col["result_id"][row].as_py())[:64]
                rejections[owner[row]].append(
                    rejection(int(verdicts.indexes[row]), result_id, path, reason, code)
                )
            keep = ~verdicts.bad
            if keep.any():
                mask = pa.array(keep)
                tables[kind] = self._finish(kind, {n: pc.filter(a, mask) for n, a in col.items()})
                owners[kind] = owner[keep]
                indexes[kind] = verdicts.indexes[keep]
        for batch_rejections in rejections:
            batch_rejections.sort(key=lambda r: r.index)
        return CheckedGroup(tables, owners, indexes, rejections)

    @property
    def raw_types(self) -> dict[str, dict[str, pa.DataType]]:
        """Column types of the raw rows, per result kind (for `read_batch`)."""
        return self._raw_types

    def _check_measured_at(self, col: dict[str, pa.Array], verdicts: _Verdicts) -> None:
        """Refuse a measured_at that is missing or not a valid Timestamp (nanos
        outside 0..999,999,999), and combine the valid ones into microseconds
        (col["measured_at"]; seconds clamped so none overflows)."""
        seconds, nanos = col["measured_at_s"], col["measured_at_nanos"]
        verdicts.flag(pc.is_null(seconds), "measured_at", lambda r: "missing")
        bad_nanos = pc.or_(pc.less(nanos, 0), pc.greater(nanos, 999_999_999))
        verdicts.flag(
            bad_nanos, "measured_at_nanos",
            lambda r: f"{col['measured_at_nanos'][r].as_py()} is outside [0, 999999999]",
        )  # fmt: skip
        clamped = pc.min_element_wise(pc.max_element_wise(seconds, -_CLAMP_S), _CLAMP_S)
        fraction = pc.if_else(pc.fill_null(bad_nanos, True), 0, pc.divide(nanos, 1000))
        col["measured_at"] = pc.add(pc.multiply(clamped, 1_000_000), fraction)

    def _check(self, kind: str, col: dict[str, pa.Array], verdicts: _Verdicts) -> None:
        """The validation rules, each vectorised over one column."""
        limits = self._limits

        def value(name: str) -> Callable[[int], object]:
            return lambda row: col[name][row].as_py()

        ids = col["result_id"]
        verdicts.flag(
            pc.invert(pc.match_substring_regex(ids, _UUID7)), "result_id",
            lambda r: f"not a UUIDv7 made on the probe: {str(value('result_id')(r))[:64]!r}",
        )  # fmt: skip
        claimed = col["claimed_probe_id"]
        verdicts.flag(
            pc.and_(pc.not_equal(claimed, ""), pc.not_equal(claimed, col["probe_id"])),
            "claimed_probe_id",
            lambda r: f"claims probe {str(value('claimed_probe_id')(r))[:64]!r} but the client "
            f"certificate is {value('probe_id')(r)!r}",
            code_pb2.PERMISSION_DENIED,
        )  # fmt: skip
        # 0 (unset): the registry's ward, whatever it is; anything else must be it.
        named = col["ward_code"]
        unknown = pc.invert(pc.is_in(named, value_set=self._known_wards))
        verdicts.flag(
            pc.and_(pc.not_equal(named, 0), unknown), "ward_code",
            lambda r: f"unknown ward code {value('ward_code')(r)} (not a Cần Thơ ward)",
        )  # fmt: skip
        measured = col["measured_at"]
        latest = pc.add(col["received_at"], int(limits.future_tolerance.total_seconds() * 1e6))
        verdicts.flag(pc.greater(measured, latest), "measured_at", lambda r: "is in the future")
        verdicts.flag(
            pc.less(measured, _to_micros(limits.oldest_measured_at)), "measured_at",
            lambda r: "is before 2020: the probe clock is wrong",
        )  # fmt: skip
        verdicts.flag(
            pc.and_(pc.not_equal(named, 0), pc.not_equal(named, col["registry_ward"])),
            "ward_code",
            lambda r: f"names ward {value('ward_code')(r)}, but the registry has probe "
            f"{value('probe_id')(r)} in ward {value('registry_ward')(r)} when it measured "
            f"({_micros_text(value('measured_at')(r))}); send 0 to leave the ward to the registry",
            code_pb2.PERMISSION_DENIED,
        )  # fmt: skip
        for name, words in _ENUMS.items():
            if name in col:
                allowed = pa.array(sorted(words), pa.int64())
                verdicts.flag(
                    pc.invert(pc.is_in(col[name], value_set=allowed)), name,
                    lambda r, n=name, w=words: f"{value(n)(r)} is not one of "  # type: ignore[misc]
                    f"{', '.join(str(x) for x in w.values() if x)}",
                )  # fmt: skip
        for name, array in col.items():
            if pa.types.is_string(array.type):
                verdicts.flag(
                    pc.greater(pc.utf8_length(array), limits.max_text_chars), name,
                    lambda r: f"longer than {limits.max_text_chars} characters",
                )  # fmt: skip
                verdicts.flag(
                    pc.match_substring_regex(array, _CONTROL), name,
                    lambda r, n=name: _control_reason(str(value(n)(r))),  # type: ignore[misc]
                )  # fmt: skip
            elif pa.types.is_floating(array.type):
                verdicts.flag(
                    pc.or_(pc.is_nan(array), pc.is_inf(array)), name,
                    lambda r, n=name: f"{value(n)(r)} is not a number",  # type: ignore[misc]
                )  # fmt: skip
        for name, (low, high) in (
            *_RANGES.items(), ("mbps", (0.0, limits.max_mbps)),
            *((n, (0.0, limits.max_rtt_ms)) for n in ("rtt_min_ms", "rtt_median_ms",
              "rtt_p95_ms", "rtt_max_ms", "jitter_ms", "ipv6_only_connect_ms")),
        ):  # fmt: skip
            if name in col:
                verdicts.flag(
                    pc.or_(pc.less(col[name], low), pc.greater(col[name], high)), name,
                    lambda r, n=name, lo=low, hi=high: (  # type: ignore[misc]
                        f"{value(n)(r)} is outside [{lo:g}, {hi:g}]"
                    ),
                )  # fmt: skip
        ok = pc.equal(col["status"], results_pb2.STATUS_OK)
        if kind == "throughput":
            verdicts.flag(
                pc.and_(ok, pc.is_null(col["mbps"])), "mbps",
                lambda r: "missing on a result with status ok",
            )  # fmt: skip
        elif kind == "latency":
            verdicts.flag(
                pc.invert(pc.is_in(col["protocol"], value_set=pa.array(["icmp", "tcp"]))),
                "protocol", lambda r: "must be icmp or tcp",
            )  # fmt: skip
            verdicts.flag(
                pc.greater(col["packets_received"], col["packets_sent"]), "packets_received",
                lambda r: "more replies than requests",
            )  # fmt: skip
        if "mcc_mnc" in col:
            verdicts.flag(
                pc.invert(pc.match_substring_regex(col["mcc_mnc"], r"^(\d{5,6})?$")), "mcc_mnc",
                lambda r: "must be 5 or 6 digits",
            )  # fmt: skip

    def _finish(self, kind: str, col: dict[str, pa.Array]) -> pa.Table:
        """The accepted rows, typed and named as the store's table."""
        schema = self._schemas[kind]
        arrays = {}
        for name, array in col.items():
            if name in _RAW_ONLY:
                continue
            if name in _ENUMS:
                words = _ENUMS[name]
                codes = sorted(words)
                array = pc.take(
                    pa.array([words[c] for c in codes], pa.string()),
                    pc.index_in(array, value_set=pa.array(codes, pa.int64())),
                )
            elif name in _EMPTY_IS_NULL:
                array = pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)
            arrays[name] = array
        # Results from probes are real; the synthetic generator writes its own.
        arrays["synthetic"] = pa.nulls(len(col["index"]), pa.bool_()).fill_null(False)
        return pa.Table.from_arrays([arrays[f.name].cast(f.type) for f in schema], schema=schema)


def _raw_type(name: str, schema: pa.Schema) -> pa.DataType:
    """How a column is held before validation: integers wide enough for any
    uint32 the wire allows (ranges are checked before the cast to the store's
    narrower types), enums and times as integers, the rest as stored."""
    if name in ("result_id", "claimed_probe_id"):
        return pa.string()
    if name in _ENUMS or name in ("index", "measured_at_s", "measured_at_nanos"):
        return pa.int64()
    stored = schema.field(name).type
    if pa.types.is_integer(stored) and stored != pa.uint64():
        return pa.int64()
    return stored


def _to_micros(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (a float timestamp can be 1 µs off)."""
    return (moment - _EPOCH) // _MICROSECOND


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros_text(micros: object) -> str:
    """A stored time (microseconds since the epoch) for a refusal's reason."""
    if not isinstance(micros, int):
        return "unknown time"
    return datetime.fromtimestamp(micros / 1e6, UTC).isoformat(timespec="seconds")


def _control_reason(text: str) -> str:
    """Which control character a text holds, and where (its first one)."""
    for position, char in enumerate(text):
        if unicodedata.category(char) == "Cc":
            return f"holds the control character U+{ord(char):04X} at position {position}"
    return "holds a control character"


def _registry_wards(
    measured: pa.Array, histories: list[tuple[WardPeriod, ...]], sizes: list[int]
) -> pa.Array:
    """For each row, the ward its probe was in at its measured_at (the rows are
    the batches' rows one batch after the other, `sizes` of them each)."""
    micros = pc.fill_null(measured, 0).to_numpy(zero_copy_only=False)
    wards = np.empty(len(micros), dtype=np.int64)
    start = 0
    for history, size in zip(histories, sizes, strict=True):
        end = start + size
        if len(history) == 1:  # a probe never moved: most batches
            wards[start:end] = history[0].ward_code
        else:
            since = np.array([_to_micros(p.since) for p in history], dtype=np.int64)
            codes = np.array([p.ward_code for p in history], dtype=np.int64)
            # the last period that began at or before the time; before the first, the first
            slot = np.searchsorted(since, micros[start:end], side="right") - 1
            wards[start:end] = codes[np.maximum(slot, 0)]
        start = end
    return pa.array(wards)


@dataclass(frozen=True)
class CommitOutcome:
    """What the ack of one batch says."""

    stored: int
    duplicates: int
    rejections: list[ingest_pb2.Rejection]


@dataclass
class _Pending:
    batch: ReadBatch
    done: asyncio.Future[CommitOutcome]


class GroupCommitter:
    """Commits batches from all streams together, a few milliseconds at a time.

    Validation and the DuckDB insert run for the whole group in one worker
    thread (pyarrow and DuckDB release the GIL), while the event loop goes on
    reading the next batches. One insert per table per group: large inserts
    are what DuckDB is fast at."""

    def __init__(
        self,
        store: Store,
        converter: BatchConverter,
        max_delay_s: float = 0.01,
        max_rows: int = 100_000,
    ) -> None:
        self._store = store
        self._converter = converter
        self._max_delay_s = max_delay_s
        self._max_rows = max_rows
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        # One thread: DuckDB has one writing connection.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="duckdb-writer")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="group-commit")

    async def stop(self) -> None:
        """Finish what is queued, then stop the worker."""
        while not self._queue.empty():
            await asyncio.sleep(self._max_delay_s)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)

    def submit(self, batch: ReadBatch) -> asyncio.Future[CommitOutcome]:
        """Queue a batch; the future resolves once its rows are committed."""
        done: asyncio.Future[CommitOutcome] = asyncio.get_running_loop().create_future()
        if batch.result_count == 0:
            done.set_result(CommitOutcome(0, 0, sorted(batch.rejections, key=lambda r: r.index)))
        else:
            self._queue.put_nowait(_Pending(batch, done))
        return done

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            group = [await self._queue.get()]
            rows = group[0].batch.result_count
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
                rows += item.batch.result_count
            try:
                outcomes = await loop.run_in_executor(self._executor, self._commit, group)
            except Exception as err:  # the store failed (disk full, I/O error): tell every waiter
                for pending in group:
                    if not pending.done.done():
                        pending.done.set_exception(err)
                continue
            for pending, outcome in zip(group, outcomes, strict=True):
                if not pending.done.done():
                    pending.done.set_result(outcome)

    def _commit(self, group: list[_Pending]) -> list[CommitOutcome]:
        checked = self._converter.check([p.batch for p in group])
        tables, owners = checked.tables, checked.owners
        accepted = np.zeros(len(group), dtype=np.int64)
        for owner in owners.values():
            accepted += np.bincount(owner, minlength=len(group))
        # An id sent twice within this group (in one table or two): the copy
        # that came first, in the streams' order, is the one stored.
        first = _first_copies_in_order(tables, owners, checked.indexes)
        if first is not None:
            tables = {t: rows.filter(pa.array(first[t])) for t, rows in tables.items()}
            owners = {t: owner[first[t]] for t, owner in owners.items()}
        stored = np.zeros(len(group), dtype=np.int64)
        for table, was_stored in self._store.insert_new_results(tables).items():
            stored += np.bincount(owners[table][was_stored], minlength=len(group))
        return [
            CommitOutcome(
                stored=int(stored[i]),
                duplicates=int(accepted[i] - stored[i]),
                rejections=checked.rejections[i],
            )
            for i in range(len(group))
        ]


def _first_copies_in_order(
    tables: dict[str, pa.Table], owners: dict[str, np.ndarray], indexes: dict[str, np.ndarray]
) -> dict[str, np.ndarray] | None:
    """Per table, True for the rows whose id has no earlier copy in the group,
    by (batch, index in the batch); None when no id repeats (the common case)."""
    names = list(tables)
    ids = pa.chunked_array(
        [tables[t].column("result_id").cast(pa.string()) for t in names], pa.string()
    ).combine_chunks()
    if len(ids) == 0 or pc.count_distinct(ids).as_py() == len(ids):
        return None
    key = np.concatenate([owners[t] * 2**32 + indexes[t] for t in names])
    order = np.argsort(key, kind="stable")
    codes = pc.dictionary_encode(ids).indices.to_numpy(zero_copy_only=False)[order]
    first = np.zeros(len(ids), dtype=bool)
    first[order[np.unique(codes, return_index=True)[1]]] = True
    split = np.cumsum([tables[t].num_rows for t in names])[:-1]
    return dict(zip(names, np.split(first, split), strict=True))
