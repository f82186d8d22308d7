"""The analysts' read path: a read-only snapshot of the store, republished
at an interval, without holding up ingest.

DuckDB lets one process hold a database file for writing, and that is the
aggregator. So the aggregator keeps a private staging copy next to the
snapshot (`<snapshot>.staging`) and, every interval:

1. on a second connection to the store (`Store.reader`: no writer lock, one
   consistent read transaction while ingest goes on) appends to the staging
   copy the rows added since the last publication (results are only ever
   added, and one writer appends them in commit order, so "rowid above the
   last one copied" is exactly the new rows) and replaces the small `probes`,
   `baseline`, reference-figure (`reference_*_ipv6`) and `ward_population`
   tables; the new rows' (probe, day) pairs are the stale ones;
2. adds the views (analysis/views/), the `indicator_constants` table and
   brings the daily rollups (analysis/rollups.py) up to date, rebuilding
   only the stale probe-days, plus a one-row `snapshot_info`;
3. copies the staging file and renames the copy over the snapshot (atomic on
   one file system: a reader has the old file or the new one; one that has
   the old one open keeps it until it closes).

Freshness: a result acked by the aggregator is in the snapshot at most
snapshot_interval_s plus one publication later. Ingest never waits for a
lock; the publication costs CPU and disk beside it (docs/benchmarks.md).
If a result table gains columns, its staging copy is rebuilt whole.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from aggregator.ingest.store import Store
from aggregator.ingest.tables import RESULT_TABLES

log = logging.getLogger(__name__)

# The Cần Thơ day of a row (UTC+7 all year), as the rollups use it.
_LOCAL_DAY = "date '1970-01-01' + ((epoch_us(measured_at) + 25200000000) // 86400000000)::integer"


@dataclass(frozen=True)
class SnapshotStats:
    """What one publication did and cost."""

    path: Path
    bytes: int
    new_rows: int  # results appended since the previous publication
    append_s: float  # reading them from the store (no lock held)
    stale_probe_days: int  # (probe, day) pairs whose rollups were rebuilt
    rollup_s: float  # seconds spent on the rollups
    total_s: float  # from start to the rename


def publish_snapshot(store: Store, dest: Path) -> SnapshotStats:
    """Publish one snapshot of `store` at `dest` (replacing the previous one)."""
    from analysis.indicators import install_views
    from analysis.rollups import refresh_rollups

    started = time.perf_counter()
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.with_name(dest.name + ".staging")
    reader = store.reader()
    try:
        reader.execute(f"attach '{staging}' as staging")
        try:
            new_rows = _append_new_rows(reader)
        finally:
            reader.execute("detach staging")
    finally:
        reader.close()
    appended = time.perf_counter() - started
    with duckdb.connect(str(staging)) as con:
        install_views(con, temporary=False)
        rollups = refresh_rollups(con, temporary=False, stale="snapshot_stale")
        con.execute(
            "create or replace table snapshot_info as select now() as published_at, "
            "?::varchar as source_path, "
            "(select count(*) from throughput) + (select count(*) from latency) "
            "+ (select count(*) from cellular) + (select count(*) from ipv6) as results",
            [str(store.path)],
        )
        con.execute("checkpoint")
    tmp = dest.with_name(dest.name + ".publishing")
    shutil.copyfile(staging, tmp)
    os.replace(tmp, dest)
    return SnapshotStats(
        dest,
        dest.stat().st_size,
        new_rows,
        appended,
        rollups.stale_probe_days,
        rollups.seconds,
        time.perf_counter() - started,
    )


def _columns(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> list[str]:
    return [
        str(r[0])
        for r in con.execute(
            "select column_name from duckdb_columns() where database_name = ? "
            "and table_name = ? order by column_index",
            [catalog, table],
        ).fetchall()
    ]


def _append_new_rows(reader: duckdb.DuckDBPyConnection) -> int:
    """Copy the rows added since the last publication into the staging
    database, in one read transaction of the store; record their (probe, day)."""
    store_catalog = str(reader.execute("select current_database()").fetchone()[0])  # type: ignore[index]
    reader.execute("begin transaction")
    try:
        reader.execute(
            "create table if not exists staging.snapshot_watermarks "
            "(result_table varchar, max_rowid bigint)"
        )
        reader.execute(
            "create or replace table staging.snapshot_stale "
            "(probe_id varchar, synthetic boolean, local_day date)"
        )
        total = 0
        for table in RESULT_TABLES:
            wanted = _columns(reader, store_catalog, table)
            have = _columns(reader, "staging", table)
            if have != wanted:
                # new, or the store's table changed: copy it whole
                reader.execute(f"drop table if exists staging.{table}")
                reader.execute(
                    f"create table staging.{table} as select * from {store_catalog}.{table} limit 0"
                )
                reader.execute(
                    "delete from staging.snapshot_watermarks where result_table = ?", [table]
                )
            row = reader.execute(
                "select max_rowid from staging.snapshot_watermarks where result_table = ?",
                [table],
            ).fetchone()
            last = -1 if row is None else int(row[0])
            top_row = reader.execute(f"select max(rowid) from {store_catalog}.{table}").fetchone()
            top = -1 if top_row is None or top_row[0] is None else int(top_row[0])
            if top <= last:
                continue
            new = f"from {store_catalog}.{table} where rowid > {last} and rowid <= {top}"
            reader.execute(f"insert into staging.{table} select * {new}")
            reader.execute(
                f"insert into staging.snapshot_stale "
                f"select distinct probe_id, synthetic, {_LOCAL_DAY} {new}"
            )
            count = reader.execute(f"select count(*) {new}").fetchone()
            total += int(count[0]) if count is not None else 0
            reader.execute(
                "delete from staging.snapshot_watermarks where result_table = ?", [table]
            )
            reader.execute("insert into staging.snapshot_watermarks values (?, ?)", [table, top])
        for table in (
            "probes",
            "baseline",
            "reference_apnic_ipv6",
            "reference_province_ipv6",
            "ward_population",
        ):
            reader.execute(
                f"create or replace table staging.{table} as select * from {store_catalog}.{table}"
            )
        reader.execute("commit")
    except BaseException:
        reader.execute("rollback")
        raise
    return total


async def snapshot_loop(store: Store, dest: Path, interval_s: float) -> None:
    """Publish a snapshot now and then every interval_s, until cancelled."""
    while True:
        try:
            stats = await asyncio.to_thread(publish_snapshot, store, dest)
            log.info(
                "snapshot published at %s: %d new results, %d probe-days rolled up, %.1f s",
                stats.path,
                stats.new_rows,
                stats.stale_probe_days,
                stats.total_s,
            )
        except Exception:
            log.exception("snapshot publication failed; will retry")
        await asyncio.sleep(interval_s)
