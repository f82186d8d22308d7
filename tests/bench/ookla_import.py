"""Ookla tiles import benchmark: one quarter of the global mobile tile set's
size filtered to Cần Thơ and assigned to wards.

1. Generates, inside DuckDB, a Parquet file in Ookla's real schema
   (tests/analysis/ookla_tiles.py: quadkey, the WKT tile, tile_x/tile_y,
   avg_d_kbps ... devices) with `--tiles` rows (default 4,000,000; Ookla's
   2023-04-01 mobile file has 3,864,546): distinct zoom-16 tiles spread over
   the inhabited latitudes of the world in a shuffled order, about
   `--city-tiles` of them (default 20,000) in Cần Thơ's bounding box (the box
   holds 39,200 tiles, 17,606 of them centred in the city). The rows come
   from hashes: the same file every time.
2. Times `read_quarter` (schema check, the quadkey-prefix filter in SQL, each
   survivor's centre against the ward boundaries, the sums per ward) over it,
   a first run and three more, with the boundaries already loaded (they
   are read once per process; that load is timed on its own); then the
   whole `baseline import-ookla` command once, a fresh process, store write
   included.

Usage: python tests/bench/ookla_import.py [--tiles 4000000] [--dir DIR]
Not part of the test suite; prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

from analysis.ookla import city_geometry, identify, read_quarter, tile_at

NAME = "2024-01-01_performance_mobile_tiles.parquet"


def _quadkey_sql(x: str, y: str) -> str:
    """SQL for the zoom-16 quadkey of tile columns x, y."""
    digits = [f"(({x} >> {b}) & 1) + 2 * (({y} >> {b}) & 1)" for b in range(15, -1, -1)]
    return "concat(" + ", ".join(f"({d})::varchar" for d in digits) + ")"


def generate(path: Path, tiles: int, city_tiles: int) -> None:
    """The file: `tiles` distinct tiles, `city_tiles` of them in the city's bounding box."""
    west, south, east, north = city_geometry().bounds
    x0, y0 = tile_at(west, north)
    x1, y1 = tile_at(east, south)
    span_x, span_y = x1 - x0 + 1, y1 - y0 + 1
    # rows 70° N to 55° S: about tile rows 13,000 to 42,000 of 65,536
    top, rows = 13_000, 29_000
    con = duckdb.connect()
    con.execute(
        f"""
        create table xy as
        with world as (
            -- distinct tiles: x and y from different bits of one hash
            select distinct (hash(i) % 65536)::bigint as x,
                   ({top} + (hash(i) // 65536) % {rows})::bigint as y
            from range({int(tiles * 1.02)}) t(i)
        ),
        outside as (
            select x, y from world
            where not (x between {x0} and {x1} and y between {y0} and {y1})
            limit {tiles - city_tiles}
        ),
        city as (
            -- about city_tiles of the box's tiles, each once
            select x, y from range({x0}, {x1 + 1}) a(x), range({y0}, {y1 + 1}) b(y)
            where hash(x, y) % {span_x * span_y} < {city_tiles}
        )
        select * from outside union all select * from city
        """
    )
    con.execute(
        f"""
        copy (
            with t as (
                select x, y,
                       x / 65536 * 360 - 180 as w, (x + 1) / 65536 * 360 - 180 as e,
                       degrees(atan(sinh(pi() * (1 - 2 * y / 65536)))) as n,
                       degrees(atan(sinh(pi() * (1 - 2 * (y + 1) / 65536)))) as s,
                       hash(x, y) as h
                from xy
            )
            select {_quadkey_sql("x", "y")} as quadkey,
                   printf('POLYGON((%.12f %.12f, %.12f %.12f, %.12f %.12f, %.12f %.12f, '
                          '%.12f %.12f))', w, n, e, n, e, s, w, s, w, n) as tile,
                   round((w + e) / 2, 4) as tile_x,
                   round((n + s) / 2, 4) as tile_y,
                   (1000 + h % 200000)::bigint as avg_d_kbps,
                   (500 + h % 50000)::bigint as avg_u_kbps,
                   (10 + h % 90)::bigint as avg_lat_ms,
                   (20 + h % 300)::integer as avg_lat_down_ms,
                   (20 + h % 600)::integer as avg_lat_up_ms,
                   (1 + h % 40)::bigint as tests,
                   (1 + h % 12)::bigint as devices
            from t
            order by hash(h, 'order')
        ) to '{path}' (format parquet)
        """
    )
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiles", type=int, default=4_000_000)
    parser.add_argument("--city-tiles", type=int, default=20_000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="ookla-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / NAME
    t0 = time.perf_counter()
    city_geometry()
    loaded = time.perf_counter() - t0
    started = time.perf_counter()
    generate(path, args.tiles, args.city_tiles)
    made = time.perf_counter() - started
    rows = duckdb.sql(f"select count(*) from read_parquet('{path}')").fetchone()
    figures = [
        (
            "generated file",
            f"{rows[0] if rows else 0:,} tiles, {path.stat().st_size / 2**20:,.0f} MiB, "
            f"in {made:.0f} s",
        )
    ]
    figures.append(("ward boundaries loaded (once per process)", f"{loaded:.2f} s"))
    qf = identify(path, "mobile", 2024)
    con = duckdb.connect()
    t0 = time.perf_counter()
    read_quarter(con, qf)  # the first run: the file just written, in the page cache
    first = time.perf_counter() - t0
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        q = read_quarter(con, qf)
        times.append(time.perf_counter() - t0)
    figures.append(
        (
            "read_quarter: filter to Cần Thơ and assign to wards",
            f"**{statistics.median(times):.2f} s** (first run {first:.2f} s, then "
            f"{', '.join(f'{t:.2f}' for t in times)}); "
            f"{q.city.tiles:,} tiles in the city, {len(q.wards)} wards, "
            f"{q.tiles_outside:,} outside",
        )
    )
    store = folder / "store.duckdb"
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "aggregator",
            "baseline",
            "import-ookla",
            str(path),
            "--kind",
            "mobile",
            "--year",
            "2024",
            "--store",
            str(store),
        ],
        check=True,
        capture_output=True,
    )
    figures.append(
        (
            "`baseline import-ookla` of that file, a new process (imports, boundaries, store)",
            f"{time.perf_counter() - t0:.1f} s",
        )
    )
    print("| figure | value |\n|---|---|")
    for name, value in figures:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
