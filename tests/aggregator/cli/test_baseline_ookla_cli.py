"""`wardprobe-aggregator baseline import-ookla` and the baselines it adds to
`indicators`, as a user runs them (tiles: tests/analysis/ookla_tiles.py; the
figures below are worked out by hand in tests/analysis/test_ookla.py)."""

from __future__ import annotations

import csv
import html
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner, Result

from aggregator.cli import app
from aggregator.ingest.store import Store
from analysis.synthetic import SyntheticSpec, WardSpec, generate
from tests.analysis.ookla_tiles import (
    ALL,
    BOX_CORNER,
    CAI_KHE,
    CK_1,
    HA_NOI,
    NINH_KIEU,
    NK_1,
    Tile,
    write_tiles,
)

runner = CliRunner()
Q1 = "2024-01-01_performance_mobile_tiles.parquet"
Q2 = "2024-04-01_performance_mobile_tiles.parquet"


def _invoke(*args: object) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def _rows(store: Path) -> list[tuple[object, ...]]:
    if not store.exists():
        return []
    with duckdb.connect(str(store), read_only=True) as con:
        return con.execute(
            "select scope, ward_code, quarter, value_mbps, sample_size, devices, tiles "
            "from baseline order by quarter, scope, ward_code"
        ).fetchall()


