"""The analysts' read path: a read-only snapshot of the store, republished
at an interval.

DuckDB lets one process hold a database file for writing, and that is the
aggregator. So the aggregator publishes a copy: under the store's writer
lock it checkpoints (the WAL folds into the file) and copies the file; then,
with the lock released, it adds the indicator views (analysis/views/), the
`indicator_constants` table, the daily rollups (analysis/rollups.py: the
previous snapshot's, with only the probe-days that changed rebuilt) and a
one-row `snapshot_info` table to the copy,
and renames it over the previous snapshot (atomic on one file system: a
reader has the old file or the new one, never half of one; a reader that
has the old one open keeps it until it closes).

Freshness: a result acked by the aggregator is in the snapshot at most
snapshot_interval_s + one publication later. Cost to ingest: commits wait
while the file is copied (docs/benchmarks.md has the figures).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from aggregator.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapshotStats:
    """What one publication cost."""

    path: Path
    bytes: int
    locked_s: float  # ingest waited this long (checkpoint and copy)
    total_s: float  # from start to the rename
    stale_probe_days: int  # (probe, day) pairs whose rollups were rebuilt
    rollup_s: float  # seconds spent on the rollups


def publish_snapshot(store: Store, dest: Path) -> SnapshotStats:
    """Publish one snapshot of `store` at `dest` (replacing the previous one)."""
    from analysis.indicators import install_views
    from analysis.rollups import refresh_rollups

    started = time.perf_counter()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".publishing")
    for stale in (tmp, tmp.with_name(tmp.name + ".wal")):
        stale.unlink(missing_ok=True)
    store.copy_checkpointed(tmp)
    locked = time.perf_counter() - started
    with duckdb.connect(str(tmp)) as con:
        install_views(con, temporary=False)
        _carry_rollups(con, dest)
        rollups = refresh_rollups(con, temporary=False)
        con.execute(
            "create or replace table snapshot_info as select now() as published_at, "
            "?::varchar as source_path, "
            "(select count(*) from throughput) + (select count(*) from latency) "
            "+ (select count(*) from cellular) + (select count(*) from ipv6) as results",
            [str(store.path)],
        )
        con.execute("checkpoint")
    os.replace(tmp, dest)
    return SnapshotStats(
        dest,
        dest.stat().st_size,
        locked,
        time.perf_counter() - started,
        rollups.stale_probe_days,
        rollups.seconds,
    )


def _carry_rollups(con: duckdb.DuckDBPyConnection, previous: Path) -> None:
    """Copy the previous snapshot's rollups into the new one, so that only the
    probe-days that changed since are rebuilt."""
    from analysis.rollups import ROLLUPS

    if not previous.exists():
        return
    con.execute(f"attach '{previous}' as previous (read_only)")
    try:
        present = {
            str(r[0])
            for r in con.execute(
                "select table_name from duckdb_tables() where database_name = 'previous'"
            ).fetchall()
        }
        if {"rollup_keys", *ROLLUPS} <= present:
            for name in ("rollup_keys", *ROLLUPS):
                con.execute(f"create table {name} as select * from previous.{name}")
    finally:
        con.execute("detach previous")


async def snapshot_loop(store: Store, dest: Path, interval_s: float) -> None:
    """Publish a snapshot now and then every interval_s, until cancelled."""
    while True:
        try:
            stats = await asyncio.to_thread(publish_snapshot, store, dest)
            log.info(
                "snapshot published at %s: %d bytes, ingest waited %.2f s, %.2f s in all",
                stats.path,
                stats.bytes,
                stats.locked_s,
                stats.total_s,
            )
        except Exception:
            log.exception("snapshot publication failed; will retry")
        await asyncio.sleep(interval_s)
