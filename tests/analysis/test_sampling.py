"""Where more probes would settle the answer (analysis/sampling.py): the
numbers worked out by hand on a hand-made store and for the formulas, and
on the synthetic city every figure accounted for."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest
from shapely import unary_union
from shapely.geometry import shape

from aggregator.ingest.store import Store
from analysis import constants as k
from analysis.indicators import compute_indicators, parse_period
from analysis.sampling import (
    SamplingPlan,
    Z,
    needs_geojson,
    probes_to_floor,
    probes_to_settle,
    sampling_plan,
    ward_needs,
    where_more_probes,
)
from analysis.synthetic import city_spec, generate
from analysis.wards import can_tho_wards
from tests.analysis.handmade import add_probe, add_throughput
from tests.wardprobe.threshold_rows import VALID
from wardprobe.validity import StoredThroughput

# 10:00 on 10 March 2026 in Cần Thơ
START = datetime(2026, 3, 10, 3, tzinfo=UTC)
# three wards of the registry (Ninh Kiều, Cái Khế, Tân An)
FOUR_LINES, ONE_LINE, NO_PROBE = 31135, 31120, 31147


def _rate(mbps: float) -> StoredThroughput:
    """A valid 10-second download at `mbps` (bytes moved agree with the rate)."""
    return replace(VALID, mbps=mbps, bytes_transferred=int(mbps * 1e6 / 8 * 10), measured_s=10.0)


@pytest.fixture(scope="module")
def handmade(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ward FOUR_LINES: four fixed lines, ten valid downloads each, three at
    250 Mb/s and one at 150 Mb/s (3 of 4 at 200 Mb/s); ward ONE_LINE:
    one line with twelve downloads at 250 Mb/s; ward NO_PROBE: none."""
    path = tmp_path_factory.mktemp("sampling") / "store.duckdb"
    store = Store(path)
    con = store._con
    lines = [(FOUR_LINES, f"line-{n}", 250.0 if n < 3 else 150.0, 10) for n in range(4)]
    lines.append((ONE_LINE, "lone", 250.0, 12))
    for ward, probe, mbps, tests in lines:
        add_probe(con, probe, ward, START - timedelta(days=1))
        for n in range(tests):
            add_throughput(con, probe, ward, START + timedelta(hours=n), _rate(mbps))
    store.close()
    return path


@pytest.fixture(scope="module")
def plan(handmade: Path) -> SamplingPlan:
    with duckdb.connect(str(handmade), read_only=True) as con:
        return where_more_probes(con, parse_period("2026"))


def test_a_ward_below_the_floor_needs_probes_at_its_own_rate(plan: SamplingPlan) -> None:
    gap = next(
        g for g in plan.below_floor if (g.indicator, g.scope) == ("fixed_200_share", str(ONE_LINE))
    )
    # 1 probe, 12 tests: 2 more probes reach 3; at 12 tests each, 2 more reach 36 >= 30.
    assert (gap.probes, gap.tests, gap.tests_per_probe, gap.rate_from) == (1, 12, 12.0, "own")
    assert gap.more_probes == 2
    assert gap.ward_name == can_tho_wards()[ONE_LINE].name


def test_a_ward_without_a_probe_needs_probes_at_the_city_rate(plan: SamplingPlan) -> None:
    gap = next(
        g for g in plan.below_floor if (g.indicator, g.scope) == ("fixed_200_share", str(NO_PROBE))
    )
    # the city: 5 lines, 52 tests, 10.4 tests a line; 3 probes bring 31.2 tests
    assert (gap.probes, gap.tests, gap.rate_from) == (0, 0, "city")
    assert gap.tests_per_probe == pytest.approx(52 / 5)
    assert gap.more_probes == 3


def test_every_ward_of_the_registry_is_accounted_for(plan: SamplingPlan) -> None:
    """103 wards: FOUR_LINES has a figure above the floor, the others are below it."""
    below = {g.scope for g in plan.below_floor if g.indicator == "fixed_200_share"}
    assert len(can_tho_wards()) == 103
    assert below == {str(c) for c in can_tho_wards()} - {str(FOUR_LINES)}


