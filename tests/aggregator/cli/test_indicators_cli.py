"""`wardprobe-aggregator indicators` and `baseline import`, as a user runs them."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from aggregator.cli import app
from aggregator.ingest.store import Store
from analysis.synthetic import SyntheticSpec, WardSpec, generate

runner = CliRunner()


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "store.duckdb"
    store = Store(path)
    generate(
        store._con,
        SyntheticSpec(
            wards=(WardSpec(31117, site_class="it_park"), WardSpec(31120), WardSpec(31123)),
            start=datetime(2026, 1, 1, tzinfo=UTC),
            end=datetime(2026, 9, 1, tzinfo=UTC),
            throughput_rows=2000,
            latency_rows=1000,
            cellular_rows=1500,
            ipv6_rows=300,
        ),
    )
    store.close()
    return path


def _run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_json_has_every_indicator_with_its_interval_and_targets(store_path: Path) -> None:
    out = json.loads(
        _run(
            "indicators",
            "--period",
            "2026Q2",
            "--synthetic",
            "--store",
            str(store_path),
            "--format",
            "json",
        )
    )
    assert out["period"]["label"] == "2026Q2"
    names = {f["indicator"] for f in out["figures"]}
    assert names >= {
        "mobile_download_mean",
        "mobile_download_ratio",
        "mobile_download_by_tech",
        "gigabit_capable_share",
        "fixed_200_share",
        "nr_time_share",
        "nr_seen_share",
        "ipv6_capable_share",
        "ipv6_preferred_share",
        "idle_latency_ms",
        "loaded_latency_ms",
        "zone_nr_share",
        "zone_gigabit_share",
        "nr_lte_cell_ratio",
    }
    gig = next(
        f
        for f in out["figures"]
        if f["indicator"] == "gigabit_capable_share" and f["scope"] == "city"
    )
    assert gig["status"] == "ok" and gig["interval"] == "wilson"
    assert gig["ci_low"] <= gig["value"] <= gig["ci_high"]
    assert [t["value"] for t in gig["targets"]] == [0.5, 0.8, 1.0]
    assert out["exclusions"] and out["zone_sites"]
    assert "no 2024 baseline" in out["baseline"]


def test_national_references_come_labelled_with_their_regulation(store_path: Path) -> None:
    out = _run(
        "indicators",
        "--period",
        "2026",
        "--synthetic",
        "--city-only",
        "--store",
        str(store_path),
        "--format",
        "csv",
    )
    rows = [r for r in csv.DictReader(io.StringIO(out)) if r["indicator"].startswith("qcvn")]
    assert {r["indicator"] for r in rows} == {
        "qcvn126_download_mean",
        "qcvn126_upload_mean",
        "qcvn126_download_floor_share",
        "qcvn126_latency_mean",
        "qcvn34_download_share",
        "qcvn34_upload_share",
    }
    latency = [r for r in rows if r["indicator"] == "qcvn126_latency_mean"]
    assert {r["group"] for r in latency} == {
        "operator=Viettel",
        "operator=VNPT",
        "operator=MobiFone",
    }
    assert all("<= 50 (QCVN 126:2021, in force)" in r["targets"] for r in latency)
    fixed = next(r for r in rows if r["indicator"] == "qcvn34_download_share")
    assert "national reference (QCVN 34:2022)" in fixed["note"]
    assert "plan not recorded" in fixed["note"]
    table = _run("indicators", "--period", "2026", "--synthetic", "--store", str(store_path))
    assert "qcvn126_download_mean" in table


def test_one_ward_grouped_by_operator_as_csv(store_path: Path) -> None:
    out = _run(
        "indicators",
        "--period",
        "2026-01-01..2026-09-01",
        "--ward",
        "31120",
        "--by",
        "operator",
        "--synthetic",
        "--store",
        str(store_path),
        "--format",
        "csv",
    )
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows and {r["scope"] for r in rows} == {"31120"}
    groups = {r["group"] for r in rows if r["indicator"] == "mobile_download_mean"}
    assert groups == {"operator=Viettel", "operator=VNPT", "operator=MobiFone"}
    # fixed lines by their site's ISP, apart from the mobile operators of the same name
    fixed = {r["group"] for r in rows if r["indicator"] == "fixed_download_mean"}
    assert fixed == {
        "operator=fixed line: VNPT",
        "operator=fixed line: Viettel",
        "operator=fixed line: FPT Telecom",
        "operator=fixed line (ISP not recorded)",
    }
    ipv6 = {r["group"] for r in rows if r["indicator"] == "ipv6_capable_share"}
    assert ipv6 == groups | fixed


def test_table_says_synthetic_and_the_baseline(store_path: Path) -> None:
    out = _run("indicators", "--period", "2026", "--synthetic", "--store", str(store_path))
    assert "SYNTHETIC" in out and "Baseline used" in out and "Excluded results" in out


def test_city_only_leaves_the_wards_out(store_path: Path) -> None:
    everything = json.loads(
        _run("indicators", "--period", "2026", "--synthetic", "--store", str(store_path),
             "--format", "json")
    )["figures"]  # fmt: skip
    city = json.loads(
        _run("indicators", "--period", "2026", "--synthetic", "--store", str(store_path),
             "--format", "json", "--city-only")
    )["figures"]  # fmt: skip
    assert {f["scope"] for f in everything} == {"city", "31117", "31120", "31123"}
    expected = [f for f in everything if f["scope"] == "city"]
    assert [(f["indicator"], f["group"]) for f in city] == [
        (f["indicator"], f["group"]) for f in expected
    ]
    # (DuckDB's parallel sums may differ in the last bits from one run to the next)
    assert [f["value"] for f in city] == pytest.approx([f["value"] for f in expected])
    assert city


def test_synthetic_city_for_the_demo_has_every_ward_and_a_baseline(tmp_path: Path) -> None:
    path = tmp_path / "city.duckdb"
    _run("synthetic", "--store", str(path), "--rows", "20000")
    with duckdb.connect(str(path), read_only=True) as con:
        wards = con.execute("select count(distinct ward_code) from probes").fetchone()
        years = con.execute(
            "select distinct year(measured_at at time zone 'Asia/Ho_Chi_Minh') as y "
            "from throughput order by y"
        ).fetchall()
        real = con.execute("select count(*) from throughput where not synthetic").fetchone()
    assert wards == (103,) and years == [(2024,), (2026,)] and real == (0,)
    out = json.loads(
        _run("indicators", "--period", "2026", "--synthetic", "--store", str(path),
             "--format", "json", "--city-only")
    )  # fmt: skip
    ratio = next(f for f in out["figures"] if f["indicator"] == "mobile_download_ratio")
    # 2024 generated at half the mobile speed: the doubling ratio is about 2.
    assert ratio["value"] == pytest.approx(2.0, rel=0.15)
    assert "2024 measurements in the store" in ratio["note"]


def test_synthetic_refuses_a_store_with_real_results(tmp_path: Path) -> None:
    path = tmp_path / "real.duckdb"
    _run("synthetic", "--store", str(path), "--rows", "1000", "--no-baseline")
    with duckdb.connect(str(path)) as con:  # one row becomes a probe's result
        con.execute(
            "update throughput set synthetic = false where result_id in "
            "(select result_id from throughput limit 1)"
        )
    result = runner.invoke(app, ["synthetic", "--store", str(path), "--rows", "1000"])
    assert result.exit_code == 1
    assert "real" in result.output.lower()


def test_real_data_only_by_default(store_path: Path) -> None:
    out = json.loads(
        _run("indicators", "--period", "2026", "--store", str(store_path), "--format", "json")
    )
    assert all(f["value"] is None for f in out["figures"])
    # The city still gets every figure, saying why there is none.
    city = {f["indicator"]: f for f in out["figures"] if f["scope"] == "city"}
    assert {"mobile_download_mean", "gigabit_capable_share", "ipv6_capable_share"} <= set(city)
    assert city["gigabit_capable_share"]["status"] == "insufficient data"
    assert city["gigabit_capable_share"]["probes"] == 0


def test_bad_period_is_a_usage_error(store_path: Path) -> None:
    result = runner.invoke(app, ["indicators", "--period", "2026Q5", "--store", str(store_path)])
    assert result.exit_code == 2
    assert "YYYYQn" in result.output


BASELINE = (
    "scope,ward_code,year,network_kind,access_tech,statistic,value_mbps,sample_size,source\n"
    "city,,2024,mobile,,median,45.2,120000,VNNIC i-Speed 2024 (12-month median)\n"
    "ward,31135,2024,mobile,lte,mean,30.5,,Sở KH&CN survey 2024\n"
)


def test_baseline_import_and_use(tmp_path: Path, store_path: Path) -> None:
    target = tmp_path / "store.duckdb"
    target.write_bytes(store_path.read_bytes())
    csv_file = tmp_path / "baseline.csv"
    csv_file.write_text(BASELINE, "utf-8")
    assert "imported 2 baseline rows" in _run(
        "baseline", "import", str(csv_file), "--store", str(target)
    )
    # importing again replaces, not duplicates
    _run("baseline", "import", str(csv_file), "--store", str(target))
    with duckdb.connect(str(target), read_only=True) as con:
        assert con.execute("select count(*) from baseline").fetchone() == (2,)
    out = json.loads(
        _run(
            "indicators",
            "--period",
            "2026",
            "--synthetic",
            "--store",
            str(target),
            "--format",
            "json",
        )
    )
    ratio = next(
        f
        for f in out["figures"]
        if f["indicator"] == "mobile_download_ratio" and f["scope"] == "city"
    )
    assert "VNNIC i-Speed 2024" in ratio["note"] and "median 45.2" in ratio["note"]
    assert ratio["value"] is not None
    assert "imported 2024" in out["baseline"]


def test_baseline_import_names_every_bad_line(tmp_path: Path) -> None:
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text(
        "scope,ward_code,year,network_kind,access_tech,statistic,value_mbps,sample_size,source\n"
        "city,,2024,mobile,,median,45.2,100,VNNIC\n"
        "province,,2024,mobile,,median,45.2,100,VNNIC\n"
        "ward,99999,2024,mobile,,mean,30,,survey\n"
        "city,,2024,mobile,,mean,-3,,survey\n"
        "city,,2024,mobile,,average,30,,survey\n"
        "city,,2024,mobile,,mean,30,,\n",
        "utf-8",
    )
    target = tmp_path / "store.duckdb"
    result = runner.invoke(app, ["baseline", "import", str(csv_file), "--store", str(target)])
    assert result.exit_code == 1
    messages = {int(m[0]): m[1] for m in re.findall(r"bad\.csv:(\d+): (.*)", result.output)}
    expected = {
        3: "scope must be city or ward",
        4: "not a ward of the city",
        5: "positive number",
        6: "mean or median",
        7: "source",
    }
    assert set(messages) == set(expected)
    for line, words in expected.items():
        assert words in messages[line]
    assert "bad.csv:2:" not in result.output
    # nothing was imported
    assert not target.exists() or duckdb.connect(str(target)).execute(
        "select count(*) from baseline"
    ).fetchone() == (0,)


def test_a_store_held_by_the_aggregator_points_to_the_snapshot(tmp_path: Path) -> None:
    store = Store(tmp_path / "live.duckdb")  # this process holds it for writing
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "aggregator",
                "indicators",
                "--period",
                "2026",
                "--store",
                str(tmp_path / "live.duckdb"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        store.close()
    assert result.returncode == 2
    assert "snapshot" in result.stderr
