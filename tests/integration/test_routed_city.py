"""The path measurements end to end in the routed city: the agent traces the
reference server through its home, access and core routers, finds its
path's narrow link, resolves the reference names with its own and the
configured resolver, and every result reaches the store's traceroute,
ipv6_pmtu and dns tables through the aggregator's ack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from emulation.city import have_netns
from emulation.deployment import DUAL_STACK_NAME, IPV6_ONLY_NAME, Deployment
from emulation.routed import PathSpec, RoutedCity
from emulation.shaping import FIBRE_300

NETNS_OK, NETNS_WHY = have_netns()
pytestmark = pytest.mark.skipif(not NETNS_OK, reason=NETNS_WHY)

NINH_KIEU = 31135
LINE_DELAY_MS = 10.0

SCHEDULE = "".join(
    f'\n[[schedule]]\nmeasurement = "{name}"\ninterval_s = 3600\nnetwork_kind = "fixed"\n'
    for name in ("traceroute", "traceroute_udp", "traceroute_tcp", "ipv6_pmtu", "dns")
)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    with RoutedCity() as city, Deployment(workdir=tmp_path, city=city) as dep:
        dep.init_central()
        dep.start_aggregator()
        dep.start_reference_server()
        yield dep


def test_traceroute_pmtu_and_dns_results_reach_the_store(deployment: Deployment) -> None:
    dep = deployment
    box = dep.add_probe(
        "home", NINH_KIEU, "household", FIBRE_300, agent_toml_extra=SCHEDULE,
        path=PathSpec(line_delay_ms=LINE_DELAY_MS, core_mtu=1400),
    )  # fmt: skip
    assert isinstance(dep.city, RoutedCity)
    path = dep.city.path("home")

    code, results, stderr = dep.run_once(box)

    assert code == 0, stderr
    kinds = [next(k for k in r if k != "envelope") for r in results]
    # Each traceroute test traces the reference server's address and its IPv6-only name.
    assert kinds == ["traceroute"] * 6 + ["ipv6_pmtu"] + ["dns"] * 2
    assert dep.stop_aggregator() == 0
    with duckdb.connect(str(dep.store_path), read_only=True) as con:
        traces = con.execute(
            "select protocol, target, status, hop_count, first_outside_address, access_rtt_ms, "
            "[h.address for h in hops], [h.segment for h in hops], tool "
            "from traceroute order by protocol, ip_family"
        ).fetchall()
        pmtu = con.execute(
            "select path_mtu, ptb_received, pmtu_blackhole, ptb_messages[1].sender from ipv6_pmtu"
        ).fetchall()
        dns = con.execute(
            "select resolver_kind, resolver, status, queries_sent, queries_failed, "
            "[q.rcode for q in queries], [q.hostname for q in queries] "
            "from dns order by resolver_kind"
        ).fetchall()
        ids = con.execute(
            "select result_table, count(*) from result_ids group by all order by all"
        ).fetchall()

    reference_v4, reference_v6 = dep.reference_ipv4, dep.reference_ipv6
    lan = path.home_lan_ipv4.rsplit(".", 1)[0] + ".0/24"
    assert [t[:2] for t in traces] == [
        ("icmp", reference_v4), ("icmp", reference_v6), ("tcp", reference_v4),
        ("tcp", reference_v6), ("udp", reference_v4), ("udp", reference_v6),
    ]  # fmt: skip
    for (
        protocol,
        target,
        status,
        hop_count,
        outside,
        access_ms,
        addresses,
        segments,
        tool,
    ) in traces:
        assert (status, hop_count) == ("ok", 4), (protocol, target)
        assert segments == ["home", "access", "beyond", "destination"]
        assert access_ms >= LINE_DELAY_MS
        assert tool == f"scapy-paris-traceroute-{protocol}"
        if target == reference_v4:
            assert addresses == [lan, path.access_ipv4, path.core_router_ipv4, reference_v4]
            assert outside == path.access_ipv4
        else:
            assert addresses[1:] == [path.access_ipv6, path.core_router_ipv6, reference_v6]
            assert addresses[0].endswith("::/64")
    assert pmtu == [(1400, True, False, path.access_ipv6)]
    # The box's own resolver is the reference server's DNS here, as is the configured one.
    assert [d[:5] for d in dns] == [
        ("configured", reference_v4, "ok", 4, 0),
        ("system", reference_v4, "ok", 4, 0),
    ]
    for *_, rcodes, names in dns:
        # The reference names, A and AAAA each (the IPv6-only one's A: an empty NOERROR).
        assert set(rcodes) == {"NOERROR"}
        assert sorted(set(names)) == sorted({IPV6_ONLY_NAME, DUAL_STACK_NAME})
    assert ids == [("dns", 2), ("ipv6_pmtu", 1), ("traceroute", 6)]
