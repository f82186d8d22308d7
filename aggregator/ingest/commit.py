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
import logging
import unicodedata
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc
from google.rpc import code_pb2

from aggregator.enrolment.registry import ProbeIdentity, WardPeriod
from aggregator.ingest.batch_reader import IngestLimits, ReadOutcome, rejection
from aggregator.ingest.events import (
    NO_TABLE,
    GroupCommitted,
    IngestObserver,
    NoObserver,
    Refusal,
    refused_field,
)
from aggregator.ingest.store import concatenated_ids, uuid7_millis
from aggregator.ingest.stores import ResultStore
from aggregator.ingest.tables import RESULT_TABLES, TABLES, Column, ResultTable
from wardprobe.v1 import ingest_pb2, results_pb2

log = logging.getLogger(__name__)

_UUID7 = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
# Stands in for an id that is no UUIDv7 (refused already) where times are read.
_SOME_UUID7 = "01900000-0000-7000-8000-000000000000"
# Unicode's control characters (category Cc: C0, DEL, C1). NUL truncates text
# in C tools, the others forge lines and terminal escapes in logs and reports.
_CONTROL = r"[\x{0}-\x{1f}\x{7f}-\x{9f}]"
# measured_at seconds are clamped to this before the conversion to
# microseconds, so that no value the wire allows overflows int64; the clamped
# time is still refused as in the future or before 2020.
_CLAMP_S = 2**40


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
    # per batch, the table of each result refused here, by its index (for the metrics)
    refused_tables: list[dict[int, str]] = field(default_factory=list)


