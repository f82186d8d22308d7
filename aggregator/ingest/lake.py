"""The lake store: DuckLake with a PostgreSQL catalogue, for aggregator replicas.

Each replica is a `LakeStore` on its own DuckDB (in memory) that attaches the
lake `ducklake:postgres:<URI>` as `lake`, with the Parquet files under the
spec's data_path. The tables are schema.sql's, without the primary keys
DuckLake does not have; so exactly-once is this module's (docs/scaling.md,
"Exactly-once on the lake"):

- every stored result's id is in `result_ids` (as in the embedded store);
- a commit group, in one DuckLake transaction, looks up its ids in
  `result_ids` only in the window its UUIDv7 ids span (their time prefix
  orders them, and each Parquet file's min/max of result_id lets DuckDB skip
  the files outside it), inserts the new ids and bodies, and bumps the one
  row of `commit_fence`;
- DuckLake commits optimistically, and two transactions that both changed
  `commit_fence` conflict: the later one fails at its commit, whatever else
  it did. It is then run again from the start on a new snapshot, which now
  sees the ids the other committed. So of two replicas given the same batch
  (an agent failing over mid-stream), one stores it and the other counts it
  as duplicates.

The extensions come from their PyPI packages (duckdb-extension-ducklake,
duckdb-extension-postgres, the pinned DuckDB's version); DuckDB is told not
to install or load anything by itself.
"""

from __future__ import annotations

import atexit
import ctypes
import importlib.util
import logging
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from aggregator.config import LakeSpec
from aggregator.ingest.store import (
    PROBES_INSERT,
    ProbeRow,
    canonical_ids,
    concatenated_ids,
    first_copies,
    sql_text,
    stored_ids,
)
from aggregator.ingest.tables import RESULT_TABLES

log = logging.getLogger(__name__)

LAKE = "lake"  # the name the lake is attached under, in every connection here
FENCE = "commit_fence"  # the one row every ingest commit changes (the conflict that orders them)
# A commit that lost to another replica's is run again; after this many
# losses in a row the group fails (the agents re-send it later).
MAX_COMMIT_ATTEMPTS = 20
# A file no snapshot names is deleted once this old: far longer than any commit takes.
# Tables a replica deletes from or updates (the rest it only inserts into): their
# inlined rows are flushed under the writer's lock (LakeStore.compact).
REWRITTEN = (FENCE, "probes")
ORPHAN_AGE_S = 3600.0
_T = TypeVar("_T")


class LakeUnavailable(RuntimeError):
    """The lake's extensions are not installed, or its data path cannot be made."""


@cache
def extension_files() -> tuple[Path, Path]:
    """The ducklake and postgres_scanner extension files, as DuckDB must load
    them. DuckDB takes an extension's name from its file name and calls
    `<name>_duckdb_cpp_init`; the postgres package ships `postgres.duckdb_extension`
    whose entry point is postgres_scanner's, so it is linked under that name
    in a directory of this process's (removed at exit)."""
    found = []
    for package in ("duckdb_extension_ducklake", "duckdb_extension_postgres"):
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise LakeUnavailable(
                f"{package.replace('_', '-')} is not installed (pip install "
                f"{package.replace('_', '-')}=={duckdb.__version__})"
            )
        files = sorted(Path(spec.origin).parent.rglob(f"v{duckdb.__version__}/*.duckdb_extension"))
        if not files:
            raise LakeUnavailable(f"{package} has no extension for DuckDB {duckdb.__version__}")
        found.append(files[0])
    ducklake, postgres = found
    linked = Path(tempfile.mkdtemp(prefix="wardprobe-duckdb-ext-"))
    atexit.register(shutil.rmtree, linked, True)
    (linked / "postgres_scanner.duckdb_extension").symlink_to(postgres)
    return ducklake, linked / "postgres_scanner.duckdb_extension"


