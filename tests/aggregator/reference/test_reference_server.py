"""The reference server on loopback: iperf3 pool, TCP echo, DNS, the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import psutil
import pytest
from typer.testing import CliRunner

from aggregator.cli.reference import build_config, parse_ports, reference_app
from aggregator.reference.server import (
    DnsName,
    ReferenceServer,
    ReferenceServerError,
    ReferenceServiceConfig,
    dns_response,
)

pytestmark = pytest.mark.skipif(shutil.which("iperf3") is None, reason="iperf3 is not installed")

IPV6_ONLY_NAME = "ipv6-only.wardprobe.test"
DUAL_STACK_NAME = "dual-stack.wardprobe.test"
# Addresses the names resolve to: the emulated city's reference addresses.
ANSWER_IPV4 = "198.18.0.1"
ANSWER_IPV6 = "fd00:5752::1"
LOOPBACKS = ("127.0.0.1", "::1")
# Waits for what comes at once (an echo, a DNS answer, a restarted iperf3, the
# CLI listening): guards against a hang, so a busy machine fails nothing.
ANSWER_GUARD_S = 60.0


def free_port() -> int:
    """A TCP port free on every address (iperf3 listens dual-stack on ::)."""
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", 0))
        port: int = sock.getsockname()[1]
        return port


def loopback_config(**overrides: object) -> ReferenceServiceConfig:
    fields: dict[str, object] = {
        "listen_addresses": LOOPBACKS,
        "iperf3_ports": (free_port(), free_port()),
        "iperf3_restart_delay_s": 0.2,
        "tcp_echo_port": 0,
        "dns_port": 0,
        "dns_names": (
            DnsName(name=IPV6_ONLY_NAME, ipv6=(ipaddress.IPv6Address(ANSWER_IPV6),)),
            DnsName(
                name=DUAL_STACK_NAME,
                ipv4=(ipaddress.IPv4Address(ANSWER_IPV4),),
                ipv6=(ipaddress.IPv6Address(ANSWER_IPV6),),
            ),
        ),
    }
    fields.update(overrides)
    return ReferenceServiceConfig.model_validate(fields)


@pytest.fixture
async def server() -> AsyncIterator[ReferenceServer]:
    async with ReferenceServer(loopback_config()) as server:
        yield server


async def iperf3_client(address: str, port: int, *extra: str) -> dict[str, object]:
    client = await asyncio.create_subprocess_exec(
        "iperf3", "-c", address, "-p", str(port), "-t", "1", "-J", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(client.communicate(), 30)
    assert client.returncode == 0, stdout.decode() + stderr.decode()
    report: dict[str, object] = json.loads(stdout)
    return report


def received_bytes(report: dict[str, object]) -> int:
    end = report["end"]
    assert isinstance(end, dict)
    return int(end["sum_received"]["bytes"])


async def test_two_pool_ports_serve_tests_at_once_over_ipv4_and_ipv6(
    server: ReferenceServer,
) -> None:
    first, second = server.config.iperf3_ports
    over_v4, over_v6 = await asyncio.gather(
        iperf3_client("127.0.0.1", first), iperf3_client("::1", second, "-R")
    )
    assert received_bytes(over_v4) > 0
    assert received_bytes(over_v6) > 0


async def wait_for_new_pid(server: ReferenceServer, port: int, old_pid: int) -> int:
    async with asyncio.timeout(ANSWER_GUARD_S):
        while True:
            pid = server.iperf3_pool.pids[port]
            if pid is not None and pid != old_pid:
                return pid
            await asyncio.sleep(0.05)


async def test_killed_pool_process_is_restarted(server: ReferenceServer) -> None:
    port = server.config.iperf3_ports[0]
    old_pid = server.iperf3_pool.pids[port]
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)
    new_pid = await wait_for_new_pid(server, port, old_pid)
    await server.iperf3_pool.wait_ready()
    assert psutil.Process(new_pid).name() == "iperf3"
    assert server.iperf3_pool.restarts[port] == 1
    assert received_bytes(await iperf3_client("127.0.0.1", port)) > 0


async def test_stop_ends_every_iperf3_child() -> None:
    server = ReferenceServer(loopback_config())
    await server.start()
    pids = [pid for pid in server.iperf3_pool.pids.values() if pid is not None]
    assert len(pids) == 2
    await server.stop()
    assert not [pid for pid in pids if psutil.pid_exists(pid)]


async def test_pool_port_taken_fails_start_with_iperf3s_reason() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as squatter:
        squatter.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        squatter.bind(("::", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        # The timeout is only a guard: the start fails when iperf3 exits.
        config = loopback_config(iperf3_ports=(taken,), iperf3_start_timeout_s=ANSWER_GUARD_S)
        server = ReferenceServer(config)
        with pytest.raises(ReferenceServerError, match=rf"{taken} exited.*in use"):
            await server.start()
        assert server.iperf3_pool.restarts[taken] == 0  # failed at its first exit
        # Undone on failure: nothing left running or listening.
        assert server.iperf3_pool.pids[taken] is None
        with pytest.raises(ReferenceServerError, match="not started"):
            _ = server.echo_port


@pytest.mark.parametrize("address", LOOPBACKS)
async def test_echo_returns_1400_bytes_intact(server: ReferenceServer, address: str) -> None:
    payload = os.urandom(1400)
    reader, writer = await asyncio.open_connection(address, server.echo_port)
    try:
        writer.write(payload)
        await writer.drain()
        echoed = await asyncio.wait_for(reader.readexactly(len(payload)), ANSWER_GUARD_S)
    finally:
        writer.close()
        await writer.wait_closed()
    assert echoed == payload


async def ask(server: ReferenceServer, address: str, name: str, rdtype: str) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    return await dns.asyncquery.udp(query, address, port=server.dns_port, timeout=ANSWER_GUARD_S)


def addresses_in(answer: dns.message.Message) -> set[str]:
    return {rdata.address for rrset in answer.answer for rdata in rrset}


@pytest.mark.parametrize("address", LOOPBACKS)
async def test_dns_ipv6_only_name_has_aaaa_and_no_a(server: ReferenceServer, address: str) -> None:
    aaaa = await ask(server, address, IPV6_ONLY_NAME, "AAAA")
    assert aaaa.rcode() == dns.rcode.NOERROR
    assert aaaa.flags & dns.flags.AA
    assert addresses_in(aaaa) == {ANSWER_IPV6}
    a = await ask(server, address, IPV6_ONLY_NAME, "A")
    assert a.rcode() == dns.rcode.NOERROR  # the name exists, it has no A record
    assert a.answer == []


async def test_dns_dual_stack_name_has_a_and_aaaa(server: ReferenceServer) -> None:
    a = await ask(server, "127.0.0.1", DUAL_STACK_NAME.upper(), "A")  # names are case-blind
    aaaa = await ask(server, "127.0.0.1", DUAL_STACK_NAME, "AAAA")
    assert addresses_in(a) == {ANSWER_IPV4}
    assert addresses_in(aaaa) == {ANSWER_IPV6}


async def test_dns_on_wildcard_replies_from_the_address_asked() -> None:
    # 127.0.0.2 is not the source the kernel would pick towards 127.0.0.1;
    # dnspython drops an answer from any other address than the one it asked.
    config = loopback_config(listen_addresses=("0.0.0.0", "::"), iperf3_ports=(free_port(),))
    async with ReferenceServer(config) as server:
        for address in ("127.0.0.2", "::1"):
            answer = await ask(server, address, DUAL_STACK_NAME, "A")
            assert addresses_in(answer) == {ANSWER_IPV4}


async def test_dns_unknown_name_is_nxdomain(server: ReferenceServer) -> None:
    answer = await ask(server, "::1", "nowhere.wardprobe.test", "AAAA")
    assert answer.rcode() == dns.rcode.NXDOMAIN
    assert answer.answer == []


def test_dns_ignores_what_is_not_a_query() -> None:
    names = loopback_config().dns_names
    assert dns_response(b"\x12\x34 not dns", names, 60) is None
    reply = dns.message.make_response(dns.message.make_query(DUAL_STACK_NAME, "A"))
    assert dns_response(reply.to_wire(), names, 60) is None


def test_dns_name_without_address_is_refused() -> None:
    with pytest.raises(ValueError, match="no address"):
        DnsName(name="empty.wardprobe.test")


# -- command line ------------------------------------------------------------


def test_parse_ports() -> None:
    assert parse_ports("5201-5204") == (5201, 5202, 5203, 5204)
    assert parse_ports("5201, 5210-5211") == (5201, 5210, 5211)


def test_config_file_with_options_laid_over(tmp_path: Path) -> None:
    config_file = tmp_path / "reference.toml"
    config_file.write_text(
        'listen_addresses = ["198.18.0.1", "fd00:5752::1"]\n'
        "tcp_echo_port = 7\n"
        "iperf3_ports = [5301]\n"
    )
    config = build_config(
        config_file, iperf3_ports="5201-5202", ipv6_only_name=IPV6_ONLY_NAME,
        dual_stack_name=DUAL_STACK_NAME,
    )  # fmt: skip
    assert config.tcp_echo_port == 7
    assert config.iperf3_ports == (5201, 5202)
    # Names answer with the specific listen addresses when none are given.
    by_name = {n.name: n for n in config.dns_names}
    assert [str(a) for a in by_name[IPV6_ONLY_NAME].ipv6] == [ANSWER_IPV6]
    assert by_name[IPV6_ONLY_NAME].ipv4 == ()
    assert [str(a) for a in by_name[DUAL_STACK_NAME].ipv4] == [ANSWER_IPV4]


def test_help_documents_every_option() -> None:
    result = CliRunner().invoke(reference_app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in (
        "--config", "--listen", "--iperf3-ports", "--iperf3-bind", "--echo-port",
        "--dns-port", "--ipv6-only-name", "--dual-stack-name", "--answer-ipv4",
        "--answer-ipv6", "--verbose",
    ):  # fmt: skip
        assert option in result.output


@pytest.fixture
def cli_server() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    iperf3_port, echo_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-m", "aggregator.reference", "serve",
            "--listen", "127.0.0.1", "--listen", "::1",
            "--iperf3-ports", str(iperf3_port), "--echo-port", str(echo_port),
            "--dns-port", "0", "--ipv6-only-name", IPV6_ONLY_NAME,
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        yield process, echo_port
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_cli_serves_until_sigterm_then_stops_iperf3(
    cli_server: tuple[subprocess.Popen[bytes], int],
) -> None:
    process, echo_port = cli_server
    deadline = time.monotonic() + ANSWER_GUARD_S
    children: list[psutil.Process] = []
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        children = psutil.Process(process.pid).children()
        with contextlib.suppress(OSError), socket.create_connection(("::1", echo_port), 1):
            if children:
                break
        time.sleep(0.1)
    assert [child.name() for child in children] == ["iperf3"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
    assert not [child for child in children if child.is_running()]