def test_import_two_quarters_then_again(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    q1 = write_tiles(tmp_path / Q1, ALL)
    q2 = write_tiles(tmp_path / Q2, [Tile(NK_1.quadkey, 60_000, 60, 5)])
    done = _invoke(
        "baseline", "import-ookla", q1, q2, "--kind", "mobile", "--year", 2024, "--store", store
    )
    assert done.exit_code == 0, done.output
    assert (
        "mobile 2024Q1 from 2024-01-01_performance_mobile_tiles.parquet: 9 tiles read, "
        "6 in Cần Thơ (4 wards), 3 outside the city left out; city 51.5 Mb/s tests-weighted "
        "mean over 152 tests, 40 devices"
    ) in done.output
    assert "mobile 2024Q2" in done.output and "1 in Cần Thơ (1 wards)" in done.output
    assert "CC BY-NC-SA 4.0" in done.output and "Speedtest by Ookla" in done.output
    first = _rows(store)
    assert len(first) == 5 + 2
    again = _invoke(
        "baseline", "import-ookla", q1, "--kind", "mobile", "--year", 2024, "--store", store
    )
    assert again.exit_code == 0, again.output
    assert "(replaces the earlier import)" in again.output
    assert _rows(store) == first


def test_a_file_not_in_the_schema_is_refused_and_nothing_stored(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    good = write_tiles(tmp_path / Q1, ALL)
    bad = tmp_path / Q2
    with duckdb.connect() as con:
        con.execute(
            f"copy (select '1322301122130133' as quadkey, 'POLYGON EMPTY' as tile, "
            f"1.5::double as avg_d_kbps) to '{bad}' (format parquet)"
        )
    done = _invoke(
        "baseline", "import-ookla", good, bad, "--kind", "mobile", "--year", 2024, "--store", store
    )
    assert done.exit_code == 1
    assert "is not in the schema of Ookla's performance tiles" in done.output
    for words in ("avg_d_kbps is DOUBLE, not integer", "tests missing", "devices missing"):
        assert words in done.output
    assert "nothing stored" in done.output
    assert _rows(store) == []  # not even the good quarter


def test_a_file_without_a_tile_in_the_city_says_so(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    far = write_tiles(tmp_path / Q1, [HA_NOI, BOX_CORNER])
    done = _invoke(
        "baseline", "import-ookla", far, "--kind", "mobile", "--year", 2024, "--store", store
    )
    assert done.exit_code == 1
    assert "lies in Cần Thơ (2 tiles read): nothing stored" in done.output
    assert _rows(store) == []


@pytest.mark.parametrize(
    ("name", "options", "words"),
    [
        (Q1, ["--kind", "fixed"], "holds mobile tiles by its name, not fixed"),
        (Q1, ["--year", "2023"], "holds 2024 by its name, not 2023"),
        (Q1, ["--quarter", "2"], "holds quarter 1 by its name, not 2"),
        ("tiles.parquet", [], "cannot tell which quarter"),
    ],
)
def test_a_file_that_is_not_the_quarter_it_is_said_to_be(
    tmp_path: Path, name: str, options: list[str], words: str
) -> None:
    file = write_tiles(tmp_path / name, ALL)
    given = {"--kind": "mobile", "--year": "2024"}
    given.update(dict(zip(options[::2], options[1::2], strict=True)))
    args = [a for pair in given.items() for a in pair]
    done = _invoke("baseline", "import-ookla", file, *args, "--store", tmp_path / "s.duckdb")
    assert done.exit_code == 1
    assert words in done.output


def test_unreadable_files_and_options(tmp_path: Path) -> None:
    text = tmp_path / Q1
    text.write_text("quadkey,tests\n", "utf-8")
    done = _invoke(
        "baseline",
        "import-ookla",
        text,
        "--kind",
        "mobile",
        "--year",
        2024,
        "--store",
        tmp_path / "s.duckdb",
    )
    assert done.exit_code == 2 and "as Parquet" in done.output
    done = _invoke("baseline", "import-ookla", text, "--kind", "wifi", "--year", 2024)
    assert done.exit_code == 2 and "mobile or fixed" in done.output
    good = write_tiles(tmp_path / "a" / Q1, ALL)
    again = write_tiles(tmp_path / "b" / Q1, ALL)
    done = _invoke(
        "baseline",
        "import-ookla",
        good,
        again,
        "--kind",
        "mobile",
        "--year",
        2024,
        "--store",
        tmp_path / "s.duckdb",
    )
    assert done.exit_code == 1 and "2024Q1 given twice" in done.output


@pytest.fixture(scope="module")
def with_tiles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ookla-cli")
    path = folder / "store.duckdb"
    store = Store(path)
    generate(
        store._con,
        SyntheticSpec(
            wards=(WardSpec(NINH_KIEU, mobile_probes=3), WardSpec(CAI_KHE, mobile_probes=3)),
            start=datetime(2026, 1, 5, tzinfo=UTC),
            end=datetime(2026, 6, 1, tzinfo=UTC),
            throughput_rows=800,
            latency_rows=100,
            cellular_rows=100,
            ipv6_rows=50,
        ),
    )
    store.close()
    q1 = write_tiles(folder / Q1, ALL)
    now = write_tiles(
        folder / "2026-01-01_performance_mobile_tiles.parquet", [Tile(CK_1.quadkey, 45_000, 40, 10)]
    )
    for file, year in ((q1, 2024), (now, 2026)):
        done = _invoke(
            "baseline", "import-ookla", file, "--kind", "mobile", "--year", year, "--store", path
        )
        assert done.exit_code == 0, done.output
    return path


def test_indicators_show_every_baseline(with_tiles: Path) -> None:
    args = ["indicators", "--period", "2026", "--synthetic", "--store", with_tiles]
    out = json.loads(_invoke(*args, "--format", "json").output)
    ratio = next(
        f
        for f in out["figures"]
        if (f["indicator"], f["scope"]) == ("mobile_download_ratio", str(CAI_KHE))
    )
    used = [b for b in ratio["baselines"] if b["used"]]
    assert [(b["numerator"], b["baseline"], b["like_with_like"]) for b in used] == [
        ("probes", "ookla_tiles", False)
    ]
    assert used[0]["baseline_mbps"] == pytest.approx(30.0)
    assert used[0]["baseline_quarters"] == ["2024Q1"]
    tiles = next(b for b in ratio["baselines"] if b["numerator"] == "ookla_tiles")
    assert tiles["value"] == pytest.approx(1.5) and tiles["like_with_like"]
    assert tiles["current_quarters"] == ["2026Q1"]

    table = _invoke(*args, "--city-only").output
    assert "mobile_download_ratio against every 2024 baseline" in table
    assert "ookla_tiles 2026Q1" in table  # the tiles' own ratio, beside the probes'

    rows = list(csv.DictReader(io.StringIO(_invoke(*args, "--format", "csv").output)))
    city = next(
        r for r in rows if (r["indicator"], r["scope"]) == ("mobile_download_ratio", "city")
    )
    assert "probes/ookla_tiles mean" in city["baselines"] and "(used)" in city["baselines"]
    # the city's tiles: 45 Mb/s in 2026Q1 (Cái Khế's alone) over 51.54 Mb/s in 2024Q1
    assert "ookla_tiles/ookla_tiles mean 0.873, like with like" in city["baselines"]

    refused = _invoke(*args, "--baseline", "vnnic")
    assert refused.exit_code == 2 and "probes, ookla_tiles, imported" in refused.output


def test_aggregator_toml_baseline_order_is_what_the_commands_use(
    with_tiles: Path, tmp_path: Path
) -> None:
    """baseline_order in aggregator.toml orders the ratio's baselines for
    `indicators`, `map` and `report` when the command names none; --baseline
    still puts its kind first, then the configured order."""
    store = tmp_path / "store.duckdb"
    store.write_bytes(with_tiles.read_bytes())
    figures = tmp_path / "vnnic.csv"
    figures.write_text(
        "scope,ward_code,year,network_kind,access_tech,statistic,value_mbps,sample_size,source\n"
        "city,,2024,mobile,,median,45.2,120000,VNNIC i-Speed 2024\n"
        f"ward,{CAI_KHE},2024,mobile,,mean,20.0,,Sở KH&CN survey 2024\n",
        "utf-8",
    )
    assert _invoke("baseline", "import", figures, "--store", store).exit_code == 0
    config = tmp_path / "aggregator.toml"
    config.write_text('baseline_order = ["imported", "probes"]\n', "utf-8")

    def used(*extra: object) -> dict[str, str]:
        args = ["indicators", "--period", "2026", "--synthetic", "--store", store, *extra]
        done = _invoke(*args, "--format", "json")
        assert done.exit_code == 0, done.output
        return {
            f["scope"]: next(b["baseline"] for b in f["baselines"] if b["used"])
            for f in json.loads(done.output)["figures"]
            if f["indicator"] == "mobile_download_ratio" and f["baselines"]
        }

    # without the config: Ookla's tiles first (the store has no 2024 probes)
    assert used() == {
        "city": "ookla_tiles",
        str(CAI_KHE): "ookla_tiles",
        str(NINH_KIEU): "ookla_tiles",
    }
    assert used("--config", config) == {
        "city": "imported",
        str(CAI_KHE): "imported",
        str(NINH_KIEU): "ookla_tiles",  # no imported figure of its own: the next kind
    }
    assert used("--config", config, "--baseline", "ookla_tiles")["city"] == "ookla_tiles"

    geojson = tmp_path / "ratio.geojson"
    args = ["map", "--indicator", "mobile_download_ratio", "--period", "2026", "--synthetic"]
    for extra, expected in (((), "ookla_tiles"), (("--config", config), "imported")):
        done = _invoke(*args, "--store", store, "--out", geojson, *extra)
        assert done.exit_code == 0, done.output
        wards = {
            f["properties"]["ward_code"]: f["properties"]["baseline"]
            for f in json.loads(geojson.read_text("utf-8"))["features"]
        }
        assert wards[CAI_KHE] == expected

    report = tmp_path / "report.html"
    done = _invoke(
        "report", "--year", 2026, "--synthetic", "--lang", "en", "--store", store,
        "--out", report, "--config", config,
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    annex = html.unescape(report.read_text("utf-8"))
    assert "ratio 2.20 × – the figure's value" in annex  # VNNIC's median, used
    assert "in this order: imported figures, the system's own results, Ookla's open data" in annex

    config.write_text('baseline_order = ["vnnic"]\n', "utf-8")
    refused = _invoke(*args, "--store", store, "--out", geojson, "--config", config)
    assert refused.exit_code == 2
    assert "baseline_order" in refused.output and "probes, ookla_tiles, imported" in refused.output
