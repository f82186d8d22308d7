"""IPv6 readiness against a real echo service and DNS responder on loopback.

Tests in this namespace bind to `lo`, which has no global address and no
default route, so their local findings do not depend on this machine. The
capable case and the IPv4-only home run in network namespaces of their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

import pytest

from agent.measurements.base import IpFamily, MeasurementContext, ReasonKind, Status
from agent.measurements.ipv6 import (
    Ipv6Params,
    Ipv6Result,
    global_ipv6_addresses,
    has_ipv6_default_route,
    params_from,
    prefix_of,
    run,
)
from tests.agent.measurements.services import (
    DnsResponder,
    EchoServer,
    namespace_unavailable_reason,
    network_namespace,
    python_in_namespace,
)

ZONE: Mapping[str, Mapping[str, list[str]]] = {
    "v6only.wardprobe.test.": {"AAAA": ["::1"]},
    "dual.wardprobe.test.": {"A": ["127.0.0.1"], "AAAA": ["::1"]},
    "v4only.wardprobe.test.": {"A": ["127.0.0.1"]},
}


@pytest.fixture
def dns_server() -> Iterator[DnsResponder]:
    with DnsResponder(ZONE) as responder:
        yield responder


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    with EchoServer(hosts=("::1", "127.0.0.1")) as server:
        yield server


def check(
    dns_server: DnsResponder,
    port: int,
    ipv6_only_host: str = "v6only.wardprobe.test",
    dual_stack_host: str = "dual.wardprobe.test",
) -> Ipv6Result:
    return run(
        Ipv6Params(
            ipv6_only_host=ipv6_only_host,
            dual_stack_host=dual_stack_host,
            tcp_port=port,
            dns_server="127.0.0.1",
            dns_port=dns_server.port,
            interface="lo",
            # Every answer here comes at once or is refused at once: the
            # limits are guards, not claims about how fast this machine is.
            timeout_s=30.0,
            ipv6_head_start_s=30.0,
        )
    )


def test_network_checks_pass_against_a_working_ipv6_target(
    dns_server: DnsResponder, echo: EchoServer
) -> None:
    result = check(dns_server, echo.port)
    assert result.status is Status.OK
    assert result.aaaa_resolves is True
    assert result.ipv6_only_tcp_ok is True
    assert result.ipv6_only_connect_ms is not None and result.ipv6_only_connect_ms > 0
    assert result.large_packet_ok is True
    assert result.dual_stack_family is IpFamily.IPV6
    assert result.ipv6_preferred is True
    assert result.ip_family is IpFamily.IPV6
    assert result.interface == "lo"
    assert result.method.tool == "dnspython+socket"
    assert result.method.server == "v6only.wardprobe.test"
    assert result.method.server_port == echo.port
    # The responder was asked, not the system's resolvers.
    assert ("v6only.wardprobe.test.", "AAAA") in dns_server.queries
    assert ("dual.wardprobe.test.", "A") in dns_server.queries


def test_lo_has_no_global_address_or_default_route(
    dns_server: DnsResponder, echo: EchoServer
) -> None:
    result = check(dns_server, echo.port)
    assert result.has_global_address is False
    assert result.global_prefix == ""
    assert result.has_default_route is False
    assert result.ipv6_capable is False
    # Not capable is a finding, not a failure: the reason is notes for people.
    assert (result.status, result.status_reason_kind) == (Status.OK, ReasonKind.NONE)
    assert "no global IPv6 address on lo" in result.status_reason
    assert "no IPv6 default route on lo" in result.status_reason


def test_no_aaaa_for_the_ipv6_only_name_is_not_capable(
    dns_server: DnsResponder, echo: EchoServer
) -> None:
    result = check(dns_server, echo.port, ipv6_only_host="v4only.wardprobe.test")
    assert result.status is Status.OK
    assert result.aaaa_resolves is False
    assert result.ipv6_capable is False
    assert "v4only.wardprobe.test has no AAAA record" in result.status_reason
    # Nothing to connect to: those checks did not run.
    assert result.ipv6_only_tcp_ok is None
    assert result.large_packet_ok is None
    assert result.ip_family is None


def test_unknown_name_says_so(dns_server: DnsResponder, echo: EchoServer) -> None:
    result = check(dns_server, echo.port, ipv6_only_host="nowhere.wardprobe.test")
    assert result.aaaa_resolves is False
    assert "nowhere.wardprobe.test does not exist in DNS" in result.status_reason


def test_dual_stack_falls_back_to_ipv4_when_ipv6_fails(dns_server: DnsResponder) -> None:
    # The echo service listens on IPv4 only: the IPv6 attempt is refused.
    with EchoServer(hosts=("127.0.0.1",)) as v4_echo:
        result = check(dns_server, v4_echo.port)
    assert result.dual_stack_family is IpFamily.IPV4
    assert result.ipv6_preferred is False
    assert result.ipv6_only_tcp_ok is False
    assert result.large_packet_ok is None
    assert "TCP to the IPv6-only target v6only.wardprobe.test failed" in result.status_reason


def test_dual_stack_name_without_aaaa_goes_over_ipv4(
    dns_server: DnsResponder, echo: EchoServer
) -> None:
    result = check(dns_server, echo.port, dual_stack_host="v4only.wardprobe.test")
    assert result.dual_stack_family is IpFamily.IPV4
    assert result.ipv6_preferred is False


def test_literal_ipv6_target_skips_dns(dns_server: DnsResponder, echo: EchoServer) -> None:
    result = check(dns_server, echo.port, ipv6_only_host="::1", dual_stack_host="::1")
    assert result.aaaa_resolves is None
    assert result.ipv6_only_tcp_ok is True
    assert result.large_packet_ok is True
    assert result.dual_stack_family is IpFamily.IPV6
    assert dns_server.queries == []


def test_silent_dns_server_times_out_with_the_reason(echo: EchoServer) -> None:
    with DnsResponder(ZONE) as responder:
        port = responder.port
    # The responder is gone; nothing answers on its port (ICMP port unreachable or silence).
    result = run(
        Ipv6Params(
            ipv6_only_host="v6only.wardprobe.test",
            dual_stack_host="dual.wardprobe.test",
            tcp_port=echo.port,
            dns_server="127.0.0.1",
            dns_port=port,
            interface="lo",
            timeout_s=0.5,
        )
    )
    assert result.status is Status.OK
    assert result.aaaa_resolves is False
    assert "v6only.wardprobe.test" in result.status_reason
    assert result.dual_stack_family is None
    assert result.ipv6_preferred is None


def test_without_an_ipv6_only_target_the_check_is_skipped() -> None:
    result = run(params_from(MeasurementContext(server_host="127.0.0.1")))
    assert result.status is Status.SKIPPED
    assert result.status_reason_kind is ReasonKind.NOT_CONFIGURED
    assert "IPv6-only target" in result.status_reason


def test_params_from_context_use_the_server_as_dual_stack_target() -> None:
    ctx = MeasurementContext(
        server_host="ref.wardprobe.test",
        ipv6_only_host="v6.wardprobe.test",
        tcp_echo_port=7007,
        dns_server="127.0.0.1",
        dns_port=5353,
    )
    params = params_from(ctx)
    assert params.dual_stack_host == "ref.wardprobe.test"
    assert params.tcp_port == 7007
    assert (params.dns_server, params.dns_port) == ("127.0.0.1", 5353)
    with pytest.raises(ValueError, match="IPv4 address"):
        Ipv6Params(ipv6_only_host="127.0.0.1", dual_stack_host="", tcp_port=7)


# --- the /proc parsers, on lines as the kernel writes them ----------------------------

IF_INET6 = """\
00000000000000000000000000000001 01 80 10 80       lo
fd005eed000100020000000000000002 04 40 00 82     wan0
fe8000000000000000fc00fffe000001 04 40 20 80     wan0
fd005eed0001000300000000000000aa 05 40 00 40     lan0
"""

IPV6_ROUTE = """\
fd005eed000100020000000000000000 40 00000000000000000000000000000000 00 \
00000000000000000000000000000000 00000100 00000001 00000000 00000001     wan0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 \
fd005eed000100020000000000000001 00000400 00000002 00000000 00000003     wan0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 \
00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
"""


def test_global_addresses_leave_out_host_link_and_tentative() -> None:
    addresses = global_ipv6_addresses(IF_INET6)
    assert [str(a) for a in addresses] == ["fd00:5eed:1:2::2"]
    assert prefix_of(addresses) == "fd00:5eed:1:2::/64"
    assert global_ipv6_addresses(IF_INET6, "lan0") == []


def test_default_route_ignores_the_reject_route_on_lo() -> None:
    assert has_ipv6_default_route(IPV6_ROUTE) is True
    assert has_ipv6_default_route(IPV6_ROUTE, "wan0") is True
    assert has_ipv6_default_route(IPV6_ROUTE, "lan0") is False
    reject_only = IPV6_ROUTE.splitlines()[-1]
    assert has_ipv6_default_route(reject_only) is False


# --- in network namespaces: a capable home, and an IPv4-only one ----------------------

NO_NAMESPACES = namespace_unavailable_reason()
needs_namespaces = pytest.mark.skipif(bool(NO_NAMESPACES), reason=NO_NAMESPACES)

IN_NAMESPACE = """
import dataclasses, json
from agent.measurements.ipv6 import Ipv6Params, run
from tests.agent.measurements.services import DnsResponder, EchoServer
zone = {zone!r}
with EchoServer(hosts={echo_hosts!r}) as echo, DnsResponder(zone) as responder:
    result = run(Ipv6Params(
        ipv6_only_host="v6only.wardprobe.test",
        dual_stack_host="dual.wardprobe.test",
        tcp_port=echo.port,
        dns_server="127.0.0.1",
        dns_port=responder.port,
        timeout_s=30.0,
        ipv6_head_start_s=30.0,
    ))
