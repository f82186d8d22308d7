"""Ookla's open performance tiles as a baseline: `wardprobe-aggregator
baseline import-ookla FILE.parquet [...] --kind mobile|fixed --year 2024`.

The data set is "Speedtest by Ookla Global Fixed and Mobile Network
Performance Maps" (github.com/teamookla/ookla-open-data; on AWS as
s3://ookla-open-data/parquet/performance/type=mobile/year=2024/quarter=1/
2024-01-01_performance_mobile_tiles.parquet), licensed CC BY-NC-SA 4.0. Each
quarter's file has one row per zoom-16 web-Mercator tile (about 600 m here)
in which the Speedtest apps ran tests with a GPS-quality location. Its
columns, as the files have them (the README's "Tile Attributes"; the Arrow
schema of 2023-04-01_performance_mobile_tiles.parquet as ClickHouse's chDB
guide prints it): quadkey string, tile string (the WKT polygon), tile_x and
tile_y double (the centre, newer files only), avg_d_kbps, avg_u_kbps and
avg_lat_ms int64, avg_lat_down_ms and avg_lat_up_ms (int32 or double,
nullable, newer files only), tests int64, devices int64.

One quarter's import:
1. the file must have those columns with those types (the ones newer files
   add are optional); any other file is refused naming each missing or
   mistyped column;
2. the city's tiles are found in two steps: in SQL, only the rows whose
   quadkey starts with one of the few coarser tiles that cover the city's
   bounding box (works for every release, with or without tile_x/tile_y);
   then each survivor's centre, computed exactly from its quadkey, against
   the repaired ward boundaries (analysis/maps/boundaries.py);
3. a tile counts whole in the ward its centre lies in (docs/indicators.md,
   "Ookla's tiles", says why not split by area). A centre in no single ward
   (on a border, where two neighbouring boundaries overlap, or in a sliver
   between them) goes to the ward holding the largest part of the tile, the
   lowest code on a tie. A centre outside the city's outline is outside the
   city, even when the tile's edge reaches in: such tiles are counted, not
   stored;
4. per ward and for the city: the tests-weighted mean download
   sum(avg_d_kbps * tests) / sum(tests), the tests, the devices (summed over
   the tiles: a phone that tested in two tiles counts twice) and the tiles,
   stored in the `baseline` table (origin `ookla_tiles`, one row per scope
   and quarter). A quarter already imported is replaced, never added to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Final

import duckdb
import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from analysis import constants as k
from analysis.periods import Period, local_midnight

ZOOM: Final = 16
ORIGIN: Final = "ookla_tiles"
LICENCE: Final = "CC BY-NC-SA 4.0"
# The attribution Ookla's licence asks for, as its README names the data set.
DATASET: Final = "Speedtest by Ookla Global Fixed and Mobile Network Performance Maps"
KINDS: Final = ("mobile", "fixed")
# At most this many coarse tiles in the SQL filter: one short IN list.
MAX_PREFIXES: Final = 64

_INTEGER = frozenset(
    {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
    }
)
_FLOATING = frozenset({"FLOAT", "DOUBLE"})
# column -> (what the import expects, in words; the DuckDB types that are it)
REQUIRED_COLUMNS: Final[dict[str, tuple[str, frozenset[str]]]] = {
    "quadkey": ("text", frozenset({"VARCHAR"})),
    "tile": ("text (WKT)", frozenset({"VARCHAR"})),
    "avg_d_kbps": ("integer", _INTEGER),
    "avg_u_kbps": ("integer", _INTEGER),
    "avg_lat_ms": ("integer", _INTEGER),
    "tests": ("integer", _INTEGER),
    "devices": ("integer", _INTEGER),
}
# Added by newer releases; checked when present.
OPTIONAL_COLUMNS: Final[dict[str, tuple[str, frozenset[str]]]] = {
    "tile_x": ("floating-point", _FLOATING),
    "tile_y": ("floating-point", _FLOATING),
    "avg_lat_down_ms": ("number", _INTEGER | _FLOATING),
    "avg_lat_up_ms": ("number", _INTEGER | _FLOATING),
}

# Ookla names each file for its quarter's first day and layer.
_FILE_NAME = re.compile(r"(\d{4})-(\d{2})-(\d{2})_performance_(mobile|fixed)_tiles")


class TilesRefused(ValueError):
    """A tiles file the import will not take; the text says why."""


@dataclass(frozen=True)
class QuarterFile:
    """One file of Ookla's tiles and the quarter it holds."""

    path: Path
    kind: str  # mobile | fixed
    year: int
    quarter: int  # 1..4

    @property
    def label(self) -> str:
        """ "2024Q1"."""
        return f"{self.year}Q{self.quarter}"


