"""The routed city (emulation/routed.py): the agent's traceroute sees each real
hop (home router, access router, core router, central site) with the home's
address reduced, its access latency carries the line's delay and the home's
does not; the IPv6 path MTU finds the narrow link by its Packet Too Big, and
the black hole where that Packet Too Big is dropped."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from emulation.city import have_netns
from emulation.routed import PathSpec, RoutedCity
from emulation.shaping import FIBRE_300, IPV4_ONLY
from tests.agent.measurements.services import python_in_namespace

_HAVE, _WHY = have_netns()
pytestmark = pytest.mark.skipif(not _HAVE, reason=_WHY or "-")

LINE_DELAY_MS = 20.0

_TRACE = """
import dataclasses, json
from agent.measurements.traceroute import TracerouteParams, TracerouteProtocol, run
results = run(TracerouteParams(protocol=TracerouteProtocol({protocol!r}), targets={targets!r},
                               port={port!r}))
print(json.dumps([dataclasses.asdict(r) for r in results], default=str))
"""

_PMTU = """
import dataclasses, json
from agent.measurements.ipv6_pmtu import PmtuParams, run
print(json.dumps(dataclasses.asdict(run(PmtuParams(target={target!r}, tries=2))), default=str))
"""


@pytest.fixture(scope="module")
def city() -> Iterator[RoutedCity]:
    with RoutedCity() as routed:
        routed.add_probe("slow", FIBRE_300, PathSpec(line_delay_ms=LINE_DELAY_MS))
        routed.add_probe("narrow", FIBRE_300, PathSpec(core_mtu=1400))
        routed.add_probe("hole", FIBRE_300, PathSpec(core_mtu=1400, drop_packet_too_big=True))
        routed.add_probe("v4only", IPV4_ONLY)
        yield routed


def _trace(city: RoutedCity, probe: str, protocol: str, *targets: str) -> list[dict[str, Any]]:
    port = {"icmp": None, "udp": 33434, "tcp": 7}[protocol]
    code = _TRACE.format(protocol=protocol, targets=targets, port=port)
    result: list[dict[str, Any]] = python_in_namespace(city.probes[probe].netns, code)
    return result


@pytest.mark.parametrize("protocol", ["icmp", "udp", "tcp"])
def test_a_trace_sees_every_router_and_the_lines_delay_is_the_access_latency(
    city: RoutedCity, protocol: str
) -> None:
    path = city.path("slow")
    core = city.core
    if protocol == "tcp":
        # Something must answer the SYNs at the central site: a listener on its echo port.
        city.run_in(core.netns, ["python3", "-c", _LISTEN])
    traces = _trace(city, "slow", protocol, core.reference_ipv4, core.reference_ipv6)

    assert [t["target"] for t in traces] == [core.reference_ipv4, core.reference_ipv6]
    v4, v6 = traces
    for trace in traces:
        assert trace["status"] == "ok", trace["status_reason"]
        assert (trace["reached"], trace["stop_reason"], trace["hop_count"]) == (True, "reached", 4)
        assert [h["segment"] for h in trace["hops"]] == ["home", "access", "beyond", "destination"]
        assert all(len(h["rtts_ms"]) == h["probes_sent"] == 3 for h in trace["hops"])
        # The delay line is on the access line: every answer from the access
        # router on crossed it both ways (a lower bound only: no upper one
        # holds on a busy machine). The home router answers from before it.
        assert trace["access_rtt_ms"] >= LINE_DELAY_MS
        assert trace["target_rtt_ms"] >= LINE_DELAY_MS
        assert trace["home_rtt_ms"] is not None
    # Home hops keep their prefix only; the operator's routers are named in full.
    lan = path.home_lan_ipv4.rsplit(".", 1)[0] + ".0/24"
    assert [h["address"] for h in v4["hops"]] == [
        lan, path.access_ipv4, path.core_router_ipv4, core.reference_ipv4,
    ]  # fmt: skip
    assert path.home_lan_ipv6 is not None
    assert [h["address"] for h in v6["hops"]] == [
        path.home_lan_ipv6.rsplit("::", 1)[0] + "::/64",
        path.access_ipv6,
        path.core_router_ipv6,
        core.reference_ipv6,
    ]
    assert (v4["first_outside_hop"], v4["first_outside_address"]) == (2, path.access_ipv4)
    assert (v6["first_outside_hop"], v6["first_outside_address"]) == (2, path.access_ipv6)
    # The answers arrive with one hop's less TTL each (they come back over the same routers).
    assert [h["reply_ttl"] for h in v4["hops"]] == [64, 63, 62, 61]


_LISTEN = """
import socket, time
for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((host, 7))
    s.listen(64)
    globals()["keep_" + str(family)] = s