print(json.dumps(dataclasses.asdict(result), default=str))
"""

# A home line with IPv6: a WAN interface (one end of a veth pair inside the
# namespace; nothing is sent on it) with a ULA address and a default route.
CAPABLE_HOME = (
    "ip link add wan0 type veth peer name wan0peer",
    "ip link set wan0 up",
    "ip link set wan0peer up",
    "ip -6 addr add fd00:5eed:1:2::2/64 dev wan0 nodad",
    "ip -6 route add default via fd00:5eed:1:2::1 dev wan0",
)


@pytest.mark.netns
@needs_namespaces
def test_capable_and_preferred_in_a_home_with_ipv6() -> None:
    code = IN_NAMESPACE.format(zone=dict(ZONE), echo_hosts=("::1", "127.0.0.1"))
    with network_namespace(*CAPABLE_HOME) as ns:
        result = python_in_namespace(ns, code)
    assert result["status"] == "ok"
    assert result["has_global_address"] is True
    assert result["global_prefix"] == "fd00:5eed:1:2::/64"
    assert result["has_default_route"] is True
    assert result["aaaa_resolves"] is True
    assert result["ipv6_only_tcp_ok"] is True
    assert result["large_packet_ok"] is True
    assert result["ipv6_capable"] is True
    assert result["ipv6_preferred"] is True
    assert result["dual_stack_family"] == "ipv6"
    assert result["status_reason"] == ""
    # The address itself never leaves the probe.
    assert "fd00:5eed:1:2::2" not in json.dumps(result)


@pytest.mark.netns
@needs_namespaces
def test_ipv4_only_home_is_not_capable_and_reaches_dual_stack_over_ipv4() -> None:
    code = IN_NAMESPACE.format(zone=dict(ZONE), echo_hosts=("127.0.0.1",))
    setup = (
        "sysctl -w net.ipv6.conf.all.disable_ipv6=1",
        "sysctl -w net.ipv6.conf.lo.disable_ipv6=1",
    )
    with network_namespace(*setup) as ns:
        result = python_in_namespace(ns, code)
    assert result["status"] == "ok"
    assert result["has_global_address"] is False
    assert result["has_default_route"] is False
    assert result["aaaa_resolves"] is True  # DNS over IPv4 still hands out the AAAA
    assert result["ipv6_only_tcp_ok"] is False
    assert result["ipv6_capable"] is False
    assert result["ipv6_preferred"] is False
    assert result["dual_stack_family"] == "ipv4"
    assert result["status_reason"].startswith("not IPv6-capable: no global IPv6 address")
