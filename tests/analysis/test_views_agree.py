"""One definition per figure: the views (analysis/views/) define each
probe's figures, and the daily rollups the indicators read
(analysis/rollups/units_*.sql) must give the same per-probe rows, as each
module of analysis/indicators/ says. Compared probe by probe on synthetic
data for one year."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from aggregator.ingest.store import Store
from analysis.catalog import rollup_sql
from analysis.indicators import IndicatorReport, parse_period, prepare, set_days, set_period
from analysis.indicators.fixed import gigabit_probe_limited, line_is_gigabit
from analysis.synthetic import SyntheticSpec, WardSpec, generate

WARDS = (
    WardSpec(31117, site_class="industrial_zone", slow_port_share=0.3),
    WardSpec(31120, gigabit_share=0.7, lte_only_modem_share=0.5, nr_share=0.3),
    WardSpec(31123, ipv6_share=0.8, idle_rtt_ms=35.0),
)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("agree") / "store.duckdb"
    store = Store(path)
    generate(
        store._con,
        SyntheticSpec(
            wards=WARDS,
            # beyond the year on both sides: both paths must cut at its days
            start=datetime(2025, 12, 20, tzinfo=UTC),
            end=datetime(2026, 1, 20, tzinfo=UTC),
            throughput_rows=3000,
            latency_rows=2000,
            cellular_rows=3000,
            ipv6_rows=600,
            seed=11,
        ),
    )
    store.close()
    return path


@pytest.fixture(scope="module")
def both(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """The connection with the views and the rollups, both set to 2026."""
    prepare(con)
    period = parse_period("2026")
    set_period(con, period, synthetic=True)
    set_days(con, period, synthetic=True)
    yield con
    set_period(con, None, synthetic=False)


def _keyed(
    con: duckdb.DuckDBPyConnection, sql: str, key: tuple[str, ...]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    out = {tuple(r[k] for k in key): r for r in rows}
    assert len(out) == len(rows), "the key is not unique"
    return out


def _agree(
    view: dict[tuple[Any, ...], dict[str, Any]],
    units: dict[tuple[Any, ...], dict[str, Any]],
    columns: dict[str, str],
) -> None:
    """Same keys, and each view column equal to its units_* column."""
    assert view, "no rows to compare"
    assert set(view) == set(units)
    for key, v in view.items():
        for view_column, units_column in columns.items():
            a, b = v[view_column], units[key][units_column]
            if isinstance(a, float) and isinstance(b, float):
                assert a == pytest.approx(b, rel=1e-9), (key, view_column)
            else:
                assert a == b, (key, view_column)


def test_downloads_per_probe(both: duckdb.DuckDBPyConnection) -> None:
    key = ("probe_id", "ward_code", "network_kind")
    _agree(
        _keyed(both, "select * from probe_download", key),
        _keyed(both, rollup_sql("units_download"), key),
        {
            "tests": "tests",
            "mean_mbps": "mean_mbps",
            "tests_at_gigabit": "tests_at_gigabit",
            "link_speed_mbps": "link_speed_mbps",
            "operator_name": "operator_name",
        },
    )


def test_gigabit_lines(both: duckdb.DuckDBPyConnection) -> None:
    """The percentile in the view, the count rule on the rollups: the same lines."""
    view = _keyed(both, "select * from gigabit_capable", ("probe_id", "ward_code"))
    units = {
        (r["probe_id"], r["ward_code"]): {
            "capable": line_is_gigabit(r),
            "limited": gigabit_probe_limited(r),
        }
        for r in _keyed(
            both, rollup_sql("units_download"), ("probe_id", "ward_code", "network_kind")
        ).values()
        if r["network_kind"] == "fixed"
    }
    assert {v["gigabit_capable"] for v in view.values()} == {True, False}
    assert any(v["gigabit_probe_limited"] for v in view.values())
    _agree(view, units, {"gigabit_capable": "capable", "gigabit_probe_limited": "limited"})


def test_downloads_per_probe_and_technology(both: duckdb.DuckDBPyConnection) -> None:
    key = ("probe_id", "ward_code", "operator_name", "access_tech")
    _agree(
        _keyed(both, "select * from probe_download_by_tech", key),
        _keyed(both, rollup_sql("units_download_by_tech"), key),
        {"tests": "tests", "mean_mbps": "mean_mbps"},
    )


def test_nr_availability_per_probe(both: duckdb.DuckDBPyConnection) -> None:
    key = ("probe_id", "ward_code")
    view = _keyed(both, "select * from nr_availability", key)
    units = _keyed(both, rollup_sql("units_cellular"), key)
    for row in units.values():
        row["probe_limited"] = bool(row["probe_limited"])
    assert any(v["probe_limited"] for v in view.values())
    _agree(
        view,
        units,
        {
            "observations": "observations",
            "nr_time_share": "nr_time_share",
            "saw_nr": "saw_nr",
            "probe_limited": "probe_limited",
            "operator_name": "operator_name",
        },
    )


def test_ipv6_per_probe(both: duckdb.DuckDBPyConnection) -> None:
    key = ("probe_id", "ward_code", "network_kind")
    _agree(
        _keyed(both, "select * from ipv6_capability", key),
        _keyed(both, rollup_sql("units_ipv6"), key),
        {"checks": "checks", "ipv6_capable": "ipv6_capable", "ipv6_preferred": "ipv6_preferred"},
    )


def test_latency_per_probe(both: duckdb.DuckDBPyConnection) -> None:
    key = ("probe_id", "ward_code", "network_kind")
    columns = ("idle_tests", "idle_rtt_ms", "loaded_tests", "loaded_rtt_ms")
    _agree(
        _keyed(both, "select * from probe_latency", key),
        _keyed(both, rollup_sql("units_latency"), key),
        {c: c for c in columns},
    )


def test_cells_per_ward_and_operator(both: duckdb.DuckDBPyConnection) -> None:
    key = ("ward_code", "operator_name")
    units = _keyed(
        both,
        f"select * from ({rollup_sql('units_cells')}) where all_wards = 0 and all_operators = 0",
        key,
    )
    _agree(
        _keyed(both, "select * from nr_lte_cell_proxy", key),
        units,
        {"nr_cells": "nr_cells", "lte_cells": "lte_cells", "observations": "observations"},
    )


def test_exclusions(both: duckdb.DuckDBPyConnection) -> None:
    key = ("result_table", "ward_code", "excluded_because")
    _agree(
        _keyed(both, "select * from exclusions", key),
        _keyed(both, rollup_sql("units_exclusions"), key),
        {"results": "results"},
    )


def test_zone_sites(both: duckdb.DuckDBPyConnection, report: IndicatorReport) -> None:
    key = ("probe_id", "ward_code")
    view = _keyed(both, "select * from zone_targets", key)
    sites = {(s.probe_id, s.ward_code): vars(s) for s in report.zone_sites}
    assert {v["site_class"] for v in view.values()} == {"industrial_zone"}
    _agree(
        view,
        sites,
        {
            c: c
            for c in (
                "site_class",
                "nr_time_share",
                "saw_nr",
                "nr_probe_limited",
                "gigabit_capable",
                "gigabit_probe_limited",
            )
        },
    )