class _Verdicts:
    """The first reason each row of one table is refused (later rules don't overwrite)."""

    def __init__(self, indexes: np.ndarray, table: ResultTable) -> None:
        self.indexes = indexes
        self.table = table
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
        path = self.table.paths.get(column, f"{self.table.name}.{column}")
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
        for kind, table in TABLES.items():
            if set(arrow_schemas[kind].names) != table.stored_names:
                raise RuntimeError(
                    f"schema.sql and aggregator/ingest/tables.py disagree on table {kind}"
                )

    def check(self, batches: list[ReadBatch]) -> CheckedGroup:
        """Validate the rows of several batches together; type the good ones."""
        rejections = [list(b.rejections) for b in batches]
        refused_tables: list[dict[int, str]] = [{} for _ in batches]
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
            verdicts = _Verdicts(col["index"].to_numpy(zero_copy_only=False), TABLES[kind])
            self._check_measured_at(col, verdicts)
            col["registry_ward"] = _registry_wards(
                col["measured_at"], [b.ward_history for _, b in parts], sizes
            )
            self._check(TABLES[kind], col, verdicts)
            # The ward a result is stored under is the registry's, never the envelope's.
            col["ward_code"] = col.pop("registry_ward")
            for row, (path, reason, code) in verdicts.found.items():
                result_id = str(col["result_id"][row].as_py())[:64]
                rejections[owner[row]].append(
                    rejection(int(verdicts.indexes[row]), result_id, path, reason, code)
                )
                refused_tables[owner[row]][int(verdicts.indexes[row])] = kind
            keep = ~verdicts.bad
            if keep.any():
                mask = pa.array(keep)
                tables[kind] = self._finish(
                    TABLES[kind], {n: pc.filter(a, mask) for n, a in col.items()}
                )
                owners[kind] = owner[keep]
                indexes[kind] = verdicts.indexes[keep]
        for batch_rejections in rejections:
            batch_rejections.sort(key=lambda r: r.index)
        return CheckedGroup(tables, owners, indexes, rejections, refused_tables)

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

    def _check(self, table: ResultTable, col: dict[str, pa.Array], verdicts: _Verdicts) -> None:
        """The validation rules, each vectorised over one column: the envelope's
        own here, then each column's as tables.py declares it."""
        limits = self._limits

        def value(name: str) -> Callable[[int], object]:
            return lambda row: col[name][row].as_py()

        ids = col["result_id"]
        is_v7 = pc.fill_null(pc.match_substring_regex(ids, _UUID7), False)
        verdicts.flag(
            pc.invert(is_v7), "result_id",
            lambda r: f"not a UUIDv7 made on the probe: {str(value('result_id')(r))[:64]!r}",
        )  # fmt: skip
        # The id's own time bounds the store's lookup of it (aggregator/ingest/
        # store.py): the same window as measured_at's, so that no id from a
        # wrong clock widens the ranges every later lookup reads.
        id_us = uuid7_millis(pc.if_else(is_v7, ids, _SOME_UUID7)) * 1000
        latest_us = pc.add(col["received_at"], int(limits.future_tolerance.total_seconds() * 1e6))
        verdicts.flag(
            pc.greater(pa.array(id_us), latest_us), "result_id",
            lambda r: "its time (a UUIDv7's first 48 bits) is in the future: the probe clock "
            "is wrong",
        )  # fmt: skip
        verdicts.flag(
            id_us < _to_micros(limits.oldest_measured_at), "result_id",
            lambda r: "its time (a UUIDv7's first 48 bits) is before 2020: the probe clock is "
            "wrong",
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
        for name, words in table.enums.items():
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
                if _may_hold_controls(array):
                    verdicts.flag(
                        pc.match_substring_regex(array, _CONTROL), name,
                        lambda r, n=name: _control_reason(str(value(n)(r))),  # type: ignore[misc]
                    )  # fmt: skip
            elif pa.types.is_floating(array.type):
                verdicts.flag(
                    pc.or_(pc.is_nan(array), pc.is_inf(array)), name,
                    lambda r, n=name: f"{value(n)(r)} is not a number",  # type: ignore[misc]
                )  # fmt: skip
        for column in table.columns:
            if column.bounds is not None:
                name, (low, high) = column.name, column.bounds
                verdicts.flag(
                    pc.or_(pc.less(col[name], low), pc.greater(col[name], high)), name,
                    lambda r, n=name, lo=low, hi=high: (  # type: ignore[misc]
                        f"{value(n)(r)} is outside [{lo:g}, {hi:g}]"
                    ),
                )  # fmt: skip
        for column in table.columns:
            if pa.types.is_list(col[column.name].type):
                self._check_list(column, col[column.name], verdicts)
        ok = pc.equal(col["status"], results_pb2.STATUS_OK)
        for column in table.columns:
            name = column.name
            if column.required_when_ok:
                verdicts.flag(
                    pc.and_(ok, pc.is_null(col[name])), name,
                    lambda r: "missing on a result with status ok",
                )  # fmt: skip
            if column.choices:
                reason = f"must be {' or '.join(column.choices)}"
                verdicts.flag(
                    pc.invert(pc.is_in(col[name], value_set=pa.array(column.choices))), name,
                    lambda r, why=reason: why,  # type: ignore[misc]
                )  # fmt: skip
            if column.at_most is not None:
                other, reason = column.at_most
                verdicts.flag(
                    pc.greater(col[name], col[other]), name,
                    lambda r, why=reason: why,  # type: ignore[misc]
                )  # fmt: skip
            if column.pattern is not None:
                regex, reason = column.pattern
                verdicts.flag(
                    pc.invert(pc.match_substring_regex(col[name], regex)), name,
                    lambda r, why=reason: why,  # type: ignore[misc]
                )  # fmt: skip

    def _check_list(self, column: Column, array: pa.Array, verdicts: _Verdicts) -> None:
        """A repeated field's rules, over every value inside it (a hop's RTTs,
        a query's answers): the same text and number checks as a column's,
        the members' bounds and choices, and the most items a list may hold. A bad value
        refuses its whole result, named by the member's path."""
        members = {m.name: m for m in column.members}
        limit = self._limits.max_text_chars
        size = len(array)
        for path, values, owners in _leaves(array, np.arange(size), column.name):
            member = path.split(".")[1] if "." in path else ""
            rule = members.get(member) if member else column

            def flag(bad: pa.Array, reason: Callable[[object], str]) -> None:
                _flag_inside(verdicts, size, bad, values, owners, path, reason)  # noqa: B023

            if pa.types.is_list(values.type):
                if rule is not None and rule.max_items is not None:
                    most = rule.max_items
                    flag(
                        pc.greater(pc.list_value_length(values), most),
                        lambda v, n=most: f"holds more than {n} items",  # type: ignore[misc]
                    )
                continue
            if pa.types.is_string(values.type):
                flag(
                    pc.greater(pc.utf8_length(values), limit),
                    lambda v: f"longer than {limit} characters",
                )
                if _may_hold_controls(values):
                    flag(
                        pc.match_substring_regex(values, _CONTROL),
                        lambda v: _control_reason(str(v)),
                    )
            elif pa.types.is_floating(values.type):
                flag(pc.or_(pc.is_nan(values), pc.is_inf(values)), lambda v: f"{v} is not a number")
            if rule is not None and member and rule.choices:
                allowed = rule.choices
                flag(
                    pc.invert(pc.is_in(values, value_set=pa.array(allowed))),
                    lambda v, c=allowed: f"{v} is not {' or '.join(c)}",  # type: ignore[misc]
                )
            if rule is not None and member and rule.bounds is not None:
                low, high = rule.bounds
                flag(
                    pc.or_(pc.less(values, low), pc.greater(values, high)),
                    lambda v, lo=low, hi=high: f"{v} is outside [{lo:g}, {hi:g}]",  # type: ignore[misc]
                )

    def _finish(self, table: ResultTable, col: dict[str, pa.Array]) -> pa.Table:
        """The accepted rows, typed and named as the store's table."""
        schema = self._schemas[table.name]
        arrays = {}
        for name, array in col.items():
            if name in table.not_stored:
                continue
            if name in table.enums:
                words = table.enums[name]
                codes = sorted(words)
                array = pc.take(
                    pa.array([words[c] for c in codes], pa.string()),
                    pc.index_in(array, value_set=pa.array(codes, pa.int64())),
                )
            elif name in table.empty_is_null:
                array = pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)
            arrays[name] = array
        # Results from probes are real; the synthetic generator writes its own.
        arrays["synthetic"] = pa.nulls(len(col["index"]), pa.bool_()).fill_null(False)
        return pa.Table.from_arrays([arrays[f.name].cast(f.type) for f in schema], schema=schema)


