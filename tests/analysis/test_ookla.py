"""Ookla's tiles as a 2024 baseline (analysis/ookla.py), on small files in the
tiles' real schema over the real Cần Thơ ward boundaries, with every
expected figure worked out by hand below.

The tiles (zoom 16, about 600 m; tests/analysis/ookla_tiles.py) were chosen
on the repaired boundaries (analysis/maps/boundaries.py); the first test
checks that each still lies where its comment says, so that a change of
boundaries shows up as such.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from shapely.geometry import Point, box

from aggregator.ingest.store import Store
from analysis.baseline import BaselineRow, import_rows, imported_baselines
from analysis.ookla import (
    LICENCE,
    QuarterFile,
    TileFigure,
    TilesRefused,
    city_geometry,
    identify,
    quadkey_xy,
    quarters_within,
    read_quarter,
    store_quarters,
    tile_centres,
    tile_figures,
)
from analysis.periods import parse_period
from tests.analysis.ookla_tiles import (
    ALL,
    BORDER,
    BOX_CORNER,
    CAI_KHE,
    CK_1,
    EDGE,
    HA_NOI,
    NGOC_TO,
    NINH_KIEU,
    NK_1,
    NK_2,
    OVERLAP,
    SLIVER,
    THANH_THOI_AN,
    THOT_NOT,
    TRUNG_NHUT,
    VINH_CHAU,
    Tile,
    centre,
    corners,
    write_tiles,
)


def _share_in(ward: int, tile: Tile) -> float:
    shape = dict(zip(city_geometry().codes, city_geometry().shapes, strict=True))[ward]
    square = box(*corners(tile.quadkey))
    return float(shape.intersection(square).area / square.area)


def _covers(ward: int, tile: Tile) -> bool:
    shape = dict(zip(city_geometry().codes, city_geometry().shapes, strict=True))[ward]
    return bool(shape.covers(Point(*centre(tile.quadkey))))


def test_the_tiles_lie_where_the_comments_say() -> None:
    for tile in (NK_1, NK_2):
        assert _share_in(NINH_KIEU, tile) == pytest.approx(1.0)
    assert _share_in(CAI_KHE, CK_1) == pytest.approx(1.0)
    assert _covers(NINH_KIEU, BORDER) and not _covers(CAI_KHE, BORDER)
    assert 0.35 < _share_in(CAI_KHE, BORDER) < 0.45
    assert _covers(THOT_NOT, OVERLAP) and _covers(TRUNG_NHUT, OVERLAP)
    assert _share_in(THOT_NOT, OVERLAP) > _share_in(TRUNG_NHUT, OVERLAP)
    assert not any(_covers(w, SLIVER) for w in city_geometry().codes)
    assert _share_in(NGOC_TO, SLIVER) > _share_in(THANH_THOI_AN, SLIVER)
    outline = city_geometry().outline
    assert not outline.covers(Point(*centre(EDGE.quadkey)))
    assert _share_in(VINH_CHAU, EDGE) > 0.5
    for tile in (BOX_CORNER, HA_NOI):
        assert not outline.intersects(box(*corners(tile.quadkey)))


def test_centres_from_the_quadkey_are_the_tile_polygons_centres() -> None:
    keys = [t.quadkey for t in ALL]
    x, y = quadkey_xy(keys)
    lon, lat = tile_centres(x, y)
    for i, key in enumerate(keys):
        assert (lon[i], lat[i]) == pytest.approx(centre(key), abs=1e-9)
    with pytest.raises(ValueError, match="digit other than 0-3"):
        quadkey_xy(["1322301122130134"])
    with pytest.raises(ValueError, match="zoom-16"):
        quadkey_xy(["132230112213013"])


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store.duckdb")


def _quarter(tmp_path: Path, tiles: list[Tile], name: str, **kw: bool) -> QuarterFile:
    path = write_tiles(tmp_path / name, tiles, **kw)
    return identify(path, "mobile", int(name[:4]))


def _count(store: Store) -> int:
    return int(store.query("select count(*) from baseline")[0][0])


def _rows(store: Store) -> list[tuple[object, ...]]:
    return store.query(
        "select scope, ward_code, year, quarter, network_kind, statistic, value_mbps, "
        "sample_size, devices, tiles, licence, origin from baseline order by scope, ward_code"
    )


def test_tiles_are_assigned_by_centre_and_summed_per_ward(tmp_path: Path, store: Store) -> None:
    q = read_quarter(
        store._con, _quarter(tmp_path, ALL, "2024-01-01_performance_mobile_tiles.parquet")
    )
    assert (q.tiles_read, q.tiles_outside) == (9, 3)
    store_quarters(store._con, [q])
    rows = {(r[0], r[1]): r for r in _rows(store)}
    assert set(rows) == {
        ("city", None),
        ("ward", CAI_KHE),
        ("ward", NINH_KIEU),
        ("ward", THOT_NOT),
        ("ward", NGOC_TO),
    }
    # Ninh Kiều: NK_1, NK_2 and the whole border tile:
    # (20000*10 + 50000*30 + 80000*60) / (10 + 30 + 60) = 6_500_000 / 100 = 65000 kb/s
    assert rows[("ward", NINH_KIEU)][6:10] == (pytest.approx(65.0), 100, 25, 3)
    # Cái Khế: only CK_1, none of the border tile's tests
    assert rows[("ward", CAI_KHE)][6:10] == (pytest.approx(30.0), 40, 10, 1)
    assert rows[("ward", THOT_NOT)][6:10] == (pytest.approx(10.0), 5, 2, 1)
    assert rows[("ward", NGOC_TO)][6:10] == (pytest.approx(12.0), 7, 3, 1)
    # the city: (6_500_000 + 1_200_000 + 50_000 + 84_000) / 152 tests = 51539.47 kb/s
    assert rows[("city", None)][6:10] == (pytest.approx(7_834_000 / 152 / 1000), 152, 40, 6)
    for row in rows.values():
        assert row[2:6] == (2024, 1, "mobile", "mean")
        assert row[10:] == (LICENCE, "ookla_tiles")


def test_reimporting_a_quarter_replaces_it(tmp_path: Path, store: Store) -> None:
    qf = _quarter(tmp_path, ALL, "2024-01-01_performance_mobile_tiles.parquet")
    assert store_quarters(store._con, [read_quarter(store._con, qf)]) == []
    first = _rows(store)
    assert store_quarters(store._con, [read_quarter(store._con, qf)]) == ["mobile 2024Q1"]
    assert _rows(store) == first
    # a corrected file of the same quarter replaces every row of the old one
    fixed = _quarter(
        tmp_path / "again", [NK_1, CK_1], "2024-01-01_performance_mobile_tiles.parquet"
    )
    store_quarters(store._con, [read_quarter(store._con, fixed)])
    assert [(r[0], r[1], r[7]) for r in _rows(store)] == [
        ("city", None, 50),
        ("ward", CAI_KHE, 40),
        ("ward", NINH_KIEU, 10),
    ]


def test_an_older_release_without_centres_is_read_the_same(tmp_path: Path, store: Store) -> None:
    newer = read_quarter(
        store._con, _quarter(tmp_path, ALL, "2024-04-01_performance_mobile_tiles.parquet")
    )
    older = read_quarter(
        store._con,
        _quarter(tmp_path / "old", ALL, "2024-04-01_performance_mobile_tiles.parquet", older=True),
    )
    assert (older.city, older.wards) == (newer.city, newer.wards)


def test_a_file_not_in_the_tiles_schema_is_refused_naming_the_columns(
    tmp_path: Path, store: Store
) -> None:
    path = tmp_path / "2024-01-01_performance_mobile_tiles.parquet"
    store._con.execute(
        f"copy (select '1322301122130133' as quadkey, 1.5::double as tests, "
        f"20000 as avg_d_kbps, 'x' as avg_u_kbps) to '{path}' (format parquet)"
    )
    with pytest.raises(TilesRefused) as refused:
        read_quarter(store._con, identify(path, "mobile", 2024))
    message = str(refused.value)
    for words in (
        "tile missing",
        "devices missing",
        "avg_lat_ms missing",
        "tests is DOUBLE, not integer",
        "avg_u_kbps is VARCHAR, not integer",
    ):
        assert words in message
    assert "quadkey" not in message and "avg_d_kbps" not in message
    assert _count(store) == 0


def test_a_file_without_a_tile_in_the_city_stores_nothing(tmp_path: Path, store: Store) -> None:
    qf = _quarter(
        tmp_path, [EDGE, BOX_CORNER, HA_NOI], "2024-01-01_performance_mobile_tiles.parquet"
    )
    with pytest.raises(TilesRefused, match=r"no tile of .* lies in Cần Thơ \(3 tiles read\)"):
        read_quarter(store._con, qf)
    assert _count(store) == 0


def test_one_bad_quarter_leaves_nothing_half_imported(tmp_path: Path, store: Store) -> None:
    good = read_quarter(
        store._con, _quarter(tmp_path, ALL, "2024-01-01_performance_mobile_tiles.parquet")
    )
    with pytest.raises(TilesRefused, match="the same quarter is given twice"):
        store_quarters(store._con, [good, good])
    assert _count(store) == 0


def test_the_quarter_comes_from_the_name_or_the_directories(tmp_path: Path) -> None:
    ookla = tmp_path / "type=mobile" / "year=2024" / "quarter=3" / "tiles.parquet"
    assert identify(ookla, "mobile", 2024).label == "2024Q3"
    named = tmp_path / "2024-10-01_performance_mobile_tiles.parquet"
    assert identify(named, "mobile", 2024).quarter == 4
    assert identify(tmp_path / "mine.parquet", "mobile", 2024, 2).quarter == 2
    with pytest.raises(TilesRefused, match="cannot tell which quarter"):
        identify(tmp_path / "mine.parquet", "mobile", 2024)
    with pytest.raises(TilesRefused, match="fixed tiles by its name, not mobile"):
        identify(tmp_path / "2024-01-01_performance_fixed_tiles.parquet", "mobile", 2024)
    with pytest.raises(TilesRefused, match="holds 2023 by its name, not 2024"):
        identify(tmp_path / "2023-10-01_performance_mobile_tiles.parquet", "mobile", 2024)
    with pytest.raises(TilesRefused, match="quarter 4 by its name, not 1"):
        identify(named, "mobile", 2024, 1)


def test_figures_over_several_quarters_weigh_each_by_its_tests(
    tmp_path: Path, store: Store
) -> None:
    q1 = read_quarter(
        store._con, _quarter(tmp_path, [NK_1, NK_2], "2024-01-01_performance_mobile_tiles.parquet")
    )
    q2 = read_quarter(
        store._con,
        _quarter(
            tmp_path,
            [Tile(NK_1.quadkey, 60_000, 60, 5)],
            "2024-04-01_performance_mobile_tiles.parquet",
        ),
    )
    store_quarters(store._con, [q1, q2])
    figures = tile_figures(store._con, "mobile", [(2024, q) for q in range(1, 5)])
    ward = figures[str(NINH_KIEU)]
    # (20000*10 + 50000*30 + 60000*60) / 100 tests = 53000 kb/s
    assert ward.mean_mbps == pytest.approx(53.0)
    assert (ward.tests, ward.devices, ward.tiles) == (100, 18, 3)
    assert ward.quarters == ("2024Q1", "2024Q2")
    assert tile_figures(store._con, "fixed", [(2024, 1)]) == {}
    assert tile_figures(store._con, "mobile", [(2026, 1)]) == {}


def test_quarters_within_a_period() -> None:
    assert quarters_within(parse_period("2026")) == [(2026, q) for q in range(1, 5)]
    assert quarters_within(parse_period("2026Q3")) == [(2026, 3)]
    assert quarters_within(parse_period("2026-02-01..2026-07-01")) == [(2026, 2)]


def test_a_store_from_before_the_tiles_has_no_tile_figures(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    con.execute("create table baseline (scope varchar, ward_code integer, year integer)")
    assert tile_figures(con, "mobile", [(2024, 1)]) == {}


def test_a_csv_import_and_the_tiles_keep_to_their_own_rows(tmp_path: Path, store: Store) -> None:
    qf = _quarter(tmp_path, ALL, "2024-01-01_performance_mobile_tiles.parquet")
    store_quarters(store._con, [read_quarter(store._con, qf)])
    row = BaselineRow("city", None, 2024, "mobile", None, "mean", 40.0, None, "survey")
    import_rows(store._con, [row])
    import_rows(store._con, [row])
    assert imported_baselines(store._con, 2024) == {"city": row}
    assert sum(1 for r in _rows(store) if r[11] == "ookla_tiles") == 5
    assert _count(store) == 5 + 1
    # and importing the tiles again leaves the CSV's row alone
    store_quarters(store._con, [read_quarter(store._con, qf)])
    assert imported_baselines(store._con, 2024) == {"city": row}


def test_the_analysts_snapshot_carries_the_tiles(tmp_path: Path, store: Store) -> None:
    from aggregator.ingest.snapshot import publish_snapshot

    qf = _quarter(tmp_path, ALL, "2024-01-01_performance_mobile_tiles.parquet")
    store_quarters(store._con, [read_quarter(store._con, qf)])
    snapshot = tmp_path / "snapshot.duckdb"
    publish_snapshot(store, snapshot)
    quarters = [(2024, 1)]
    with duckdb.connect(str(snapshot), read_only=True) as con:
        assert tile_figures(con, "mobile", quarters) == tile_figures(store._con, "mobile", quarters)
        assert tile_figures(con, "mobile", quarters)[str(NINH_KIEU)].mean_mbps == pytest.approx(
            65.0
        )


def test_a_baseline_of_zero_is_no_baseline() -> None:
    zero = TileFigure("mobile", 0.0, 100, 10, 5, ("2024Q1",), LICENCE)
    assert not zero.enough
    assert TileFigure("mobile", 0.5, 100, 10, 5, ("2024Q1",), LICENCE).enough
