"""The DuckDB store: one file, one writer (this process), batched inserts.

Results arrive as Arrow tables (one per result kind). A result id names one
result in the whole store: every id goes through the `result_ids` table
(primary key) with one `insert or ignore ... returning` per commit group, and
only the bodies whose id was new are inserted, one insert per table, in the
same transaction. A re-sent result adds nothing, whatever table it names.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
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


class Store:
    """The aggregator's DuckDB file. Calls are serialised by a lock: DuckDB
    allows one writing connection, and the ingest path uses it from a worker
    thread while the event loop keeps serving streams."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(str(self.path))
        self._lock = threading.Lock()
        schema = resources.files("aggregator.ingest").joinpath("schema.sql").read_text("utf-8")
        with self._lock:
            self._con.execute(schema)
            self._add_new_columns(schema)
            self._index_result_ids()

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
        ids = pa.chunked_array(
            [rows.column("result_id").cast(pa.string()) for _, rows in parts]
        ).combine_chunks()
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
                # The Arrow tables are visible to the queries under their Python names.
                new_ids = (
                    self._con.execute(
                        "insert or ignore into result_ids select * from index_rows "
                        "returning result_id::varchar"
                    )
                    .to_arrow_table()
                    .column(0)
                    .combine_chunks()
                )
                if len(new_ids) == len(ids):
                    is_new = first  # all new (and so all first copies)
                else:
                    is_new = first & pc.is_in(ids, value_set=new_ids).to_numpy(zero_copy_only=False)
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
        self._con.execute(
            "insert or ignore into result_ids select result_id, result_table "
            f"from ({union}) qualify row_number() over "
            "(partition by result_id order by table_position) = 1"
        )
        indexed = self._con.execute("select count(*) from result_ids").fetchone()
        if indexed is not None and indexed[0]:
            log.info("indexed the ids of %d stored results in result_ids", indexed[0])

    def _add_new_columns(self, schema: str) -> None:
        """Bring a store made by an older release up to schema.sql: add the
        columns it lacks (with their defaults; nothing stored is changed)."""
        reference = duckdb.connect()
        reference.execute(schema)
        tables = [r[0] for r in reference.execute("show tables").fetchall()]
        for table in tables:
            have = {r[0] for r in self._con.execute(f"describe {table}").fetchall()}
            for name, type_, _null, _key, default, _extra in reference.execute(
                f"describe {table}"
            ).fetchall():
                if name not in have:
                    clause = f" default {default}" if default is not None else ""
                    self._con.execute(f"alter table {table} add column {name} {type_}{clause}")
        reference.close()

    def arrow_schema(self, table: str) -> pa.Schema:
        """The Arrow schema DuckDB gives a table's columns (result ids as text)."""
        with self._lock:
            return self._con.execute(f"select * from {table} limit 0").to_arrow_table().schema

    def replace_probes(self, probes: Iterable[ProbeRow]) -> None:
        """Mirror the registry's probes into the `probes` table (small; whole refresh)."""
        rows = [
            (
                p.probe_id,
                p.ward_code,
                p.ward_name,
                p.site_class,
                p.hostname,
                p.agent_version,
                p.enrolled_at,
                p.cert_serial,
                p.cert_not_after,
                p.cert_state,
                p.revoked_at,
                p.isp,
                p.plan_down_mbps,
                p.plan_up_mbps,
            )
            for p in probes
        ]
        with self._lock:
            self._con.execute("begin transaction")
            try:
                self._con.execute("delete from probes")
                if rows:
                    # columns named: a migrated store has them in the order they were added
                    self._con.executemany(
                        "insert into probes (probe_id, ward_code, ward_name, site_class,"
                        " hostname, agent_version, enrolled_at, cert_serial, cert_not_after,"
                        " cert_state, revoked_at, isp, plan_down_mbps, plan_up_mbps)"
                        " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            return self._con.cursor()

    def close(self) -> None:
        with self._lock:
            self._con.close()


def first_copies(ids: pa.Array) -> np.ndarray:
    """True for the first occurrence of each value of `ids`, False for the
    later copies (one pass in C when there are none, the common case)."""
    if pc.count_distinct(ids).as_py() == len(ids):
        return np.ones(len(ids), dtype=bool)
    codes = pc.dictionary_encode(ids).indices.to_numpy(zero_copy_only=False)
    first = np.zeros(len(ids), dtype=bool)
    first[np.unique(codes, return_index=True)[1]] = True
    return first
