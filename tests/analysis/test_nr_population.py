"""nr_population_share on the synthetic city, recomputed with numpy from the
per-probe view nr_availability and the stored populations: each ward's
nr_time_share weighted by its people, the wards below the floor and the
people living in them counted apart."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pytest

from aggregator.ingest.store import Store
from analysis import constants as k
from analysis.indicators import (
    Figure,
    IndicatorReport,
    compute_indicators,
    parse_period,
    report_json,
)
from analysis.population import SYNTHETIC_SOURCE, SYNTHETIC_YEAR
from analysis.synthetic import city_spec, generate
from analysis.wards import can_tho_wards


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("people") / "store.duckdb"
    store = Store(path)
    # few enough radio observations that some wards fall below the floor
    generate(store._con, city_spec(24_000))
    store.close()
    return path


@pytest.fixture(scope="module")
def con(store_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(store_path), read_only=True)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def report(con: duckdb.DuckDBPyConnection) -> IndicatorReport:
    return compute_indicators(con, parse_period("2026"), synthetic=True)


def _city(report: IndicatorReport) -> Figure:
    return next(
        f for f in report.figures if f.indicator == "nr_population_share" and f.scope == "city"
    )


def test_the_synthetic_city_has_plausible_populations_and_says_they_are_made_up(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rows = con.execute(
        "select ward_code, population, year, source, synthetic from ward_population"
    ).fetchall()
    assert {r[0] for r in rows} == set(can_tho_wards())
    assert {(r[2], r[3], r[4]) for r in rows} == {(SYNTHETIC_YEAR, SYNTHETIC_SOURCE, True)}
    people = np.array([r[1] for r in rows])
    assert abs(people.sum() - 3_200_000) < 1_000  # Cần Thơ after the 2025 merger
    assert people.max() > 2 * people.min()  # wards differ, as the city's do


def test_the_weighting_is_numpys(con: duckdb.DuckDBPyConnection, report: IndicatorReport) -> None:
    con.execute("set variable period_from = '2025-12-31 17:00:00+00'::timestamptz")
    con.execute("set variable period_to = '2026-12-31 17:00:00+00'::timestamptz")
    con.execute("set variable synthetic = true")
    shares: dict[int, list[float]] = defaultdict(list)
    tests: dict[int, int] = defaultdict(int)
    for ward, share, observations, limited in con.execute(
        "select ward_code, nr_time_share, observations, probe_limited from nr_availability"
    ).fetchall():
        if not limited:
            shares[ward].append(share)
            tests[ward] += observations
    people = dict(
        con.execute("select ward_code, population from ward_population where synthetic").fetchall()
    )
    counted = [w for w in people if len(shares[w]) >= k.FLOOR_PROBES and tests[w] >= k.FLOOR_TESTS]
    apart = sorted(set(people) - set(counted))
    assert 0 < len(apart) < len(people) // 2  # the spec leaves some wards short of data
    expected = np.average(
        [np.mean(shares[w]) for w in counted], weights=[people[w] for w in counted]
    )
    city = _city(report)
    assert city.value == pytest.approx(expected, rel=1e-12)
    assert city.ci_low < expected < city.ci_high
    people_apart = sum(people[w] for w in apart)
    assert (
        f"people in wards without enough data: {people_apart:,} ({len(apart)} wards)" in city.note
    )
    assert f"({SYNTHETIC_YEAR}: {SYNTHETIC_SOURCE})" in city.note
    # each ward listed: its people, its share (None apart), the people covered
    listed = {w.ward_code: w for w in report.nr_population}
    assert set(listed) == set(people)
    assert [w for w in sorted(listed) if listed[w].nr_time_share is None] == apart
    for w in counted:
        assert listed[w].people_covered == pytest.approx(people[w] * np.mean(shares[w]))


def test_against_the_plans_target(report: IndicatorReport) -> None:
    [target] = _city(report).targets
    assert (target.value, target.due, target.met) == (1.0, "2030", False)
    assert target.source == "87/KH-UBND, 235/KH-UBND"


def test_a_ward_scope_is_that_wards_time_share(
    con: duckdb.DuckDBPyConnection, report: IndicatorReport
) -> None:
    ward = next(w for w in report.nr_population if w.nr_time_share is not None)
    one = compute_indicators(con, parse_period("2026"), synthetic=True, ward=ward.ward_code)
    figures = {f.indicator: f for f in one.figures if f.scope == str(ward.ward_code)}
    assert figures["nr_population_share"].value == pytest.approx(figures["nr_time_share"].value)


def test_real_figures_are_not_weighed_by_synthetic_people(
    con: duckdb.DuckDBPyConnection,
) -> None:
    real = compute_indicators(con, parse_period("2026"))
    city = _city(real)
    assert city.value is None
    assert "no ward populations" in city.note


def test_the_indicators_command_says_who_it_cannot_speak_for(
    store_path: Path, report: IndicatorReport
) -> None:
    from typer.testing import CliRunner

    from aggregator.cli import app

    args = ["indicators", "--period", "2026", "--synthetic", "--store", str(store_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    people = sum(w.population or 0 for w in report.nr_population)
    apart = [w for w in report.nr_population if w.nr_time_share is None]
    line = next(x for x in result.output.splitlines() if x.startswith("Population:"))
    assert f"{people:,} people in 103 wards" in line
    assert f"without enough data: {sum(w.population or 0 for w in apart):,} ({len(apart)}" in line
    # --format json and the HTTP API give the same report, every ward in it
    as_json = json.loads(report_json(report))
    assert len(as_json["nr_population"]) == 103


def test_the_report_says_whom_the_share_weighs_and_leaves_out(
    con: duckdb.DuckDBPyConnection, report: IndicatorReport
) -> None:
    from analysis.report.content import gather

    content = gather(con, 2026, "en", synthetic=True, map_png=lambda layer, lang: b"")
    [section] = [s for s in content.sections if s.people]
    assert section.title == "Share of the population with 5G"
    apart = [w for w in report.nr_population if w.nr_time_share is None]
    people = sum(w.population or 0 for w in report.nr_population)
    assert f"{people:,} people in 103 wards (2025, source: {SYNTHETIC_SOURCE})" in section.people
    assert (
        f"living in the {len(apart)} wards without enough data, left out of the share: "
        f"{sum(w.population or 0 for w in apart):,}." in section.people
    )


def test_the_analyst_snapshot_carries_the_populations(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from aggregator.ingest.snapshot import publish_snapshot
    from analysis.population import synthetic_populations
    from analysis.synthetic import SyntheticSpec, WardSpec

    store = Store(tmp_path / "store.duckdb")
    wards = (31120, 31135, 31147)
    generate(
        store._con,
        SyntheticSpec(
            wards=tuple(WardSpec(w) for w in wards),
            start=datetime(2026, 3, 1, tzinfo=UTC),
            end=datetime(2026, 4, 1, tzinfo=UTC),
            throughput_rows=300,
            latency_rows=300,
            cellular_rows=600,
            ipv6_rows=60,
        ),
    )
    snap = tmp_path / "snapshot.duckdb"
    publish_snapshot(store, snap)
    store.close()
    with duckdb.connect(str(snap), read_only=True) as snapshot:
        published = compute_indicators(snapshot, parse_period("2026"), synthetic=True)
    people = synthetic_populations()
    assert {w.ward_code: w.population for w in published.nr_population} == {
        w: people[w] for w in wards
    }
    assert _city(published).value is not None
