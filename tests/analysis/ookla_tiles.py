"""Small files of Ookla's performance tiles, in the real schema, for the tests.

The schema is the one Ookla's Parquet files have (the 2023-04-01 mobile
file's Arrow schema as ClickHouse's chDB guide prints it): quadkey string,
tile string (WKT polygon, corners from the north-west clockwise, as in the
files), tile_x/tile_y double (the centre, rounded to 4 decimals as Ookla
does), avg_d_kbps, avg_u_kbps, avg_lat_ms int64, avg_lat_down_ms and
avg_lat_up_ms int32 (nullable), tests int64, devices int64. `older=True`
writes the first releases' schema, without tile_x, tile_y and the loaded
latencies. The tile's corners are computed here from the quadkey with
plain math, independently of analysis/ookla.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

NEWER = pa.schema(
    [
        ("quadkey", pa.string()),
        ("tile", pa.string()),
        ("tile_x", pa.float64()),
        ("tile_y", pa.float64()),
        ("avg_d_kbps", pa.int64()),
        ("avg_u_kbps", pa.int64()),
        ("avg_lat_ms", pa.int64()),
        ("avg_lat_down_ms", pa.int32()),
        ("avg_lat_up_ms", pa.int32()),
        ("tests", pa.int64()),
        ("devices", pa.int64()),
    ]
)
OLDER = pa.schema([f for f in NEWER if f.name not in NEWER.names[2:4] + NEWER.names[7:9]])


@dataclass(frozen=True)
class Tile:
    """One tile's row: what the tests choose; the rest follows from the quadkey."""

    quadkey: str
    avg_d_kbps: int
    tests: int
    devices: int
    avg_u_kbps: int = 10_000
    avg_lat_ms: int = 30


def corners(quadkey: str) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a quadkey's tile, in degrees."""
    x = y = 0
    for digit in quadkey:
        x, y = 2 * x + (int(digit) & 1), 2 * y + (int(digit) >> 1)
    n = 2 ** len(quadkey)

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


def centre(quadkey: str) -> tuple[float, float]:
    """(lon, lat) of the centre of a quadkey's tile."""
    west, south, east, north = corners(quadkey)
    return (west + east) / 2, (south + north) / 2


def tile_at(lon: float, lat: float, zoom: int = 16) -> str:
    """The quadkey of the tile a point lies in."""
    n = 2**zoom
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return "".join(str(((x >> b) & 1) + 2 * ((y >> b) & 1)) for b in range(zoom - 1, -1, -1))


def write_tiles(path: Path, tiles: list[Tile], *, older: bool = False) -> Path:
    """A Parquet file of these tiles in Ookla's schema."""
    rows = []
    for t in tiles:
        west, south, east, north = corners(t.quadkey)
        lon, lat = centre(t.quadkey)
        rows.append(
            {
                "quadkey": t.quadkey,
                "tile": f"POLYGON(({west} {north}, {east} {north}, {east} {south}, "
                f"{west} {south}, {west} {north}))",
                "tile_x": round(lon, 4),
                "tile_y": round(lat, 4),
                "avg_d_kbps": t.avg_d_kbps,
                "avg_u_kbps": t.avg_u_kbps,
                "avg_lat_ms": t.avg_lat_ms,
                "avg_lat_down_ms": None,
                "avg_lat_up_ms": 250,
                "tests": t.tests,
                "devices": t.devices,
            }
        )
    schema = OLDER if older else NEWER
    table = pa.Table.from_pylist([{k: r[k] for k in schema.names} for r in rows], schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


# Tiles over the real ward boundaries (test_ookla.py checks each lies where its
# comment says).
NINH_KIEU, CAI_KHE = 31135, 31120
THOT_NOT, TRUNG_NHUT = 31212, 31217
NGOC_TO, THANH_THOI_AN = 31723, 31699
VINH_CHAU = 31783

# wholly in Phường Ninh Kiều
NK_1 = Tile("1322301122130133", avg_d_kbps=20_000, tests=10, devices=4)
NK_2 = Tile("1322301122131022", avg_d_kbps=50_000, tests=30, devices=9)
# on the border: centre in Ninh Kiều, 39 % of its area in Phường Cái Khế
BORDER = Tile("1322301122130131", avg_d_kbps=80_000, tests=60, devices=12)
# wholly in Phường Cái Khế
CK_1 = Tile("1322301122113220", avg_d_kbps=30_000, tests=40, devices=10)
# centre where the boundaries of Thốt Nốt and Trung Nhứt overlap; 58 % of it in Thốt Nốt
OVERLAP = Tile("1322301120202101", avg_d_kbps=10_000, tests=5, devices=2)
# centre in a sliver between Ngọc Tố and Thạnh Thới An; 55 % of it in Ngọc Tố
SLIVER = Tile("1322301301231210", avg_d_kbps=12_000, tests=7, devices=3)
# centre outside the city, though 64 % of the tile is in Phường Vĩnh Châu
EDGE = Tile("1322301303122113", avg_d_kbps=99_000, tests=50, devices=20)
# in the city's bounding box (its north-east corner), outside the city
BOX_CORNER = Tile("1322301130032323", avg_d_kbps=99_000, tests=50, devices=20)
# Hà Nội
HA_NOI = Tile("1322101121220032", avg_d_kbps=99_000, tests=50, devices=20)

ALL = [NK_1, NK_2, BORDER, CK_1, OVERLAP, SLIVER, EDGE, BOX_CORNER, HA_NOI]