time.sleep(120)
"""


def test_an_ipv4_only_line_skips_its_ipv6_target_and_traces_the_ipv4_one(
    city: RoutedCity,
) -> None:
    v4, v6 = _trace(city, "v4only", "icmp", city.core.reference_ipv4, city.core.reference_ipv6)
    assert (v4["target"], v4["status"], v4["hop_count"]) == (city.core.reference_ipv4, "ok", 4)
    assert (v6["status"], v6["status_reason_kind"]) == ("skipped", "not_configured")
    assert v6["status_reason"] == f"no ipv6 route to {city.core.reference_ipv6} on this line"


def test_a_name_with_only_an_ipv6_address_is_skipped_on_an_ipv4_only_line(
    city: RoutedCity,
) -> None:
    # The probe's resolv.conf names the central site, whose DNS is not running
    # here: ask a resolver in the namespace that knows the name.
    code = (
        "import json, socket, threading\n"
        "import dns.message, dns.rrset\n"
        "server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "server.bind(('127.0.0.1', 0))\n"
        "def answer():\n"
        "    while True:\n"
        "        wire, client = server.recvfrom(4096)\n"
        "        query = dns.message.from_wire(wire)\n"
        "        response = dns.message.make_response(query)\n"
        "        if query.question[0].rdtype == 28:\n"
        "            response.answer.append(dns.rrset.from_text(query.question[0].name, 60,"
        " 'IN', 'AAAA', 'fd00:5752::1'))\n"
        "        server.sendto(response.to_wire(), client)\n"
        "threading.Thread(target=answer, daemon=True).start()\n"
        "from agent.measurements.traceroute import TracerouteParams, TracerouteProtocol, run\n"
        "(r,) = run(TracerouteParams(protocol=TracerouteProtocol.ICMP, targets=('v6.test',),"
        " dns_server='127.0.0.1', dns_port=server.getsockname()[1]))\n"
        "print(json.dumps([str(r.status), r.status_reason]))\n"
    )
    status, reason = python_in_namespace(city.probes["v4only"].netns, code)
    assert status == "skipped"
    assert reason.endswith("no ipv6 route to fd00:5752::1 on this line")


def _pmtu(city: RoutedCity, probe: str) -> dict[str, Any]:
    code = _PMTU.format(target=city.core.reference_ipv6)
    result: dict[str, Any] = python_in_namespace(city.probes[probe].netns, code)
    return result


def test_the_narrow_links_router_says_packet_too_big_and_the_path_mtu_is_found(
    city: RoutedCity,
) -> None:
    result = _pmtu(city, "narrow")

    assert result["status"] == "ok", result["status_reason"]
    assert (result["interface_mtu"], result["path_mtu"]) == (1500, 1400)
    assert (result["ptb_received"], result["pmtu_blackhole"]) == (True, False)
    first = result["ptb_messages"][0]
    # The access router sent it, from its address toward the probe.
    assert (first["mtu_bytes"], first["sender"], first["probe_bytes"]) == (
        1400, city.path("narrow").access_ipv6, 1500,
    )  # fmt: skip


def test_a_path_mtu_the_kernel_learnt_before_does_not_hide_the_narrow_link(
    city: RoutedCity,
) -> None:
    # The kernel keeps a Packet Too Big's MTU for the destination (TCP learns
    # it too, as the IPv6 check's exchange does): the next search must still
    # send the link's MTU and hear the router, not be refused by its own kernel.
    _pmtu(city, "narrow")
    again = _pmtu(city, "narrow")
    assert again["status"] == "ok", again["status_reason"]
    assert (again["path_mtu"], again["ptb_received"]) == (1400, True)


def test_a_path_that_drops_packet_too_big_is_a_black_hole(city: RoutedCity) -> None:
    result = _pmtu(city, "hole")

    assert result["status"] == "ok", result["status_reason"]
    assert result["path_mtu"] == 1400
    assert (result["ptb_received"], result["pmtu_blackhole"]) == (False, True)
    assert result["smallest_lost_bytes"] == 1401
    assert result["status_reason"].startswith("path-MTU black hole")


def test_a_plain_path_carries_the_whole_link_mtu(city: RoutedCity) -> None:
    result = _pmtu(city, "slow")
    assert (result["path_mtu"], result["ptb_received"], result["pmtu_blackhole"]) == (
        1500, False, False,
    )  # fmt: skip


def test_an_ipv4_only_line_skips_the_path_mtu(city: RoutedCity) -> None:
    result = _pmtu(city, "v4only")
    assert (result["status"], result["status_reason_kind"]) == ("skipped", "not_configured")
