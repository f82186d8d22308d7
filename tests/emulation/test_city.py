"""The emulated city: reachability, IPv4-only lines, shaped rates, cleanup.

Needs root and `ip netns`; skipped with the reason where they are missing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from emulation.city import City, ProbeHost, cleanup_stale, have_netns, netns_names
from emulation.shaping import FIBRE_300, IPV4_ONLY, LTE, shaped

NETNS_OK, NETNS_REASON = have_netns()
pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not NETNS_OK, reason=NETNS_REASON),
]

GREETER_PORT = 7007

# Listens on both reference addresses and answers each connection with the
# peer's address, so a probe sees that it reached the core, from its own address.
GREETER = textwrap.dedent(
    """
    import socket, sys, threading
    def serve(family, addr):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, {port}))
        s.listen()
        return s
    def loop(s):
        while True:
            conn, peer = s.accept()
            conn.sendall(peer[0].encode())
            conn.close()
    socks = [serve(socket.AF_INET, sys.argv[1]), serve(socket.AF_INET6, sys.argv[2])]
    for s in socks:
        threading.Thread(target=loop, args=(s,), daemon=True).start()
    print("listening", flush=True)
    threading.Event().wait()
    """
).format(port=GREETER_PORT)

# Connects to argv[1]:argv[2] and prints what came back, or the errno.
CONNECT = textwrap.dedent(
    """
    import socket, sys
    try:
        with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as s:
            print(s.recv(100).decode())
    except OSError as exc:
        print(f"errno {exc.errno}")
    """
)


@pytest.fixture(scope="module")
def city() -> Iterator[City]:
    with City() as city:
        city.add_probe("fibre", FIBRE_300)
        city.add_probe("mobile", LTE)
        city.add_probe("v4only", IPV4_ONLY)
        city.add_probe("shaped50", shaped(50))
        greeter = city.run_in(
            city.core.netns,
            [sys.executable, "-c", GREETER, city.core.reference_ipv4, city.core.reference_ipv6],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert greeter.stdout is not None
        assert greeter.stdout.readline().strip() == "listening"
        yield city


def connect_from(city: City, probe: ProbeHost, address: str) -> str:
    done = city.run(probe.netns, [sys.executable, "-c", CONNECT, address, str(GREETER_PORT)])
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("probe_name", ["fibre", "mobile"])
def test_probe_reaches_reference_over_ipv4_and_ipv6(city: City, probe_name: str) -> None:
    probe = city.probes[probe_name]
    assert probe.ipv6 is not None
    # The core saw the probe's own address: routed over its link, no NAT.
    assert connect_from(city, probe, city.core.reference_ipv4) == probe.ipv4
    assert connect_from(city, probe, city.core.reference_ipv6) == probe.ipv6


def test_ipv4_only_probe_has_no_ipv6(city: City) -> None:
    probe = city.probes["v4only"]
    assert probe.ipv6 is None
    assert connect_from(city, probe, city.core.reference_ipv4) == probe.ipv4
    routes = city.run(probe.netns, ["ip", "-6", "route", "show"])
    assert routes.returncode == 0 and routes.stdout.strip() == ""
    addresses = city.run(probe.netns, ["ip", "-6", "addr", "show", "dev", probe.iface])
    assert "inet6" not in addresses.stdout
    assert connect_from(city, probe, city.core.reference_ipv6) == "errno 101"  # ENETUNREACH


def test_probes_have_default_routes_via_core_and_core_has_none(city: City) -> None:
    probe = city.probes["fibre"]
    v4 = city.run(probe.netns, ["ip", "-4", "route", "show", "default"]).stdout
    v6 = city.run(probe.netns, ["ip", "-6", "route", "show", "default"]).stdout
    assert f"via {probe.gateway_ipv4} dev {probe.iface}" in v4
    assert f"via {probe.gateway_ipv6} dev {probe.iface}" in v6
    # Nothing leads out of the city: the core knows only its own links.
    for family in ("-4", "-6"):
        core_default = city.run(city.core.netns, ["ip", family, "route", "show", "default"])
        assert core_default.stdout.strip() == ""


def iperf3_mbps(city: City, probe: ProbeHost, port: int, *extra: str) -> float:
    done = city.run(
        probe.netns,
        ["iperf3", "-c", city.core.reference_ipv4, "-p", str(port),
         "-t", "5", "-O", "1", "-J", *extra],
        timeout_s=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    return float(report["end"]["sum_received"]["bits_per_second"]) / 1e6


def test_link_shaped_to_50_mbps_reads_45_to_50_both_ways(city: City) -> None:
    port = 5201
    server = city.run_in(
        city.core.netns,
        ["iperf3", "-s", "-p", str(port), "--forceflush"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    assert "Server listening" in server.stdout.readline() + server.stdout.readline()
    probe = city.probes["shaped50"]
    upload_mbps = iperf3_mbps(city, probe, port)
    download_mbps = iperf3_mbps(city, probe, port, "-R")
    assert 45 <= upload_mbps <= 50
    assert 45 <= download_mbps <= 50
    server.terminate()
    server.wait()


def city_namespaces(prefix: str) -> list[str]:
    return [n for n in netns_names() if n.startswith(f"{prefix}-")]


def test_close_removes_namespaces_and_stops_processes() -> None:
    city = City()
    city.add_probe("box", LTE)
    sleeper = city.run_in(city.probes["box"].netns, ["sleep", "60"])
    assert len(city_namespaces(city.prefix)) == 2
    city.close()
    assert city_namespaces(city.prefix) == []
    assert sleeper.poll() is not None


OWNER = textwrap.dedent(
    """
    import sys, threading
    from emulation.city import City
    from emulation.shaping import LTE
    city = City(prefix=sys.argv[1])
    probe = city.add_probe("box", LTE)
    city.run_in(probe.netns, ["sleep", "60"])
    print("ready", flush=True)
    threading.Event().wait()
    """
)


def start_owner(prefix: str) -> subprocess.Popen[str]:
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, prefix], stdout=subprocess.PIPE, text=True
    )
    assert owner.stdout is not None
    assert owner.stdout.readline().strip() == "ready"
    assert sorted(city_namespaces(prefix)) == [f"{prefix}-box", f"{prefix}-core"]
    return owner


def test_killed_owner_leftovers_are_removed_by_cleanup_stale() -> None:
    prefix = f"wpt{os.getpid()}k"
    owner = start_owner(prefix)
    owner.kill()  # SIGKILL: no handler runs, the namespaces stay behind
    owner.wait()
    assert len(city_namespaces(prefix)) == 2
    removed = cleanup_stale()  # finds runs whose owner is gone
    assert sorted(n for n in removed if n.startswith(f"{prefix}-")) == [
        f"{prefix}-box",
        f"{prefix}-core",
    ]
    assert city_namespaces(prefix) == []


def test_cleanup_stale_by_prefix() -> None:
    prefix = f"wpt{os.getpid()}p"
    owner = start_owner(prefix)
    owner.kill()
    owner.wait()
    assert len(cleanup_stale(prefix)) == 2
    assert city_namespaces(prefix) == []


def test_sigterm_to_owner_removes_its_namespaces() -> None:
    prefix = f"wpt{os.getpid()}t"
    owner = start_owner(prefix)
    owner.send_signal(signal.SIGTERM)
    # The handler cleans up, then lets the default action end the process.
    assert owner.wait(timeout=30) == -signal.SIGTERM
    assert city_namespaces(prefix) == []


def test_live_owner_is_not_touched_by_cleanup_stale(city: City) -> None:
    removed = cleanup_stale()
    assert not [n for n in removed if n.startswith(f"{city.prefix}-")]
    assert len(city_namespaces(city.prefix)) == 5