def test_a_share_whose_interval_straddles_the_target(plan: SamplingPlan) -> None:
    """fixed_200_share, target 90 % (235/KH-UBND). FOUR_LINES: 3 of 4,
    Wilson [0.30, 0.95]: n = 1.96² x 0.75 x 0.25 / 0.15² = 32.01 -> 33, 29
    more. The city (the lone line counts there): 4 of 5, Wilson [0.38, 0.96]:
    n = 1.96² x 0.8 x 0.2 / 0.1² = 61.5 -> 62, 57 more. The gigabit share,
    0 of 4, has Wilson upper 0.49 < 50 %: settled (not met), not listed."""
    z2 = Z * Z
    assert math.ceil(z2 * 0.75 * 0.25 / 0.15**2) == 33
    assert math.ceil(z2 * 0.8 * 0.2 / 0.1**2) == 62
    got = {
        u.scope: (u.value, u.target_value, u.met_now, u.probes, u.probes_needed, u.more_probes)
        for u in plan.unsettled
        if u.indicator == "fixed_200_share"
    }
    assert got == {
        str(FOUR_LINES): (0.75, 0.9, False, 4, 33, 29),
        "city": (0.8, 0.9, False, 5, 62, 57),
    }
    ward = next(u for u in plan.unsettled if u.scope == str(FOUR_LINES))
    assert ward.ci_low < 0.9 < ward.ci_high
    assert ward.source == "235/KH-UBND"
    assert not [u for u in plan.unsettled if u.indicator == "gigabit_capable_share"]
    assert plan.more_probes_by_ward("fixed_200_share")[FOUR_LINES] == 29
    assert plan.more_probes_by_ward("fixed_200_share")[ONE_LINE] == 2


def test_the_formulas_by_hand() -> None:
    z2 = 1.959963984540054**2
    assert pytest.approx(1.959963984540054) == Z
    # a mean: s = 10 across probes 10, 20, 30, 5 from the target: (1.96 * 10 / 5)^2 = 15.4
    s, n, note = probes_to_settle("mean", [10.0, 20.0, 30.0], 20.0, 25.0)
    assert (s, n, note) == (10.0, 16, "")
    # a median needs pi/2 as many: 24.1 -> 25
    assert probes_to_settle("median", [10.0, 20.0, 30.0], 20.0, 25.0)[1] == 25
    # a share 0.6 against 0.5: 1.96^2 * 0.24 / 0.01 = 92.2
    s, n, _ = probes_to_settle("share", [1, 1, 1, 0, 0], 0.6, 0.5)
    assert s == pytest.approx(math.sqrt(0.24))
    assert n == math.ceil(z2 * 0.24 / 0.01) == 93
    # every probe meets an 80 % target: the Wilson lower bound n / (n + z^2) passes
    # 0.8 from n = 16 (15.4 is its root)
    assert probes_to_settle("share", [1, 1, 1], 1.0, 0.8)[1] == 16
    assert 16 / (16 + z2) > 0.8 > 15 / (15 + z2)
    # none meet a 20 % target: z^2 / (n + z^2) < 0.2 from n = 16 as well
    assert probes_to_settle("share", [0, 0, 0], 0.0, 0.2)[1] == 16
    # the floor is the least: far from the target, 3 probes
    assert probes_to_settle("mean", [10.0, 11.0, 12.0], 11.0, 100.0)[1] == k.FLOOR_PROBES
    # no number of probes settles these
    assert probes_to_settle("share", [1, 1, 1], 1.0, 1.0)[1] is None
    assert probes_to_settle("mean", [1.0, 2.0, 3.0], 2.0, 2.0)[1] is None


def test_a_ratio_whose_baseline_is_too_uncertain_is_not_settled_by_probes_now() -> None:
    today = [90.0, 100.0, 110.0]  # mean 100, s 10
    # baseline mean 50, s 10, 3 probes: its term 100 / (3 * 2500) = 0.0133
    baseline = [40.0, 50.0, 60.0]
    # R = 2.0; against 1.9, d = 0.1: (0.1 / (1.96 * 2))^2 = 0.00065 < 0.0133
    s, n, note = probes_to_settle("ratio", today, 2.0, 1.9, baseline)
    assert n is None and "baseline" in note
    assert s == pytest.approx(10 / 50)
    # 300 baseline probes (40, 50, 60 a hundred times each): s_b^2 = 66.89, its
    # term 66.89 / (300 * 2500) = 0.0000892; room 0.0006508 - 0.0000892 = 0.0005616;
    # n = 100 / (100^2 * 0.0005616) = 17.8 -> 18
    wide = list(np.repeat(baseline, 100))
    s_b = float(np.std(wide, ddof=1))
    room = (0.1 / (Z * 2.0)) ** 2 - s_b**2 / (300 * 50.0**2)
    assert room == pytest.approx(0.0005616, abs=1e-7)
    assert probes_to_settle("ratio", today, 2.0, 1.9, wide)[1] == math.ceil(100 / (10000 * room))
    assert probes_to_settle("ratio", today, 2.0, 1.9, wide)[1] == 18


