"""The reference measurement server: what probes measure against.

Four services, one process (`wardprobe-aggregator reference-server serve`):

- a pool of iperf3 servers, one `iperf3 -s -p PORT` per port, because an
  iperf3 server runs one test at a time; the aggregator hands out the ports
  as test slots. Each is supervised: restarted (with back-off) if it dies.
- a TCP echo service: sends back what it reads. The latency check times TCP
  connects to it; the IPv6 check sends ~1400 bytes over IPv6 and reads them
  back (a path-MTU black hole shows up here and nowhere else).
- a small authoritative DNS responder for the IPv6 check's names: one name
  with AAAA only, one with A and AAAA; and, when configured, zones with their
  SOA, NS and names with A, AAAA and MX records (the emulated city's services,
  agent/measurements/ipv6_services.py); NXDOMAIN for anything else.
- the HTTP endpoints of a self-hosted Speedtest "mini" (aggregator/
  reference/speedtest_mini.py), for the speedtest-cli backend, with the configuration
  speedtest-cli would otherwise fetch from speedtest.net.

Configuration is a `ReferenceServiceConfig`; its fields are also the keys of
the TOML file `reference-server serve --config` reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aggregator.reference.speedtest_mini import SpeedtestMini, SpeedtestMiniConfig

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Port = Annotated[int, Field(ge=1, le=65535)]
PortOrAny = Annotated[int, Field(ge=0, le=65535)]  # 0: any free port (tests)

# Python 3.11's socket module lacks IP_PKTINFO; 8 is its value in <linux/in.h>.
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
# Longest DNS query read; real ones are far smaller.
DNS_MAX_QUERY_BYTES = 4096
# Seconds an iperf3 child gets to exit after SIGTERM before SIGKILL.
IPERF3_STOP_GRACE_S = 5.0
# An iperf3 that dies sooner than this after starting is failing, not crashing
# once: its restart delay doubles (up to IPERF3_MAX_RESTART_DELAY_S).
IPERF3_HEALTHY_RUN_S = 5.0
IPERF3_MAX_RESTART_DELAY_S = 30.0


class ReferenceServerError(RuntimeError):
    """A service of the reference server could not start."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DnsName(_Strict):
    """A name the DNS responder answers for, with the addresses it gives.
    A name with only IPv6 addresses is the IPv6-only target."""

    name: str
    ipv4: tuple[ipaddress.IPv4Address, ...] = ()
    ipv6: tuple[ipaddress.IPv6Address, ...] = ()
    # Its mail exchangers, most preferred first (a mail domain need not have an address).
    mx: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _dns_name(value)

    @field_validator("mx")
    @classmethod
    def _valid_exchangers(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_dns_name(v) for v in values)

    @model_validator(mode="after")
    def _has_an_address(self) -> DnsName:
        if not self.ipv4 and not self.ipv6 and not self.mx:
            raise ValueError(f"DNS name {self.name!r} has no address or MX to answer with")
        return self


class DnsZone(_Strict):
    """A zone the responder is authoritative for (the city's services, in the
    emulation): SOA and NS at its apex, and NXDOMAIN with its SOA for a name
    under it that is not among `dns_names`."""

    name: str
    name_servers: tuple[str, ...] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _dns_name(value)

    @field_validator("name_servers")
    @classmethod
    def _valid_servers(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_dns_name(v) for v in values)


def _dns_name(value: str) -> str:
    try:
        parsed = dns.name.from_text(value)
    except dns.exception.DNSException as exc:
        raise ValueError(f"not a DNS name: {value!r} ({exc})") from exc
    return parsed.to_text(omit_final_dot=True).lower()