def _leaves(
    array: pa.Array, rows: np.ndarray, path: str
) -> Iterator[tuple[str, pa.Array, np.ndarray]]:
    """Every list and every scalar array inside a list or struct column, by
    its path below the column, with the row (result) each value belongs to."""
    if pa.types.is_list(array.type):
        yield path, array, rows
        parents = pc.list_parent_indices(array).to_numpy(zero_copy_only=False)
        yield from _leaves(pc.list_flatten(array), rows[parents], path)
    elif pa.types.is_struct(array.type):
        for index in range(array.type.num_fields):
            name = array.type.field(index).name
            yield from _leaves(pc.struct_field(array, [index]), rows, f"{path}.{name}")
    else:
        yield path, array, rows


def _flag_inside(
    verdicts: _Verdicts,
    size: int,
    bad: pa.Array,
    values: pa.Array,
    owners: np.ndarray,
    path: str,
    reason: Callable[[object], str],
) -> None:
    """Refuse the rows (of `size`) owning a value of `values` that `bad`
    marks; the reason names the row's first such value."""
    marked = pc.fill_null(bad, False).to_numpy(zero_copy_only=False)
    if not marked.any():
        return
    first: dict[int, int] = {}
    for position in np.flatnonzero(marked):
        first.setdefault(int(owners[position]), int(position))
    mask = np.zeros(size, dtype=bool)
    mask[list(first)] = True
    verdicts.flag(mask, path, lambda r: reason(values[first[r]].as_py()))


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