def _claims(path: Path) -> dict[str, str]:
    """What a file's name and its directories (Ookla's type=/year=/quarter=) say it holds."""
    said: dict[str, str] = {}
    for part in path.parts[:-1]:
        key, eq, value = part.partition("=")
        if eq and key in ("type", "year", "quarter"):
            said[key] = value
    if m := _FILE_NAME.search(path.name):
        year, month, day, kind = m.groups()
        said["type"], said["year"] = kind, year
        if day == "01" and month in ("01", "04", "07", "10"):
            said["quarter"] = str((int(month) - 1) // 3 + 1)
    return said


def identify(path: Path, kind: str, year: int, quarter: int | None = None) -> QuarterFile:
    """The quarter a file holds: from its name as Ookla gives it
    (2024-01-01_performance_mobile_tiles.parquet), its type=/year=/quarter=
    directories or `quarter`; TilesRefused when they disagree with
    `kind` and `year` or with each other, or say nothing of the quarter."""
    if kind not in KINDS:
        raise TilesRefused(f"--kind must be mobile or fixed, got {kind!r}")
    said = _claims(path)
    if said.get("type", kind) != kind:
        raise TilesRefused(f"{path} holds {said['type']} tiles by its name, not {kind}")
    if said.get("year", str(year)) != str(year):
        raise TilesRefused(f"{path} holds {said['year']} by its name, not {year}")
    named = said.get("quarter")
    if named is not None and quarter is not None and int(named) != quarter:
        raise TilesRefused(f"{path} holds quarter {named} by its name, not {quarter}")
    if named is None and quarter is None:
        raise TilesRefused(
            f"cannot tell which quarter {path} holds: keep Ookla's file name "
            f"({year}-01-01_performance_{kind}_tiles.parquet) or give --quarter"
        )
    chosen = int(named) if named is not None else quarter
    if chosen is None or not 1 <= chosen <= 4:
        raise TilesRefused(f"the quarter must be 1 to 4, got {chosen}")
    return QuarterFile(path, kind, year, chosen)


def check_schema(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """TilesRefused naming every missing or mistyped column of Ookla's tiles;
    duckdb.Error when the file is no Parquet file at all."""
    described = {
        str(r[0]): str(r[1])
        for r in con.execute(
            f"describe select * from read_parquet('{_sql_text(path)}', hive_partitioning = false)"
        ).fetchall()
    }
    problems = []
    for name, (words, types) in REQUIRED_COLUMNS.items():
        if name not in described:
            problems.append(f"{name} missing ({words})")
        elif described[name] not in types:
            problems.append(f"{name} is {described[name]}, not {words}")
    for name, (words, types) in OPTIONAL_COLUMNS.items():
        if name in described and described[name] not in types:
            problems.append(f"{name} is {described[name]}, not {words}")
    if problems:
        raise TilesRefused(
            f"{path} is not in the schema of Ookla's performance tiles: " + "; ".join(problems)
        )


# --- tiles and quadkeys ------------------------------------------------------


def quadkey(x: int, y: int, zoom: int) -> str:
    """The quadkey of tile (x, y) at `zoom` (Bing Maps' tile system)."""
    return "".join(
        str(((x >> bit) & 1) | (((y >> bit) & 1) << 1)) for bit in range(zoom - 1, -1, -1)
    )


def quadkey_xy(keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Zoom-16 tile numbers (x, y) of quadkeys, vectorised; ValueError for a
    key that is not 16 digits 0-3."""
    if not keys:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if any(len(key) != ZOOM for key in keys):
        bad = next(key for key in keys if len(key) != ZOOM)
        raise ValueError(f"quadkey {bad!r} is not of a zoom-{ZOOM} tile")
    digits = np.frombuffer("".join(keys).encode("ascii"), dtype=np.uint8).reshape(-1, ZOOM)
    digits = digits - ord("0")
    if (digits > 3).any():  # a character below "0" wrapped round to above 3 too
        bad = keys[int(np.nonzero((digits > 3).any(axis=1))[0][0])]
        raise ValueError(f"quadkey {bad!r} has a digit other than 0-3")
    weights = np.left_shift(1, np.arange(ZOOM - 1, -1, -1, dtype=np.int64))
    x = ((digits & 1).astype(np.int64) * weights).sum(axis=1)
    y = (((digits >> 1) & 1).astype(np.int64) * weights).sum(axis=1)
    return x, y


def _lat(y: np.ndarray) -> np.ndarray:
    """Latitude of the northern edge of tile row y (web Mercator)."""
    return np.degrees(np.arctan(np.sinh(np.pi * (1.0 - 2.0 * y / 2**ZOOM))))


def tile_bounds(
    x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(west, south, east, north) in degrees of zoom-16 tiles: the `tile` polygon's corners."""
    west = x / 2**ZOOM * 360.0 - 180.0
    east = (x + 1) / 2**ZOOM * 360.0 - 180.0
    return west, _lat(y + 1.0), east, _lat(y.astype(float))


def tile_centres(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lon, lat) of the tiles' centres: the centroid of the `tile` polygon,
    a rectangle in degrees (tile_x and tile_y are the same, rounded)."""
    west, south, east, north = tile_bounds(x, y)
    return (west + east) / 2.0, (south + north) / 2.0


def tile_at(lon: float, lat: float) -> tuple[int, int]:
    """The zoom-16 tile (x, y) a point lies in."""
    n = 2**ZOOM
    x = int(np.floor((lon + 180.0) / 360.0 * n))
    rad = np.radians(lat)
    y = int(np.floor((1.0 - np.arcsinh(np.tan(rad)) / np.pi) / 2.0 * n))
    return x, y


def covering_prefixes(
    bounds: tuple[float, float, float, float], most: int = MAX_PREFIXES
) -> tuple[int, list[str]]:
    """The finest zoom z whose tiles covering `bounds` (west, south, east,
    north) number at most `most`, and their quadkeys: every zoom-16 tile
    whose centre lies in the bounds starts with one of them."""
    west, south, east, north = bounds
    x0, y0 = tile_at(west, north)
    x1, y1 = tile_at(east, south)
    for zoom in range(ZOOM, 0, -1):
        shift = ZOOM - zoom
        xs = range(x0 >> shift, (x1 >> shift) + 1)
        ys = range(y0 >> shift, (y1 >> shift) + 1)
        if len(xs) * len(ys) <= most:
            return zoom, sorted(quadkey(x, y, zoom) for x in xs for y in ys)
    raise ValueError("bounds too large")  # zoom 1 has 4 tiles: not reached


# --- the city ----------------------------------------------------------------


@dataclass(frozen=True)
class CityGeometry:
    """The wards' repaired boundaries and the city's outline, as the import reads them."""

    codes: tuple[int, ...]  # registry codes, in the order of `shapes`
    shapes: tuple[Polygon | MultiPolygon, ...]
    outline: Polygon | MultiPolygon
    tree: shapely.STRtree

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) of the outline."""
        west, south, east, north = self.outline.bounds
        return (float(west), float(south), float(east), float(north))


@cache
def city_geometry() -> CityGeometry:
    """analysis/maps/boundaries.py's wards (repaired, registry codes) and outline."""
    from analysis.maps.boundaries import city_outline, ward_boundaries

    wards = ward_boundaries()
    shapes = tuple(w.geometry for w in wards)
    for shape in shapes:
        shapely.prepare(shape)
    outline = city_outline()
    shapely.prepare(outline)
    return CityGeometry(tuple(w.ward_code for w in wards), shapes, outline, shapely.STRtree(shapes))


def assign_wards(x: np.ndarray, y: np.ndarray, city: CityGeometry | None = None) -> np.ndarray:
    """The ward code each zoom-16 tile (x, y) counts in, 0 outside the city
    (the module docstring has the rule)."""
    city = city or city_geometry()
    lon, lat = tile_centres(x, y)
    out = np.zeros(len(x), dtype=np.int64)
    inside = shapely.intersects_xy(city.outline, lon, lat)
    points: np.ndarray = np.asarray(shapely.points(lon[inside], lat[inside]), dtype=object)
    where = np.nonzero(inside)[0]
    # (point, ward) pairs whose ward covers the point (its edge included)
    pairs = city.tree.query(points, predicate="intersects")
    hits = np.bincount(pairs[0], minlength=len(points))
    single = hits == 1
    first = np.full(len(points), -1)
    first[pairs[0][::-1]] = pairs[1][::-1]
    codes = np.asarray(city.codes, dtype=np.int64)
    out[where[single]] = codes[first[single]]
    west, south, east, north = tile_bounds(x, y)
    for i in np.nonzero(~single)[0]:
        j = where[i]
        out[j] = _largest_part(city, box(west[j], south[j], east[j], north[j]), points[i])
    return out


def _largest_part(city: CityGeometry, tile: Polygon, centre: shapely.Point) -> int:
    """The ward holding the largest part of a tile (lowest code on a tie);
    the nearest ward when none reaches into it."""
    candidates = city.tree.query(tile, predicate="intersects")
    if len(candidates) == 0:
        nearest = city.tree.query_nearest(centre)
        return min(city.codes[int(i)] for i in nearest)
    areas = [(-city.shapes[int(i)].intersection(tile).area, city.codes[int(i)]) for i in candidates]
    return min(areas)[1]


# --- one quarter ---------------------------------------------------------------


@dataclass(frozen=True)
class ScopeTiles:
    """One scope's tiles of one quarter, summed."""

    kbps_tests: int  # sum of avg_d_kbps × tests over the tiles
    tests: int
    devices: int  # summed over the tiles
    tiles: int

    @property
    def mean_mbps(self) -> float:
        """The tests-weighted mean download, Mb/s."""
        # Ookla's kb/s are kilobits (1000 bits) per second: Mb/s is kb/s / 1000.
        return self.kbps_tests / self.tests / 1000.0


@dataclass(frozen=True)
class QuarterTiles:
    """What one quarter's file holds for the city."""

    file: QuarterFile
    tiles_read: int  # rows of the file
    tiles_outside: int  # of those, centred outside the city: not stored
    city: ScopeTiles
    wards: dict[int, ScopeTiles]


def _sum(kbps: np.ndarray, tests: np.ndarray, devices: np.ndarray) -> ScopeTiles:
    return ScopeTiles(
        kbps_tests=int((kbps * tests).sum()),
        tests=int(tests.sum()),
        devices=int(devices.sum()),
        tiles=len(tests),
    )


def read_quarter(
    con: duckdb.DuckDBPyConnection, qf: QuarterFile, city: CityGeometry | None = None
) -> QuarterTiles:
    """One quarter's tiles in the city, per ward; TilesRefused when the file
    is not Ookla's tiles, holds bad values for a tile in the city, or has no
    tile in the city."""
    city = city or city_geometry()
    check_schema(con, qf.path)
    source = f"read_parquet('{_sql_text(qf.path)}', hive_partitioning = false)"
    total = con.execute(f"select count(*) from {source}").fetchone()
    zoom, prefixes = covering_prefixes(city.bounds)
    listed = ", ".join(f"'{p}'" for p in prefixes)
    table = con.execute(
        f"select quadkey, avg_d_kbps, tests, devices from {source} "
        f"where left(quadkey, {zoom}) in ({listed})"
    ).to_arrow_table()
    keys = [str(v) for v in table.column("quadkey").to_pylist()]
    try:
        x, y = quadkey_xy(keys)
    except ValueError as err:
        raise TilesRefused(f"{qf.path}: {err}") from None
    wards = assign_wards(x, y, city)
    mine = wards != 0
    columns = {}
    for name in ("avg_d_kbps", "tests", "devices"):
        column = table.column(name)
        values = np.asarray(column.to_numpy(zero_copy_only=False))
        missing = np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        if (missing & mine).any():
            raise TilesRefused(
                f"{qf.path}: {int((missing & mine).sum())} tiles in the city lack {name}"
            )
        columns[name] = np.where(missing, 0, values).astype(np.int64)
    kbps, tests, devices = columns["avg_d_kbps"], columns["tests"], columns["devices"]
    if ((tests < 1) & mine).any():
        raise TilesRefused(
            f"{qf.path}: {int(((tests < 1) & mine).sum())} tiles in the city have no tests"
        )
    if (((kbps < 0) | (devices < 0)) & mine).any():
        raise TilesRefused(f"{qf.path}: tiles in the city with a negative download or device count")
    mine_keys = np.asarray(keys, dtype=object)[mine]
    if len(set(mine_keys.tolist())) != len(mine_keys):
        raise TilesRefused(f"{qf.path}: a tile appears twice; one quarter has each tile once")
    read = int(total[0]) if total else 0
    if not mine.any():
        raise TilesRefused(
            f"no tile of {qf.path} lies in Cần Thơ ({read} tiles read): nothing stored"
        )
    by_ward = {
        int(code): _sum(kbps[wards == code], tests[wards == code], devices[wards == code])
        for code in np.unique(wards[mine])
    }
    return QuarterTiles(
        file=qf,
        tiles_read=read,
        tiles_outside=read - int(mine.sum()),
        city=_sum(kbps[mine], tests[mine], devices[mine]),
        wards=by_ward,
    )


def _sql_text(path: Path) -> str:
    """A path as an SQL string literal's content."""
    return str(path).replace("'", "''")


# --- the store -----------------------------------------------------------------


def _baseline_columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        str(r[0])
        for r in con.execute(
            "select column_name from information_schema.columns where table_name = 'baseline'"
        ).fetchall()
    }


def store_quarters(con: duckdb.DuckDBPyConnection, quarters: Sequence[QuarterTiles]) -> list[str]:
    """Store the quarters' city and ward rows in one transaction, each quarter
    replacing what an earlier import stored for it. Returns the quarters
    ("mobile 2024Q1") that replaced an earlier import."""
    labels = [(q.file.kind, q.file.year, q.file.quarter) for q in quarters]
    if len(set(labels)) != len(labels):
        raise TilesRefused("the same quarter is given twice; import each quarter once")
    now = datetime.now(UTC)
    replaced = []
    con.execute("begin transaction")
    try:
        for q in quarters:
            key = [ORIGIN, q.file.kind, q.file.year, q.file.quarter]
            where = "origin = ? and network_kind = ? and year = ? and quarter = ?"
            before = con.execute(f"select count(*) from baseline where {where}", key).fetchone()
            if before is not None and int(before[0]) > 0:
                replaced.append(f"{q.file.kind} {q.file.label}")
            con.execute(f"delete from baseline where {where}", key)
            source = (
                f"{DATASET}, performance_{q.file.kind}_tiles {q.file.label} ({q.file.path.name})"
            )
            scopes: list[tuple[str, int | None, ScopeTiles]] = [("city", None, q.city)]
            scopes += [("ward", code, s) for code, s in sorted(q.wards.items())]
            con.executemany(
                "insert into baseline (scope, ward_code, year, network_kind, access_tech, "
                "statistic, value_mbps, sample_size, source, imported_at, origin, quarter, "
                "devices, tiles, licence) "
                "values (?, ?, ?, ?, null, 'mean', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    [
                        scope,
                        code,
                        q.file.year,
                        q.file.kind,
                        s.mean_mbps,
                        s.tests,
                        source,
                        now,
                        ORIGIN,
                        q.file.quarter,
                        s.devices,
                        s.tiles,
                        LICENCE,
                    ]
                    for scope, code, s in scopes
                ],
            )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return replaced


