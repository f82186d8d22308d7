"""Latency: ICMP echo and TCP connect time on loopback, loss, refusal, and unprivileged ICMP."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from agent.measurements.base import IpFamily, MeasurementContext, ReasonKind, Status
from agent.measurements.latency import (
    LatencyParams,
    LatencyProtocol,
    LatencyResult,
    icmp_params_from,
    run,
    summarise_rtts,
    tcp_params_from,
)
from tests.agent.measurements.services import (
    free_tcp_port,
    namespace_unavailable_reason,
    network_namespace,
    python_in_namespace,
)


def fast(
    protocol: LatencyProtocol, target: str, port: int | None = None, interface: str = ""
) -> LatencyParams:
    """Five probes, 20 ms apart: enough for every statistic, quick on loopback.
    Each answer comes at once; the wait for it is only a guard, long enough
    that a busy machine reading an answer late does not make it a loss."""
    return LatencyParams(
        protocol=protocol,
        target=target,
        port=port,
        interface=interface,
        count=5,
        interval_s=0.02,
        timeout_s=30.0,
    )


def assert_all_answered(result: LatencyResult, count: int) -> None:
    assert result.status is Status.OK, result.status_reason
    assert result.packets_sent == count
    assert result.packets_received == count
    assert result.loss_pct == 0.0
    assert result.rtt_min_ms is not None and result.rtt_min_ms > 0
    assert result.rtt_median_ms is not None and result.rtt_p95_ms is not None
    assert result.rtt_max_ms is not None and result.jitter_ms is not None
    assert result.rtt_min_ms <= result.rtt_median_ms <= result.rtt_p95_ms <= result.rtt_max_ms
    assert result.jitter_ms >= 0


@pytest.fixture
def tcp_listener_v4() -> Iterator[int]:
    # The kernel completes the handshakes; nobody needs to accept() them.
    with socket.create_server(("127.0.0.1", 0), backlog=64) as listener:
        yield int(listener.getsockname()[1])


@pytest.fixture
def tcp_listener_v6() -> Iterator[int]:
    with socket.create_server(("::1", 0), family=socket.AF_INET6, backlog=64) as listener:
        yield int(listener.getsockname()[1])


@pytest.fixture
def full_listener() -> Iterator[int]:
    """A listener whose accept queue is full: the kernel drops further SYNs unanswered."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        # backlog 0 still queues one connection; after it the queue is full.
        with socket.create_connection(("127.0.0.1", port)):
            yield port


def test_icmp_to_ipv4_loopback() -> None:
    result = run(fast(LatencyProtocol.ICMP, "127.0.0.1"))
    assert_all_answered(result, 5)
    assert result.protocol == "icmp"
    assert result.target == "127.0.0.1"
    assert result.target_port is None
    assert result.ip_family is IpFamily.IPV4
    assert result.method.tool == "icmp"


def test_icmp_to_ipv6_loopback_bound_to_lo() -> None:
    result = run(fast(LatencyProtocol.ICMP, "::1", interface="lo"))
    assert_all_answered(result, 5)
    assert result.ip_family is IpFamily.IPV6
    assert result.interface == "lo"


def test_tcp_connect_time_ipv4(tcp_listener_v4: int) -> None:
    result = run(fast(LatencyProtocol.TCP, "127.0.0.1", port=tcp_listener_v4))
    assert_all_answered(result, 5)
    assert result.protocol == "tcp"
    assert result.target_port == tcp_listener_v4
    assert result.method.tool == "tcp-connect"
    assert result.method.server_port == tcp_listener_v4


def test_tcp_connect_time_ipv6(tcp_listener_v6: int) -> None:
    result = run(fast(LatencyProtocol.TCP, "::1", port=tcp_listener_v6))
    assert_all_answered(result, 5)
    assert result.ip_family is IpFamily.IPV6
    assert result.target == "::1"


def test_tcp_refused_is_a_failed_test_not_loss() -> None:
    port = free_tcp_port()
    result = run(fast(LatencyProtocol.TCP, "127.0.0.1", port=port))
    assert result.status is Status.FAILED
    assert result.status_reason_kind is ReasonKind.NETWORK_ERROR
    assert "connection refused" in result.status_reason
    assert result.packets_received == 0
    assert result.loss_pct is None
    assert result.rtt_median_ms is None


def test_tcp_unanswered_probes_are_full_loss(full_listener: int) -> None:
    result = run(
        LatencyParams(
            protocol=LatencyProtocol.TCP,
            target="127.0.0.1",
            port=full_listener,
            count=3,
            interval_s=0.0,
            timeout_s=0.3,
        )
    )
    assert result.status is Status.OK, result.status_reason
    assert result.packets_sent == 3
    assert result.packets_received == 0
    assert result.loss_pct == 100.0
    assert result.rtt_min_ms is None
    assert result.rtt_median_ms is None
    assert result.rtt_p95_ms is None
    assert result.rtt_max_ms is None
    assert result.jitter_ms is None


