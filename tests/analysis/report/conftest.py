"""What the report tests share: a hand-made store whose figures are worked
out by hand, and a synthetic Cần Thơ (every ward has probes, 2024 too)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from aggregator.ingest.store import Store
from analysis.synthetic import city_spec, generate
from tests.analysis.handmade import add_probe, add_throughput
from tests.wardprobe.threshold_rows import VALID
from wardprobe.validity import StoredThroughput

# 10:00 on 10 March 2026 in Cần Thơ
START = datetime(2026, 3, 10, 3, tzinfo=UTC)
# Phường Ninh Kiều (four lines) and Phường Cái Khế (one line)
FOUR_LINES, ONE_LINE = 31135, 31120


def download(mbps: float) -> StoredThroughput:
    """A valid 10-second download at `mbps` (bytes moved agree with the rate)."""
    return replace(VALID, mbps=mbps, bytes_transferred=int(mbps * 1e6 / 8 * 10), measured_s=10.0)


@pytest.fixture(scope="session")
def handmade_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FOUR_LINES: four fixed lines with ten valid downloads each, three at
    250 Mb/s and one at 150 Mb/s; ONE_LINE: one line, twelve at 250 Mb/s, and
    one download whose probe's clock was not synchronised (excluded)."""
    path = tmp_path_factory.mktemp("report") / "store.duckdb"
    store = Store(path)
    con = store._con
    lines = [(FOUR_LINES, f"line-{n}", 250.0 if n < 3 else 150.0, 10) for n in range(4)]
    lines.append((ONE_LINE, "lone", 250.0, 12))
    for ward, probe, mbps, tests in lines:
        add_probe(con, probe, ward, START - timedelta(days=1))
        for n in range(tests):
            add_throughput(con, probe, ward, START + timedelta(hours=n), download(mbps))
    add_throughput(
        con, "lone", ONE_LINE, START, replace(download(250.0), clock_sync="unsynchronised")
    )
    store.close()
    return path


@pytest.fixture(scope="session")
def handmade_con(handmade_store: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(handmade_store), read_only=True)
    yield con
    con.close()


@pytest.fixture(scope="session")
def city_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report_city") / "store.duckdb"
    store = Store(path)
    generate(store._con, city_spec(60_000))
    generate(store._con, city_spec(30_000, 2024, 2027, mobile_speed_factor=0.5))
    store.close()
    return path


@pytest.fixture(scope="session")
def city_con(city_store: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(city_store), read_only=True)
    yield con
    con.close()