# --- what the indicators read -----------------------------------------------------


@dataclass(frozen=True)
class TileFigure:
    """Ookla's tiles of one scope over some quarters."""

    kind: str  # mobile | fixed
    mean_mbps: float  # tests-weighted mean download over the quarters' tiles
    tests: int
    devices: int  # summed over tiles and quarters: a device counts once per tile and quarter
    tiles: int  # summed over quarters: a tile counts once per quarter
    quarters: tuple[str, ...]  # "2024Q1", ...
    licence: str

    @property
    def enough(self) -> bool:
        """Whether the figure clears the floor of a probes' figure, devices
        standing in for probes (docs/indicators.md); a mean of 0 (every tile
        at 0 kb/s) is no baseline to divide by."""
        return self.devices >= k.FLOOR_PROBES and self.tests >= k.FLOOR_TESTS and self.mean_mbps > 0

    @property
    def label(self) -> str:
        """ "Ookla open data mobile tiles 2024Q1, 2024Q2"."""
        return f"Ookla open data {self.kind} tiles {', '.join(self.quarters)}"


def quarters_within(period: Period) -> list[tuple[int, int]]:
    """The quarters (year, quarter) whose days all lie in the period."""
    out = []
    for year in range(period.start.year, period.end.year + 1):
        for q in range(1, 5):
            first = local_midnight(date(year, 3 * q - 2, 1))
            after = local_midnight(date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1))
            if period.start <= first and after <= period.end:
                out.append((year, q))
    return out


