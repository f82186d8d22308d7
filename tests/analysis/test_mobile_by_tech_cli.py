"""mobile_download_by_tech through `wardprobe-aggregator indicators`: one
row per technology, and a group-less row only for a scope without any."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aggregator.cli import app
from aggregator.ingest.store import Store
from analysis.synthetic import SyntheticSpec, WardSpec, generate
from tests.analysis.handmade import add_probe, add_throughput
from tests.wardprobe.threshold_rows import VALID

runner = CliRunner()


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("by_tech") / "store.duckdb"
    store = Store(path)
    generate(
        store._con,
        SyntheticSpec(
            wards=(WardSpec(31117), WardSpec(31120)),
            start=datetime(2026, 1, 1, tzinfo=UTC),
            end=datetime(2026, 6, 1, tzinfo=UTC),
            throughput_rows=1500,
            latency_rows=100,
            cellular_rows=300,
            ipv6_rows=50,
        ),
    )
    store.close()
    return path


def _by_tech(*args: str) -> list[dict[str, Any]]:
    result = runner.invoke(app, ["indicators", "--period", "2026", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)["figures"]
    return [f for f in figures if f["indicator"] == "mobile_download_by_tech"]


def test_every_row_names_its_technology(store_path: Path) -> None:
    rows = _by_tech("--synthetic", "--store", str(store_path))
    assert {f["scope"] for f in rows} == {"city", "31117", "31120"}
    assert {f["group"] for f in rows if f["scope"] == "city"} >= {
        "access_tech=lte",
        "access_tech=nr5g_nsa",
    }
    assert all(f["group"].startswith("access_tech=") for f in rows), rows


def test_one_ward_has_no_group_less_row_either(store_path: Path) -> None:
    rows = _by_tech("--synthetic", "--store", str(store_path), "--ward", "31120")
    assert rows and all(f["group"].startswith("access_tech=") for f in rows), rows


def test_without_any_mobile_download_one_row_says_so(tmp_path: Path) -> None:
    path = tmp_path / "fixed_only.duckdb"
    store = Store(path)
    at = datetime(2026, 3, 10, 3, tzinfo=UTC)
    add_probe(store._con, "line-1", 31117, at - timedelta(days=1))
    add_throughput(store._con, "line-1", 31117, at, VALID)
    store.close()
    (row,) = _by_tech("--store", str(path))
    assert (row["scope"], row["group"], row["status"], row["probes"]) == (
        "city",
        None,
        "insufficient data",
        0,
    )
    assert "no such test in the scope" in row["note"]