def _may_hold_controls(array: pa.Array) -> bool:
    """Whether any text of a string column may hold a control character: one
    pass over its UTF-8 bytes (C0 and DEL are single bytes, C1 starts with
    0xC2), so the regex, a hundred times slower, runs only when it must."""
    offsets, data = array.buffers()[1:3]
    if data is None or offsets is None:
        return False
    bounds = np.frombuffer(offsets, dtype=np.int32)[array.offset : array.offset + len(array) + 1]
    raw = np.frombuffer(data, dtype=np.uint8)[bounds[0] : bounds[-1]]
    return bool(((raw < 0x20) | (raw == 0x7F) | (raw == 0xC2)).any())


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


# Rows in one commit group of the embedded store, at most. Every row of a
# group is held several times at once (the read batches' columns, their
# validated concatenation, DuckDB's copy in its transaction), so the group's
# size is most of the aggregator's peak memory in a burst; 20,000 rows is
# already DuckDB's large, fast insert (docs/ingest.md, "Memory and checkpoints").
EMBEDDED_GROUP_ROWS = 20_000


class GroupCommitter:
    """Commits batches from all streams together, a few milliseconds at a time.

    Two stages, one thread each, so that a group is validated while the one
    before it commits: `BatchConverter.check` (pyarrow, the checker thread),
    then the store's transaction (the writer thread: DuckDB has one writing
    connection). Groups commit in the order they were gathered, and at most
    one waits checked behind the one committing. One insert per table per
    group: large inserts are what DuckDB is fast at."""

    def __init__(
        self,
        store: ResultStore,
        converter: BatchConverter,
        max_delay_s: float = 0.01,
        max_rows: int = EMBEDDED_GROUP_ROWS,
        observer: IngestObserver | None = None,
    ) -> None:
        self._store = store
        self._converter = converter
        # Told of every group committed and every failed commit (the health).
        self._observer: IngestObserver = observer or NoObserver()
        self._max_delay_s = max_delay_s
        self._max_rows = max_rows
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()  # None: stop
        self._checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-checker")
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="duckdb-writer")
        self._task: asyncio.Task[None] | None = None
        self._last: asyncio.Task[None] | None = None  # the latest group's commit

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="group-commit")

    async def stop(self) -> None:
        """Commit what is queued, then stop the workers."""
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
        if self._last is not None:
            await self._last
        self._checker.shutdown(wait=True)
        self._writer.shutdown(wait=True)

    def submit(self, batch: ReadBatch) -> asyncio.Future[CommitOutcome]:
        """Queue a batch; the future resolves once its rows are committed."""
        done: asyncio.Future[CommitOutcome] = asyncio.get_running_loop().create_future()
        if batch.result_count == 0:
            refused = sorted(batch.rejections, key=lambda r: r.index)
            self._observer.group_committed(
                GroupCommitted(batches=1, refused=[_refusal(r) for r in refused])
            )
            done.set_result(CommitOutcome(0, 0, refused))
        else:
            self._queue.put_nowait(_Pending(batch, done))
        return done

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            group, stopping = await self._gather(loop)
            if not group:
                continue
            checking = loop.run_in_executor(self._checker, self._check, group)
            previous, self._last = (
                self._last,
                loop.create_task(self._commit_in_turn(group, checking, self._last)),
            )
            if previous is not None:
                # Gather the next group while this one commits, not further ahead.
                await previous

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> tuple[list[_Pending], bool]:
        """The next group: what the streams submit within max_delay_s of its
        first batch, up to max_rows; and whether `stop` was called."""
        first = await self._queue.get()
        if first is None:
            return [], True
        group = [first]
        rows = first.batch.result_count
        deadline = loop.time() + self._max_delay_s
        while rows < self._max_rows:
            timeout = deadline - loop.time()
            if timeout <= 0:
                break
            try:
                item = await asyncio.wait_for(self._queue.get(), timeout)
            except TimeoutError:
                break
            if item is None:
                return group, True
            group.append(item)
            rows += item.batch.result_count
        return group, False

    async def _commit_in_turn(
        self,
        group: list[_Pending],
        checking: asyncio.Future[CheckedGroup],
        previous: asyncio.Task[None] | None,
    ) -> None:
        """Commit `group` once it is checked and the group before it has
        committed; tell its batches' waiters."""
        loop = asyncio.get_running_loop()
        try:
            checked = await checking
        except Exception as err:  # a bug in the rules: the batches are not stored
            log.exception("checking a group of %d batches failed", len(group))
            _fail(group, err)
            return
        finally:
            if previous is not None:
                await previous
        try:
            outcomes, summary = await loop.run_in_executor(
                self._writer, self._commit, group, checked
            )
        except Exception as err:  # the store failed (disk full, I/O error): tell every waiter
            self._observer.store_write(err)
            _fail(group, err)
            return
        if summary.stored:  # a transaction ran (a group of refusals writes nothing)
            self._observer.store_write(None)
        self._observer.group_committed(summary)
        for pending, outcome in zip(group, outcomes, strict=True):
            if not pending.done.done():
                pending.done.set_result(outcome)

    def _check(self, group: list[_Pending]) -> CheckedGroup:
        return self._converter.check([p.batch for p in group])

    def _commit(
        self, group: list[_Pending], checked: CheckedGroup
    ) -> tuple[list[CommitOutcome], GroupCommitted]:
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
        stored_by_table: dict[str, int] = {}
        for table, was_stored in self._store.insert_new_results(tables).items():
            stored += np.bincount(owners[table][was_stored], minlength=len(group))
            stored_by_table[table] = int(was_stored.sum())
        # Arrow's pool keeps what a group freed for the next; hand it back
        # (here, not on the event loop: with the system allocator it trims
        # glibc's heaps, milliseconds of system calls).
        pa.default_memory_pool().release_unused()
        outcomes = [
            CommitOutcome(
                stored=int(stored[i]),
                duplicates=int(accepted[i] - stored[i]),
                rejections=checked.rejections[i],
            )
            for i in range(len(group))
        ]
        summary = GroupCommitted(
            batches=len(group),
            stored=stored_by_table,
            duplicates={
                t: checked.tables[t].num_rows - n
                for t, n in stored_by_table.items()
                if checked.tables[t].num_rows > n
            },
            refused=[
                _refusal(r, checked.refused_tables[i].get(r.index, NO_TABLE))
                for i in range(len(group))
                for r in checked.rejections[i]
            ],
        )
        return outcomes, summary