def tile_figures(
    con: duckdb.DuckDBPyConnection, kind: str, quarters: Iterable[tuple[int, int]]
) -> dict[str, TileFigure]:
    """The imported tiles of those quarters by scope ("city" or a ward's
    code), each quarter weighted by its tests."""
    wanted = sorted(set(quarters))
    if not wanted or not {"origin", "quarter", "devices", "tiles"} <= _baseline_columns(con):
        return {}
    rows = con.execute(
        "select scope, ward_code, year, quarter, value_mbps, sample_size, devices, tiles, "
        "licence from baseline where origin = ? and network_kind = ? "
        "and list_contains(?, year * 10 + quarter) order by year, quarter",
        [ORIGIN, kind, [y * 10 + q for y, q in wanted]],
    ).fetchall()
    sums: dict[str, list[float]] = {}
    seen: dict[str, list[str]] = {}
    licence: dict[str, str] = {}
    for scope, ward, year, quarter, mbps, tests, devices, tiles, lic in rows:
        key = "city" if scope == "city" else str(ward)
        acc = sums.setdefault(key, [0.0, 0, 0, 0])
        acc[0] += float(mbps) * int(tests)
        acc[1] += int(tests)
        acc[2] += int(devices)
        acc[3] += int(tiles)
        seen.setdefault(key, []).append(f"{year}Q{quarter}")
        licence[key] = str(lic)
    return {
        key: TileFigure(
            kind=kind,
            mean_mbps=acc[0] / acc[1],
            tests=int(acc[1]),
            devices=int(acc[2]),
            tiles=int(acc[3]),
            quarters=tuple(seen[key]),
            licence=licence[key],
        )
        for key, acc in sums.items()
        if acc[1] > 0
    }
