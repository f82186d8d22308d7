"""What the map tests share: a synthetic Cần Thơ made by the aggregator's own
`synthetic` command (every ward has probes) and every map layer of 2026 on it,
computed once."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from analysis.indicators import IndicatorReport, compute_indicators, parse_period
from analysis.maps import WardLayer, ward_layers

PERIOD = "2026"


@pytest.fixture(scope="session")
def city_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("maps") / "city.duckdb"
    subprocess.run(
        # the command's default size: enough for a figure in every ward
        [sys.executable, "-m", "aggregator", "synthetic", "--store", str(path), "--year", "2026"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return path


@pytest.fixture(scope="session")
def city_con(city_store: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(city_store), read_only=True)
    yield con
    con.close()


@pytest.fixture(scope="session")
def city_layers(city_con: duckdb.DuckDBPyConnection) -> list[WardLayer]:
    return ward_layers(city_con, parse_period(PERIOD), synthetic=True)


@pytest.fixture(scope="session")
def city_reports(city_con: duckdb.DuckDBPyConnection) -> dict[str | None, IndicatorReport]:
    """compute_indicators' own reports, ungrouped and by access technology."""
    period = parse_period(PERIOD)
    return {
        None: compute_indicators(city_con, period, synthetic=True),
        "access_tech": compute_indicators(city_con, period, synthetic=True, by="access_tech"),
    }


def layer(layers: list[WardLayer], key: str) -> WardLayer:
    """The layer named `key` ("indicator" or "indicator:group")."""
    return next(x for x in layers if x.key == key)
