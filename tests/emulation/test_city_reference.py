"""The reference server in the city's core, used from probe namespaces the
way an agent uses it: DNS for the IPv6 names, TCP echo, an iperf3 slot.

Needs root and `ip netns`; skipped with the reason where they are missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from emulation.city import City, have_netns
from emulation.shaping import IPV4_ONLY, LTE

NETNS_OK, NETNS_REASON = have_netns()
pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not NETNS_OK, reason=NETNS_REASON),
    pytest.mark.skipif(shutil.which("iperf3") is None, reason="iperf3 is not installed"),
]

IPV6_ONLY_NAME = "ipv6-only.wardprobe.test"
DUAL_STACK_NAME = "dual-stack.wardprobe.test"
ECHO_PORT = 7007
IPERF3_PORTS = (5201, 5202)

# Resolves a name at the core's DNS (dnspython checks the answer comes from
# the address asked), prints the addresses or the rcode.
RESOLVE = textwrap.dedent(
    """
    import sys
    import dns.message, dns.query, dns.rcode
    server, name, rdtype = sys.argv[1:4]
    answer = dns.query.udp(dns.message.make_query(name, rdtype), server, port=53, timeout=5)
    found = sorted(r.address for rrset in answer.answer for r in rrset)
    print(" ".join(found) if found else dns.rcode.to_text(answer.rcode()))
    """
)

# Sends 1400 bytes to the echo port and says whether they came back intact.
ECHO = textwrap.dedent(
    """
    import os, socket, sys
    payload = os.urandom(1400)
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5) as s:
        s.sendall(payload)
        echoed = b""
        while len(echoed) < len(payload):
            chunk = s.recv(4096)
            if not chunk:
                break
            echoed += chunk
    print("intact" if echoed == payload else f"got {len(echoed)} bytes")
    """
)


@pytest.fixture(scope="module")
def city() -> Iterator[City]:
    with City() as city:
        city.add_probe("mobile", LTE)
        city.add_probe("v4only", IPV4_ONLY)
        core = city.core
        server = city.run_in(
            core.netns,
            [
                sys.executable, "-m", "aggregator.reference", "serve",
                "--listen", "0.0.0.0", "--listen", "::",
                "--iperf3-ports", f"{IPERF3_PORTS[0]}-{IPERF3_PORTS[-1]}",
                "--echo-port", str(ECHO_PORT), "--dns-port", "53",
                "--ipv6-only-name", IPV6_ONLY_NAME, "--dual-stack-name", DUAL_STACK_NAME,
                "--answer-ipv4", core.reference_ipv4, "--answer-ipv6", core.reference_ipv6,
            ],
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert server.stderr is not None
        log_lines = []
        for line in server.stderr:  # ends at EOF if the server dies
            log_lines.append(line)
            if "reference server up" in line:
                break
        assert server.poll() is None, "".join(log_lines)
        yield city


def in_probe(city: City, probe: str, code: str, *args: str) -> str:
    done = city.run(city.probes[probe].netns, [sys.executable, "-c", code, *args])
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_ipv6_only_name_resolves_to_aaaa_only_over_ipv6(city: City) -> None:
    v6 = city.core.reference_ipv6
    assert in_probe(city, "mobile", RESOLVE, v6, IPV6_ONLY_NAME, "AAAA") == v6
    assert in_probe(city, "mobile", RESOLVE, v6, IPV6_ONLY_NAME, "A") == "NOERROR"
    assert in_probe(city, "mobile", RESOLVE, v6, "other.wardprobe.test", "A") == "NXDOMAIN"


def test_dual_stack_name_resolves_over_ipv4_from_an_ipv4_only_line(city: City) -> None:
    v4 = city.core.reference_ipv4
    assert in_probe(city, "v4only", RESOLVE, v4, DUAL_STACK_NAME, "A") == v4
    assert in_probe(city, "v4only", RESOLVE, v4, DUAL_STACK_NAME, "AAAA") == (
        city.core.reference_ipv6
    )


def test_echo_returns_1400_bytes_over_each_family(city: City) -> None:
    core = city.core
    assert in_probe(city, "mobile", ECHO, core.reference_ipv6, str(ECHO_PORT)) == "intact"
    assert in_probe(city, "mobile", ECHO, core.reference_ipv4, str(ECHO_PORT)) == "intact"


def test_iperf3_pool_port_serves_a_probe(city: City) -> None:
    done = city.run(
        city.probes["mobile"].netns,
        ["iperf3", "-c", city.core.reference_ipv6, "-p", str(IPERF3_PORTS[1]),
         "-t", "1", "-R", "-J"],
        timeout_s=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    received = json.loads(done.stdout)["end"]["sum_received"]
    assert received["bytes"] > 0
    # An LTE line (40 Mb/s down) cannot carry more than its rate.
    assert received["bits_per_second"] <= 40e6
