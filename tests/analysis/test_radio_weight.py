"""How long a radio observation stands for, in the time-weighted NR share,
and the operator a modem counts under."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from aggregator.ingest.store import Store
from analysis import constants as k
from analysis.indicators import compute_indicators, install_views, parse_period
from tests.analysis.handmade import add_observation, add_probe

WARD = 31117
# 10:00 on 10 March 2026 in Cần Thơ
START = datetime(2026, 3, 10, 3, tzinfo=UTC)


def test_a_days_last_observation_stands_for_the_days_pace(tmp_path: Path) -> None:
    """Observations a minute apart, the last of the day on NR: it stands for a
    minute like the others (not the 600 s cap), so the probe was on NR a
    fifth of the time. A day's only observation stands for the cap."""
    path = tmp_path / "store.duckdb"
    store = Store(path)
    add_probe(store._con, "modem-1", WARD, START - timedelta(days=1))
    add_probe(store._con, "modem-2", WARD, START - timedelta(days=1))
    for n, tech in enumerate(("lte", "lte", "lte", "lte", "nr5g_sa")):
        add_observation(store._con, "modem-1", WARD, START + timedelta(minutes=n), tech)
    add_observation(store._con, "modem-2", WARD, START, "lte")
    store.close()
    with duckdb.connect(str(path), read_only=True) as con:
        install_views(con)
        weights = con.execute(
            "select probe_id, weight_s from cellular_checked order by probe_id, measured_at"
        ).fetchall()
        assert weights == [("modem-1", 60.0)] * 5 + [("modem-2", k.CELLULAR_MAX_GAP_S)]
        shares = dict(con.execute("select probe_id, nr_time_share from nr_availability").fetchall())
        assert shares == {"modem-1": pytest.approx(0.2), "modem-2": 0.0}
        report = compute_indicators(con, parse_period("2026"))
    # below the floor the figure has no value, but its mean across the probes shows
    (figure,) = [f for f in report.figures if (f.indicator, f.scope) == ("nr_time_share", "city")]
    assert figure.mean == pytest.approx((0.2 + 0.0) / 2)


def test_a_modem_counts_under_the_operator_it_was_on_most(tmp_path: Path) -> None:
    """Two days on Viettel (3 observations each), then a day on VNPT (4): the
    modem was on Viettel most (6 of 10), though VNPT had the busiest day."""
    path = tmp_path / "store.duckdb"
    store = Store(path)
    add_probe(store._con, "modem-1", WARD, START - timedelta(days=1))
    for day, operator, count in ((0, "Viettel", 3), (1, "Viettel", 3), (2, "VNPT", 4)):
        for n in range(count):
            at = START + timedelta(days=day, minutes=n)
            add_observation(store._con, "modem-1", WARD, at, "lte", operator=operator)
    store.close()
    with duckdb.connect(str(path), read_only=True) as con:
        install_views(con)
        view = con.execute("select operator_name from nr_availability").fetchall()
        report = compute_indicators(con, parse_period("2026"), by="operator")
    assert view == [("Viettel",)]
    groups = {
        f.group for f in report.figures if (f.indicator, f.scope) == ("nr_time_share", "city")
    }
    assert groups == {"operator=Viettel"}
