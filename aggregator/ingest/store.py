"""The DuckDB store: one file, one writer (this process), batched inserts.

Results arrive as Arrow tables (one per result kind). A result id names one
result in the whole store: every stored id is in the `result_ids` table, and
a commit group stores only the bodies whose id is not there yet, in one
transaction with their ids. The lookup needs no index: result ids are
UUIDv7, made on the probe, whose first 48 bits are the time in unix ms, and
`result_ids` is appended in commit order, so each of its row groups holds
ids of a narrow time span and DuckDB's zone maps (min and max per row group)
skip every row group outside the ranges a group's ids span. A re-sent result
adds nothing, whatever table it names and however long after (docs/ingest.md,
"Exactly once").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aggregator.ingest.tables import RESULT_TABLES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProbeRow:
    """One row of the `probes` table, as the registry knows the probe."""

    probe_id: str
    ward_code: int
    ward_name: str | None
    site_class: str
    hostname: str | None
    agent_version: str | None
    enrolled_at: datetime
    cert_serial: str | None
    cert_not_after: datetime | None
    cert_state: str
    revoked_at: datetime | None
    isp: str | None = None  # the site's fixed-broadband ISP; None when not recorded
    # the fixed line's advertised plan speeds, Mb/s (QCVN 34's Vd, Vu); None: not recorded
    plan_down_mbps: float | None = None
    plan_up_mbps: float | None = None

    def values(self) -> tuple[Any, ...]:
        """The row's values in the `probes` table's column order (its fields' order)."""
        return tuple(getattr(self, f.name) for f in fields(self))


@dataclass(frozen=True)
class StoreSettings:
    """How the aggregator runs the store's DuckDB (aggregator.toml's store_* keys)."""

    # DuckDB's buffer pool and working memory, MiB (None: DuckDB's default,
    # 80 % of the machine's memory, which it fills with written blocks).
    memory_limit_mib: int | None = None
    # WAL size at which a commit checkpoints it into the file, MiB.
    checkpoint_threshold_mib: int = 64
    # DuckDB's threads (None: its default, one per core).
    threads: int | None = None


_PROBE_COLUMNS = [f.name for f in fields(ProbeRow)]
# Columns named: a migrated store has them in the order they were added.
PROBES_INSERT = (
    f"insert into probes ({', '.join(_PROBE_COLUMNS)})"
    f" values ({', '.join('?' for _ in _PROBE_COLUMNS)})"
)


# Rows per row group of what the aggregator appends (DuckDB's default is
# 122,880). A checkpoint compresses and writes again, whole, the last row
# group of every table it touches, however few rows it gained: with the
# default, up to 122,880 rows per table for each checkpoint, which made the
# longest commit 2 s into a store of 50 M results, and most of a commit's
# CPU. A quarter of that bounds the rewrite (docs/ingest.md, "Memory and
# checkpoints"); readers need nothing: a file holds row groups of any size.
ROW_GROUP_ROWS = 30_720


class Store:
    """The aggregator's DuckDB file. Calls are serialised by a lock: DuckDB
    allows one writing connection, and the ingest path uses it from a worker
    thread while the event loop keeps serving streams.

    The file is attached to an in-memory DuckDB (as its stem, the name DuckDB
    gives a file it opens) rather than opened directly, because the row group
    size (`ROW_GROUP_ROWS`) is an option of ATTACH only."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._catalog = '"' + self.path.stem.replace('"', '""') + '"'
        self._con = duckdb.connect()
        # Spilled blocks beside the file, as DuckDB puts them for a file it
        # opens (an in-memory database's default is .tmp in the working directory).
        self._con.execute(f"set temp_directory = {sql_text(str(self.path) + '.tmp')}")
        self._con.execute(
            f"attach {sql_text(str(self.path))} as {self._catalog} "
            f"(row_group_size {ROW_GROUP_ROWS})"
        )
        self._con.execute(f"use {self._catalog}")
        self._lock = threading.Lock()
        schema = resources.files("aggregator.ingest").joinpath("schema.sql").read_text("utf-8")
        with self._lock:
            self._con.execute(schema)
            reference = duckdb.connect()
            try:
                reference.execute(schema)
                self._add_new_columns(reference)
                self._drop_result_keys(reference)
            finally:
                reference.close()
            self._index_result_ids()

    def configure(self, settings: StoreSettings) -> None:
        """Apply the aggregator's settings for the store's DuckDB (its memory
        limit, checkpoint threshold and threads; docs/ingest.md, "Memory and
        checkpoints")."""
        with self._lock:
            if settings.memory_limit_mib is not None:
                self._con.execute(f"set memory_limit = '{int(settings.memory_limit_mib)}MiB'")
                # DuckDB's allocator keeps freed memory for reuse up to this
                # peak (128 MiB by default); a commit's is handed back after it.
                self._con.execute("set allocator_flush_threshold = '16MiB'")
            self._con.execute(
                f"set checkpoint_threshold = '{int(settings.checkpoint_threshold_mib)}MiB'"
            )
            if settings.threads is not None:
                self._con.execute(f"set threads = {int(settings.threads)}")

    def insert_results(self, table: str, rows: pa.Table) -> pa.Array:
        """Insert rows into one result table, ignoring ids already stored in
        any table. Returns the ids (as strings) that were new."""
        stored = self.insert_new_results({table: rows})[table]
        return rows.column("result_id").combine_chunks().filter(pa.array(stored)).cast(pa.string())

    def insert_new_results(self, tables: Mapping[str, pa.Table]) -> dict[str, np.ndarray]:
        """Insert the rows of several result tables in one transaction, each
        result id once in the whole store: a row whose id is already stored
        (in any table), or comes earlier in `tables` (their order, then the
        rows' order), is skipped. Returns, per table, which of its rows were
        stored (a boolean per row)."""
        for table in tables:
            if table not in RESULT_TABLES:
                raise ValueError(f"not a result table: {table}")
        parts = [(t, rows) for t, rows in tables.items() if rows.num_rows]
        stored = {t: np.zeros(rows.num_rows, dtype=bool) for t, rows in tables.items()}
        if not parts:
            return stored
        ids = canonical_ids(concatenated_ids(rows for _, rows in parts))
        sizes = [rows.num_rows for _, rows in parts]
        names = pa.array([t for t, _ in parts], pa.string())
        kinds = pa.DictionaryArray.from_arrays(
            pa.array(np.repeat(np.arange(len(parts), dtype=np.int32), sizes)), names
        ).cast(pa.string())
        first = first_copies(ids)
        index_rows = pa.table({"result_id": ids, "result_table": kinds})
        if not first.all():
            index_rows = index_rows.filter(pa.array(first))
        with self._lock:
            self._con.execute("begin transaction")
            try:
                stored_before = stored_ids(
                    self._con, index_rows.column("result_id").combine_chunks()
                )
                is_new = first
                new_index_rows = index_rows
                if len(stored_before):
                    is_new = first & ~pc.is_in(ids, value_set=stored_before).to_numpy(
                        zero_copy_only=False
                    )
                    new_index_rows = index_rows.filter(
                        pc.invert(pc.is_in(index_rows.column("result_id"), stored_before))
                    )
                self._con.register("new_ids", new_index_rows)
                try:
                    self._con.execute("insert into result_ids select * from new_ids")
                finally:
                    self._con.unregister("new_ids")
                start = 0
                for (table, rows), size in zip(parts, sizes, strict=True):
                    keep = is_new[start : start + size]
                    start += size
                    if keep.any():
                        body = rows if keep.all() else rows.filter(pa.array(keep))
                        self._con.register("new_bodies", body)
                        try:
                            self._con.execute(
                                f"insert into {table} by name select * from new_bodies"
                            )
                        finally:
                            self._con.unregister("new_bodies")
                    stored[table] = keep
                self._con.execute("commit")
            except BaseException:
                self._rollback()
                raise
        return stored

    def _rollback(self) -> None:
        """Undo a failed transaction. A commit that failed (a full disk) has
        ended it already: the rollback then has nothing to undo, and its own
        error must not replace the commit's, which says what is wrong."""
        try:
            self._con.execute("rollback")
        except duckdb.TransactionException as err:
            log.debug("rollback after a failed commit: %s", err)

    def _index_result_ids(self) -> None:
        """A store from before `result_ids` (or one an older synthetic
        generator filled directly): enter its stored results' ids, once. An id stored
        in two tables by an older release keeps the first table's entry."""
        if self._con.execute("select count(*) from result_ids").fetchone() != (0,):
            return
        # "First" is RESULT_TABLES' order, stated in the query: a union's rows
        # come in whatever order DuckDB's threads finish them.
        union = " union all ".join(
            f"select result_id, '{table}' as result_table, {position} as table_position "
            f"from {table}"
            for position, table in enumerate(RESULT_TABLES)
        )
        # Ordered by id: the zone maps of result_ids are what the lookup uses.
        self._con.execute(
            "insert into result_ids select result_id, result_table "
            f"from ({union}) qualify row_number() over "
            "(partition by result_id order by table_position) = 1 order by result_id"
        )
        indexed = self._con.execute("select count(*) from result_ids").fetchone()
        if indexed is not None and indexed[0]:
            log.info("indexed the ids of %d stored results in result_ids", indexed[0])

    def _add_new_columns(self, reference: duckdb.DuckDBPyConnection) -> None:
        """Bring a store made by an older release up to schema.sql (made in
        `reference`): add the columns it lacks (with their defaults; nothing
        stored is changed)."""
        tables = [r[0] for r in reference.execute("show tables").fetchall()]
        for table in tables:
            have = {r[0] for r in self._con.execute(f"describe {table}").fetchall()}
            for name, type_, _null, _key, default, _extra in reference.execute(
                f"describe {table}"
            ).fetchall():
                if name not in have:
                    clause = f" default {default}" if default is not None else ""
                    self._con.execute(f"alter table {table} add column {name} {type_}{clause}")

    def _drop_result_keys(self, reference: duckdb.DuckDBPyConnection) -> None:
        """A store from before the keyless dedupe: its result tables and
        `result_ids` have a primary key on result_id, an index over every id
        ever stored that DuckDB rewrites whole at each checkpoint (seconds at
        50 M results). Each such table is made again as schema.sql has it
        now (`reference`), its rows copied in their order (the snapshot
        follows rowids), `result_ids` ordered by id so that its zone maps are
        narrow; one transaction per table, once per store."""
        keyed = [
            row[0]
            for row in self._con.execute(
                "select table_name from duckdb_constraints() where constraint_type = "
                "'PRIMARY KEY' and constraint_column_names = ['result_id'] and database_name = "
                "current_database() and schema_name = 'main'"
            ).fetchall()
            if row[0] in (*RESULT_TABLES, "result_ids")
        ]
        for table in keyed:
            definition = reference.execute(
                "select sql from duckdb_tables() where table_name = ?", [table]
            ).fetchone()
            if definition is None:
                continue
            columns = ", ".join(row[0] for row in reference.execute(f"describe {table}").fetchall())
            order = " order by result_id" if table == "result_ids" else ""
            started = time.monotonic()
            self._con.execute("begin transaction")
            try:
                self._con.execute(f"alter table {table} rename to {table}__keyed")
                self._con.execute(definition[0])
                self._con.execute(
                    f"insert into {table} ({columns}) select {columns} from {table}__keyed{order}"
                )
                self._con.execute(f"drop table {table}__keyed")
                self._con.execute("commit")
            except BaseException:
                self._rollback()
                raise
            log.info(
                "made table %s again without its primary key (ids are deduplicated by "
                "range now) in %.1f s",
                table,
                time.monotonic() - started,
            )

    def arrow_schema(self, table: str) -> pa.Schema:
        """The Arrow schema DuckDB gives a table's columns (result ids as text)."""
        with self._lock:
            return self._con.execute(f"select * from {table} limit 0").to_arrow_table().schema

    def replace_probes(self, probes: Iterable[ProbeRow]) -> None:
        """Mirror the registry's probes into the `probes` table (small; whole refresh)."""
        rows = [p.values() for p in probes]
        with self._lock:
            self._con.execute("begin transaction")
            try:
                self._con.execute("delete from probes")
                if rows:
                    self._con.executemany(
                        PROBES_INSERT,
                        rows,
                    )
                self._con.execute("commit")
            except BaseException:
                self._rollback()
                raise

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read query on the writer's connection (for the CLI and tests)."""
        with self._lock:
            return self._con.execute(sql, list(params)).fetchall()

    def count(self, table: str) -> int:
        """Rows in one table."""
        if table not in (*RESULT_TABLES, "probes", "result_ids"):
            raise ValueError(f"unknown table: {table}")
        return int(self.query(f"select count(*) from {table}")[0][0])

    def checkpoint(self) -> None:
        """Fold the WAL into the database file (for backups and a clean stop)."""
        with self._lock:
            self._con.execute("checkpoint")

    def reader(self) -> duckdb.DuckDBPyConnection:
        """A second connection to the same database for long reads that must not
        hold the writer's lock (the analyst snapshot): DuckDB gives each of its
        transactions a consistent view of the committed rows while ingest goes on."""
        with self._lock:
            cursor = self._con.cursor()
        cursor.execute(f"use {self._catalog}")
        return cursor

    def close(self) -> None:
        with self._lock:
            self._con.close()


def sql_text(text: str) -> str:
    """`text` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def concatenated_ids(tables: Iterable[pa.Table]) -> pa.Array:
    """The `result_id` columns of `tables`, one after the other, as text.
    From their chunks: `pa.chunked_array` given whole ChunkedArrays reads
    them as Python sequences, a Python object per id (half a microsecond
    each, measured)."""
    chunks = [
        chunk.cast(pa.string()) for rows in tables for chunk in rows.column("result_id").chunks
    ]
    return pa.chunked_array(chunks, pa.string()).combine_chunks()


def first_copies(ids: pa.Array) -> np.ndarray:
    """True for the first occurrence of each value of `ids`, False for the
    later copies (one pass in C when there are none, the common case)."""
    if pc.count_distinct(ids).as_py() == len(ids):
        return np.ones(len(ids), dtype=bool)
    codes = pc.dictionary_encode(ids).indices.to_numpy(zero_copy_only=False)
    first = np.zeros(len(ids), dtype=bool)
    first[np.unique(codes, return_index=True)[1]] = True
    return first


# Ids of one commit group whose times (a UUIDv7's first 48 bits, unix ms)
# are further apart than this are looked up in separate ranges: a backlog
# re-sent after a month beside today's results scans a month's row groups
# otherwise.
_RANGE_GAP_MS = 3_600_000
# At most this many ranges per lookup (the widest gaps split first): each is a
# scan of its own, and ids spread over many times (a probe's clock jumping)
# must not cost a scan each.
_MAX_RANGES = 16
_CANONICAL_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# Hex digit values by ASCII code (lowercase: the ids are canonical text).
_HEX = np.zeros(256, dtype=np.int64)
_HEX[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16)


def canonical_ids(ids: pa.Array) -> pa.Array:
    """`ids` as DuckDB writes a UUID (lowercase, hyphenated): the text the
    lookup compares and orders. Ingest checks that form already; other text
    (capitals, braces) is converted, and text that is no UUID fails here."""
    if ids.null_count == 0 and pc.all(pc.match_substring_regex(ids, _CANONICAL_UUID)).as_py():
        return ids
    looked_up = pa.table({"result_id": ids})  # noqa: F841 (read by the query below)
    with duckdb.connect() as con:
        converted = con.execute("select result_id::uuid::varchar from looked_up").to_arrow_table()
    return converted.column(0).combine_chunks()


def stored_ids(con: duckdb.DuckDBPyConnection, ids: pa.Array) -> pa.Array:
    """Which of `ids` (canonical text, each once) `result_ids` holds already
    (the embedded store's or the lake's), as DuckDB writes them. One scan
    per range of `id_ranges`: the zone maps (the lake's file statistics)
    skip the row groups outside it, so the cost follows the ids' time spans,
    not the size of the store."""
    ranges = id_ranges(ids)
    scans = " union all ".join(
        ["(select result_id from result_ids where result_id between ?::uuid and ?::uuid)"]
        * len(ranges)
    )
    params = [bound for pair in ranges for bound in pair]
    # Registered by name, not found among the caller's locals: a wrapped
    # connection (a test's) would hide them.
    con.register("looked_up", pa.table({"result_id": ids}))
    try:
        return (
            con.execute(
                f"select result_id::varchar from ({scans}) "
                "where result_id in (select result_id::uuid from looked_up)",
                params,
            )
            .to_arrow_table()
            .column(0)
            .combine_chunks()
        )
    finally:
        con.unregister("looked_up")


def id_ranges(ids: pa.Array) -> list[tuple[str, str]]:
    """The closed ranges (lowest, highest id) that cover `ids` (canonical
    text, whose order is the UUIDs' order), split where their times (a
    UUIDv7's first 48 bits) are more than _RANGE_GAP_MS apart, at most
    _MAX_RANGES of them. Every id is inside a range whatever its time says,
    so a bogus time (or an id that is not v7) costs a wider scan, never a
    missed copy."""
    if len(ids) == 0:
        return []
    ordered = pc.take(ids, pc.sort_indices(ids)).cast(pa.string())
    gaps = np.diff(uuid7_millis(ordered))
    cuts = np.flatnonzero(gaps > _RANGE_GAP_MS)
    if len(cuts) >= _MAX_RANGES:
        cuts = np.sort(cuts[np.argsort(gaps[cuts], kind="stable")[-(_MAX_RANGES - 1) :]])
    firsts = np.concatenate([[0], cuts + 1])
    lasts = np.concatenate([cuts, [len(ordered) - 1]])
    texts = ordered.to_pylist()
    return [(str(texts[a]), str(texts[b])) for a, b in zip(firsts, lasts, strict=True)]


def uuid7_millis(ids: pa.Array) -> np.ndarray:
    """The time of each id (canonical UUID text, 36 characters each), in unix
    ms: a UUIDv7's first 48 bits (of another version, just those bits)."""
    ids = ids.cast(pa.string())
    offsets, data = ids.buffers()[1:3]
    if data is None or offsets is None or len(ids) == 0:
        return np.zeros(len(ids), dtype=np.int64)
    start = int(np.frombuffer(offsets, dtype=np.int32)[ids.offset])
    text = np.frombuffer(data, dtype=np.uint8)[start : start + 36 * len(ids)].reshape(-1, 36)
    digits = _HEX[np.concatenate([text[:, 0:8], text[:, 9:13]], axis=1)]
    return np.asarray((digits << (4 * np.arange(11, -1, -1))).sum(axis=1), dtype=np.int64)
