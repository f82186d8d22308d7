"""ipv6_services results through ingest: each service's checks stored in a
list an analyst unnests, unset verdicts as NULL (not false), empty reasons as
NULL; a kind not of the list's or more services ready than checked refuses
the result by its path."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.clock import ClockState
from agent.measurements.base import IpFamily, Method, Status
from agent.measurements.ipv6_services import Ipv6ServicesResult
from agent.wire import to_proto
from aggregator.ingest.store import Store
from tests.aggregator.ingest.test_path_results import PROBE, _ingest, store  # noqa: F401
from wardprobe.ipv6_readiness import ServiceCheck
from wardprobe.v1 import results_pb2

PORTAL = ServiceCheck(
    hostname="cantho.gov.vn", department="VP UBND", kind="portal", aaaa_ok=True,
    aaaa=("fd00:5752:1::2",), web_ok=True, connect_ms=1.5, tls_ms=4.0, ns_ok=True, ready=True,
)  # fmt: skip
MAIL = ServiceCheck(
    hostname="cantho.gov.vn", department="VP UBND", kind="mail_domain", ns_ok=True,
    mx_ok=False, ready=False, mx_reason="mx_no_aaaa:mx.cantho.gov.vn",
)  # fmt: skip
UNDECIDED = ServiceCheck(
    hostname="syt.cantho.gov.vn", department="Sở Y tế", kind="department_site", aaaa_ok=True,
    aaaa=("fd00:5752:3::2",), web_reason="probe_no_ipv6", ns_reason="probe_no_ipv6",
)  # fmt: skip


def _result(*checks: ServiceCheck) -> results_pb2.Result:
    result = Ipv6ServicesResult(
        measured_at=datetime.now(UTC), status=Status.OK,
        method=Method(tool="dnspython+tls", server="198.18.0.1", server_port=53),
        ip_family=IpFamily.IPV6, resolver="198.18.0.1", services_checked=len(checks),
        services_ready=sum(c.ready is True for c in checks), checks=checks,
    )  # fmt: skip
    return to_proto("ipv6_services", result, PROBE, ClockState.SYNCHRONISED)


def test_each_services_checks_are_stored_to_unnest(store: Store) -> None:  # noqa: F811
    assert _ingest(store, [_result(PORTAL, MAIL, UNDECIDED)]) == []

    assert store.query("select resolver, services_checked, services_ready from ipv6_services") == [
        ("198.18.0.1", 3, 1)
    ]
    rows = store.query(
        "select c.hostname, c.kind, c.aaaa_ok, c.aaaa, c.web_ok, c.connect_ms, c.ns_ok, c.mx_ok, "
        "c.ready, c.web_reason, c.mx_reason "
        "from (select unnest(checks) as c from ipv6_services) order by c.hostname, c.kind"
    )
    assert rows == [
        ("cantho.gov.vn", "mail_domain", None, [], None, None, True, False, False, None,
         "mx_no_aaaa:mx.cantho.gov.vn"),
        ("cantho.gov.vn", "portal", True, ["fd00:5752:1::2"], True, 1.5, True, None, True, None,
         None),
        ("syt.cantho.gov.vn", "department_site", True, ["fd00:5752:3::2"], None, None, None,
         None, None, "probe_no_ipv6", None),
    ]  # fmt: skip


def test_an_unknown_kind_or_more_ready_than_checked_is_refused(store: Store) -> None:  # noqa: F811
    odd = _result(PORTAL)
    odd.ipv6_services.checks[0].kind = "website"
    too_many = _result(PORTAL)
    too_many.ipv6_services.services_ready = 2

    refused = _ingest(store, [odd, too_many, _result(MAIL)])

    fields = {r.index: r.bad_request.field_violations[0].field for r in refused}
    assert fields == {
        0: "results[0].ipv6_services.checks.kind",
        1: "results[1].ipv6_services.services_ready",
    }
    kind = refused[0].bad_request.field_violations[0].description
    assert kind.startswith("website is not portal or public_service")
    assert store.query("select count(*) from ipv6_services") == [(1,)]