class ReferenceServiceConfig(_Strict):
    """What the reference server listens on and answers."""

    # Echo and DNS listen on each; "0.0.0.0" and "::" mean every address.
    listen_addresses: tuple[IPAddress, ...] = Field(
        default=(ipaddress.IPv4Address("0.0.0.0"), ipaddress.IPv6Address("::")), min_length=1
    )
    iperf3_ports: tuple[Port, ...] = Field(default=(5201, 5202, 5203, 5204), min_length=1)
    # iperf3 binds one address or none; None listens on every address,
    # IPv4 and IPv6 (one dual-stack socket), which keeps one test per port.
    iperf3_bind_address: IPAddress | None = None
    iperf3_binary: str = "iperf3"
    iperf3_restart_delay_s: float = Field(default=1.0, gt=0)
    iperf3_start_timeout_s: float = Field(default=10.0, gt=0)  # until every port listens
    tcp_echo_port: PortOrAny = 7007
    echo_idle_timeout_s: float = Field(default=30.0, gt=0)
    dns_port: PortOrAny = 53
    dns_names: tuple[DnsName, ...] = ()
    dns_zones: tuple[DnsZone, ...] = ()
    dns_ttl_s: int = Field(default=60, ge=0)
    # The speedtest mini's HTTP port (on every listen address); None: not served.
    speedtest_port: PortOrAny | None = 8080
    speedtest: SpeedtestMiniConfig = Field(default_factory=SpeedtestMiniConfig)

    @field_validator("iperf3_ports")
    @classmethod
    def _distinct_ports(cls, ports: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(ports)) != len(ports):
            raise ValueError("iperf3_ports has a port twice")
        return ports

    @field_validator("dns_names")
    @classmethod
    def _distinct_names(cls, names: tuple[DnsName, ...]) -> tuple[DnsName, ...]:
        seen = [n.name for n in names]
        if len(set(seen)) != len(seen):
            raise ValueError("dns_names has a name twice")
        return names


# -- iperf3 pool ---------------------------------------------------------


