"""What the indicator tests share: a read-only connection to the module's
synthetic store (each module defines its own `store_path` fixture) and the
report computed on it for 2026, alone and by operator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from analysis.indicators import IndicatorReport, compute_indicators, parse_period


@pytest.fixture(scope="module")
def con(store_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(store_path), read_only=True)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def report(con: duckdb.DuckDBPyConnection) -> IndicatorReport:
    return compute_indicators(con, parse_period("2026"), synthetic=True)


@pytest.fixture(scope="module")
def by_operator(con: duckdb.DuckDBPyConnection) -> IndicatorReport:
    return compute_indicators(con, parse_period("2026"), synthetic=True, by="operator")
