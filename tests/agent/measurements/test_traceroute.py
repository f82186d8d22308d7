"""Paris traceroute (agent/measurements/traceroute.py): every probe of a trace is
one flow, the hops are split into home / access / beyond with the household's
addresses reduced, and a trace on loopback reaches its target. The routed
city's tests (tests/emulation/test_routed.py) trace through real hops."""

from __future__ import annotations

import os
import socket

import pytest

from agent.measurements.base import IpFamily, Status
from agent.measurements.traceroute import (
    TracerouteParams,
    TracerouteProtocol,
    _Answer,
    _packet_builder,
    _Probe,
    run,
    summarise,
)
from tests.agent.measurements.services import DnsResponder


def _answer(address: str, rtt_ms: float, *, target: bool = False) -> _Answer:
    return _Answer(address=address, rtt_ms=rtt_ms, icmp_type=0 if target else 11, icmp_code=0,
                   reply_ttl=60, from_target=target, unreachable=False)  # fmt: skip


def _hop(ttl: int, *answers: _Answer | None) -> list[_Probe]:
    return [_Probe(ttl, 0, answer=a) for a in answers]


def test_hops_are_split_into_home_access_and_beyond() -> None:
    hops = [
        _hop(1, _answer("192.168.1.1", 0.6), _answer("192.168.1.1", 0.4), None),  # the CPE
        _hop(2, _answer("10.0.0.1", 1.0)),  # a second router in the home (RFC 1918)
        _hop(3, _answer("100.64.7.1", 9.0), _answer("100.64.7.1", 11.0)),  # CGNAT: operator's
        _hop(4, None, None),  # silent
        _hop(5, _answer("203.0.113.9", 20.0, target=True)),
    ]

    summary = summarise(hops, "203.0.113.9")

    assert [(h.hop, h.address, h.segment) for h in summary.hops] == [
        (1, "192.168.1.0/24", "home"),  # never the full household address
        (2, "10.0.0.0/24", "home"),
        (3, "100.64.7.1", "access"),
        (4, "", ""),
        (5, "203.0.113.9", "destination"),
    ]
    assert (summary.first_outside_hop, summary.first_outside_address) == (3, "100.64.7.1")
    assert (summary.home_rtt_ms, summary.access_rtt_ms, summary.target_rtt_ms) == (1.0, 10.0, 20.0)
    assert summary.hop_count == 5
    cpe = summary.hops[0]
    assert (cpe.rtts_ms, cpe.probes_sent) == ((0.6, 0.4), 3)
    assert cpe.loss_pct == pytest.approx(100 / 3)
    assert summary.hops[3].loss_pct == 100.0


def test_a_public_address_after_the_cpe_is_outside_the_home_and_an_ipv6_cpe_is_reduced() -> None:
    summary = summarise(
        [
            _hop(1, _answer("2001:db8:1:2::1", 0.5)),
            _hop(2, _answer("2001:db8:ff::1", 5.0)),
            _hop(3, _answer("2001:db8:ff::2", 7.0)),
            _hop(4, _answer("2001:db8:9::1", 9.0, target=True)),
        ],
        "2001:db8:9::1",
    )
    assert [(h.address, h.segment) for h in summary.hops] == [
        ("2001:db8:1:2::/64", "home"),
        ("2001:db8:ff::1", "access"),
        ("2001:db8:ff::2", "beyond"),
        ("2001:db8:9::1", "destination"),
    ]


def test_a_target_one_hop_away_is_the_first_hop_outside_the_home() -> None:
    summary = summarise([_hop(1, _answer("198.18.0.1", 0.3, target=True))], "198.18.0.1")
    assert [h.segment for h in summary.hops] == ["destination"]
    assert (summary.first_outside_hop, summary.access_rtt_ms, summary.home_rtt_ms) == (1, 0.3, None)