class Iperf3Pool:
    """One supervised `iperf3 -s` per port."""

    def __init__(
        self,
        ports: Sequence[int],
        *,
        bind_address: IPAddress | None = None,
        binary: str = "iperf3",
        restart_delay_s: float = 1.0,
    ) -> None:
        """Nothing runs until `start()`."""
        self.ports = tuple(ports)
        self._bind_address = bind_address
        self._binary = binary
        self._restart_delay_s = restart_delay_s
        self._processes: dict[int, asyncio.subprocess.Process] = {}
        self._ready = {port: asyncio.Event() for port in self.ports}
        self._last_line: dict[int, str] = {}  # its last error, else its first line
        self._restarts = dict.fromkeys(self.ports, 0)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        # While start() waits: an iperf3 that ends before it listens (port
        # taken, bad bind address, no binary) fails the start at once, with
        # its reason, instead of being restarted until the start times out.
        self._starting = False
        self._start_failure: asyncio.Future[str] | None = None

    @property
    def pids(self) -> Mapping[int, int | None]:
        """Port -> pid of its running iperf3 (None between restarts)."""
        return {
            port: (proc.pid if (proc := self._processes.get(port)) and proc.returncode is None
                   else None)
            for port in self.ports
        }  # fmt: skip

    @property
    def restarts(self) -> Mapping[int, int]:
        """Port -> how many times its iperf3 was restarted."""
        return dict(self._restarts)

    async def start(self, timeout_s: float = 10.0) -> None:
        """Start every port's iperf3 and wait until each listens. Raises
        ReferenceServerError (all stopped again) as soon as one iperf3 exits
        or cannot be run before it listens, or when they are not all
        listening after `timeout_s` (an iperf3 that hangs)."""
        self._stopping = False
        self._starting = True
        failure: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._start_failure = failure
        self._tasks = [
            asyncio.create_task(self._supervise(port), name=f"iperf3-{port}") for port in self.ports
        ]
        ready = asyncio.ensure_future(self.wait_ready(timeout_s))
        try:
            await asyncio.wait((ready, failure), return_when=asyncio.FIRST_COMPLETED)
            if failure.done():
                raise ReferenceServerError(failure.result())
            ready.result()  # raises when the wait timed out
        except ReferenceServerError:
            await self.stop()
            raise
        finally:
            ready.cancel()
            self._starting = False
            self._start_failure = None

    async def wait_ready(self, timeout_s: float = 10.0) -> None:
        """Wait until every port's iperf3 is listening."""
        try:
            async with asyncio.timeout(timeout_s):
                for event in self._ready.values():
                    await event.wait()
        except TimeoutError:
            silent = [
                f"{port} ({self._last_line.get(port, 'no output')})"
                for port, event in self._ready.items()
                if not event.is_set()
            ]
            raise ReferenceServerError(
                f"iperf3 not listening after {timeout_s} s on port(s): {', '.join(silent)}"
            ) from None

    async def stop(self) -> None:
        """Stop the supervisors, then each iperf3: SIGTERM, SIGKILL after a grace time."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        running = [p for p in self._processes.values() if p.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        for process in running:
            try:
                await asyncio.wait_for(process.wait(), IPERF3_STOP_GRACE_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        self._processes.clear()
        for event in self._ready.values():
            event.clear()

    def _argv(self, port: int) -> list[str]:
        # --forceflush: line-buffered output through the pipe, so "Server
        # listening" arrives when it is printed.
        argv = [self._binary, "-s", "-p", str(port), "--forceflush"]
        if self._bind_address is not None:
            argv += ["-B", str(self._bind_address)]
        return argv

    async def _supervise(self, port: int) -> None:
        delay_s = self._restart_delay_s
        while not self._stopping:
            started = time.monotonic()
            try:
                process = await asyncio.create_subprocess_exec(
                    *self._argv(port),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                )
            except OSError as exc:
                self._last_line[port] = f"cannot start {self._binary}: {exc}"
                log.error("iperf3 pool port %d: %s", port, self._last_line[port])
                if self._fail_start(f"iperf3 pool port {port}: {self._last_line[port]}"):
                    return
            else:
                self._processes[port] = process
                await self._follow_output(port, process)
                returncode = await process.wait()
                listened = self._ready[port].is_set()
                self._ready[port].clear()
                if self._stopping:
                    return
                if not listened and self._fail_start(
                    f"iperf3 on port {port} exited ({returncode}) before listening: "
                    f"{self._last_line.get(port, 'no output')}"
                ):
                    return
                log.warning(
                    "iperf3 on port %d exited (%s: %s); restarting in %.1f s",
                    port, returncode, self._last_line.get(port, "no output"), delay_s,
                )  # fmt: skip
            self._restarts[port] += 1
            await asyncio.sleep(delay_s)
            ran_long = time.monotonic() - started >= IPERF3_HEALTHY_RUN_S + delay_s
            delay_s = (
                self._restart_delay_s if ran_long else min(delay_s * 2, IPERF3_MAX_RESTART_DELAY_S)
            )

    def _fail_start(self, reason: str) -> bool:
        """During start(), end it with `reason`; True if it did (no restart then)."""
        failure = self._start_failure
        if not self._starting or failure is None:
            return False
        if not failure.done():
            failure.set_result(reason)
        return True

    async def _follow_output(self, port: int, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode(errors="replace").strip()
            if not line or set(line) == {"-"}:
                continue
            if "error" in line or port not in self._last_line:
                # The reason an iperf3 failed is its last error, not "exiting".
                self._last_line[port] = line
            if line.startswith("Server listening on"):
                self._ready[port].set()
                log.debug("iperf3 port %d: %s", port, line)
            elif "error" in line:
                # e.g. a client gone mid-test, or the port taken by another process.
                log.warning("iperf3 port %d: %s", port, line)
            elif line.startswith("Accepted connection from"):
                log.info("iperf3 port %d: %s", port, line)
            else:
                log.debug("iperf3 port %d: %s", port, line)


# -- TCP echo -------------------------------------------------------------


async def _echo_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, idle_timeout_s: float
) -> None:
    try:
        while True:
            async with asyncio.timeout(idle_timeout_s):
                data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (TimeoutError, ConnectionError):
        pass  # an idle or vanished client: nothing to report
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _start_echo(
    addresses: Sequence[IPAddress], port: int, idle_timeout_s: float
) -> tuple[list[asyncio.Server], int]:
    """Echo servers on each address; with port 0, all on the first one's port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _echo_connection(reader, writer, idle_timeout_s)

    servers: list[asyncio.Server] = []
    for address in addresses:
        # asyncio sets IPV6_V6ONLY, so "::" and "0.0.0.0" can both be bound.
        server = await asyncio.start_server(handle, host=str(address), port=port)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
    return servers, port


# -- DNS ------------------------------------------------------------------