def connect_lake(spec: LakeSpec, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake attached as `lake` and in use, so
    unqualified table names (the views of analysis/) are the lake's.
    read_only: what an analyst's connection should be."""
    con = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    try:
        attach_lake(con, spec, read_only=read_only)
        con.execute(f"use {LAKE}")
    except BaseException:
        con.close()
        raise
    return con


def attach_lake(
    con: duckdb.DuckDBPyConnection,
    spec: LakeSpec,
    *,
    read_only: bool,
    name: str = LAKE,
    snapshot_id: int | None = None,
) -> None:
    """Load the extensions and attach the lake to `con` under `name`; read
    as of one committed snapshot when `snapshot_id` is given (read-only)."""
    for path in extension_files():
        con.execute(f"load {sql_text(str(path))}")
    options = [f"data_path {sql_text(spec.data_path)}"]
    if snapshot_id is not None:
        options.append(f"snapshot_version {int(snapshot_id)}")
    if read_only:
        options.append("read_only")
    else:
        try:
            Path(spec.data_path).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise LakeUnavailable(
                f"cannot make the data path {spec.data_path}: {err.strerror or err}"
            ) from None
    con.execute(
        f"attach {sql_text('ducklake:postgres:' + spec.catalogue_uri)} as {name} "
        f"({', '.join(options)})"
    )


def sync_file_system(directory: Path) -> None:
    """Write to disk every file written on the file system holding `directory`
    (Linux's syncfs(2); elsewhere sync(2)). DuckDB does not fsync the Parquet
    files it writes, and a commit must not name files a crash could lose."""
    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "syncfs"):
        os.sync()
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if libc.syncfs(fd) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"syncfs {directory}: {os.strerror(errno)}")
    finally:
        os.close(fd)


def _is_conflict(err: duckdb.Error) -> bool:
    """DuckLake's words for a commit that lost to a concurrent one (or, while
    tables are made, two replicas creating the same one)."""
    text = str(err).lower()
    # DuckLake retries a commit whose snapshot id another took; past its
    # retry count that is the same race, lost once more. PostgreSQL's own
    # serialization failure is that race seen from the catalogue (a
    # compaction rewriting rows a concurrent commit changed).
    return any(
        words in text
        for words in (
            "conflict",
            "already exists",
            "maximum retry count",
            "could not serialize access",
        )
    )


@dataclass(frozen=True)
class LakeTable:
    """One table of schema.sql as DuckLake takes it: the same columns, types,
    NOT NULLs and defaults, no keys."""

    name: str
    create: str  # create table if not exists ...
    # (name, type, default or None), in schema.sql's order
    columns: tuple[tuple[str, str, str | None], ...]

    def add_column(self, column: str) -> str:
        """The statement that adds one of its columns to an older lake's table."""
        _name, type_, default = next(c for c in self.columns if c[0] == column)
        clause = f" default {default}" if default is not None else ""
        return f'alter table {self.name} add column "{column}" {type_}{clause}'


@cache
def lake_schema() -> tuple[LakeTable, ...]:
    """Every table of schema.sql, for the lake (no primary keys there)."""
    schema = resources.files("aggregator.ingest").joinpath("schema.sql").read_text("utf-8")
    reference = duckdb.connect()
    try:
        reference.execute(schema)
        tables = []
        for (table,) in reference.execute(
            "select table_name from duckdb_tables() order by table_name"
        ).fetchall():
            columns = reference.execute(
                "select column_name, data_type, is_nullable, column_default "
                "from duckdb_columns() where table_name = ? order by column_index",
                [table],
            ).fetchall()
            body = ", ".join(
                f'"{name}" {type_}'
                + ("" if nullable else " not null")
                + (f" default {default}" if default is not None else "")
                for name, type_, nullable, default in columns
            )
            tables.append(
                LakeTable(
                    str(table),
                    f"create table if not exists {table} ({body})",
                    tuple((str(n), str(t), d) for n, t, _null, d in columns),
                )
            )
    finally:
        reference.close()
    return tuple(tables)


@dataclass(frozen=True)
class CompactionStats:
    """What one compaction did and took."""

    files_before: int
    files_after: int
    seconds: float


