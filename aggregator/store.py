"""The DuckDB store: one file, one writer (this process), batched inserts.

Results arrive as Arrow tables (one per result kind) and go in with one
`insert or ignore ... by name` per table: the result id is the primary key,
so a re-sent result adds nothing, and `returning` tells which ids were new.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from aggregator.batch_reader import RESULT_TABLES


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
        schema = resources.files("aggregator").joinpath("schema.sql").read_text("utf-8")
        with self._lock:
            self._con.execute(schema)
            self._add_new_columns(schema)

    def insert_results(self, table: str, rows: pa.Table) -> pa.Array:
        """Insert rows into a result table, ignoring ids already stored.
        Returns the ids (as strings) that were new."""
        if table not in RESULT_TABLES:
            raise ValueError(f"not a result table: {table}")
        with self._lock:
            # The Arrow table is visible to the query under its Python name.
            new_ids = self._con.execute(
                f"insert or ignore into {table} by name select * from rows "
                "returning result_id::varchar as result_id"
            ).to_arrow_table()
        return new_ids.column("result_id").combine_chunks()

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
                self._con.execute("rollback")
                raise

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read query on the writer's connection (for the CLI and tests)."""
        with self._lock:
            return self._con.execute(sql, list(params)).fetchall()

    def count(self, table: str) -> int:
        """Rows in one table."""
        if table not in (*RESULT_TABLES, "probes"):
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