def dns_response(
    query_wire: bytes, names: Sequence[DnsName], ttl_s: int, zones: Sequence[DnsZone] = ()
) -> bytes | None:
    """The authoritative answer to one DNS query (None: not worth answering).

    A configured name gets its A, AAAA or MX records (an empty NOERROR answer
    for a type it has none of); a zone's apex its SOA and NS; any other name
    gets NXDOMAIN. Inside a zone, an empty answer carries the zone's SOA.
    """
    try:
        query = dns.message.from_wire(query_wire)
    except dns.exception.DNSException:
        return None  # not a DNS message; answering garbage invites reflection
    if query.flags & dns.flags.QR:
        return None  # a response, not a query
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    if query.opcode() != dns.opcode.QUERY:
        response.set_rcode(dns.rcode.NOTIMP)
    elif len(query.question) != 1:
        response.set_rcode(dns.rcode.FORMERR)
    elif query.question[0].rdclass != dns.rdataclass.IN:
        response.set_rcode(dns.rcode.REFUSED)
    else:
        _answer_question(response, query.question[0], names, ttl_s, zones)
    max_bytes = max(512, query.payload) if query.edns >= 0 else 512
    try:
        return response.to_wire(max_size=max_bytes)
    except dns.exception.TooBig:
        # Only with many addresses per name: tell the client to retry over TCP.
        response.answer.clear()
        response.flags |= dns.flags.TC
        return response.to_wire()


def _answer_question(
    response: dns.message.Message,
    question: dns.rrset.RRset,
    names: Sequence[DnsName],
    ttl_s: int,
    zones: Sequence[DnsZone],
) -> None:
    qname, rdtype = question.name, question.rdtype
    known = {dns.name.from_text(n.name): n for n in names}
    entry = known.get(qname)
    # The innermost zone holding the name, if any.
    zone = max(
        (z for z in zones if qname.is_subdomain(dns.name.from_text(z.name))),
        key=lambda z: len(z.name),
        default=None,
    )
    apex = zone is not None and qname == dns.name.from_text(zone.name)
    records: list[str] = []
    if entry is not None:
        if rdtype == dns.rdatatype.A:
            records = [str(a) for a in entry.ipv4]
        elif rdtype == dns.rdatatype.AAAA:
            records = [str(a) for a in entry.ipv6]
        elif rdtype == dns.rdatatype.MX:
            records = [f"{10 * (i + 1)} {mx}." for i, mx in enumerate(entry.mx)]
    if apex and zone is not None:
        if rdtype == dns.rdatatype.NS:
            records = [f"{ns}." for ns in zone.name_servers]
        elif rdtype == dns.rdatatype.SOA:
            records = [_soa_text(zone, ttl_s)]
    if entry is None and not apex:
        response.set_rcode(dns.rcode.NXDOMAIN)
    if records:
        response.answer.append(
            dns.rrset.from_text_list(qname, ttl_s, dns.rdataclass.IN, rdtype, records)
        )
    elif zone is not None:
        # No data here: the SOA says whose zone said so (RFC 2308).
        response.authority.append(
            dns.rrset.from_text_list(
                dns.name.from_text(zone.name), ttl_s, dns.rdataclass.IN, dns.rdatatype.SOA,
                [_soa_text(zone, ttl_s)],
            )
        )  # fmt: skip


def _soa_text(zone: DnsZone, ttl_s: int) -> str:
    return f"{zone.name_servers[0]}. hostmaster.{zone.name}. 1 3600 600 86400 {ttl_s}"


class _DnsUdpListener:
    """One UDP socket answering DNS queries.

    Replies leave from the address each query was sent to (IP_PKTINFO /
    IPV6_PKTINFO): on a wildcard socket the kernel would otherwise pick the
    outgoing interface's address, and resolvers drop answers from an
    address they did not ask.
    """

    def __init__(self, sock: socket.socket, answer: Callable[[bytes], bytes | None]) -> None:
        self.sock = sock
        self._answer = answer
        self._family = sock.family
        if self._family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_readable)

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()

    def _on_readable(self) -> None:
        # Drain what is queued, but give other work a turn after a batch.
        for _ in range(64):
            try:
                data, ancdata, _flags, peer = self.sock.recvmsg(
                    DNS_MAX_QUERY_BYTES, socket.CMSG_SPACE(64)
                )
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("DNS receive failed: %s", exc)
                return
            reply = self._answer(data)
            if reply is None:
                continue
            try:
                self.sock.sendmsg([reply], self._source_of(ancdata), 0, peer)
            except OSError as exc:
                # UDP: a full buffer or a vanished peer loses one answer.
                log.debug("DNS reply to %s failed: %s", peer, exc)

    def _source_of(self, ancdata: list[tuple[int, int, bytes]]) -> list[tuple[int, int, bytes]]:
        for level, kind, data in ancdata:
            if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
                return [(level, kind, data)]  # in6_pktinfo: destination and interface
            if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
                _ifindex, _spec_dst, destination = struct.unpack("I4s4s", data[:12])
                # in_pktinfo for sending: ifindex 0, source = the query's destination.
                return [(level, kind, struct.pack("I4s4s", 0, destination, bytes(4)))]
        return []


