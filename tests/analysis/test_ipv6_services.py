"""ipv6_service_ready_share against hand-computed answers: each service of the
city's list counts by its last decided check in the period, from whichever
site made it; undecided checks (a box without IPv6) do not count, services
never decided are counted apart; overall and per department, against 100 %."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from aggregator.ingest.store import Store
from analysis.catalog import install_views
from analysis.indicators import IndicatorReport, compute_indicators, parse_period
from analysis.indicators.ipv6_services import service_readiness, services

START = datetime(2026, 3, 1, tzinfo=UTC)
VP, YTE, KHCN = "Văn phòng UBND", "Sở Y tế", "Sở KH&CN"


def _check(name: str, department: str, kind: str, ready: bool | None, **why: str) -> dict[str, Any]:
    web = kind != "mail_domain"
    return {
        "hostname": name, "department": department, "kind": kind,
        "aaaa_ok": (ready is not False or "aaaa_reason" not in why) if web else None,
        "aaaa": [], "web_ok": ready if web else None, "connect_ms": None, "tls_ms": None,
        "ns_ok": True, "mx_ok": None if web else ready, "ready": ready,
        "aaaa_reason": why.get("aaaa_reason"), "web_reason": why.get("web_reason"),
        "ns_reason": None, "mx_reason": why.get("mx_reason"),
    }  # fmt: skip


def _run(
    con: duckdb.DuckDBPyConnection,
    probe_id: str,
    at: datetime,
    checks: list[dict[str, Any]],
    *,
    status: str = "ok",
    clock_sync: str = "synchronised",
    received: datetime | None = None,
) -> None:
    con.execute(
        "insert into ipv6_services by name select uuid() as result_id, ? as probe_id, "
        "31120 as ward_code, ?::timestamptz as measured_at, ?::timestamptz as received_at, "
        "'fixed' as network_kind, ? as clock_sync, ? as status, ? as services_checked, "
        "? as services_ready, ? as checks, false as synthetic",
        [probe_id, at, received or at + timedelta(minutes=1), clock_sync, status, len(checks),
         sum(1 for c in checks if c["ready"]), checks],
    )  # fmt: skip


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("services") / "store.duckdb"
    store = Store(path)
    con = store._con
    hour = timedelta(hours=1)
    # The central site, first: the public-service portal timed out then.
    _run(con, "central", START, [
        _check("cantho.gov.vn", VP, "portal", True),
        _check("dvc.cantho.gov.vn", VP, "public_service", False, web_reason="tcp_timeout"),
        _check("cantho.gov.vn", VP, "mail_domain", False, mx_reason="mx_no_aaaa:mx.cantho.gov.vn"),
        _check("syt.cantho.gov.vn", YTE, "department_site", False, web_reason="tcp_refused"),
        _check("khcn.cantho.gov.vn", KHCN, "department_site", False, aaaa_reason="no_aaaa",
               web_reason="no_aaaa"),
    ])  # fmt: skip
    # A dual-stack probe later: the public-service portal now answers.
    _run(con, "probe-v6", START + hour, [
        _check("dvc.cantho.gov.vn", VP, "public_service", True),
    ])  # fmt: skip
    # An IPv4-only probe last: it decides nothing over IPv6.
    _run(con, "probe-v4", START + 2 * hour, [
        _check("syt.cantho.gov.vn", YTE, "department_site", None, web_reason="probe_no_ipv6"),
        _check("hospital.cantho.gov.vn", YTE, "department_site", None,
               web_reason="probe_no_ipv6"),
    ])  # fmt: skip
    # Do not count: a run the aggregator received in 2027 from a box whose
    # clock was not synchronised (whatever time that clock claimed), a failed
    # run, last year's run.
    _run(con, "probe-v6", START + 3 * hour, [
        _check("skhcn.cantho.gov.vn", KHCN, "department_site", True),
        _check("syt.cantho.gov.vn", YTE, "department_site", True),
    ], clock_sync="unsynchronised", received=datetime(2027, 1, 2, tzinfo=UTC))  # fmt: skip
    _run(con, "probe-v6", START + 4 * hour, [
        _check("cantho.gov.vn", VP, "mail_domain", True),
    ], status="failed")  # fmt: skip
    _run(con, "central", datetime(2025, 6, 1, tzinfo=UTC), [
        _check("old.cantho.gov.vn", KHCN, "portal", True),
    ])  # fmt: skip
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


def test_the_share_is_two_of_five_decided_with_one_apart(report: IndicatorReport) -> None:
    (city,) = [f for f in report.figures
               if f.indicator == "ipv6_service_ready_share" and f.group is None]  # fmt: skip
    # Decided: the portal (ready), the public-service portal (ready at its last
    # decided check), the mail domain (no), Sở Y tế's site (refused, its later
    # check undecided), Sở KH&CN's site (no AAAA): 2 of 5. The hospital was
    # never decided: apart.
    assert (city.value, city.tests, city.status) == (0.4, 5, "ok")
    assert (city.scope, city.interval, city.ci_low, city.ci_high) == ("city", "none", None, None)
    assert city.probes == 2  # decided by the central site and the dual-stack probe
    assert [(t.value, t.met) for t in city.targets] == [(1.0, False)]
    assert "235/KH-UBND" in city.targets[0].source
    assert "2 of 5" in city.note and "without a decided check in the period: 1" in city.note


def test_each_department_has_its_share(report: IndicatorReport) -> None:
    by_department = {
        f.group: (f.value, f.tests, f.status)
        for f in report.figures
        if f.indicator == "ipv6_service_ready_share" and f.group is not None
    }
    assert by_department == {
        f"department={VP}": (pytest.approx(2 / 3), 3, "ok"),
        f"department={YTE}": (0.0, 1, "ok"),
        f"department={KHCN}": (0.0, 1, "ok"),
    }


def test_each_service_is_listed_with_its_failing_check(report: IndicatorReport) -> None:
    listed = {(s.hostname, s.kind): s for s in report.services}
    assert set(listed) == {
        ("cantho.gov.vn", "portal"), ("dvc.cantho.gov.vn", "public_service"),
        ("cantho.gov.vn", "mail_domain"), ("syt.cantho.gov.vn", "department_site"),
        ("hospital.cantho.gov.vn", "department_site"), ("khcn.cantho.gov.vn", "department_site"),
    }  # fmt: skip
    dvc = listed[("dvc.cantho.gov.vn", "public_service")]
    assert (dvc.ready, dvc.checks, dvc.checked_by, dvc.why_not) == (True, 2, "probe-v6", None)
    assert dvc.checked_at == START + timedelta(hours=1)
    syt = listed[("syt.cantho.gov.vn", "department_site")]
    assert (syt.ready, syt.checked_by, syt.why_not) == (False, "central", "tcp_refused")
    mail = listed[("cantho.gov.vn", "mail_domain")]
    assert (mail.ready, mail.mx_ok, mail.web_ok) == (False, False, None)
    assert mail.why_not == "mx_no_aaaa:mx.cantho.gov.vn"
    # No AAAA fails the web check too, for the same reason: said once.
    assert listed[("khcn.cantho.gov.vn", "department_site")].why_not == "no_aaaa"
    hospital = listed[("hospital.cantho.gov.vn", "department_site")]
    assert (hospital.ready, hospital.checked_at, hospital.why_not) == (
        None, None, "probe_no_ipv6",
    )  # fmt: skip


def test_service_readiness_feeds_the_provinces_comparison(
    con: duckdb.DuckDBPyConnection, report: IndicatorReport
) -> None:
    install_views(con, temporary=True)
    readiness = service_readiness(con, parse_period("2026"))
    assert (readiness.ready_share, readiness.services) == (0.4, 5)
    assert "TLS" in readiness.method
    assert report.ipv6_reference is not None
    assert report.ipv6_reference.services == readiness
    # All time: last year's service is there too, ready.
    everything = services(con, None)
    assert ("old.cantho.gov.vn", True) in {(s.hostname, s.ready) for s in everything}


def test_a_ward_report_has_no_service_figures(con: duckdb.DuckDBPyConnection) -> None:
    ward = compute_indicators(con, parse_period("2026"), ward=31120)
    assert not [f for f in ward.figures if f.indicator == "ipv6_service_ready_share"]
    assert ward.services == []


def test_a_period_without_checks_has_no_figure(con: duckdb.DuckDBPyConnection) -> None:
    empty = compute_indicators(con, parse_period("2024"))
    assert not [f for f in empty.figures if f.indicator == "ipv6_service_ready_share"]
    assert empty.services == []


def test_the_indicators_command_lists_each_service(store_path: Path) -> None:
    from typer.testing import CliRunner

    from aggregator.cli import app

    shown = CliRunner().invoke(app, ["indicators", "--period", "2026", "--store", str(store_path)])
    assert shown.exit_code == 0, shown.output
    assert "The city's services: IPv6 readiness" in shown.output
    assert "syt.cantho.gov.vn" in shown.output and "tcp_refused" in shown.output
    assert "not decided" in shown.output  # the hospital's site
    as_json = CliRunner().invoke(
        app, ["indicators", "--period", "2026", "--store", str(store_path), "--format", "json"]
    )
    listed = json.loads(as_json.output)["services"]
    assert {(s["hostname"], s["ready"]) for s in listed} >= {("dvc.cantho.gov.vn", True)}


def test_the_report_has_a_table_per_department(con: duckdb.DuckDBPyConnection) -> None:
    from analysis import constants as k
    from analysis.report.content import _Gatherer
    from analysis.sampling import sampling_plan

    report = compute_indicators(con, parse_period("2026"), keep_probe_values=True)
    gatherer = _Gatherer(report, sampling_plan(report), "en", 2026, lambda *_: b"")
    name = "ipv6_service_ready_share"
    section = gatherer.services_section(name, list(k.targets_for(name)))
    assert section.title == "Share of the city's services fully IPv6-ready"
    assert section.wards == () and section.map_uri == ""
    tables = {d.title: d for d in section.departments}
    assert set(tables) == {f"Services of {VP}", f"Services of {YTE}", f"Services of {KHCN}"}
    assert tables[f"Services of {VP}"].share == "2 of 3 services ready"
    health = tables[f"Services of {YTE}"]
    assert health.share == "0 of 1 services ready"
    assert [(x.service, x.verdict_text, x.failing) for x in health.services] == [
        ("hospital.cantho.gov.vn", "not decided", "the checking site has no IPv6 (not decided)"),
        ("syt.cantho.gov.vn", "no", "the web service refuses connections over IPv6"),
    ]
    (target,) = section.targets
    assert (target.verdict, target.value, target.target) == ("not met", "40.0 %", "≥ 100 %")


def test_the_report_page_shows_each_department_without_a_map(
    con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analysis import constants as k
    from analysis.report import content
    from analysis.report.render import build_report_html

    name = "ipv6_service_ready_share"
    # Only this target's section: the other indicators' maps are not what is tested.
    monkeypatch.setattr(content, "plan_targets", lambda: [(name, None, list(k.targets_for(name)))])
    html = build_report_html(con, 2026, "vi", map_png=lambda *_: b"")
    assert "Dịch vụ của Sở Y tế – 0/1 dịch vụ sẵn sàng" in html
    assert "<td>syt.cantho.gov.vn</td><td>trang thông tin</td>" in html
    # The failing check in words (the stored code is for analysts).
    assert "<td>web từ chối kết nối qua IPv6</td>" in html and "chưa có kết luận" in html
    assert "map-page" not in html.split('id="s2"')[1].split('id="s3"')[0]


def test_a_box_without_ntp_is_placed_by_when_its_check_arrived(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.duckdb")
    # Its clock says 2019; the aggregator received it in March 2026.
    _run(store._con, "probe-no-ntp", datetime(2019, 1, 1, tzinfo=UTC), [
        _check("cantho.gov.vn", VP, "portal", True),
    ], clock_sync="unsynchronised", received=START)  # fmt: skip
    # A synchronised box's earlier failure: the later check decides.
    _run(store._con, "probe-v6", START - timedelta(days=1), [
        _check("cantho.gov.vn", VP, "portal", False, web_reason="tcp_timeout"),
    ])  # fmt: skip
    store.close()
    con = duckdb.connect(str(tmp_path / "store.duckdb"), read_only=True)
    install_views(con, temporary=True)
    (portal,) = services(con, parse_period("2026"))
    assert (portal.ready, portal.checked_by, portal.checked_at) == (True, "probe-no-ntp", START)
    assert services(con, parse_period("2019")) == []
    con.close()


def test_no_probe_would_settle_the_services(report: IndicatorReport) -> None:
    from analysis.sampling import sampling_plan

    # The list is the city's whole, not a sample: no ward needs probes for it.
    plan = sampling_plan(report)
    assert not [g for g in plan.below_floor if g.indicator == "ipv6_service_ready_share"]
    assert not [u for u in plan.unsettled if u.indicator == "ipv6_service_ready_share"]


def test_failing_checks_in_words_keep_their_detail_and_unknown_codes() -> None:
    from analysis.labels import service_check_reasons

    assert service_check_reasons("no_aaaa, mx_no_aaaa:mx.cantho.gov.vn", "en") == (
        "no AAAA record; mail exchanger mx.cantho.gov.vn has no AAAA record"
    )
    assert service_check_reasons("tls_failed:hostname_mismatch", "vi") == (
        "bắt tay TLS thất bại (hostname_mismatch)"
    )
    # A code a newer agent sends is shown as stored, not dropped.
    assert service_check_reasons("quic_failed:x, no_mx", "en") == (
        "quic_failed:x; no mail exchangers (MX)"
    )
    assert service_check_reasons("", "en") == ""
