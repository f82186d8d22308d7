"""Daily rollups: what makes the indicators fast over tens of millions of results.

Each rollup (analysis/rollups/rollup_*.sql) holds, per probe and Cần Thơ
day, only figures that add up exactly over days (counts, sums, the day's
median latency, radio seconds), built from the same *_checked views an
analyst reads. An indicator for any period of whole days then reads a few
hundred thousand rollup rows instead of every result (analysis/rollups/
units_*.sql).

Refreshing is incremental: only the stale (probe, day) pairs are rebuilt.
The analyst snapshot's staging copy knows them (the days of the rows it
appended; aggregator/ingest/snapshot.py) and keeps its rollups from one publication
to the next. On a store without rollups `compute_indicators` builds them in
temporary tables; `rollup_keys` there counts the rows per table, probe, kind
(real or synthetic) and day, and as results are only ever added, the pairs
whose counts changed are exactly the stale ones.

When a release changes what a rollup holds (its columns, or a new rollup)
or how it is made (a view, the validity rule, a threshold of
indicator_constants: `definitions_fingerprint`, kept in
`rollup_definitions`), the rollups kept from before no longer fit: they are
dropped and rebuilt whole once, so they never count by an older rule than
the views'.

The rollups and the order they are filled in (ROLLUPS: each after any
rollup it reads) come from analysis/catalog.py, which reads the files.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb

from analysis.catalog import ROLLUPS, VIEW_ORDER, rollup_sql, view_sql
from analysis.constants import indicator_constants_rows
from analysis.periods import Period, local_midnight, set_period

__all__ = [
    "ROLLUPS",
    "RefreshStats",
    "definitions_fingerprint",
    "has_rollups",
    "refresh_rollups",
    "rollup_sql",
    "rollups_fit",
]

# Rollups keyed by probe and day; rollup_cells is keyed by day only.
_BY_PROBE = frozenset(ROLLUPS) - {"rollup_cells"}


def definitions_fingerprint() -> str:
    """A hash of everything a rollup row follows from: the views as this
    release creates them (the validity rule written in), the rollups' SQL
    and the indicator_constants rows, each view and rollup by its name."""
    digest = hashlib.sha256()
    texts = [f"{n}\n{view_sql(n)}" for n in VIEW_ORDER] + [
        f"{n}\n{rollup_sql(n)}" for n in ("rollup_keys", *ROLLUPS)
    ]
    for text in (*texts, repr(indicator_constants_rows())):
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class RefreshStats:
    """What a refresh did."""

    stale_probe_days: int
    seconds: float


def has_rollups(con: duckdb.DuckDBPyConnection, *, temporary: bool) -> bool:
    """Whether the rollup tables exist (in the temp schema, or in the database)."""
    row = con.execute(
        "select count(*) from duckdb_tables() where table_name = 'rollup_keys' "
        "and temporary = ? and (temporary or database_name = current_database())",
        [temporary],
    ).fetchone()
    return row is not None and int(row[0]) > 0


def refresh_rollups(
    con: duckdb.DuckDBPyConnection, *, temporary: bool, stale: str | None = None
) -> RefreshStats:
    """Bring the rollups up to date with the store (the views must be installed).

    temporary: keep them in temporary tables (a read-only store); otherwise
    in the database itself (the snapshot). stale: a table of the (probe_id,
    synthetic, local_day) whose results changed, when the caller knows them
    (the snapshot does); otherwise rollup_keys finds them by counting."""
    started = time.perf_counter()
    temp = "temp " if temporary else ""
    prefix = "temp." if temporary else "main."
    if has_rollups(con, temporary=temporary) and not rollups_fit(con, temporary=temporary):
        for name in ("rollup_keys", "rollup_definitions", *ROLLUPS):
            con.execute(f"drop table if exists {prefix}{name}")
        stale = None  # every probe-day is stale: rollup_keys finds them all
    if not has_rollups(con, temporary=temporary):
        con.execute(
            f"create {temp}table rollup_keys (result_table varchar, probe_id varchar, "
            "synthetic boolean, local_day date, results bigint)"
        )
        con.execute("create or replace temp table rollup_dirty (probe_id varchar, local_day date)")
        for name in ROLLUPS:
            con.execute(f"create {temp}table {name} as select * from ({rollup_sql(name)}) limit 0")
        con.execute(
            f"create or replace {temp}table rollup_definitions as select ?::varchar as fingerprint",
            [definitions_fingerprint()],
        )
    if stale is not None:
        con.execute(
            f"create or replace temp table rollup_stale as select distinct probe_id, synthetic, "
            f"local_day from {stale}"
        )
    else:
        con.execute(f"create or replace temp table rollup_now as {rollup_sql('rollup_keys')}")
        # (probe, kind, day) whose row counts differ from the last refresh
        con.execute(
            f"""
            create or replace temp table rollup_stale as
            select distinct probe_id, synthetic, local_day from (
                select * from rollup_now
                except
                select * from {prefix}rollup_keys
                union all
                (select * from {prefix}rollup_keys except select * from rollup_now)
            )
            """
        )
    counted = con.execute("select count(*) from rollup_stale").fetchone()
    stale_count = int(counted[0]) if counted is not None else 0
    for synthetic in (False, True):
        days = con.execute(
            "select min(local_day), max(local_day) from rollup_stale where synthetic = ?",
            [synthetic],
        ).fetchone()
        if days is None or days[0] is None:
            continue
        first, last = days[0], days[1]
        assert isinstance(first, date) and isinstance(last, date)
        con.execute(
            "create or replace temp table rollup_dirty as "
            "select probe_id, local_day from rollup_stale where synthetic = ?",
            [synthetic],
        )
        # the views read only the stale days' rows
        stale_days = Period(
            "stale days", local_midnight(first), local_midnight(last + timedelta(days=1))
        )
        set_period(con, stale_days, synthetic)
        for name in ROLLUPS:
            if name in _BY_PROBE:
                con.execute(
                    f"delete from {prefix}{name} r using rollup_dirty d where r.synthetic = ? "
                    "and r.probe_id = d.probe_id and r.local_day = d.local_day",
                    [synthetic],
                )
            else:
                con.execute(
                    f"delete from {prefix}{name} where synthetic = ? and local_day in "
                    "(select local_day from rollup_dirty)",
                    [synthetic],
                )
            con.execute(f"insert into {prefix}{name} {rollup_sql(name)}")
    if stale is None:
        con.execute(f"delete from {prefix}rollup_keys")
        con.execute(f"insert into {prefix}rollup_keys select * from rollup_now")
        con.execute("drop table rollup_now")
    return RefreshStats(stale_count, time.perf_counter() - started)


def rollups_fit(con: duckdb.DuckDBPyConnection, *, temporary: bool) -> bool:
    """Whether every rollup table exists with the columns its SQL makes now,
    built from this release's definitions (`definitions_fingerprint`)."""
    made_with = con.execute(
        "select count(*) from duckdb_tables() where table_name = 'rollup_definitions' "
        "and temporary = ? and (temporary or database_name = current_database())",
        [temporary],
    ).fetchone()
    if made_with is None or int(made_with[0]) == 0:
        return False  # made by a release that did not record its definitions
    prefix = "temp." if temporary else "main."
    recorded = con.execute(f"select fingerprint from {prefix}rollup_definitions").fetchall()
    if [str(r[0]) for r in recorded] != [definitions_fingerprint()]:
        return False
    con.execute("create or replace temp table rollup_dirty (probe_id varchar, local_day date)")
    for name in ROLLUPS:
        have = con.execute(
            "select column_name from duckdb_columns() where table_name = ? and database_name = "
            "case when ? then 'temp' else current_database() end and schema_name = 'main' "
            "order by column_index",
            [name, temporary],
        ).fetchall()
        cursor = con.execute(f"select * from ({rollup_sql(name)}) limit 0")
        wanted = [str(d[0]) for d in cursor.description]
        if [str(r[0]) for r in have] != wanted:
            return False
    return True