def _bind_udp(address: IPAddress, port: int) -> socket.socket:
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            # So "::" and "0.0.0.0" can be bound side by side, as for TCP.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setblocking(False)
        sock.bind((str(address), port))
    except OSError:
        sock.close()
        raise
    return sock


# -- the whole server -----------------------------------------------------


class ReferenceServer:
    """The three services together; `start()` returns once all listen."""

    def __init__(self, config: ReferenceServiceConfig) -> None:
        """Nothing listens until `start()`."""
        self.config = config
        self.iperf3_pool = Iperf3Pool(
            config.iperf3_ports,
            bind_address=config.iperf3_bind_address,
            binary=config.iperf3_binary,
            restart_delay_s=config.iperf3_restart_delay_s,
        )
        self._echo_servers: list[asyncio.Server] = []
        self._dns_listeners: list[_DnsUdpListener] = []
        self._echo_port: int | None = None
        self._dns_port: int | None = None
        self.speedtest_mini: SpeedtestMini | None = (
            SpeedtestMini(
                [str(a) for a in config.listen_addresses], config.speedtest_port, config.speedtest
            )
            if config.speedtest_port is not None
            else None
        )

    @property
    def echo_port(self) -> int:
        """The TCP echo port actually bound (differs from the config's 0)."""
        if self._echo_port is None:
            raise ReferenceServerError("reference server not started")
        return self._echo_port

    @property
    def dns_port(self) -> int:
        """The DNS port actually bound (differs from the config's 0)."""
        if self._dns_port is None:
            raise ReferenceServerError("reference server not started")
        return self._dns_port

    async def start(self) -> None:
        """Bind echo and DNS, start the iperf3 pool; raise ReferenceServerError
        (having undone what started) if any cannot."""
        config = self.config
        try:
            self._echo_servers, self._echo_port = await _start_echo(
                config.listen_addresses, config.tcp_echo_port, config.echo_idle_timeout_s
            )
            port = config.dns_port
            for address in config.listen_addresses:
                sock = _bind_udp(address, port)
                port = sock.getsockname()[1]
                self._dns_listeners.append(
                    _DnsUdpListener(
                        sock,
                        lambda wire: dns_response(
                            wire, config.dns_names, config.dns_ttl_s, config.dns_zones
                        ),
                    )
                )
            self._dns_port = port
            if self.speedtest_mini is not None:
                await self.speedtest_mini.start()
        except OSError as exc:
            await self.stop()
            raise ReferenceServerError(f"cannot listen: {exc}") from exc
        try:
            await self.iperf3_pool.start(config.iperf3_start_timeout_s)
        except ReferenceServerError:
            await self.stop()
            raise
        log.info(
            "reference server up: iperf3 ports %s, TCP echo port %d, DNS port %d, on %s",
            ",".join(map(str, config.iperf3_ports)), self._echo_port, self._dns_port,
            ", ".join(map(str, config.listen_addresses)),
        )  # fmt: skip

    async def stop(self) -> None:
        """Close the listeners and stop the iperf3 children."""
        for listener in self._dns_listeners:
            listener.close()
        self._dns_listeners = []
        for server in self._echo_servers:
            server.close()
        for server in self._echo_servers:
            await server.wait_closed()
        self._echo_servers = []
        self._echo_port = self._dns_port = None
        if self.speedtest_mini is not None:
            await self.speedtest_mini.stop()
        await self.iperf3_pool.stop()

    async def __aenter__(self) -> ReferenceServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def serve(config: ReferenceServiceConfig) -> None:
    """Run the reference server until cancelled or SIGTERM, then stop the
    iperf3 children cleanly."""
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    handles_sigterm = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        # Only possible in the main thread of a Unix process.
        loop.add_signal_handler(signal.SIGTERM, stop_requested.set)
        handles_sigterm = True
    try:
        async with ReferenceServer(config):
            await stop_requested.wait()
            log.info("SIGTERM: stopping the reference server")
    finally:
        if handles_sigterm:
            loop.remove_signal_handler(signal.SIGTERM)
