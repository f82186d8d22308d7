"""Every indicator on synthetic data, against an independent computation here,
on the embedded store and on a lake holding the same rows (each test that
reads the store runs on both: `con` is parametrized).

The test reads the raw rows of the store (not the views) and recomputes each
figure with numpy: validity, probe balancing, the floor, probe-limited
probes, the time weighting of radio observations, Wilson intervals and the
baseline ratio. Period boundaries are checked in UTC by hand.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from aggregator.ingest.lake import connect_lake
from aggregator.ingest.store import Store
from aggregator.ingest.stores import LakeSpec, parse_store_spec
from analysis.baseline import BaselineRow, import_rows
from analysis.indicators import (
    FIXED_ISP_UNKNOWN,
    Figure,
    IndicatorReport,
    StoreTooOld,
    compute_indicators,
    parse_period,
    set_period,
)
from analysis.synthetic import MixingRefused, SyntheticSpec, WardSpec, generate
from tests.analysis.raw import raw_columns
from tests.conftest import lake_copy
from wardprobe import validity

WARDS = (
    WardSpec(31117, fixed_probes=4, mobile_probes=4, site_class="industrial_zone"),
    WardSpec(
        31120,
        fixed_probes=5,
        mobile_probes=4,
        gigabit_share=0.8,
        slow_port_share=0.4,
        lte_only_modem_share=0.5,
    ),
    WardSpec(
        31123,
        fixed_probes=4,
        mobile_probes=3,
        gigabit_share=0.2,
        nr_share=0.2,
        ipv6_share=0.9,
        idle_rtt_ms=35.0,
    ),
    # under the floor: two probes of each kind
    WardSpec(31126, fixed_probes=2, mobile_probes=2),
)
# 2026 in Asia/Ho_Chi_Minh (UTC+7), written out in UTC by hand.
Y2026 = (datetime(2025, 12, 31, 17, tzinfo=UTC), datetime(2026, 12, 31, 17, tzinfo=UTC))
Y2024 = (datetime(2023, 12, 31, 17, tzinfo=UTC), datetime(2024, 12, 31, 17, tzinfo=UTC))


def _spec(start: datetime, end: datetime, factor: float, seed: int) -> SyntheticSpec:
    return SyntheticSpec(
        wards=WARDS,
        # a little beyond the year on both sides: the boundaries must cut
        start=start,
        end=end,
        throughput_rows=3000,
        latency_rows=2000,
        cellular_rows=3000,
        ipv6_rows=600,
        mobile_speed_factor=factor,
        seed=seed,
    )


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("indicators") / "store.duckdb"
    store = Store(path)
    con = store._con
    generate(
        con, _spec(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 12, 1, tzinfo=UTC), 0.5, 7)
    )
    generate(
        con, _spec(datetime(2025, 12, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC), 1.0, 8)
    )
    store.close()
    yield path


@pytest.fixture(scope="module")
def lake(
    request: pytest.FixtureRequest, store_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> LakeSpec:
    """A lake holding the module's store (skips only without PostgreSQL)."""
    postgres = request.getfixturevalue("postgres")
    spec = parse_store_spec(lake_copy(postgres, store_path, tmp_path_factory.mktemp("lake")))
    assert isinstance(spec, LakeSpec)
    return spec


