"""One validity rule: the throughput view, the rollups (and so the CLI) and
the probe count the same tests, and a snapshot's rollups made by other
definitions are not used."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from aggregator.ingest.store import Store
from analysis.indicators import (
    Figure,
    IndicatorReport,
    compute_indicators,
    install_views,
    parse_period,
)
from analysis.rollups import refresh_rollups
from tests.analysis.handmade import add_probe, add_throughput
from tests.wardprobe.threshold_rows import threshold_rows
from wardprobe import validity

WARD = 31117
# 10:00 on 10 March 2026 in Cần Thơ
START = datetime(2026, 3, 10, 3, tzinfo=UTC)
ROWS = threshold_rows()
EXPECTED = [validity.exclusion_reason(r) for r in ROWS]


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One fixed line whose downloads lie on both sides of every threshold,
    a minute apart in that order."""
    path = tmp_path_factory.mktemp("definitions") / "store.duckdb"
    store = Store(path)
    add_probe(store._con, "line-1", WARD, START - timedelta(days=1))
    for n, row in enumerate(ROWS):
        add_throughput(store._con, "line-1", WARD, START + timedelta(minutes=n), row)
    store.close()
    return path


def _figure(report: IndicatorReport, name: str, scope: str = "city") -> Figure:
    found = [f for f in report.figures if (f.indicator, f.scope, f.group) == (name, scope, None)]
    assert len(found) == 1, found
    return found[0]


def _counts_by_the_rule(report: IndicatorReport) -> None:
    """The report counts as wardprobe/validity.py does: valid downloads behind
    the fixed-line mean, the others among the exclusions by reason."""
    assert _figure(report, "fixed_download_mean").tests == EXPECTED.count(None)
    excluded = Counter(reason for reason in EXPECTED if reason is not None)
    assert {r: n for t, r, n in report.exclusions if t == "throughput"} == dict(excluded)


def test_the_view_says_what_the_probe_rule_says(store_path: Path) -> None:
    with duckdb.connect(str(store_path), read_only=True) as con:
        install_views(con)
        got = [
            r[0]
            for r in con.execute(
                "select excluded_because from throughput_checked order by measured_at"
            ).fetchall()
        ]
    assert validity.TOO_LONG in EXPECTED
    assert got == EXPECTED


def test_the_indicators_count_by_the_same_rule(store_path: Path) -> None:
    with duckdb.connect(str(store_path), read_only=True) as con:
        _counts_by_the_rule(compute_indicators(con, parse_period("2026")))


def test_every_figure_of_the_rule_is_in_indicator_constants(store_path: Path) -> None:
    with duckdb.connect(str(store_path), read_only=True) as con:
        install_views(con)
        table = dict(con.execute("select name, value from indicator_constants").fetchall())
    assert table["min_bytes_transferred"] == validity.MIN_BYTES_TRANSFERRED
    assert table["min_measured_s"] == validity.MIN_MEASURED_S
    assert table["max_measured_s"] == validity.MAX_MEASURED_S
    assert table["rate_tolerance"] == validity.RATE_TOLERANCE
    assert table["max_cross_traffic_bytes_per_s"] == validity.MAX_CROSS_TRAFFIC_BYTES_PER_S


def _snapshot_by_an_older_rule(
    store_path: Path, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A snapshot whose rollups were made when a transfer could last any time."""
    shutil.copyfile(store_path, dest)
    with monkeypatch.context() as older, duckdb.connect(str(dest)) as con:
        older.setattr(validity, "MAX_MEASURED_S", 1e9)
        install_views(con, temporary=False)
        refresh_rollups(con, temporary=False)
        counted = con.execute("select sum(tests) from rollup_download").fetchone()
        assert counted is not None and counted[0] > EXPECTED.count(None)


def test_snapshot_rollups_made_by_another_rule_are_rebuilt(
    tmp_path: Path, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = tmp_path / "snapshot.duckdb"
    _snapshot_by_an_older_rule(store_path, snapshot, monkeypatch)
    # the next publication, by this release, with no new results
    with duckdb.connect(str(snapshot)) as con:
        install_views(con, temporary=False)
        con.execute(
            "create or replace table snapshot_stale "
            "(probe_id varchar, synthetic boolean, local_day date)"
        )
        refresh_rollups(con, temporary=False, stale="snapshot_stale")
    with duckdb.connect(str(snapshot), read_only=True) as con:
        _counts_by_the_rule(compute_indicators(con, parse_period("2026")))


def test_a_snapshot_by_another_rule_is_read_with_this_releases_rollups(
    tmp_path: Path, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshot = tmp_path / "snapshot.duckdb"
    _snapshot_by_an_older_rule(store_path, snapshot, monkeypatch)
    with duckdb.connect(str(snapshot), read_only=True) as con:
        _counts_by_the_rule(compute_indicators(con, parse_period("2026")))
