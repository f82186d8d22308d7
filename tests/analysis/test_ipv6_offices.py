"""ipv6_office_share against hand-computed answers: government offices (ward
offices, city departments) whose LAN gives working IPv6, each listed with its
last valid check; offices without a result counted apart, not as zero."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from aggregator.ingest.store import Store
from analysis import constants as k
from analysis.indicators import IndicatorReport, compute_indicators, parse_period, wilson

WARDS = (31120, 31135, 31147, 31150)
START = datetime(2026, 3, 1, tzinfo=UTC)


def _probe(con: duckdb.DuckDBPyConnection, probe_id: str, ward: int, site_class: str) -> None:
    con.execute(
        "insert into probes (probe_id, ward_code, site_class, enrolled_at, cert_state) "
        "values (?, ?, ?, ?, 'active')",
        [probe_id, ward, site_class, START],
    )


def _checks(
    con: duckdb.DuckDBPyConnection,
    probe_id: str,
    ward: int,
    found: list[bool],
    *,
    kind: str = "fixed",
    clock_sync: str = "synchronised",
    first: datetime = START,
) -> None:
    """One IPv6 check an hour, in order, each finding working IPv6 or not."""
    for n, ok in enumerate(found):
        con.execute(
            "insert into ipv6 by name select uuid() as result_id, ? as probe_id, "
            "? as ward_code, ?::timestamptz as measured_at, now() as received_at, "
            "? as network_kind, ? as clock_sync, 'ok' as status, ? as ipv6_capable, "
            "? as ipv6_preferred, false as synthetic",
            [probe_id, ward, first + timedelta(hours=n), kind, clock_sync, ok, ok],
        )


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("offices") / "store.duckdb"
    store = Store(path)
    con = store._con
    # A: 6 of 10 checks found IPv6 (>= 50 %: capable), the last one did not.
    _probe(con, "office-a", WARDS[0], "ward_office")
    _checks(con, "office-a", WARDS[0], [True] * 6 + [False] * 4)
    # B, a city department: 4 of 10 (not capable), the last one found it.
    _probe(con, "dept-b", WARDS[0], "city_department")
    _checks(con, "dept-b", WARDS[0], [False] * 6 + [True] * 4)
    # C: 12 of 12; two later checks with an unsynchronised clock do not count.
    _probe(con, "office-c", WARDS[1], "ward_office")
    _checks(con, "office-c", WARDS[1], [True] * 12)
    _checks(
        con,
        "office-c",
        WARDS[1],
        [False] * 2,
        clock_sync="unsynchronised",
        first=START + timedelta(days=2),
    )
    # D: 10 of 10.
    _probe(con, "office-d", WARDS[2], "ward_office")
    _checks(con, "office-d", WARDS[2], [True] * 10)
    # E: no check at all; F: only its own modem's checks, not the office's LAN.
    _probe(con, "office-e", WARDS[3], "ward_office")
    _probe(con, "office-f", WARDS[3], "ward_office")
    _checks(con, "office-f", WARDS[3], [True] * 10, kind="mobile")
    # A household's checks are no office's.
    _probe(con, "home-g", WARDS[3], "household")
    _checks(con, "home-g", WARDS[3], [False] * 10)
    store.close()
    return path


@pytest.fixture(scope="module")
def con(store_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(store_path), read_only=True)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def report(con: duckdb.DuckDBPyConnection) -> IndicatorReport:
    return compute_indicators(con, parse_period("2026"))


def test_the_share_of_offices_is_three_of_four_with_two_apart(report: IndicatorReport) -> None:
    city = next(
        f for f in report.figures if f.indicator == "ipv6_office_share" and f.scope == "city"
    )
    # A, C, D capable, B not: 3 of 4; E and F have no check of their LAN.
    assert (city.value, city.probes, city.tests) == (0.75, 4, 10 + 10 + 12 + 10)
    assert (city.ci_low, city.ci_high) == wilson(3, 4)
    assert "offices without a valid IPv6 check of their LAN: 2" in city.note
    [target] = city.targets
    assert (target.value, target.met, target.due) == (1.0, False, "2030")
    assert "87/KH-UBND" in target.source and "235/KH-UBND" in target.source
    assert k.targets_for("ipv6_office_share")[0].source == target.source


def test_each_office_is_listed_with_its_last_result(report: IndicatorReport) -> None:
    listed = {
        o.probe_id: (o.ward_code, o.site_class, o.checks, o.ipv6_capable, o.last_check_capable)
        for o in report.offices
    }
    assert listed == {
        "office-a": (WARDS[0], "ward_office", 10, True, False),
        "dept-b": (WARDS[0], "city_department", 10, False, True),
        "office-c": (WARDS[1], "ward_office", 12, True, True),
        "office-d": (WARDS[2], "ward_office", 10, True, True),
        "office-e": (WARDS[3], "ward_office", None, None, None),
        "office-f": (WARDS[3], "ward_office", None, None, None),
    }
    last_c = next(o.last_checked_at for o in report.offices if o.probe_id == "office-c")
    assert last_c == START + timedelta(hours=11)  # not the unsynchronised checks after it


def test_the_view_lists_the_same_offices(
    con: duckdb.DuckDBPyConnection, report: IndicatorReport
) -> None:
    con.execute("set variable synthetic = false")
    rows = con.execute(
        "select probe_id, checks, ipv6_capable, epoch_us(last_checked_at), last_check_capable "
        "from ipv6_offices order by probe_id"
    ).fetchall()
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert rows == sorted(
        (
            o.probe_id,
            o.checks,
            o.ipv6_capable,
            None
            if o.last_checked_at is None
            else (o.last_checked_at - epoch) // timedelta(microseconds=1),
            o.last_check_capable,
        )
        for o in report.offices
    )


def test_one_ward_lists_only_its_offices(con: duckdb.DuckDBPyConnection) -> None:
    ward = compute_indicators(con, parse_period("2026"), ward=WARDS[0])
    assert {o.probe_id for o in ward.offices} == {"office-a", "dept-b"}
    [figure] = [f for f in ward.figures if f.indicator == "ipv6_office_share"]
    # two offices: below the floor of three probes
    assert (figure.value, figure.probes, figure.status) == (None, 2, "insufficient data")


def test_the_indicators_command_lists_the_offices(store_path: Path) -> None:
    from typer.testing import CliRunner

    from aggregator.cli import app

    runner = CliRunner()
    args = ["indicators", "--period", "2026", "--store", str(store_path)]
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "Government offices: IPv6 on their LAN" in table.output
    office_a = next(line for line in table.output.splitlines() if "office-a" in line)
    # working over the period, but the last check (16:00 in Cần Thơ) found none
    assert "yes" in office_a and "2026-03-01 16:00 (UTC+7)" in office_a
    assert "no IPv6" in office_a
    office_e = next(line for line in table.output.splitlines() if "office-e" in line)
    assert "no valid check" in office_e
    as_json = runner.invoke(app, [*args, "--format", "json"])
    out = json.loads(as_json.output)
    city = next(
        f for f in out["figures"] if f["indicator"] == "ipv6_office_share" and f["scope"] == "city"
    )
    assert city["value"] == 0.75
    assert {o["probe_id"]: o["last_check_capable"] for o in out["offices"]}["office-a"] is False


def test_the_report_lists_each_office(con: duckdb.DuckDBPyConnection) -> None:
    from analysis.report.content import gather

    content = gather(con, 2026, "en", map_png=lambda layer, lang: b"")
    [section] = [s for s in content.sections if s.offices]
    assert section.title == "Share of government offices whose LAN has working IPv6"
    rows = {o.probe: o for o in section.offices}
    assert (rows["office-a"].ipv6, rows["office-a"].last_found) == ("yes", "no IPv6")
    assert (rows["office-a"].last_check, rows["office-a"].checks) == ("2026-03-01", "10")
    assert rows["dept-b"].site_class == "city department"
    assert (rows["office-e"].ipv6, rows["office-e"].last_check) == ("no valid check", "–")
    [line] = [t for t in content.summary if t.indicator == "ipv6_office_share"]
    assert (line.value, line.verdict, line.due) == ("75.0 %", "not met", "2030")
