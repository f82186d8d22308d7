"""DNS resolution time (agent/measurements/dns_resolution.py) against a resolver
on loopback: each query's rcode, answers, time and transport, the failures'
share, one result per resolver; a resolver that never answers is a failed
result, not a crash."""

from __future__ import annotations

from agent.measurements.base import IpFamily, MeasurementContext, ReasonKind, Status
from agent.measurements.dns_resolution import DnsParams, params_from, run
from tests.agent.measurements.services import DnsResponder, free_tcp_port

RECORDS = {
    "ds.ref.wardprobe.test.": {"A": ["198.18.0.1"], "AAAA": ["fd00:5752::1"]},
    "v6only.ref.wardprobe.test.": {"AAAA": ["fd00:5752::1"]},
}


def test_each_query_is_timed_and_a_missing_name_is_a_failure() -> None:
    with DnsResponder(RECORDS) as resolver:
        (result,) = run(
            DnsParams(
                names=("ds.ref.wardprobe.test", "v6only.ref.wardprobe.test", "gone.wardprobe.test"),
                resolvers=("127.0.0.1",),
                port=resolver.port,
                system_resolver=False,
            )
        )

    assert result.status is Status.OK, result.status_reason
    assert (result.resolver, result.resolver_kind, result.resolver_port) == (
        "127.0.0.1", "configured", resolver.port,
    )  # fmt: skip
    assert result.ip_family is IpFamily.IPV4
    by_query = {(q.hostname, q.rdtype): q for q in result.queries}
    assert len(by_query) == 6 and result.queries_sent == 6
    assert by_query[("ds.ref.wardprobe.test", "A")].answers == ("198.18.0.1",)
    assert by_query[("ds.ref.wardprobe.test", "AAAA")].answers == ("fd00:5752::1",)
    # A name without AAAA answers NOERROR with nothing in it: an answer, not a failure.
    empty = by_query[("v6only.ref.wardprobe.test", "A")]
    assert (empty.rcode, empty.answers, empty.failed) == ("NOERROR", (), False)
    missing = by_query[("gone.wardprobe.test", "AAAA")]
    assert (missing.rcode, missing.failed) == ("NXDOMAIN", True)
    assert result.queries_failed == 2 and result.failure_pct == 100 * 2 / 6
    assert all(q.transport == "udp" and q.time_ms is not None and q.time_ms >= 0
               for q in result.queries)  # fmt: skip
    assert result.time_median_ms is not None
    assert len(resolver.queries) == 6  # one query each: no retries, no cache


def test_a_resolver_that_never_answers_is_a_failed_result_with_its_queries() -> None:
    closed = free_tcp_port()  # nothing listens there on UDP either
    (result,) = run(
        DnsParams(names=("ds.ref.wardprobe.test",), resolvers=("127.0.0.1",), port=closed,
                  system_resolver=False, timeout_s=1.0)
    )  # fmt: skip

    assert (result.status, result.status_reason_kind) == (Status.FAILED, ReasonKind.NETWORK_ERROR)
    assert result.status_reason.startswith("no answer from 127.0.0.1")
    assert (result.queries_sent, result.queries_failed, result.failure_pct) == (2, 2, 100.0)
    assert result.time_median_ms is None  # no answer was timed
    assert all(q.failed and q.rcode == "" and q.reason for q in result.queries)


def test_one_result_per_resolver_and_nothing_to_ask_is_skipped() -> None:
    with DnsResponder(RECORDS) as first:  # on 127.0.0.1 only: ::1 does not answer
        results = run(
            DnsParams(names=("ds.ref.wardprobe.test",), resolvers=("127.0.0.1", "::1"),
                      port=first.port, system_resolver=False, timeout_s=1.0)
        )  # fmt: skip
    assert [r.resolver for r in results] == ["127.0.0.1", "::1"]
    assert [r.status for r in results] == [Status.OK, Status.FAILED]
    assert results[1].ip_family is IpFamily.IPV6

    (skipped,) = run(DnsParams(names=(), resolvers=("127.0.0.1",), system_resolver=False))
    assert (skipped.status, skipped.status_reason_kind) == (
        Status.SKIPPED, ReasonKind.NOT_CONFIGURED,
    )  # fmt: skip


def test_names_default_to_the_reference_servers_and_literals_are_not_names() -> None:
    ctx = MeasurementContext(
        server_host="198.18.0.1",
        ipv6_only_host="v6only.ref.wardprobe.test",
        dual_stack_host="ds.ref.wardprobe.test",
        dns_server="198.18.0.1",
        dns_resolvers=("198.18.0.53",),
        dns_system_resolver=False,
    )
    params = params_from(ctx)
    assert params.names == ("v6only.ref.wardprobe.test", "ds.ref.wardprobe.test")
    assert params.resolvers == ("198.18.0.1", "198.18.0.53")
    assert not params.system_resolver
