"""The reading commands on a lake: `map`, `report` and `summary` given a
config whose store is a lake read it read-only (as an analyst attaches it)
and write what they write from the embedded file holding the same data."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aggregator.cli import app
from tests.aggregator.conftest import assert_close
from tests.conftest import lake_copy


@pytest.fixture(scope="module")
def lake_config(
    request: pytest.FixtureRequest, small_city: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """aggregator.toml naming a lake that holds what `city` holds (skips only
    without PostgreSQL)."""
    directory = tmp_path_factory.mktemp("lake")
    spec = lake_copy(request.getfixturevalue("postgres"), small_city, directory)
    config = directory / "aggregator.toml"
    config.write_text(f"state_dir = {str(directory)!r}\nstore = {spec!r}\n", "utf-8")
    return config


def _run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_map_on_the_lake_equals_the_map_on_the_file(
    small_city: Path, lake_config: Path, tmp_path: Path
) -> None:
    common = ["map", "--indicator", "fixed_download_mean", "--period", "2026", "--synthetic"]
    _run(*common, "--out", str(tmp_path / "lake.geojson"), "--config", str(lake_config))
    _run(*common, "--out", str(tmp_path / "file.geojson"), "--store", str(small_city))

    on_lake = json.loads((tmp_path / "lake.geojson").read_text("utf-8"))
    on_file = json.loads((tmp_path / "file.geojson").read_text("utf-8"))
    with_values = [f for f in on_file["features"] if f["properties"].get("value_mbps") is not None]
    assert with_values  # a map with figures, not one of empty wards
    assert_close(on_lake, on_file)


def test_report_on_the_lake_equals_the_report_on_the_file(
    small_city: Path, lake_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The printed maps left blank: drawing a dozen PNGs takes half a minute, and
    # what they draw is the map's layer, compared in the map's own test above.
    from analysis.report import render

    whole = render.write_reports
    monkeypatch.setattr(render, "write_reports", functools.partial(whole, map_png=lambda *_: b""))
    common = ["report", "--year", "2026", "--synthetic", "--lang", "en"]
    _run(*common, "--out", str(tmp_path / "lake.html"), "--config", str(lake_config))
    _run(*common, "--out", str(tmp_path / "file.html"), "--store", str(small_city))

    on_lake = (tmp_path / "lake.html").read_text("utf-8")
    assert on_lake == (tmp_path / "file.html").read_text("utf-8")


def test_summary_on_the_lake_equals_the_summary_on_the_file(
    small_city: Path, lake_config: Path
) -> None:
    on_lake = _run("summary", "--config", str(lake_config))
    on_file = _run("summary", "--store", str(small_city))

    row = next(line for line in on_lake.splitlines() if "31117" in line).split("│")
    assert int(row[4]) > 0 and row[7].strip().endswith("%")  # tests and IPv6 share, counted
    # The table's rows are the same; the title names what was read.
    assert _rows(on_lake) == _rows(on_file)
    assert "ducklake:postgres://" in on_lake
    assert str(small_city) in on_file.replace("\n", "")


def _rows(table: str) -> list[str]:
    return [line for line in table.splitlines() if line.startswith("│")]
