"""A map layer is compute_indicators' ward figures and nothing else: the same
values, intervals, counts and verdicts, every ward of the registry, fixed
lines and mobile never in one figure, only valid results counted."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from analysis.indicators import IndicatorReport, compute_indicators, parse_period
from analysis.maps import (
    MAP_INDICATORS,
    NO_PROBE,
    MapRequestError,
    WardLayer,
    layer_from_report,
    ward_layer,
)
from analysis.maps.layers import PER_NETWORK_KIND, report_grouping
from analysis.wards import can_tho_wards
from tests.analysis.handmade import add_probe, add_throughput
from tests.analysis.maps.conftest import layer
from wardprobe.validity import StoredThroughput


def test_map_indicators_are_exactly_those_with_ward_figures(
    city_reports: dict[str | None, IndicatorReport],
) -> None:
    with_wards = {f.indicator for f in city_reports[None].figures if f.scope != "city"}
    assert set(MAP_INDICATORS) == with_wards


def test_every_layer_carries_compute_indicators_ward_figures(
    city_layers: list[WardLayer], city_reports: dict[str | None, IndicatorReport]
) -> None:
    assert {x.indicator for x in city_layers} == set(MAP_INDICATORS)
    for computed in city_layers:
        report = city_reports[report_grouping(computed.indicator, None)]
        # the same report's figures, exactly (another run of DuckDB may sum in
        # another order: the last bits of a mean can differ)
        x = layer_from_report(report, computed.indicator, computed.group)
        assert [w.status for w in x.wards] == [w.status for w in computed.wards]
        assert [w.value for w in x.wards] == pytest.approx([w.value for w in computed.wards])
        figures = {
            int(f.scope): f
            for f in report.figures
            if f.indicator == x.indicator and f.group == x.group and f.scope != "city"
        }
        assert len(x.wards) == 103
        assert [w.ward_code for w in x.wards] == sorted(can_tho_wards())
        for w in x.wards:
            f = figures.get(w.ward_code)
            if w.status == NO_PROBE:
                assert f is None or (f.probes == 0 and f.probe_limited == 0)
                assert w.value is None
                continue
            assert f is not None
            assert (w.value, w.ci_low, w.ci_high) == (f.value, f.ci_low, f.ci_high)
            assert (w.probes, w.tests, w.probe_limited) == (f.probes, f.tests, f.probe_limited)
            assert w.status == f.status
            assert w.targets == f.targets


def test_the_synthetic_city_has_a_figure_in_every_ward(city_layers: list[WardLayer]) -> None:
    for key in (
        "mobile_download_mean",
        "gigabit_capable_share",
        "fixed_200_share",
        "nr_time_share",
        "ipv6_capable_share:access_tech=fixed",
        "idle_latency_ms:access_tech=mobile",
    ):
        statuses = {w.status for w in layer(city_layers, key).wards}
        assert NO_PROBE not in statuses, key
        assert any(w.value is not None for w in layer(city_layers, key).wards)


def test_indicators_of_both_kinds_of_line_are_mapped_per_kind(
    city_layers: list[WardLayer],
) -> None:
    for indicator in PER_NETWORK_KIND:
        groups = sorted(str(x.group) for x in city_layers if x.indicator == indicator)
        assert groups == ["access_tech=fixed", "access_tech=mobile"]
    techs = sorted(str(x.group) for x in city_layers if x.indicator == "mobile_download_by_tech")
    assert techs == ["access_tech=lte", "access_tech=nr5g_nsa", "access_tech=nr5g_sa"]


def test_unknown_requests_are_refused_with_what_is_accepted(
    city_con: duckdb.DuckDBPyConnection, city_reports: dict[str | None, IndicatorReport]
) -> None:
    period = parse_period("2026")
    with pytest.raises(MapRequestError) as unknown:
        ward_layer(city_con, "mean_download", period, synthetic=True)
    assert "gigabit_capable_share" in unknown.value.accepted
    with pytest.raises(MapRequestError) as needs_group:
        layer_from_report(city_reports[None], "mobile_download_by_tech")
    assert "access_tech=lte" in needs_group.value.accepted
    with pytest.raises(MapRequestError) as bad_group:
        layer_from_report(city_reports[None], "mobile_download_by_tech", "wifi")
    assert "access_tech=nr5g_nsa" in bad_group.value.accepted
    with pytest.raises(MapRequestError):
        ward_layer(city_con, "fixed_200_share", period, by="site_class")  # type: ignore[arg-type]
    assert layer_from_report(city_reports[None], "mobile_download_by_tech", "lte").group == (
        "access_tech=lte"
    )


WARD_A, WARD_B, WARD_C = 31135, 31120, 31147
START = datetime(2026, 3, 2, 3, tzinfo=UTC)


def _test(mbps: float, clock: str = "synchronised") -> StoredThroughput:
    return StoredThroughput(
        status="ok",
        clock_sync=clock,
        cross_traffic_bytes_per_s=None,
        bytes_transferred=int(mbps * 1e6 / 8 * 10),
        measured_s=10.0,
        mbps=mbps,
    )


@pytest.fixture(scope="module")
def handmade_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real (not synthetic) fixed lines: ward A 3 lines at 500 Mb/s with
    unsynchronised 50 Mb/s tests beside; ward B lines whose every test was
    unsynchronised; ward C one line only (below the floor)."""
    path = tmp_path_factory.mktemp("handmade") / "store.duckdb"
    # the aggregator's own command makes the schema (its rows are synthetic
    # and never count for real figures)
    subprocess.run(
        [sys.executable, "-m", "aggregator", "synthetic", "--store", str(path), "--rows", "1000",
         "--year", "2020", "--no-baseline"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    con = duckdb.connect(str(path))
    for ward, lines, good, bad in ((WARD_A, 3, 500.0, 50.0), (WARD_B, 3, None, 80.0),
                                   (WARD_C, 1, 300.0, None)):  # fmt: skip
        for n in range(lines):
            probe = f"line-{ward}-{n}"
            add_probe(con, probe, ward, START - timedelta(days=1))
            for i in range(12):
                at = START + timedelta(hours=i)
                if good is not None:
                    add_throughput(con, probe, ward, at, _test(good))
                if bad is not None:
                    add_throughput(con, probe, ward, at, _test(bad, "unsynchronised"))
    con.close()
    return path


def test_only_valid_results_count_as_in_the_indicators(handmade_store: Path) -> None:
    con = duckdb.connect(str(handmade_store), read_only=True)
    try:
        fixed = ward_layer(con, "fixed_download_mean", parse_period("2026"))
        report = compute_indicators(con, parse_period("2026"))
    finally:
        con.close()
    wards = {w.ward_code: w for w in fixed.wards}
    assert wards[WARD_A].value == pytest.approx(500.0)
    assert (wards[WARD_A].probes, wards[WARD_A].tests) == (3, 36)
    assert wards[WARD_A].status == "ok"
    assert wards[WARD_B].status == NO_PROBE and wards[WARD_B].value is None
    assert wards[WARD_C].status == "insufficient data" and wards[WARD_C].value is None
    assert sum(1 for w in fixed.wards if w.status == NO_PROBE) == 102 - 1
    city = next(
        f for f in report.figures if f.indicator == "fixed_download_mean" and f.scope == "city"
    )
    assert fixed.city == city