@pytest.fixture(scope="module", params=["duckdb", "ducklake"])
def con(request: pytest.FixtureRequest, store_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The store read-only: the embedded file, or the lake as an analyst attaches it."""
    if request.param == "duckdb":
        connection = duckdb.connect(str(store_path), read_only=True)
    else:
        connection = connect_lake(request.getfixturevalue("lake"), read_only=True)
    yield connection
    connection.close()


def _close(got: object, expected: object, where: str) -> None:
    """Equal, floats to 1e-9 (sums taken in another row order), into
    dataclasses (a figure's baselines) and tuples."""
    if isinstance(got, float) and isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12), where
    elif dataclasses.is_dataclass(got) and dataclasses.is_dataclass(expected):
        assert type(got) is type(expected), where
        for field in dataclasses.fields(got):
            name = field.name
            _close(getattr(got, name), getattr(expected, name), f"{where}.{name}")
    elif isinstance(got, tuple | list) and isinstance(expected, tuple | list):
        assert len(got) == len(expected), where
        for n, (a, b) in enumerate(zip(got, expected, strict=True)):
            _close(a, b, f"{where}[{n}]")
    else:
        assert got == expected, where


def test_the_lake_gives_the_embedded_stores_figures(lake: LakeSpec, store_path: Path) -> None:
    period = parse_period("2026")
    with duckdb.connect(str(store_path), read_only=True) as embedded:
        expected = compute_indicators(embedded, period, synthetic=True, by="operator")
    analyst = connect_lake(lake, read_only=True)
    try:
        got = compute_indicators(analyst, period, synthetic=True, by="operator")
    finally:
        analyst.close()
    assert len(expected.figures) > 50
    _close(got.figures, expected.figures, "figures")


def _in(window: tuple[datetime, datetime]) -> str:
    return (
        f"epoch(measured_at) >= {window[0].timestamp()} "
        f"and epoch(measured_at) < {window[1].timestamp()} and synthetic"
    )


def _valid_downloads(con: duckdb.DuckDBPyConnection, window: tuple[datetime, datetime]) -> Any:
    t = raw_columns(
        con,
        "select probe_id, ward_code, network_kind, status, clock_sync, mbps, "
        "bytes_transferred::double as bytes, measured_s, coalesce(cross_traffic_bytes_per_s, 0) "
        "as cross, link_speed_mbps, access_tech, access_tech_end, operator_name "
        f"from throughput where direction = 'download' and {_in(window)}",
    )
    ok = (
        (t["status"] == "ok")
        & (t["clock_sync"] == "synchronised")
        & (t["cross"] <= validity.MAX_CROSS_TRAFFIC_BYTES_PER_S)
        & (t["bytes"] >= validity.MIN_BYTES_TRANSFERRED)
        & (t["measured_s"] >= validity.MIN_MEASURED_S)
        & (t["measured_s"] <= validity.MAX_MEASURED_S)
        & (
            np.abs(t["bytes"] * 8 / t["measured_s"] / 1e6 - t["mbps"])
            <= validity.RATE_TOLERANCE * t["mbps"]
        )
    )
    return {k: v[ok] for k, v in t.items()}


def _figure(report: IndicatorReport, name: str, scope: str, group: str | None = None) -> Figure:
    found = [f for f in report.figures if (f.indicator, f.scope, f.group) == (name, scope, group)]
    assert len(found) == 1, (name, scope, group, found)
    return found[0]


def _by_probe(keys: np.ndarray[Any, Any], values: np.ndarray[Any, Any]) -> dict[Any, Any]:
    out: dict[Any, list[float]] = defaultdict(list)
    for key, value in zip(keys, values, strict=True):
        out[key].append(value)
    return {k: np.asarray(v) for k, v in out.items()}


def _wilson(yes: int, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    p = yes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_period_boundaries_are_local_time() -> None:
    period = parse_period("2026Q3")
    assert period.start == datetime(2026, 6, 30, 17, tzinfo=UTC)
    assert period.end == datetime(2026, 9, 30, 17, tzinfo=UTC)
    span = parse_period("2026-02-01..2026-03-01")
    assert (span.start, span.end) == (
        datetime(2026, 1, 31, 17, tzinfo=UTC),
        datetime(2026, 2, 28, 17, tzinfo=UTC),
    )
    with pytest.raises(ValueError, match="YYYY"):
        parse_period("last year")


def test_mobile_download_is_probe_balanced(
    con: duckdb.DuckDBPyConnection, report: IndicatorReport
) -> None:
    d = _valid_downloads(con, Y2026)
    mobile = d["network_kind"] == "mobile"
    per_probe = _by_probe(d["probe_id"][mobile], d["mbps"][mobile])
    probe_ward = dict(zip(d["probe_id"], d["ward_code"], strict=True))
    means = {p: v.mean() for p, v in per_probe.items()}
    city = _figure(report, "mobile_download_mean", "city")
    assert city.value == pytest.approx(np.mean(list(means.values())), rel=1e-9)
    assert city.median == pytest.approx(np.median(list(means.values())), rel=1e-9)
    assert city.probes == len(means)
    assert city.tests == int(mobile.sum())
    # not the mean of tests: a probe that tests more does not weigh more
    assert city.value != pytest.approx(d["mbps"][mobile].mean(), rel=1e-6)
    assert city.ci_low is not None and city.ci_high is not None and city.value is not None
    assert city.ci_low <= city.value <= city.ci_high
    # an independent percentile bootstrap over probes gives a similar width
    rng = np.random.default_rng(1)
    values = np.asarray(list(means.values()))
    boot = rng.choice(values, size=(4000, values.size)).mean(axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    assert city.ci_high - city.ci_low == pytest.approx(high - low, rel=0.25)
    for ward in (31117, 31120, 31123):
        ward_means = [m for p, m in means.items() if probe_ward[p] == ward]
        fig = _figure(report, "mobile_download_mean", str(ward))
        assert fig.value == pytest.approx(np.mean(ward_means), rel=1e-9)
        assert fig.status == "ok"


def test_below_the_floor_is_insufficient_data(report: IndicatorReport) -> None:
    for name in ("mobile_download_mean", "gigabit_capable_share", "nr_time_share"):
        fig = _figure(report, name, "31126")
        assert fig.status == "insufficient data"
        assert fig.value is None and fig.ci_low is None
        assert fig.probes == 2
        assert all(t.met is None for t in fig.targets)


def test_baseline_ratio_from_2024_in_the_store(
    con: duckdb.DuckDBPyConnection, report: IndicatorReport
) -> None:
    def city_mean(window: tuple[datetime, datetime]) -> float:
        d = _valid_downloads(con, window)
        mobile = d["network_kind"] == "mobile"
        per_probe = _by_probe(d["probe_id"][mobile], d["mbps"][mobile])
        return float(np.mean([v.mean() for v in per_probe.values()]))

    fig = _figure(report, "mobile_download_ratio", "city")
    expected = city_mean(Y2026) / city_mean(Y2024)
    assert fig.value == pytest.approx(expected, rel=1e-9)
    # the generator made 2024 half as fast: the ratio is about 2
    assert 1.6 < expected < 2.4
    assert "2024 measurements in the store" in fig.note
    assert fig.targets[0].met == (expected >= 2.0)
    assert "2024 measurements in the store" in report.baseline


def test_baseline_ratio_from_an_imported_row(tmp_path: Path) -> None:
    path = tmp_path / "only2026.duckdb"
    store = Store(path)
    generate(
        store._con,
        _spec(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC), 1.0, 9),
    )
    import_rows(
        store._con,
        [BaselineRow("city", None, 2024, "mobile", None, "median", 30.0, 1000, "VNNIC i-Speed")],
    )
    store.close()
    with duckdb.connect(str(path), read_only=True) as con:
        rep = compute_indicators(con, parse_period("2026"), synthetic=True)
        d = _valid_downloads(con, Y2026)
    mobile = d["network_kind"] == "mobile"
    per_probe = _by_probe(d["probe_id"][mobile], d["mbps"][mobile])
    median_of_means = float(np.median([v.mean() for v in per_probe.values()]))
    fig = _figure(rep, "mobile_download_ratio", "city")
    assert fig.value == pytest.approx(median_of_means / 30.0, rel=1e-9)
    assert "imported 2024 median 30 Mb/s" in fig.note and "VNNIC i-Speed" in fig.note
    ward = _figure(rep, "mobile_download_ratio", "31117")
    assert ward.value is None and "no 2024 baseline" in ward.note


def test_gigabit_share_counts_probe_limited_apart(
    con: duckdb.DuckDBPyConnection, report: IndicatorReport
) -> None:
    d = _valid_downloads(con, Y2026)
    fixed = d["network_kind"] == "fixed"
    per_probe = _by_probe(d["probe_id"][fixed], d["mbps"][fixed])
    link = _by_probe(d["probe_id"][fixed], d["link_speed_mbps"][fixed])
    capable = limited = used = 0
    for probe, values in per_probe.items():
        if link[probe].max() < 1000:
            limited += 1
            continue
        used += 1
        ordered = np.sort(values)
        p90 = ordered[math.ceil(0.9 * ordered.size) - 1]  # nearest rank
        capable += int(p90 >= 900)
    fig = _figure(report, "gigabit_capable_share", "city")
    assert limited > 0
    assert fig.probe_limited == limited
    assert fig.probes == used
    assert fig.value == pytest.approx(capable / used)
    low, high = _wilson(capable, used)
    assert fig.ci_low == pytest.approx(low)
    assert fig.ci_high == pytest.approx(high)
    assert [(t.value, t.comparator) for t in fig.targets] == [(0.5, ">="), (0.8, ">"), (1.0, ">=")]
    assert [t.met for t in fig.targets] == [
        capable / used >= 0.5,
        capable / used > 0.8,
        capable / used >= 1.0,
    ]
    share200 = _figure(report, "fixed_200_share", "city")
    at200 = [p for p, v in per_probe.items() if link[p].max() >= 200 and v.mean() >= 200]
    assert share200.value == pytest.approx(len(at200) / (len(per_probe) - share200.probe_limited))


def test_mobile_download_by_technology_and_operator(
    con: duckdb.DuckDBPyConnection, by_operator: IndicatorReport
) -> None:
    rep = by_operator
    d = _valid_downloads(con, Y2026)
    sel = (d["network_kind"] == "mobile") & (d["access_tech"] == d["access_tech_end"])
    groups: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for probe, tech, op, mbps in zip(
        d["probe_id"][sel],
        d["access_tech"][sel],
        d["operator_name"][sel],
        d["mbps"][sel],
        strict=True,
    ):
        groups[(tech, op)][probe].append(mbps)
    for (tech, op), probes in groups.items():
        fig = _figure(rep, "mobile_download_by_tech", "city", f"access_tech={tech};operator={op}")
        expected = np.mean([np.mean(v) for v in probes.values()])
        if fig.status == "ok":
            assert fig.value == pytest.approx(expected, rel=1e-9)
            target = 40.0 if tech == "lte" else 100.0
            assert [t.value for t in fig.targets] == [target]
            assert fig.targets[0].met == (expected >= target)
        assert fig.probes == len(probes)


def test_nr_availability_is_time_weighted_with_limited_modems_apart(
    con: duckdb.DuckDBPyConnection, report: IndicatorReport
) -> None:
    c = raw_columns(
        con,
        "select probe_id, epoch(measured_at) as t, access_tech, modem_5g_capable, status, "
        f"clock_sync from cellular where {_in(Y2026)}",
    )
    ok = (c["status"] == "ok") & (c["clock_sync"] == "synchronised")
    shares, saw, limited = [], 0, 0
    for probe in np.unique(c["probe_id"][ok]):
        mine = ok & (c["probe_id"] == probe)
        if not c["modem_5g_capable"][mine].all():
            limited += 1
            continue
        order = np.argsort(c["t"][mine])
        times = c["t"][mine][order]
        on_nr = np.isin(c["access_tech"][mine][order], ["nr5g_nsa", "nr5g_sa"])
        # an observation stands for the time to the next one of the same Cần Thơ day
        days = (times + 7 * 3600) // 86400
        weights = np.empty(times.size)
        for day in np.unique(days):
            at = np.flatnonzero(days == day)
            gaps = np.minimum(np.diff(times[at]), 600.0)
            weights[at] = np.append(gaps, gaps.mean() if gaps.size else 600.0)
        shares.append(float((weights * on_nr).sum() / weights.sum()))
        saw += int(on_nr.any())
    fig = _figure(report, "nr_time_share", "city")
    assert limited > 0 and fig.probe_limited == limited
    assert fig.value == pytest.approx(np.mean(shares), rel=1e-9)
    seen = _figure(report, "nr_seen_share", "city")
    assert seen.value == pytest.approx(saw / len(shares))
    low, high = _wilson(saw, len(shares))
    assert seen.ci_low == pytest.approx(low)
    assert seen.ci_high == pytest.approx(high)


def test_ipv6_shares_per_probe(con: duckdb.DuckDBPyConnection, report: IndicatorReport) -> None:
    v = raw_columns(
        con,
        "select probe_id, network_kind, ipv6_capable, ipv6_preferred, status, clock_sync "
        f"from ipv6 where {_in(Y2026)}",
    )
    ok = (v["status"] == "ok") & (v["clock_sync"] == "synchronised")
    per_probe = _by_probe(v["probe_id"][ok], v["ipv6_capable"][ok].astype(float))
    capable = sum(1 for x in per_probe.values() if x.mean() >= 0.5)
    fig = _figure(report, "ipv6_capable_share", "city")
    assert fig.probes == len(per_probe)
    assert fig.value == pytest.approx(capable / len(per_probe))
    assert fig.tests == int(ok.sum())


def _line_groups(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Each synthetic probe's group by operator, from the raw tables: a fixed
    line's site ISP (probes.isp), a mobile probe's operator."""
    groups = {}
    for probe, isp in con.execute(
        "select probe_id, isp from probes where probe_id like '%-fixed-%'"
    ).fetchall():
        groups[probe] = FIXED_ISP_UNKNOWN if isp is None else f"fixed line: {isp}"
    mobile = con.execute(
        "select probe_id, list(distinct operator_name) from throughput "
        "where network_kind = 'mobile' and synthetic group by probe_id"
    ).fetchall()
    for probe, operators in mobile:
        assert len(operators) == 1  # the generator keeps a probe on one operator
        groups[probe] = operators[0]
    return groups


def test_synthetic_fixed_lines_have_isps_by_turn(con: duckdb.DuckDBPyConnection) -> None:
    isps = dict(
        con.execute("select probe_id, isp from probes where probe_id like '%-fixed-%'").fetchall()
    )
    assert isps["synthetic-31120-fixed-0"] == "VNPT"
    assert isps["synthetic-31120-fixed-2"] == "FPT Telecom"
    assert isps["synthetic-31120-fixed-3"] is None
    assert isps["synthetic-31120-fixed-4"] == "VNPT"
    assert con.execute(
        "select count(*) from probes where probe_id like '%-mobile-%' and isp is not null"
    ).fetchone() == (0,)


def test_ipv6_shares_per_ward_and_isp(
    con: duckdb.DuckDBPyConnection, by_operator: IndicatorReport
) -> None:
    v = raw_columns(
        con,
        "select probe_id, ward_code, network_kind, ipv6_capable, ipv6_preferred, status, "
        f"clock_sync from ipv6 where {_in(Y2026)}",
    )
    ok = (v["status"] == "ok") & (v["clock_sync"] == "synchronised")
    line = _line_groups(con)
    ward_of = dict(zip(v["probe_id"], v["ward_code"], strict=True))
    for column, name in (
        ("ipv6_capable", "ipv6_capable_share"),
        ("ipv6_preferred", "ipv6_preferred_share"),
    ):
        per_probe = _by_probe(v["probe_id"][ok], v[column][ok].astype(float))
        # (scope, group) -> [(probe has working IPv6, its checks)]
        scopes: dict[tuple[str, str], list[tuple[bool, int]]] = defaultdict(list)
        for probe, checks in per_probe.items():
            unit = (bool(checks.mean() >= 0.5), checks.size)
            for scope in ("city", str(ward_of[probe])):
                scopes[(scope, f"operator={line[probe]}")].append(unit)
        got = {(f.scope, f.group) for f in by_operator.figures if f.indicator == name}
        assert got == set(scopes)
        for (scope, group), units in scopes.items():
            fig = _figure(by_operator, name, scope, group)
            yes, n, tests = sum(u[0] for u in units), len(units), sum(u[1] for u in units)
            assert (fig.probes, fig.tests) == (n, tests), (scope, group)
            assert fig.mean == pytest.approx(yes / n)
            if n >= 3 and tests >= 30:
                assert fig.status == "ok" and fig.value == pytest.approx(yes / n)
                low, high = _wilson(yes, n)
                assert fig.ci_low == pytest.approx(low)
                assert fig.ci_high == pytest.approx(high)
            else:
                assert fig.status == "insufficient data" and fig.value is None
    # every recorded fixed-line ISP, and the lines without one, clear the floor city-wide
    for isp in ("VNPT", "Viettel", "FPT Telecom"):
        fig = _figure(by_operator, "ipv6_capable_share", "city", f"operator=fixed line: {isp}")
        assert fig.status == "ok"
    unrecorded = _figure(by_operator, "ipv6_capable_share", "city", f"operator={FIXED_ISP_UNKNOWN}")
    assert unrecorded.status == "ok"
    # mobile Viettel and the fixed Viettel lines are two groups
    assert _figure(by_operator, "ipv6_capable_share", "city", "operator=Viettel").probes > 0


def test_ipv6_capability_view_names_the_line_provider(con: duckdb.DuckDBPyConnection) -> None:
    line = _line_groups(con)
    set_period(con, parse_period("2026"), synthetic=True)
    try:
        rows = con.execute(
            "select probe_id, network_kind, operator_name, isp from ipv6_capability"
        ).fetchall()
    finally:
        set_period(con, None, synthetic=False)
    assert rows
    for probe, kind, operator, isp in rows:
        if kind == "fixed":
            assert operator is None
            expected = line[probe].removeprefix("fixed line: ")
            assert isp == (None if line[probe] == FIXED_ISP_UNKNOWN else expected)
        else:
            assert isp == operator == line[probe]


def test_fixed_line_figures_per_isp(
    con: duckdb.DuckDBPyConnection, by_operator: IndicatorReport
) -> None:
    d = _valid_downloads(con, Y2026)
    fixed = d["network_kind"] == "fixed"
    per_probe = _by_probe(d["probe_id"][fixed], d["mbps"][fixed])
    line = _line_groups(con)
    by_isp: dict[str, list[float]] = defaultdict(list)
    for probe, values in per_probe.items():
        by_isp[f"operator={line[probe]}"].append(float(values.mean()))
    city = {
        f.group
        for f in by_operator.figures
        if (f.indicator, f.scope) == ("fixed_download_mean", "city")
    }
    assert city == set(by_isp)
    for group, means in by_isp.items():
        fig = _figure(by_operator, "fixed_download_mean", "city", group)
        assert fig.probes == len(means)
        assert fig.mean == pytest.approx(np.mean(means), rel=1e-9)
    gigabit = {
        f.group
        for f in by_operator.figures
        if (f.indicator, f.scope) == ("gigabit_capable_share", "city")
    }
    assert gigabit == set(by_isp)


def test_a_store_without_the_isp_column_is_named_too_old(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    Store(path).close()
    with duckdb.connect(str(path)) as old:
        old.execute("alter table probes drop column isp")
    with duckdb.connect(str(path), read_only=True) as con, pytest.raises(StoreTooOld) as refused:
        compute_indicators(con, parse_period("2026"))
    assert "isp" in str(refused.value) and "aggregator" in str(refused.value)


def test_latency_medians_of_probe_medians(
    con: duckdb.DuckDBPyConnection, report: IndicatorReport
) -> None:
    lat = raw_columns(
        con,
        "select probe_id, ward_code, epoch(measured_at) as t, rtt_median_ms, packets_received, "
        f"status, clock_sync from latency where protocol = 'icmp' and {_in(Y2026)}",
    )
    ok = (
        (lat["status"] == "ok")
        & (lat["clock_sync"] == "synchronised")
        & (lat["packets_received"] >= 3)
    )
    # a probe's latency: the median over Cần Thơ days (UTC+7) of the day's median
    days = (lat["t"][ok] + 7 * 3600) // 86400
    daily = _by_probe(
        np.array([f"{p}|{d}" for p, d in zip(lat["probe_id"][ok], days, strict=True)]),
        lat["rtt_median_ms"][ok],
    )
    per_probe_days: dict[str, list[float]] = defaultdict(list)
    for key, values in daily.items():
        per_probe_days[key.split("|")[0]].append(float(np.median(values)))
    per_probe = {p: np.asarray(v) for p, v in per_probe_days.items()}
    fig = _figure(report, "idle_latency_ms", "city")
    assert fig.value == pytest.approx(np.median([np.median(x) for x in per_probe.values()]))
    ward_probe = dict(zip(lat["probe_id"], lat["ward_code"], strict=True))
    slow = [np.median(x) for p, x in per_probe.items() if ward_probe[p] == 31123]
    assert _figure(report, "idle_latency_ms", "31123").value == pytest.approx(np.median(slow))
    # the ward generated with 35 ms is slower than the 20 ms ones
    assert np.median(slow) > _figure(report, "idle_latency_ms", "31117").value


def test_zone_targets_list_each_site(report: IndicatorReport) -> None:
    sites = report.zone_sites
    assert {s.site_class for s in sites} == {"industrial_zone"}
    assert len(sites) == 8  # 4 fixed + 4 mobile probes in the zone ward
    fixed = [s for s in sites if s.gigabit_capable is not None]
    fig = _figure(report, "zone_gigabit_share", "city")
    usable = [s for s in fixed if not s.gigabit_probe_limited]
    assert fig.value == pytest.approx(sum(bool(s.gigabit_capable) for s in usable) / len(usable))
    assert [t.value for t in fig.targets] == [1.0]


def test_cell_proxy_is_labelled_and_counts_distinct_cells(
    con: duckdb.DuckDBPyConnection, report: IndicatorReport
) -> None:
    c = raw_columns(
        con,
        "select ward_code, access_tech, cell_id, nr_channel, nr_pci, status, clock_sync "
        f"from cellular where {_in(Y2026)}",
    )
    ok = (c["status"] == "ok") & (c["clock_sync"] == "synchronised")
    # An SA cell by its id; an NSA 5G leg by its ward, NR-ARFCN and PCI (the
    # generator gives every NSA observation a leg): a cell of its own, not its anchor.
    nsa = ok & (c["access_tech"] == "nr5g_nsa")
    sa = ok & (c["access_tech"] == "nr5g_sa")
    nr_legs = set(
        zip(
            c["ward_code"][nsa].tolist(),
            c["nr_channel"][nsa].tolist(),
            c["nr_pci"][nsa].tolist(),
            strict=True,
        )
    )
    nr = len(nr_legs) + len(set(c["cell_id"][sa]))
    lte = len(set(c["cell_id"][ok & np.isin(c["access_tech"], ["lte", "nr5g_nsa"])]))
    assert nsa.sum() > 0 and len(nr_legs) > 1
    fig = _figure(report, "nr_lte_cell_ratio", "city")
    assert fig.value == pytest.approx(nr / lte)
    assert "PROXY" in fig.note and "not base stations" in fig.note


def test_exclusions_are_counted(con: duckdb.DuckDBPyConnection, report: IndicatorReport) -> None:
    row = con.execute(
        f"select count(*) filter (where status <> 'ok'), "
        f"count(*) filter (where status = 'ok' and clock_sync <> 'synchronised') "
        f"from throughput where {_in(Y2026)}"
    ).fetchone()
    assert row is not None
    got = {(t, r): n for t, r, n in report.exclusions}
    assert got[("throughput", "status failed")] == row[0]
    assert got[("throughput", "clock not synchronised")] == row[1]
    assert got[("throughput", "cross-traffic")] > 0
    assert got[("throughput", "too short")] > 0


def test_real_and_synthetic_never_mix(con: duckdb.DuckDBPyConnection) -> None:
    real = compute_indicators(con, parse_period("2026"), synthetic=False)
    assert all(f.probes == 0 or f.value is None for f in real.figures)


def test_generator_is_reproducible_and_refuses_real_stores(tmp_path: Path) -> None:
    sums = []
    for name in ("a", "b"):
        store = Store(tmp_path / f"{name}.duckdb")
        spec = _spec(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC), 1.0, 3)
        generate(store._con, spec)
        sums.append(
            store.query("select sum(mbps), count(*), min(result_id::varchar) from throughput")
        )
        store.close()
    assert sums[0] == sums[1]
    store = Store(tmp_path / "a.duckdb")
    store.query(
        "update throughput set synthetic = false where result_id in "
        "(select result_id from throughput limit 1)"
    )
    with pytest.raises(MixingRefused):
        generate(
            store._con,
            _spec(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC), 1.0, 4),
        )
    store.close()


def test_share_intervals_stay_within_0_and_1(report: IndicatorReport) -> None:
    """A share of 0 (or 1) shows its lower (upper) bound as exactly 0 (1)."""
    shares = [f for f in report.figures if f.interval == "wilson" and f.value is not None]
    assert {0.0, 1.0} & {f.value for f in shares}  # the synthetic city has such shares
    for f in shares:
        assert f.value is not None and f.ci_low is not None and f.ci_high is not None
        assert 0.0 <= f.ci_low <= f.value <= f.ci_high <= 1.0, f
        assert (f.ci_low == 0.0) is (f.value == 0.0), f
        assert (f.ci_high == 1.0) is (f.value == 1.0), f