def test_unknown_interface_fails_with_the_reason() -> None:
    result = run(
        LatencyParams(protocol=LatencyProtocol.ICMP, target="127.0.0.1", interface="nosuch0")
    )
    assert result.status is Status.FAILED
    assert result.status_reason_kind is ReasonKind.NETWORK_ERROR
    assert "nosuch0" in result.status_reason


def test_summary_statistics() -> None:
    summary = summarise_rtts([10.0, 12.0, 11.0, 15.0, 10.0])
    assert summary.rtt_min_ms == 10.0
    assert summary.rtt_median_ms == 11.0
    # Sorted 10, 10, 11, 12, 15: rank 0.95 * 4 = 3.8, between 12 and 15.
    assert summary.rtt_p95_ms == pytest.approx(14.4)
    assert summary.rtt_max_ms == 15.0
    # |12-10| + |11-12| + |15-11| + |10-15| = 12 over 4 differences.
    assert summary.jitter_ms == pytest.approx(3.0)
    one = summarise_rtts([7.5])
    assert one.rtt_median_ms == 7.5 and one.rtt_p95_ms == 7.5 and one.jitter_ms is None
    assert summarise_rtts([]).rtt_min_ms is None


def test_params_from_context() -> None:
    ctx = MeasurementContext(server_host="ref.test", tcp_echo_port=7007, interface="eth0")
    icmp = icmp_params_from(ctx)
    assert icmp.protocol is LatencyProtocol.ICMP and icmp.port is None
    assert icmp.target == "ref.test" and icmp.interface == "eth0"
    tcp = tcp_params_from(ctx)
    assert tcp.protocol is LatencyProtocol.TCP and tcp.port == 7007
    with pytest.raises(ValueError, match="port"):
        LatencyParams(protocol=LatencyProtocol.TCP, target="127.0.0.1")


# --- in network namespaces: unprivileged ping sockets, and ICMP loss -------------------

NO_NAMESPACES = namespace_unavailable_reason()
needs_namespaces = pytest.mark.skipif(bool(NO_NAMESPACES), reason=NO_NAMESPACES)

# Runs inside the namespace as user nobody (uid 65534), without CAP_NET_RAW.
UNPRIVILEGED_PING = """
import dataclasses, encodings.idna, json, os
from agent.measurements.latency import LatencyParams, LatencyProtocol, run
# Everything is imported before dropping root: the interpreter lives under /root.
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
results = [
    run(LatencyParams(protocol=LatencyProtocol.ICMP, target=target, count=3, interval_s=0.02))
    for target in ("127.0.0.1", "::1")
]
print(json.dumps([dataclasses.asdict(r) for r in results], default=str))
"""


@pytest.mark.netns
@needs_namespaces
def test_unprivileged_ping_sockets_where_the_group_is_allowed() -> None:
    with network_namespace("sysctl -w 'net.ipv4.ping_group_range=0 2147483647'") as ns:
        results = python_in_namespace(ns, UNPRIVILEGED_PING)
    for result in results:
        assert result["status"] == "ok", result["status_reason"]
        assert result["packets_received"] == 3


@pytest.mark.netns
@needs_namespaces
def test_unprivileged_without_ping_group_or_capability_fails_with_the_reason() -> None:
    with network_namespace("sysctl -w 'net.ipv4.ping_group_range=1 0'") as ns:
        results = python_in_namespace(ns, UNPRIVILEGED_PING)
    for result in results:
        assert result["status"] == "failed"
        assert result["status_reason_kind"] == ReasonKind.TOOL_FAILED  # the probe's setup
        assert "ping_group_range" in result["status_reason"]
        assert "CAP_NET_RAW" in result["status_reason"]


@pytest.mark.netns
@needs_namespaces
def test_icmp_to_a_host_that_ignores_echo_is_full_loss() -> None:
    code = """
import dataclasses, json
from agent.measurements.latency import LatencyParams, LatencyProtocol, run
result = run(LatencyParams(protocol=LatencyProtocol.ICMP, target="127.0.0.1",
                           count=3, interval_s=0.0, timeout_s=0.3))
print(json.dumps(dataclasses.asdict(result), default=str))
"""
    with network_namespace("sysctl -w net.ipv4.icmp_echo_ignore_all=1") as ns:
        result = python_in_namespace(ns, code)
    assert result["status"] == "ok", result["status_reason"]
    assert result["packets_sent"] == 3
    assert result["packets_received"] == 0
    assert result["loss_pct"] == 100.0
    assert result["rtt_median_ms"] is None
    assert result["jitter_ms"] is None
