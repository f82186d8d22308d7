"""Indicator benchmark: every indicator for all wards over 50 million results,
and the analyst read path's freshness and cost to ingest.

1. Generates the synthetic results inside DuckDB (analysis/synthetic.py:
   generate_series and a seeded hash per row; no Python loop) for the city's
   103 wards, 10 probes each, all in 2026, into a real store (the
   aggregator's schema, primary keys and all).
2. Opens the store read-only and times `compute_indicators` for 2026 over
   all wards (the city, every ward, every indicator, bootstrap included),
   three runs; then the same with --by operator.
3. Read path: publishes the snapshot of that store (new rows appended to a
   staging copy over a second connection, no writer lock; views and rollups;
   file copy and atomic rename): how long each step takes. Then a writer
   inserts 1,000-row batches (UUIDv7 ids) through Store.insert_results, once
   alone and once with a snapshot published every few seconds: rows/s and
   the longest wait of one insert; then one more (incremental) snapshot.

Usage: python tests/bench/indicators.py [--rows 50000000] [--dir DIR]
Not part of the test suite; prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from aggregator.ingest.snapshot import publish_snapshot
from aggregator.ingest.store import Store
from analysis.indicators import compute_indicators, open_store, parse_period
from analysis.synthetic import city_spec, generate


def _ingest(
    store: Store, batches: list[pa.Table], snapshot: Path | None, every_s: float
) -> dict[str, float]:
    """Insert the batches; with `snapshot`, publish one every `every_s` meanwhile."""
    stop = threading.Event()
    published: list[float] = []

    def publisher() -> None:
        assert snapshot is not None
        while True:
            published.append(publish_snapshot(store, snapshot).total_s)
            if stop.wait(every_s):
                return

    thread = threading.Thread(target=publisher) if snapshot is not None else None
    if thread is not None:
        thread.start()
    waits = []
    started = time.perf_counter()
    for batch in batches:
        t0 = time.perf_counter()
        store.insert_results("throughput", batch)
        waits.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    stop.set()
    if thread is not None:
        thread.join()
    return {
        "rows_per_s": sum(b.num_rows for b in batches) / elapsed,
        "max_wait_s": max(waits),
        "median_wait_s": statistics.median(waits),
        "snapshots": len(published),
        "publish_s": max(published) if published else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--ingest-batches", type=int, default=300)
    parser.add_argument("--snapshot-every-s", type=float, default=2.0)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the snapshot and staging copy of an earlier run; skip the raw-store run",
    )
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="wardprobe-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    path = work / "store.duckdb"
    figures: list[tuple[str, str]] = []

    spec = city_spec(args.rows)
    if not path.exists():
        store = Store(path)
        t0 = time.perf_counter()
        generate(store._con, spec)
        store.checkpoint()
        generated_s = time.perf_counter() - t0
        store.close()
        figures.append(("generate the synthetic results inside DuckDB", f"{generated_s:.0f} s"))
    con = open_store(path)
    total = con.execute(
        "select (select count(*) from throughput) + (select count(*) from latency)"
        " + (select count(*) from cellular) + (select count(*) from ipv6)"
    ).fetchone()
    assert total is not None
    figures.append(("results in the store", f"{int(total[0]):,}"))
    figures.append(("store file", f"{path.stat().st_size / 2**30:.2f} GiB"))
    period = parse_period("2026")
    if not args.reuse:
        t0 = time.perf_counter()
        compute_indicators(con, period, synthetic=True)
        figures.append(
            (
                "all indicators on the raw store, first time (builds the daily rollups in memory)",
                f"{time.perf_counter() - t0:.1f} s",
            )
        )
    con.close()

    store = Store(path)
    snap = work / "snapshot.duckdb"
    if not args.reuse:
        for stale in (snap, snap.with_name(snap.name + ".staging")):
            stale.unlink(missing_ok=True)
    stats = publish_snapshot(store, snap)
    figures.append(
        (
            ("a snapshot (" if args.reuse else "first snapshot (staging copy made from nothing; ")
            + "no lock held on the store)",
            f"{stats.total_s:.1f} s: {stats.new_rows:,} results appended in "
            f"{stats.append_s:.1f} s, {stats.stale_probe_days:,} probe-days rolled up in "
            f"{stats.rollup_s:.1f} s, file copy and rename; {stats.bytes / 2**30:.2f} GiB",
        )
    )
    con = open_store(snap)
    for by in (None, "operator"):
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            report = compute_indicators(con, period, by=by, synthetic=True)
            runs.append(time.perf_counter() - t0)
        figures.append(
            (
                f"all indicators from the snapshot, city + every ward"
                f"{'' if by is None else ', by ' + by} ({len(report.figures)} figures)",
                f"**{min(runs):.2f} s** best of 3 (runs {', '.join(f'{r:.2f}' for r in runs)})",
            )
        )
    con.close()

    # new results are recent ones: the last day of the generated year
    sample = (
        store._con.execute(
            "select * replace (null::varchar as result_id, timestamptz '2026-12-30 00:00:00+07' "
            "+ to_seconds((i * 86.3)::bigint) as measured_at) "
            "from (select *, row_number() over () as i from throughput limit 1000) "
            "order by i"
        )
        .to_arrow_table()
        .drop_columns(["i"])
    )
    batches = []
    for _ in range(args.ingest_batches):
        ids = pa.array([str(r[0]) for r in duckdb.sql("select uuid() from range(1000)").fetchall()])
        batches.append(sample.set_column(0, "result_id", ids))
    alone = _ingest(store, batches[: len(batches) // 2], None, args.snapshot_every_s)
    with_snap = _ingest(store, batches[len(batches) // 2 :], snap, args.snapshot_every_s)
    again = publish_snapshot(store, snap)
    store.close()
    figures.append(
        (
            "insert 1,000-row batches into that store, no snapshot",
            f"{alone['rows_per_s']:,.0f} rows/s, longest insert {alone['max_wait_s']:.2f} s",
        )
    )
    figures.append(
        (
            f"the same while a snapshot is published every {args.snapshot_every_s:g} s",
            f"{with_snap['rows_per_s']:,.0f} rows/s, longest insert "
            f"{with_snap['max_wait_s']:.2f} s ({with_snap['snapshots']:.0f} snapshots, "
            f"longest {with_snap['publish_s']:.1f} s)",
        )
    )
    figures.append(
        (
            "a later snapshot (incremental)",
            f"{again.total_s:.1f} s in all: {again.new_rows:,} new results appended in "
            f"{again.append_s:.2f} s, {again.stale_probe_days:,} probe-days rebuilt in "
            f"{again.rollup_s:.1f} s, then the file copy",
        )
    )
    print("| figure | value |\n|---|---|")
    for name, value in figures:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
