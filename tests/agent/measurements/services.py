"""Small real network services the measurement tests talk to, on loopback only.

An iperf3 server process, a TCP echo service (what the reference server runs
on its echo port), a TCP listener that accepts and never speaks (a hung
iperf3 server), and a tiny DNS responder built on dnspython's message code.
Importable on its own so a test can also start them inside a network
namespace (see test_ipv6.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel picks it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def iperf3_server(bind: str = "127.0.0.1", *, one_off: bool = True) -> Iterator[int]:
    """A real `iperf3 -s` on a free port of `bind`; yields the port once it listens."""
    port = free_tcp_port(bind)
    command = ["iperf3", "-s", "-p", str(port), "-B", bind, "--forceflush"]
    if one_off:
        command.append("-1")
    with running_iperf3_server(command, f"port {port}"):
        yield port


@contextlib.contextmanager
def running_iperf3_server(command: list[str], where: str) -> Iterator[None]:
    """Start an `iperf3 -s` command and return once it listens; kill it after."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        # Waiting for its banner, not connecting: a bare connect would use up a -1 server.
        for line in process.stdout:
            if "Server listening" in line:
                break
        else:
            raise RuntimeError(f"iperf3 -s on {where} did not start")
        # Keep reading its reports: a full pipe would block the server mid-test
        # (a minute of 8 streams writes more than the 64 KiB a pipe holds).
        threading.Thread(target=process.stdout.read, daemon=True).start()
        yield
    finally:
        process.kill()
        process.wait(timeout=10)


@contextlib.contextmanager
def busy_iperf3_server() -> Iterator[int]:
    """An iperf3 server on 127.0.0.1 that is in the middle of another client's test."""
    with iperf3_server(one_off=False) as port:
        other = subprocess.Popen(
            ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", "30", "--forceflush"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert other.stdout is not None
            # The first interval line means the other test is running.
            for line in other.stdout:
                if "sec" in line and "Bytes" in line:
                    break
            else:
                raise RuntimeError("the occupying iperf3 client did not start")
            yield port
        finally:
            other.kill()
            other.wait(timeout=10)


def _close_listener(listener: socket.socket) -> None:
    """Close a socket another thread is blocked on: shutdown wakes accept() and recvfrom()."""
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
    listener.close()


@dataclass
class SilentListener:
    """Accepts TCP connections and never sends a byte: a hung server."""

    host: str = "127.0.0.1"
    port: int = 0
    _socket: socket.socket | None = None
    _accepted: list[socket.socket] = field(default_factory=list)
    _thread: threading.Thread | None = None

    def __enter__(self) -> SilentListener:
        listener = socket.create_server((self.host, 0))
        self._socket = listener
        self.port = int(listener.getsockname()[1])
        self._thread = threading.Thread(target=self._accept_forever, daemon=True)
        self._thread.start()
        return self

    @property
    def accepted(self) -> int:
        """How many connections it has taken so far."""
        return len(self._accepted)

    def _accept_forever(self) -> None:
        assert self._socket is not None
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self._socket.accept()
                self._accepted.append(connection)

    def __exit__(self, *exc: object) -> None:
        assert self._socket is not None
        _close_listener(self._socket)
        for connection in self._accepted:
            connection.close()


@dataclass
class EchoServer:
    """A TCP echo service: sends back what it reads, on each of `hosts`, one port."""

    hosts: tuple[str, ...] = ("::1",)
    port: int = 0
    _listeners: list[socket.socket] = field(default_factory=list)
    _connections: list[socket.socket] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> EchoServer:
        # The same port on every address, as a dual-stack server has it.
        for _attempt in range(20):
            try:
                self._listen_all()
                return self
            except OSError:
                self._close_listeners()
        raise RuntimeError(f"no common free port on {self.hosts}")

    def _listen_all(self) -> None:
        port = self.port
        for host in self.hosts:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            listener = socket.create_server((host, port), family=family)
            self._listeners.append(listener)
            port = int(listener.getsockname()[1])
            threading.Thread(target=self._accept_forever, args=(listener,), daemon=True).start()
        self.port = port

    def _accept_forever(self, listener: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while not self._stop.is_set():
                connection, _ = listener.accept()
                self._connections.append(connection)
                threading.Thread(target=self._echo, args=(connection,), daemon=True).start()

    @staticmethod
    def _echo(connection: socket.socket) -> None:
        with contextlib.suppress(OSError), connection:
            while data := connection.recv(65536):
                connection.sendall(data)

    def _close_listeners(self) -> None:
        for listener in self._listeners:
            _close_listener(listener)
        self._listeners.clear()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._close_listeners()
        for connection in self._connections:
            with contextlib.suppress(OSError):
                connection.close()


@dataclass
class DnsResponder:
    """A tiny authoritative DNS server over UDP on 127.0.0.1.

    `records` maps a name to its addresses by type, e.g.
    {"v6only.test.": {"AAAA": ["::1"]}}. A known name without the asked type
    gets an empty NOERROR answer (NODATA), an unknown name NXDOMAIN.
    """

    records: Mapping[str, Mapping[str, list[str]]]
    host: str = "127.0.0.1"
    port: int = 0
    queries: list[tuple[str, str]] = field(default_factory=list)
    _socket: socket.socket | None = None

    def __enter__(self) -> DnsResponder:
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.bind((self.host, 0))
        self._socket = server
        self.port = int(server.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def _serve(self) -> None:
        assert self._socket is not None
        with contextlib.suppress(OSError):
            while True:
                wire, client = self._socket.recvfrom(4096)
                if not wire:  # shut down by __exit__
                    return
                self._socket.sendto(self._answer(wire), client)

    def _answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text().lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        known = self.records.get(name)
        if known is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif known.get(rdtype):
            response.answer.append(
                dns.rrset.from_text_list(
                    question.name, 60, dns.rdataclass.IN, rdtype, known[rdtype]
                )
            )
        return bytes(response.to_wire())

    def __exit__(self, *exc: object) -> None:
        assert self._socket is not None
        _close_listener(self._socket)


# --- network namespaces ---------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[3]


def namespace_unavailable_reason() -> str:
    """Why tests cannot make a network namespace here ("" when they can)."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "needs iproute2's `ip` for network namespaces"
    probe = f"wpt-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` is unavailable: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], check=True)
    return ""


@contextlib.contextmanager
def network_namespace(*setup: str) -> Iterator[str]:
    """A fresh network namespace with loopback up; `setup` commands run inside it."""
    name = f"wpt-{os.getpid()}-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        in_namespace(name, "ip link set lo up")
        for command in setup:
            in_namespace(name, command)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


def in_namespace(namespace: str, command: str) -> str:
    """Run a shell-free command line inside `namespace`; returns its stdout."""
    completed = subprocess.run(
        ["ip", "netns", "exec", namespace, *shlex.split(command)],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{command!r} in {namespace} failed: {completed.stderr.strip()}")
    return completed.stdout


def python_in_namespace(namespace: str, code: str, *, timeout_s: float = 60.0) -> Any:
    """Run Python `code` inside `namespace`; the code prints one JSON document, returned."""
    completed = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"python in {namespace} failed: {completed.stderr.strip()}")
    return json.loads(completed.stdout)