def _fail(group: list[_Pending], err: Exception) -> None:
    """Tell every waiter of `group` that its batch was not stored."""
    for pending in group:
        if not pending.done.done():
            pending.done.set_exception(err)


def _refusal(rejection: ingest_pb2.Rejection, table: str = NO_TABLE) -> Refusal:
    """A rejection as the metrics count it; `table` unknown for a result
    refused before it was read into one (no envelope, no body)."""
    violations = rejection.bad_request.field_violations
    return Refusal(table, refused_field(violations[0].field if violations else ""), rejection.code)


def _first_copies_in_order(
    tables: dict[str, pa.Table], owners: dict[str, np.ndarray], indexes: dict[str, np.ndarray]
) -> dict[str, np.ndarray] | None:
    """Per table, True for the rows whose id has no earlier copy in the group,
    by (batch, index in the batch); None when no id repeats (the common case)."""
    names = list(tables)
    ids = concatenated_ids(tables[t] for t in names)
    if len(ids) == 0 or pc.count_distinct(ids).as_py() == len(ids):
        return None
    key = np.concatenate([owners[t] * 2**32 + indexes[t] for t in names])
    order = np.argsort(key, kind="stable")
    codes = pc.dictionary_encode(ids).indices.to_numpy(zero_copy_only=False)[order]
    first = np.zeros(len(ids), dtype=bool)
    first[order[np.unique(codes, return_index=True)[1]]] = True
    split = np.cumsum([tables[t].num_rows for t in names])[:-1]
    return dict(zip(names, np.split(first, split), strict=True))
