"""The per-ward first look (the view ward_summary): on a store as it is,
and, like every view, for the period and kind of data the session asks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb

from aggregator.ingest.store import Store
from analysis.indicators import install_views, parse_period, set_period
from analysis.summary import ward_summary, ward_summary_sql
from analysis.synthetic import SyntheticSpec, WardSpec, generate

ROWS = {"throughput": 300, "latency": 200, "ipv6": 100}


def _store(tmp_path: Path) -> Path:
    path = tmp_path / "store.duckdb"
    store = Store(path)
    generate(
        store._con,
        SyntheticSpec(
            wards=(WardSpec(31117), WardSpec(31120)),
            start=datetime(2026, 3, 1, tzinfo=UTC),
            end=datetime(2026, 4, 1, tzinfo=UTC),
            throughput_rows=ROWS["throughput"],
            latency_rows=ROWS["latency"],
            cellular_rows=100,
            ipv6_rows=ROWS["ipv6"],
            seed=3,
        ),
    )
    store.close()
    return path


def test_the_summary_counts_the_probes_results_not_the_generators(tmp_path: Path) -> None:
    rows = ward_summary(_store(tmp_path))
    assert [(r.ward_code, r.probes, r.tests) for r in rows] == [(31117, 8, 0), (31120, 8, 0)]
    assert all(r.mean_download_mbps is None for r in rows)


def test_the_view_reads_the_period_and_synthetic_variables(tmp_path: Path) -> None:
    with duckdb.connect(str(_store(tmp_path)), read_only=True) as con:
        install_views(con)
        set_period(con, parse_period("2026"), synthetic=True)
        tests = con.execute("select sum(tests) from ward_summary").fetchone()
        assert tests == (sum(ROWS.values()),)
        # the same SQL as the summary command runs, on the same session
        assert (
            con.execute(ward_summary_sql()).fetchall()
            == con.execute("select * from ward_summary").fetchall()
        )
        set_period(con, parse_period("2026Q3"), synthetic=True)
        assert con.execute("select sum(tests) from ward_summary").fetchone() == (0,)