def test_probes_to_floor_by_hand() -> None:
    assert probes_to_floor(0, 0, 10.0) == 3
    assert probes_to_floor(0, 0, 5.0) == 6  # 30 tests at 5 each
    assert probes_to_floor(2, 40, 20.0) == 1
    assert probes_to_floor(5, 10, 2.0) == 10  # enough probes, 20 tests short
    assert probes_to_floor(0, 0, None) is None
    assert probes_to_floor(1, 30, None) == 2  # tests enough: only probes short


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sampling_city") / "store.duckdb"
    store = Store(path)
    generate(store._con, city_spec(60_000))
    generate(store._con, city_spec(30_000, 2024, 2027, mobile_speed_factor=0.5))
    store.close()
    return path


def test_the_synthetic_city_every_figure_accounted_for(city: Path) -> None:
    """Each ward figure is below the floor, or its interval straddles a target
    (listed, with n from its own probes' values), or it is settled."""
    with duckdb.connect(str(city), read_only=True) as con:
        report = compute_indicators(
            con, parse_period("2026"), synthetic=True, keep_probe_values=True
        )
    plan = sampling_plan(report)
    kept = {(p.indicator, p.scope, p.group): p for p in report.probe_values}
    below = {(g.indicator, g.scope, g.group) for g in plan.below_floor}
    straddled = {(u.indicator, u.scope, u.group, u.target_value) for u in plan.unsettled}
    assert straddled, "the synthetic city has targets its intervals straddle"
    for f in report.figures:
        key = (f.indicator, f.scope, f.group)
        if f.probes < k.FLOOR_PROBES or f.tests < k.FLOOR_TESTS:
            assert key in below
            continue
        if f.value is None or f.ci_low is None or f.ci_high is None:
            continue
        if f.indicator == "nr_population_share":
            # weighted by people over wards: no per-probe values to size a sample
            # from (its wards' nr_time_share figures are sized), so never listed
            assert not any(s[:3] == key for s in straddled)
            continue
        p = kept[key]
        # the kept values are the figure's probes
        assert len(p.values) == f.probes
        if p.statistic == "mean":
            assert float(np.mean(p.values)) == pytest.approx(f.value)
        if p.statistic == "share":
            assert float(np.mean([v >= 0.5 for v in p.values])) == pytest.approx(f.value)
        for t in f.targets:
            inside = f.ci_low <= t.value <= f.ci_high
            assert ((*key, t.value) in straddled) == inside
    for u in plan.unsettled:
        assert u.ci_low <= u.target_value <= u.ci_high
        if u.probes_needed is not None:
            assert u.more_probes == max(u.probes_needed - u.probes, 1)
        if u.statistic == "mean" and u.probes_needed is not None:
            s = float(np.std(kept[(u.indicator, u.scope, u.group)].values, ddof=1))
            d = abs(u.value - u.target_value)
            assert u.probes_needed == max(math.ceil((Z * s / d) ** 2), k.FLOOR_PROBES)
    listed = {u.scope for u in plan.unsettled} | {g.scope for g in plan.below_floor}
    assert all(str(w) in listed for w in plan.more_probes_by_ward("fixed_200_share"))


def test_the_more_probes_map_layer(plan: SamplingPlan) -> None:
    """Every ward of the registry, each with its valid boundary and what it
    needs: Ninh Kiều unsettled (29 more), Cái Khế below the floor (2 more),
    a ward without a line below the floor at the city's rate (3 more)."""
    needs = {n.ward_code: n for n in ward_needs(plan, "fixed_200_share")}
    assert len(needs) == 103
    assert (needs[FOUR_LINES].status, needs[FOUR_LINES].more_probes_to_settle) == ("unsettled", 29)
    assert (needs[ONE_LINE].status, needs[ONE_LINE].more_probes_to_floor) == ("below floor", 2)
    assert (needs[NO_PROBE].status, needs[NO_PROBE].more_probes_to_floor) == ("below floor", 3)
    collection = needs_geojson(plan, "fixed_200_share")
    features = collection["features"]
    assert isinstance(features, list) and len(features) == 103
    for feature in features:
        geometry = shape(feature["geometry"])
        assert geometry.is_valid and not geometry.is_empty
    by_code = {f["properties"]["ward_code"]: f["properties"] for f in features}
    assert by_code[FOUR_LINES]["more_probes_to_settle_count"] == 29
    assert by_code[ONE_LINE]["more_probes_to_floor_count"] == 2
    assert by_code[ONE_LINE]["ward_name"] == "Phường Cái Khế"
    # a GIS reader's union of the layer's wards succeeds
    assert unary_union([shape(f["geometry"]) for f in features]).is_valid