@pytest.mark.parametrize("family", [IpFamily.IPV4, IpFamily.IPV6])
@pytest.mark.parametrize("protocol", list(TracerouteProtocol))
def test_every_probe_of_a_trace_is_one_flow_and_each_is_told_apart(
    protocol: TracerouteProtocol, family: IpFamily
) -> None:
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6

    source, target = (
        ("198.18.1.2", "198.18.0.1") if family is IpFamily.IPV4 else ("fd00::2", "fd00::1")
    )
    port = None if protocol is TracerouteProtocol.ICMP else 7007
    params = TracerouteParams(protocol=protocol, targets=(target,), port=port)
    build = _packet_builder(params, family, source, target, flow_id=40000, seq_base=1000)
    parsed = [
        (IPv6 if family is IpFamily.IPV6 else IP)(build(number, ttl))
        for number, ttl in ((1, 1), (2, 1), (3, 2), (4, 7))
    ]

    flows: set[tuple[object, ...]] = set()
    tellers: set[object] = set()
    for packet in parsed:
        if protocol is TracerouteProtocol.ICMP:
            icmp = packet[ICMPv6EchoRequest] if family is IpFamily.IPV6 else packet[ICMP]
            # Load balancers hash the first four bytes: type, code and the checksum.
            checksum = icmp.cksum if family is IpFamily.IPV6 else icmp.chksum
            flows.add((int(icmp.type), int(icmp.code), int(checksum), int(icmp.id)))
            tellers.add(int(icmp.seq))
        elif protocol is TracerouteProtocol.UDP:
            flows.add((int(packet[UDP].sport), int(packet[UDP].dport)))
            tellers.add(bytes(packet[UDP].payload) if family is IpFamily.IPV6 else packet.id)
        else:
            flows.add((int(packet[TCP].sport), int(packet[TCP].dport)))
            tellers.add(int(packet[TCP].seq))
        if family is IpFamily.IPV6:
            flows.add(("flow label", int(packet.fl)))
    assert len(flows) == (2 if family is IpFamily.IPV6 else 1)
    assert len(tellers) == len(parsed)
    assert [int(p.hlim if family is IpFamily.IPV6 else p.ttl) for p in parsed] == [1, 1, 2, 7]


_ROOT = os.geteuid() == 0


@pytest.mark.skipif(not _ROOT, reason="raw sockets need CAP_NET_RAW (run as root)")
@pytest.mark.parametrize("protocol", list(TracerouteProtocol))
def test_a_trace_on_loopback_reaches_its_target_at_the_first_hop(
    protocol: TracerouteProtocol,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = None if protocol is TracerouteProtocol.ICMP else int(listener.getsockname()[1])
        if protocol is TracerouteProtocol.UDP:
            port = 33434
        (result,) = run(
            TracerouteParams(protocol=protocol, targets=("127.0.0.1",), port=port,
                             probe_timeout_s=2.0, families=(IpFamily.IPV4,))
        )  # fmt: skip

    assert result.status is Status.OK, result.status_reason
    assert (result.reached, result.stop_reason, result.hop_count) == (True, "reached", 1)
    (hop,) = result.hops
    assert (hop.address, hop.segment, hop.probes_sent) == ("127.0.0.1", "destination", 3)
    assert len(hop.rtts_ms) == 3 and hop.loss_pct == 0.0
    assert result.ip_family is IpFamily.IPV4 and result.method.tool.endswith(protocol.value)


def test_a_name_that_does_not_resolve_is_a_failed_result_that_says_so() -> None:
    (result,) = run(
        TracerouteParams(protocol=TracerouteProtocol.ICMP, targets=("no-such-host.invalid",))
    )
    assert result.status is Status.FAILED
    assert "no-such-host.invalid has no ipv4 address" in result.status_reason


@pytest.mark.skipif(not _ROOT, reason="raw sockets need CAP_NET_RAW (run as root)")
def test_a_target_name_is_asked_of_the_configured_resolver() -> None:
    # As the IPv6 check does: the reference server's DNS, not the system's.
    records = {"ref.wardprobe.test.": {"A": ["127.0.0.1"]}}
    with DnsResponder(records) as dns:
        (result,) = run(
            TracerouteParams(protocol=TracerouteProtocol.ICMP, targets=("ref.wardprobe.test",),
                             dns_server="127.0.0.1", dns_port=dns.port, probe_timeout_s=2.0)
        )  # fmt: skip
    assert (result.status, result.target, result.hop_count) == (Status.OK, "127.0.0.1", 1)
    assert ("ref.wardprobe.test.", "A") in dns.queries
    assert result.method.server == "ref.wardprobe.test"