class LakeStore:
    """The `ResultStore` on a DuckLake (see the module's docstring). Calls
    are serialised by a lock: one connection writes; `reader()` gives others."""

    def __init__(self, spec: LakeSpec, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.spec = spec
        self._sleep = sleep  # between a lost commit and its retry (a test passes its own)
        self._con = connect_lake(spec)
        self._lock = threading.Lock()
        with self._lock:
            self._retrying(self._create_tables)

    def _create_tables(self) -> None:
        """Make what schema.sql has and the lake lacks (a new lake: everything;
        an older one: the new columns). Reads first: a replica starting on a
        lake that is up to date writes nothing."""
        have: dict[str, set[str]] = {}
        for table, column in self._con.execute(
            "select table_name, column_name from duckdb_columns() where database_name = ?",
            [LAKE],
        ).fetchall():
            have.setdefault(str(table), set()).add(str(column))
        missing = [
            (table, [c[0] for c in table.columns if c[0] not in have.get(table.name, set())])
            for table in lake_schema()
        ]
        missing = [(table, columns) for table, columns in missing if columns]
        if not missing and FENCE in have:
            return
        self._con.execute("begin transaction")
        try:
            for table, columns in missing:
                if table.name not in have:
                    self._con.execute(table.create)
                else:
                    for column in columns:
                        self._con.execute(table.add_column(column))
            self._con.execute(f"create table if not exists {FENCE} (commits bigint not null)")
            if self._con.execute(f"select count(*) from {FENCE}").fetchone() == (0,):
                self._con.execute(f"insert into {FENCE} values (0)")
            self._con.execute("commit")
        except BaseException:
            self._rollback()
            raise

    def _retrying(self, attempt: Callable[[], _T]) -> _T:
        """Run one transaction, again from the start each time it loses to a
        concurrent commit, up to MAX_COMMIT_ATTEMPTS times."""
        for tries in range(1, MAX_COMMIT_ATTEMPTS + 1):
            try:
                return attempt()
            except duckdb.Error as err:
                if not _is_conflict(err) or tries == MAX_COMMIT_ATTEMPTS:
                    raise
                log.debug("lake commit lost to another (attempt %d): %s", tries, err)
                # Spread the replicas apart so they don't collide again at once.
                self._sleep(random.uniform(0.0, 0.01 * tries))
        raise AssertionError("unreachable")

    def insert_new_results(self, tables: Mapping[str, pa.Table]) -> dict[str, np.ndarray]:
        """Insert the rows of several result tables in one lake transaction,
        each result id once in the whole lake, whichever replica stored it
        (the module's docstring says how). Returns, per table, which of its
        rows were stored."""
        for table in tables:
            if table not in RESULT_TABLES:
                raise ValueError(f"not a result table: {table}")
        parts = [(t, rows) for t, rows in tables.items() if rows.num_rows]
        stored = {t: np.zeros(rows.num_rows, dtype=bool) for t, rows in tables.items()}
        if not parts:
            return stored
        ids = canonical_ids(concatenated_ids(rows for _, rows in parts))
        sizes = [rows.num_rows for _, rows in parts]
        kinds = pa.array(np.repeat([t for t, _ in parts], sizes), pa.string())
        first = first_copies(ids)
        with self._lock:
            is_new = self._retrying(lambda: self._commit_group(parts, sizes, ids, kinds, first))
        start = 0
        for (table, _rows), size in zip(parts, sizes, strict=True):
            stored[table] = is_new[start : start + size]
            start += size
        return stored

    def _commit_group(
        self,
        parts: list[tuple[str, pa.Table]],
        sizes: list[int],
        ids: pa.Array,
        kinds: pa.Array,
        first: np.ndarray,
    ) -> np.ndarray:
        """One attempt: look up, insert, bump the fence, commit. Which rows were new."""
        con = self._con
        candidates = pa.table({"result_id": ids, "result_table": kinds}).filter(pa.array(first))
        con.execute("begin transaction")
        try:
            # Only the windows the group's ids span: UUIDv7 ids sort by time.
            seen = stored_ids(con, candidates.column("result_id").combine_chunks())
            is_new: np.ndarray = first & ~pc.is_in(ids, value_set=seen).to_numpy(
                zero_copy_only=False
            )
            new_ids = candidates.filter(
                pc.invert(pc.is_in(candidates.column("result_id"), value_set=seen))
            )
            con.register("new_ids", new_ids)
            try:
                # In id order: each file's min/max of result_id then spans a narrow window.
                con.execute(
                    "insert into result_ids select result_id::uuid, result_table "
                    "from new_ids order by result_id"
                )
            finally:
                con.unregister("new_ids")
            start = 0
            for (table, rows), size in zip(parts, sizes, strict=True):
                keep = is_new[start : start + size]
                start += size
                if keep.any():
                    body = rows if keep.all() else rows.filter(pa.array(keep))
                    con.register("new_bodies", body)
                    try:
                        con.execute(f"insert into {table} by name select * from new_bodies")
                    finally:
                        con.unregister("new_bodies")
            con.execute(f"update {FENCE} set commits = commits + 1")
            # The Parquet files on disk before the catalogue names them: after
            # the commit the batch is acked, and must survive a crash.
            sync_file_system(Path(self.spec.data_path))
            self._commit_transaction()
        except BaseException:
            self._rollback()
            raise
        return is_new

    def _commit_transaction(self) -> None:
        """Commit the ingest transaction (where a concurrent commit makes it fail)."""
        self._con.execute("commit")

    def _rollback(self) -> None:
        """Undo a failed transaction; a failed commit has ended it already."""
        try:
            self._con.execute("rollback")
        except duckdb.TransactionException as err:
            log.debug("rollback after a failed commit: %s", err)

    def arrow_schema(self, table: str) -> pa.Schema:
        """The Arrow schema DuckDB gives a table's columns (result ids as text)."""
        with self._lock:
            return self._con.execute(f"select * from {table} limit 0").to_arrow_table().schema

    def replace_probes(self, probes: Iterable[ProbeRow]) -> None:
        """Mirror the registry's probes into the `probes` table (small; whole refresh)."""
        rows = [p.values() for p in probes]

        def replace() -> None:
            self._con.execute("begin transaction")
            try:
                self._con.execute("delete from probes")
                if rows:
                    self._con.executemany(
                        PROBES_INSERT,
                        rows,
                    )
                # Two replicas mirroring at once into an empty table would
                # both insert without a conflict (doubling every probe): the
                # fence makes the later one run again and delete the other's rows.
                self._con.execute(f"update {FENCE} set commits = commits + 1")
                self._con.execute("commit")
            except BaseException:
                self._rollback()
                raise

        with self._lock:
            self._retrying(replace)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read query on the writer's connection (for the CLI and tests)."""
        with self._lock:
            return self._con.execute(sql, list(params)).fetchall()

    def count(self, table: str) -> int:
        """Rows in one table."""
        if table not in (*RESULT_TABLES, "probes", "result_ids", "baseline"):
            raise ValueError(f"unknown table: {table}")
        return int(self.query(f"select count(*) from {table}")[0][0])

    def data_files(self) -> int:
        """Parquet files the lake's current snapshot reads."""
        union = " union all ".join(
            f"select data_file from ducklake_list_files('{LAKE}', '{table.name}')"
            for table in lake_schema()
        )
        with self._lock:
            row = self._con.execute(f"select count(*) from ({union})").fetchone()
        return int(row[0]) if row else 0

    def compact(self, *, keep_snapshots_s: float) -> CompactionStats:
        """Fold small files together: inlined rows into Parquet, adjacent
        files merged, snapshots older than keep_snapshots_s expired and the
        files only they read deleted. Runs on a connection of its own, so
        ingest goes on (it waits only while the fence and probes are flushed); a
        compaction that conflicts with another replica's is left to the next one."""
        started = time.perf_counter()
        before = self.data_files()
        self._flush_rewritten()
        con = self.reader()
        try:
            # Table by table, the rewritten ones apart: flushing a table
            # rewrites its inlined rows, and every ingest commit changes the
            # fence's, so a flush of all tables at once lost to any commit
            # made meanwhile (PostgreSQL: "could not serialize access") and
            # under steady ingest never succeeded. Inserts, all that ingest
            # does to the other tables, do not conflict with their flush.
            for table in (t for t in lake_schema() if t.name not in REWRITTEN):
                con.execute(
                    f"call ducklake_flush_inlined_data('{LAKE}', table_name => "
                    f"{sql_text(table.name)})"
                )
            con.execute(f"call ducklake_merge_adjacent_files('{LAKE}')")
            cutoff = f"now() - to_microseconds({int(keep_snapshots_s * 1e6)})"
            con.execute(f"call ducklake_expire_snapshots('{LAKE}', older_than => {cutoff})")
            con.execute(f"call ducklake_cleanup_old_files('{LAKE}', older_than => {cutoff})")
            # Files no snapshot names: a replica killed mid-commit left them. Only
            # old ones: another replica's commit in progress has written its files.
            orphans = f"now() - to_microseconds({int(max(keep_snapshots_s, ORPHAN_AGE_S) * 1e6)})"
            con.execute(f"call ducklake_delete_orphaned_files('{LAKE}', older_than => {orphans})")
        finally:
            con.close()
        return CompactionStats(before, self.data_files(), time.perf_counter() - started)

    def _flush_rewritten(self) -> None:
        """Write the inlined rows of the tables this replica rewrites out (the
        fence: each commit leaves a row, so unflushed they grow by a row a
        commit; probes). Under the writer's lock: this replica's commits wait
        the few milliseconds it takes instead of conflicting with it; a flush
        that keeps losing to other replicas' commits is left to the next
        compaction."""
        for table in REWRITTEN:

            def flush(table: str = table) -> None:
                self._con.execute(
                    f"call ducklake_flush_inlined_data('{LAKE}', table_name => {sql_text(table)})"
                )

            with self._lock:
                try:
                    self._retrying(flush)
                except duckdb.Error as err:
                    if not _is_conflict(err):
                        raise
                    log.info("%s's inlined rows are left to the next compaction: %s", table, err)

    def checkpoint(self) -> None:
        """Nothing to fold: every commit is durable in the lake when it returns
        (compaction is `compact`, on its schedule)."""

    def reader(self) -> duckdb.DuckDBPyConnection:
        """A second connection for long reads that must not hold the writer's
        lock; DuckLake gives each transaction one snapshot."""
        with self._lock:
            return self._con.cursor()

    def close(self) -> None:
        with self._lock:
            self._con.close()


@dataclass(frozen=True)
class MigratedTable:
    """One table of an embedded store moved into a lake."""

    table: str
    source_rows: int  # rows in the embedded store
    copied: int  # rows this run added to the lake
    already: int  # rows of the source the lake held before (an earlier run, or ingest)
    lake_rows: int  # rows in the lake's table afterwards
    missing: int  # source rows the lake still lacks afterwards (0: nothing lost)
    doubled: int  # rows of the lake's table whose key another row has too (0: none)

    @property
    def complete(self) -> bool:
        """Every source row is in the lake, and none twice."""
        return self.missing == 0 and self.doubled == 0


def migrate_embedded(store: LakeStore, source: Path) -> list[MigratedTable]:
    """Copy an embedded store (a DuckDB file, read-only here) into the lake,
    in one lake transaction: results whose id the lake has are skipped (so a
    rerun, or results a replica took meanwhile, add nothing), their ids
    entered in result_ids under the first table that holds them; probes by
    probe_id and baseline rows by their whole content likewise. Returns the
    counts per table."""
    with store._lock:
        return store._retrying(lambda: _migrate_once(store, source))


def _migrate_once(store: LakeStore, source: Path) -> list[MigratedTable]:
    con = store._con
    con.execute(f"attach {sql_text(str(source))} as migrate_source (read_only)")
    try:
        src_tables = {
            str(r[0])
            for r in con.execute(
                "select table_name from duckdb_tables() where database_name = 'migrate_source'"
            ).fetchall()
        }
        con.execute("begin transaction")
        try:
            # Result tables in RESULT_TABLES' order: an id an older release
            # stored in two tables is entered under the first, as the embedded store does.
            order = {name: n for n, name in enumerate(RESULT_TABLES)}
            tables = sorted(lake_schema(), key=lambda t: (order.get(t.name, len(order)), t.name))
            moved = [_migrate_table(con, table) for table in tables if table.name in src_tables]
            con.execute(f"update {LAKE}.{FENCE} set commits = commits + 1")
            sync_file_system(Path(store.spec.data_path))
            con.execute("commit")
        except BaseException:
            store._rollback()
            raise
    finally:
        con.execute("detach migrate_source")
    return [m for m in moved if m is not None]


def _migrate_table(con: duckdb.DuckDBPyConnection, table: LakeTable) -> MigratedTable | None:
    """Copy one table's missing rows; None for result_ids (entered with the results)."""
    if table.name == "result_ids":
        return None
    names = ", ".join(f'"{c[0]}"' for c in table.columns)
    src, dst = f"migrate_source.main.{table.name}", f"{LAKE}.main.{table.name}"

    def count(sql: str) -> int:
        row = con.execute(sql).fetchone()
        return int(row[0]) if row else 0

    source_rows = count(f"select count(*) from {src}")
    if table.name in RESULT_TABLES:
        missing = f"from {src} where result_id not in (select result_id from {LAKE}.result_ids)"
        copied = count(f"select count(*) {missing}")
        # The bodies first, then their ids: both read the same ids as missing.
        con.execute(f"insert into {dst} ({names}) select {names} {missing}")
        con.execute(
            f"insert into {LAKE}.result_ids (result_id, result_table) "
            f"select result_id, '{table.name}' {missing}"
        )
        doubled = f"select count(*) - count(distinct result_id) from {dst}"
    elif table.name == "probes":
        missing = f"from {src} where probe_id not in (select probe_id from {dst})"
        copied = count(f"select count(*) {missing}")
        con.execute(f"insert into {dst} ({names}) select {names} {missing}")
        doubled = f"select count(*) - count(distinct probe_id) from {dst}"
    else:  # no key: a row is there when an equal row is (EXCEPT ALL counts copies)
        missing = f"select {names} from {src} except all select {names} from {dst}"
        copied = count(f"select count(*) from ({missing})")
        con.execute(f"insert into {dst} ({names}) {missing}")
        doubled = "select 0"  # equal baseline rows may be meant (two imports of one file)
    lake_rows = count(f"select count(*) from {dst}")
    # Read again after the copy, in the same transaction: what a rerun would copy.
    if table.name in RESULT_TABLES:
        left = count(
            f"select count(*) from {src} where result_id not in (select result_id from {dst})"
        )
    else:
        left = count(f"select count(*) from ({missing})")
    return MigratedTable(
        table.name, source_rows, copied, source_rows - copied, lake_rows, left, count(doubled)
    )
