"""The doubling ratio against every 2024 baseline side by side: the store's own
2024 probes, Ookla's tiles and VNNIC's imported median, which one the figure
uses (and that it can be chosen), and Ookla's tiles against their own 2024.

Ookla's figures are worked out by hand from the tiles below (the tiles are
tests/analysis/ookla_tiles.py's, checked in test_ookla.py); the probes' side is the
report's own mobile_download_mean figure, which tests/analysis/test_indicators.py
checks against the raw rows.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from aggregator.ingest.store import Store
from analysis.baseline import BaselineRow, import_rows
from analysis.indicators import (
    BaselineComparison,
    Figure,
    IndicatorReport,
    compute_indicators,
    parse_period,
)
from analysis.maps import map_bytes, ward_layer
from analysis.maps.text import baseline_text
from analysis.maps.vector import layer_geojson
from analysis.ookla import identify, read_quarter, store_quarters
from analysis.synthetic import SyntheticSpec, WardSpec, generate
from tests.analysis.ookla_tiles import (
    ALL,
    CAI_KHE,
    CK_1,
    NINH_KIEU,
    NK_1,
    NK_2,
    THOT_NOT,
    Tile,
    write_tiles,
)

# Ookla's 2024, by hand (kb/s × tests summed, over the tests; Mb/s = kb/s / 1000):
# Q1 is test_ookla.py's ALL; Q2 is NK_1 again at 60,000 kb/s, 60 tests, 5 devices.
NK_2024_MBPS = (20_000 * 10 + 50_000 * 30 + 80_000 * 60 + 60_000 * 60) / 160 / 1000  # 63.125
CK_2024_MBPS = 30.0  # CK_1 alone, 40 tests, 10 devices, Q1 only
CITY_2024_MBPS = (7_834_000 + 60_000 * 60) / (152 + 60) / 1000
# Ookla's 2026Q1: CK_1 at 45,000 kb/s (40 tests), NK_2 at 100,000 kb/s (30 tests)
CITY_2026_MBPS = (45_000 * 40 + 100_000 * 30) / 70 / 1000
VNNIC_MEDIAN_MBPS = 20.0


def _spec(wards: tuple[WardSpec, ...], year: int, factor: float, seed: int) -> SyntheticSpec:
    return SyntheticSpec(
        wards=wards,
        start=datetime(year, 1, 10, tzinfo=UTC),
        end=datetime(year, 12, 10, tzinfo=UTC),
        throughput_rows=2000,
        latency_rows=200,
        cellular_rows=300,
        ipv6_rows=100,
        mobile_speed_factor=factor,
        seed=seed,
    )


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("doubling")
    path = folder / "store.duckdb"
    store = Store(path)
    con = store._con
    # 2024 probes in Ninh Kiều only; 2026 in Ninh Kiều, Cái Khế and (below the floor) Thốt Nốt
    generate(con, _spec((WardSpec(NINH_KIEU, mobile_probes=4),), 2024, 0.5, 3))
    wards = (
        WardSpec(NINH_KIEU, mobile_probes=4),
        WardSpec(CAI_KHE, mobile_probes=4),
        WardSpec(THOT_NOT, mobile_probes=2),
    )
    generate(con, _spec(wards, 2026, 1.0, 4))
    import_rows(
        con,
        [
            BaselineRow(
                "city", None, 2024, "mobile", None, "median", VNNIC_MEDIAN_MBPS, 5000, "VNNIC"
            )
        ],
    )
    files = [
        write_tiles(folder / "2024-01-01_performance_mobile_tiles.parquet", ALL),
        write_tiles(
            folder / "2024-04-01_performance_mobile_tiles.parquet",
            [Tile(NK_1.quadkey, 60_000, 60, 5)],
        ),
        write_tiles(
            folder / "2026-01-01_performance_mobile_tiles.parquet",
            [Tile(CK_1.quadkey, 45_000, 40, 10), Tile(NK_2.quadkey, 100_000, 30, 9)],
        ),
    ]
    store_quarters(con, [read_quarter(con, identify(f, "mobile", int(f.name[:4]))) for f in files])
    store.close()
    yield path


def _figure(report: IndicatorReport, name: str, scope: str) -> Figure:
    return next(f for f in report.figures if (f.indicator, f.scope, f.group) == (name, scope, None))


def _kinds(f: Figure) -> list[tuple[str, str]]:
    return [(c.numerator, c.baseline) for c in f.baselines]


def _one(f: Figure, numerator: str, baseline: str) -> BaselineComparison:
    return next(c for c in f.baselines if (c.numerator, c.baseline) == (numerator, baseline))


def test_the_city_shows_every_baseline_and_uses_its_own_probes(
    con: duckdb.DuckDBPyConnection, report: IndicatorReport
) -> None:
    ratio = _figure(report, "mobile_download_ratio", "city")
    mean = _figure(report, "mobile_download_mean", "city")
    assert _kinds(ratio) == [
        ("probes", "probes"),
        ("probes", "ookla_tiles"),
        ("probes", "imported"),
        ("ookla_tiles", "ookla_tiles"),
    ]
    probes = _one(ratio, "probes", "probes")
    assert probes.used and probes.like_with_like
    assert [c.used for c in ratio.baselines] == [True, False, False, False]
    assert ratio.value == probes.value and ratio.ci_low == probes.ci_low
    assert probes.baseline_probes == 4 and "2024 measurements in the store" in ratio.note

    ookla = _one(ratio, "probes", "ookla_tiles")
    assert ookla.baseline_mbps == pytest.approx(CITY_2024_MBPS)
    assert (ookla.baseline_tests, ookla.baseline_devices, ookla.baseline_tiles) == (212, 45, 7)
    assert ookla.baseline_quarters == ("2024Q1", "2024Q2")
    assert ookla.licence == "CC BY-NC-SA 4.0" and not ookla.like_with_like
    assert mean.value is not None and mean.ci_low is not None and mean.ci_high is not None
    assert ookla.value == pytest.approx(mean.value / CITY_2024_MBPS)
    # Ookla's figure is taken as exact: the interval is the probes' own over it
    assert (ookla.ci_low, ookla.ci_high) == pytest.approx(
        (mean.ci_low / CITY_2024_MBPS, mean.ci_high / CITY_2024_MBPS)
    )

    vnnic = _one(ratio, "probes", "imported")
    assert vnnic.statistic == "median" and vnnic.baseline_tests == 5000
    assert mean.median is not None
    assert vnnic.value == pytest.approx(mean.median / VNNIC_MEDIAN_MBPS)
    assert "median against median" in vnnic.source

    tiles = _one(ratio, "ookla_tiles", "ookla_tiles")
    assert tiles.like_with_like and not tiles.used and tiles.interval == "none"
    assert tiles.value == pytest.approx(CITY_2026_MBPS / CITY_2024_MBPS)
    assert tiles.current_quarters == ("2026Q1",)
    assert f"{tiles.value:.3g} (tiles to tiles, like with like)" in ratio.note


def test_a_ward_without_2024_probes_uses_ookla_and_says_it_is_not_like_with_like(
    report: IndicatorReport,
) -> None:
    ratio = _figure(report, "mobile_download_ratio", str(CAI_KHE))
    mean = _figure(report, "mobile_download_mean", str(CAI_KHE))
    assert _kinds(ratio) == [("probes", "ookla_tiles"), ("ookla_tiles", "ookla_tiles")]
    assert mean.value is not None
    assert ratio.value == pytest.approx(mean.value / CK_2024_MBPS)
    assert _one(ratio, "probes", "ookla_tiles").used
    assert "Ookla open data mobile tiles 2024Q1" in ratio.note
    assert "not like with like" in ratio.note
    # Cái Khế's tiles: 45 Mb/s in 2026Q1 over 30 Mb/s in 2024Q1
    assert _one(ratio, "ookla_tiles", "ookla_tiles").value == pytest.approx(1.5)
    assert "Ookla open data mobile tiles" in report.baseline
    assert "2024 measurements in the store" in report.baseline


def test_ookla_below_the_floor_is_shown_but_not_used(report: IndicatorReport) -> None:
    # Thốt Nốt: one tile of 5 tests from 2 devices in 2024, and 2 probes now
    ratio = _figure(report, "mobile_download_ratio", str(THOT_NOT))
    ookla = _one(ratio, "probes", "ookla_tiles")
    assert (ookla.baseline_tests, ookla.baseline_devices) == (5, 2)
    assert ookla.value is None and ookla.status == "insufficient data" and not ookla.used
    assert ratio.value is None and "no 2024 baseline for this scope" in ratio.note


def test_the_baseline_used_first_can_be_chosen(con: duckdb.DuckDBPyConnection) -> None:
    rep = compute_indicators(con, parse_period("2026"), synthetic=True, baselines=("imported",))
    city = _figure(rep, "mobile_download_ratio", "city")
    mean = _figure(rep, "mobile_download_mean", "city")
    assert mean.median is not None
    assert _one(city, "probes", "imported").used
    assert city.value == pytest.approx(mean.median / VNNIC_MEDIAN_MBPS)
    assert "imported 2024 median 20 Mb/s" in city.note and "median against median" in city.note
    # a ward without an imported row falls back to the default order: Ookla
    assert _one(_figure(rep, "mobile_download_ratio", str(CAI_KHE)), "probes", "ookla_tiles").used
    rep = compute_indicators(
        con,
        parse_period("2026"),
        synthetic=True,
        baselines=("ookla_tiles",),
        keep_probe_values=True,
    )
    city = _figure(rep, "mobile_download_ratio", "city")
    assert city.value == pytest.approx(mean.value / CITY_2024_MBPS)  # type: ignore[operator]
    kept = next(
        p for p in rep.probe_values if (p.indicator, p.scope) == ("mobile_download_ratio", "city")
    )
    assert kept.statistic == "mean" and kept.baseline == ()
    with pytest.raises(ValueError, match="unknown baseline vnnic"):
        compute_indicators(con, parse_period("2026"), synthetic=True, baselines=("vnnic",))


def test_groups_compare_only_with_probes(by_operator: IndicatorReport) -> None:
    grouped = [f for f in by_operator.figures if f.indicator == "mobile_download_ratio" and f.group]
    assert grouped
    for f in grouped:
        assert {c.baseline for c in f.baselines} <= {"probes"}


def test_other_figures_carry_no_baselines(report: IndicatorReport) -> None:
    assert all(not f.baselines for f in report.figures if f.indicator != "mobile_download_ratio")


def test_the_ratio_map_says_which_baseline_each_ward_is_over(
    con: duckdb.DuckDBPyConnection,
) -> None:
    layer = ward_layer(con, "mobile_download_ratio", parse_period("2026"), synthetic=True)
    wards = {w.ward_code: w for w in layer.wards}
    assert (wards[NINH_KIEU].baseline, wards[NINH_KIEU].baseline_like_with_like) == (
        "probes",
        True,
    )
    assert (wards[CAI_KHE].baseline, wards[CAI_KHE].baseline_like_with_like) == (
        "ookla_tiles",
        False,
    )
    assert wards[CAI_KHE].ookla_tiles_ratio == pytest.approx(1.5)
    assert wards[THOT_NOT].baseline is None
    props = {
        f["properties"]["ward_code"]: f["properties"]
        for f in layer_geojson(layer, "en")["features"]
    }
    assert props[CAI_KHE]["baseline"] == "ookla_tiles"
    assert props[CAI_KHE]["baseline_like_with_like"] is False
    assert props[CAI_KHE]["ookla_tiles_ratio"] == pytest.approx(1.5)
    # the printed words, in both languages: the city's baseline, the wards', the tiles' own ratio
    vi = baseline_text(layer, "vi")
    assert "Số liệu gốc của thành phố: số đo năm 2024 của chính các đầu đo" in vi
    assert "1 theo đầu đo, 1 theo ô Ookla, 0 theo số liệu nhập, 101 chưa có" in vi
    assert "Ô Ookla 2026Q1 so với năm 2024 (cùng phương pháp)" in vi
    en = baseline_text(layer, "en")
    assert "Ookla's tiles 2026Q1 over their 2024 (like with like)" in en
    page = map_bytes([layer], "html", "en").decode("utf-8")
    assert html.escape(en) in page
    assert "Baseline: " + html.escape("Ookla's open 2024 tiles") in page
    # other maps print no baseline
    other = ward_layer(con, "mobile_download_mean", parse_period("2026"), synthetic=True)
    assert baseline_text(other, "vi") == ""
    assert "baseline" not in layer_geojson(other)["features"][0]["properties"]
