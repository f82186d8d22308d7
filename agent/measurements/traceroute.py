"""Where the path is slow: a Paris traceroute to the reference server (and to
configured targets), over IPv4 and IPv6, with ICMP, UDP or TCP-SYN probes.

Paris traceroute (Augustin et al., 2006): a per-flow load balancer hashes
the fields that identify a flow, and a classic traceroute changes them from
probe to probe (UDP's destination port, ICMP's sequence number and so its
checksum), so consecutive hops may be taken from different paths and the
hop list shows links that do not exist. Here every probe of a trace has the
same flow identifier: the same addresses and ports (UDP, TCP: source port
`flow_id`, a fixed destination port), and for ICMP the same identifier and
the same checksum (the sequence number that tells probes apart is paid for
by two payload bytes). What tells the probes apart lies outside what load
balancers hash: IPv4's IP identification for UDP, the UDP payload on IPv6
(routers quote it back), ICMP's sequence number, TCP's sequence number.

Per hop (TTL / hop limit 1, 2, ...) `probes_per_hop` probes are sent, and
answers are awaited for `probe_timeout_s`: who answered, each probe's round
trip, the loss, the ICMP type and code, the TTL / hop limit the answer came
with. The trace stops when the target answers (echo reply, port
unreachable, SYN-ACK or RST), when a router says the target is unreachable,
after `silent_hops` hops in a row without an answer, or at `max_hops`.

Segments: the first hop is the CPE (the household's router), and so is in
the home, and so are the hops after it that answer from household addresses
(RFC 1918, link-local: a second router behind the CPE). The first hop after
those is the first outside the home: the operator's access router, whose
round trip is the access latency. The hops after it are "beyond", up to the
target. Home hops are stored as their /24 or /64 only (agent/measurements/
pathnet.py). An operator that numbers its own routers from RFC 1918 space
has them counted in the home: docs/schema.md says so.

scapy builds and reads the packets; it is imported by `run` alone (its
import costs a few tenths of a second and ~33 MB, docs/benchmarks.md), so
the measurement table and the resident daemon never load it. The packets
go out on a raw socket (CAP_NET_RAW, which the unit grants) and answers
come in on raw ICMP, ICMPv6 and TCP sockets.
"""

from __future__ import annotations

import enum
import errno
import os
import select
import socket
import statistics
import struct
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent.measurements import pathnet
from agent.measurements.base import (
    IpFamily,
    MeasurementContext,
    MeasurementResult,
    Method,
    ReasonKind,
    Status,
)

# The traditional traceroute port: nothing listens there, so a UDP probe that
# reaches the target is answered with "port unreachable".
UDP_PORT = 33434
# ICMP / ICMPv6 types and codes (RFC 792, RFC 4443).
_V4_ECHO_REPLY, _V4_UNREACHABLE, _V4_TIME_EXCEEDED = 0, 3, 11
_V4_PORT_UNREACHABLE = 3
_V6_UNREACHABLE, _V6_TIME_EXCEEDED, _V6_ECHO_REPLY = 1, 3, 129
_V6_PORT_UNREACHABLE = 4
# Every ICMP probe's payload word plus its sequence number add up to this
# (ones' complement), so the checksum stays the same across probes.
_CHECKSUM_BALANCE = 0xFFFF
# struct timespec as the kernel hands it (two C longs), and room for it and a hop limit.
_TIMESPEC = struct.Struct("@ll")
_ANCILLARY_BYTES = socket.CMSG_SPACE(4) + socket.CMSG_SPACE(_TIMESPEC.size)


class TracerouteProtocol(enum.StrEnum):
    """What the probes are."""

    ICMP = "icmp"  # echo requests
    UDP = "udp"  # datagrams to UDP_PORT
    TCP = "tcp"  # SYNs to a port that accepts (the reference server's echo port)


class Segment(enum.StrEnum):
    """Where on the path a hop is."""

    HOME = "home"
    ACCESS = "access"  # the first hop outside the home
    BEYOND = "beyond"
    DESTINATION = "destination"


@dataclass(frozen=True, kw_only=True)
class TracerouteParams:
    """One run: every target traced in each family it has an address of."""

    protocol: TracerouteProtocol
    targets: tuple[str, ...]  # names or addresses
    families: tuple[IpFamily, ...] = (IpFamily.IPV4, IpFamily.IPV6)
    port: int | None = None  # UDP / TCP destination port (UDP default: UDP_PORT)
    max_hops: int = 30
    probes_per_hop: int = 3
    silent_hops: int = 5  # stop after this many hops in a row without an answer
    probe_timeout_s: float = 1.0  # how long a hop's probes wait for their answers
    interface: str = ""  # send on this interface ("" = routing decides)
    timeout_s: float = 120.0  # the whole run, every target
    dns_server: str = ""  # who resolves target names ("" = the system's resolver)
    dns_port: int = 53

    def __post_init__(self) -> None:
        if not self.targets or not all(self.targets):
            raise ValueError("a traceroute needs at least one target")
        if not self.families:
            raise ValueError("a traceroute needs at least one IP family")
        if self.protocol is TracerouteProtocol.TCP and self.port is None:
            raise ValueError("a TCP traceroute needs the port of a service that accepts")
        if self.protocol is TracerouteProtocol.ICMP and self.port is not None:
            raise ValueError("an ICMP traceroute has no port")
        if self.port is not None and not 0 < self.port < 65536:
            raise ValueError(f"port out of range: {self.port}")
        if not 1 <= self.max_hops <= 255:
            raise ValueError(f"max_hops must be 1..255, got {self.max_hops}")
        if not 1 <= self.probes_per_hop <= 16:
            raise ValueError(f"probes_per_hop must be 1..16, got {self.probes_per_hop}")
        if not 1 <= self.silent_hops <= 255:
            raise ValueError(f"silent_hops must be 1..255, got {self.silent_hops}")
        if self.probe_timeout_s <= 0 or self.timeout_s <= 0:
            raise ValueError("probe_timeout_s and timeout_s must be positive")


@dataclass(frozen=True, kw_only=True)
class TracerouteHop:
    """What answered the probes of one TTL (proto: wardprobe.v1.TracerouteHop)."""

    hop: int
    address: str = ""  # "" = silent; a home hop as its /24 or /64
    rtts_ms: tuple[float, ...] = ()
    probes_sent: int = 0
    loss_pct: float | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    reply_ttl: int | None = None
    segment: str = ""  # a Segment, "" when silent


@dataclass(frozen=True, kw_only=True)
class TracerouteResult(MeasurementResult):
    """One trace to one target address (proto: wardprobe.v1.TracerouteResult)."""

    protocol: str
    target: str = ""
    target_port: int | None = None
    flow_id: int | None = None
    max_hops: int | None = None
    reached: bool | None = None
    stop_reason: str = ""  # reached | unreachable | max_hops | silent_hops
    hop_count: int | None = None
    first_outside_hop: int | None = None
    first_outside_address: str = ""
    home_rtt_ms: float | None = None
    access_rtt_ms: float | None = None
    target_rtt_ms: float | None = None
    hops: tuple[TracerouteHop, ...] = ()


def _params_from(ctx: MeasurementContext, protocol: TracerouteProtocol) -> TracerouteParams:
    targets = ctx.traceroute_targets or tuple(t for t in (ctx.server_host, ctx.ipv6_only_host) if t)
    port = None
    if protocol is TracerouteProtocol.UDP:
        port = UDP_PORT
    elif protocol is TracerouteProtocol.TCP:
        port = ctx.tcp_echo_port
    return TracerouteParams(
        protocol=protocol,
        targets=targets,
        port=port,
        max_hops=ctx.traceroute_max_hops,
        silent_hops=ctx.traceroute_silent_hops,
        interface=ctx.interface,
        timeout_s=ctx.timeout_s,
        dns_server=ctx.dns_server,
        dns_port=ctx.dns_port,
    )


def icmp_params_from(ctx: MeasurementContext) -> TracerouteParams:
    """ICMP traceroute to the reference server and the IPv6-only target (or the
    configured targets)."""
    return _params_from(ctx, TracerouteProtocol.ICMP)


def udp_params_from(ctx: MeasurementContext) -> TracerouteParams:
    """UDP traceroute to the same targets."""
    return _params_from(ctx, TracerouteProtocol.UDP)


def tcp_params_from(ctx: MeasurementContext) -> TracerouteParams:
    """TCP-SYN traceroute to the same targets, at the reference server's echo port."""
    return _params_from(ctx, TracerouteProtocol.TCP)


def run(params: TracerouteParams) -> tuple[TracerouteResult, ...]:
    """Trace every target in each of its families; one result per (target, address).

    A family the target has no address of, or the line no route for, is left
    out; a target with nothing left to trace is one result saying why: SKIPPED
    when only routes were missing (an IPv4-only line is not an IPv6 failure),
    else FAILED."""
    from scapy import VERSION as scapy_version  # only here: see the module's docstring

    deadline = time.monotonic() + params.timeout_s
    results: list[TracerouteResult] = []
    for target in params.targets:
        method = Method(
            tool=f"scapy-paris-traceroute-{params.protocol}",
            tool_version=f"scapy {scapy_version}",
            server=target,
            server_port=params.port,
        )
        addresses, why, no_route_only = _addresses(target, params)
        if not addresses:
            kind = ReasonKind.NOT_CONFIGURED if no_route_only else ReasonKind.NETWORK_ERROR
            results.append(_failed(params, method, target, why, kind))
            continue
        for address in addresses:
            if time.monotonic() >= deadline:
                results.append(
                    _failed(
                        params, method, address,
                        f"no time left for {address} within {params.timeout_s:g} s",
                        ReasonKind.TIMEOUT,
                    )
                )  # fmt: skip
                continue
            results.append(_trace(params, method, address, deadline))
    return tuple(results)


def _failed(
    params: TracerouteParams, method: Method, target: str, why: str, kind: ReasonKind
) -> TracerouteResult:
    """A trace that could not be made (NOT_CONFIGURED: the line lacks the
    family, a SKIPPED result)."""
    return TracerouteResult(
        measured_at=datetime.now(UTC),
        status=Status.SKIPPED if kind is ReasonKind.NOT_CONFIGURED else Status.FAILED,
        status_reason=why,
        status_reason_kind=kind,
        method=method,
        interface=params.interface,
        protocol=params.protocol.value,
        target=target if _is_literal(target) else "",
        target_port=params.port,
        max_hops=params.max_hops,
    )


def _is_literal(host: str) -> bool:
    try:
        pathnet.family_of(host)
    except ValueError:
        return False
    return True


def _addresses(target: str, params: TracerouteParams) -> tuple[list[str], str, bool]:
    """The target's addresses to trace (one per family it has and the line
    routes), or none, why, and whether only routes were missing (the line
    lacks the family: nothing to trace, not a failure)."""
    candidates: list[str] = []
    reasons: list[str] = []
    families = [pathnet.family_of(target)] if _is_literal(target) else params.families
    for family in families:
        addresses, why = pathnet.resolve(target, family, params.dns_server, params.dns_port)
        if addresses:
            candidates.append(addresses[0])
        else:
            reasons.append(why)
    found = [a for a in candidates if _routable(a, params.interface)]
    unroutable = [a for a in candidates if a not in found]
    reasons += [f"no {pathnet.family_of(a)} route to {a} on this line" for a in unroutable]
    # The target has addresses, only not of a family the line has: nothing to trace.
    return found, "; ".join(reasons), bool(unroutable)


def _routable(address: str, interface: str) -> bool:
    try:
        pathnet.source_address(address, interface)
    except OSError:
        return False
    return True


@dataclass
class _Answer:
    """One probe's answer."""

    address: str
    rtt_ms: float
    icmp_type: int | None
    icmp_code: int | None
    reply_ttl: int | None
    from_target: bool  # the target itself answered (the trace is done)
    unreachable: bool  # a router said the target cannot be reached


@dataclass
class _Probe:
    ttl: int
    sent_ns: int  # CLOCK_REALTIME, as the kernel's receive times are
    sent_monotonic_ns: int = 0
    answer: _Answer | None = None


@dataclass
class _Tracer:
    """The sockets and packets of one trace."""

    params: TracerouteParams
    family: IpFamily
    source: str
    target: str
    flow_id: int
    seq_base: int  # TCP: the sequence number of probe n is seq_base + n
    build: Callable[[int, int], bytes]  # (probe number, ttl) -> packet
    probes: dict[int, _Probe] = field(default_factory=dict)
    sockets: list[socket.socket] = field(default_factory=list)


def _trace(
    params: TracerouteParams, method: Method, target: str, deadline: float
) -> TracerouteResult:
    measured_at = datetime.now(UTC)
    family = pathnet.family_of(target)
    common: dict[str, Any] = {
        "measured_at": measured_at,
        "method": method,
        "interface": params.interface,
        "ip_family": family,
        "protocol": params.protocol.value,
        "target": target,
        "target_port": params.port,
        "max_hops": params.max_hops,
    }
    try:
        source = pathnet.source_address(target, params.interface)
        sender = pathnet.raw_sender(family, params.interface)
    except PermissionError as exc:
        return TracerouteResult(
            status=Status.FAILED,
            status_reason=f"raw sockets need CAP_NET_RAW: {exc.strerror}",
            status_reason_kind=ReasonKind.TOOL_FAILED,
            **common,
        )
    except OSError as exc:
        return TracerouteResult(
            status=Status.FAILED,
            status_reason=f"cannot send to {target}: {exc.strerror or exc}",
            status_reason_kind=ReasonKind.NETWORK_ERROR,
            **common,
        )
    # The flow identifier: random per trace (another trace's answers do not
    # match), the same for every probe of it.
    flow_id = 33000 + int.from_bytes(os.urandom(2), "big") % 30000
    seq_base = int.from_bytes(os.urandom(4), "big") & 0x7FFFFFFF
    build = _packet_builder(params, family, source, target, flow_id, seq_base)
    tracer = _Tracer(params, family, source, target, flow_id, seq_base, build)
    try:
        tracer.sockets = _listeners(params, family)
    except OSError as exc:
        sender.close()
        return TracerouteResult(
            status=Status.FAILED,
            status_reason=f"cannot listen for answers: {exc.strerror or exc}",
            status_reason_kind=ReasonKind.TOOL_FAILED,
            **common,
        )
    hops: list[list[_Probe]] = []
    stop_reason = "max_hops"
    timed_out = False
    silent_run = 0
    number = 0
    try:
        for ttl in range(1, params.max_hops + 1):
            if time.monotonic() >= deadline:
                timed_out = True
                break
            # Built first (scapy takes about a millisecond a packet), then sent
            # back to back, each timed from just before it leaves.
            packets = []
            for _ in range(params.probes_per_hop):
                number += 1
                packets.append((number, tracer.build(number, ttl)))
            sent = []
            for probe_number, packet in packets:
                probe = _Probe(ttl, time.time_ns(), time.perf_counter_ns())
                tracer.probes[probe_number] = probe
                sender.sendto(packet, (target, 0))
                sent.append(probe)
            _collect(tracer, sent, min(deadline, time.monotonic() + params.probe_timeout_s))
            hops.append(sent)
            answers = [p.answer for p in sent if p.answer is not None]
            silent_run = 0 if answers else silent_run + 1
            if any(a.from_target for a in answers):
                stop_reason = "reached"
                break
            if any(a.unreachable for a in answers):
                stop_reason = "unreachable"
                break
            if silent_run >= params.silent_hops:
                stop_reason = "silent_hops"
                break
    except OSError as exc:
        return TracerouteResult(
            status=Status.FAILED,
            status_reason=f"sending to {target} failed at hop {len(hops) + 1}: "
            f"{exc.strerror or exc}",
            status_reason_kind=ReasonKind.NETWORK_ERROR,
            **common,
        )
    finally:
        sender.close()
        for sock in tracer.sockets:
            sock.close()
    summary = summarise(hops, target)
    if timed_out:
        return TracerouteResult(
            status=Status.FAILED,
            status_reason=f"the trace did not finish within {params.timeout_s:g} s",
            status_reason_kind=ReasonKind.TIMEOUT,
            flow_id=flow_id,
            hops=summary.hops,
            **common,
        )
    return TracerouteResult(
        status=Status.OK,
        flow_id=flow_id,
        reached=stop_reason == "reached",
        stop_reason=stop_reason,
        hop_count=summary.hop_count,
        first_outside_hop=summary.first_outside_hop,
        first_outside_address=summary.first_outside_address,
        home_rtt_ms=summary.home_rtt_ms,
        access_rtt_ms=summary.access_rtt_ms,
        target_rtt_ms=summary.target_rtt_ms,
        hops=summary.hops,
        **common,
    )


@dataclass(frozen=True)
class PathSummary:
    """The hops with their segments, and the figures derived from them."""

    hops: tuple[TracerouteHop, ...]
    hop_count: int | None
    first_outside_hop: int | None
    first_outside_address: str
    home_rtt_ms: float | None
    access_rtt_ms: float | None
    target_rtt_ms: float | None


def summarise(hops: Sequence[Sequence[_Probe]], target: str) -> PathSummary:
    """Each hop's figures and segment (see the module's docstring), home hops reduced."""
    answered: list[tuple[int, _Answer | None, list[_Probe]]] = []
    for ttl, probes in enumerate(hops, start=1):
        first = next((p.answer for p in probes if p.answer is not None), None)
        answered.append((ttl, first, list(probes)))
    # The home: the CPE (hop 1), then hops answering from household addresses.
    home_end = 1 if answered else 0
    for ttl, answer, _ in answered[1:]:
        if answer is None or not pathnet.is_household_private(answer.address):
            break
        home_end = ttl
    result_hops: list[TracerouteHop] = []
    first_outside: tuple[int, str, float | None] | None = None
    home_rtt: float | None = None
    target_rtt: float | None = None
    hop_count: int | None = None
    for ttl, answer, probes in answered:
        rtts = tuple(p.answer.rtt_ms for p in probes if p.answer is not None)
        median = statistics.median(rtts) if rtts else None
        address, segment = "", ""
        if answer is not None:
            if answer.from_target or answer.address == target:
                segment = Segment.DESTINATION
                hop_count, target_rtt = ttl, median
                address = answer.address
            elif ttl <= home_end:
                segment = Segment.HOME
                address = pathnet.household_prefix(answer.address)
                home_rtt = median
            elif first_outside is None:
                segment = Segment.ACCESS
                address = answer.address
            else:
                segment = Segment.BEYOND
                address = answer.address
            if first_outside is None and segment in (Segment.ACCESS, Segment.DESTINATION):
                first_outside = (ttl, answer.address, median)
        result_hops.append(
            TracerouteHop(
                hop=ttl,
                address=address,
                rtts_ms=rtts,
                probes_sent=len(probes),
                loss_pct=100.0 * (len(probes) - len(rtts)) / len(probes) if probes else None,
                icmp_type=answer.icmp_type if answer else None,
                icmp_code=answer.icmp_code if answer else None,
                reply_ttl=answer.reply_ttl if answer else None,
                segment=str(segment),
            )
        )
    return PathSummary(
        hops=tuple(result_hops),
        hop_count=hop_count,
        first_outside_hop=first_outside[0] if first_outside else None,
        first_outside_address=first_outside[1] if first_outside else "",
        home_rtt_ms=home_rtt,
        access_rtt_ms=first_outside[2] if first_outside else None,
        target_rtt_ms=target_rtt,
    )


# --- packets ------------------------------------------------------------------


def _packet_builder(
    params: TracerouteParams,
    family: IpFamily,
    source: str,
    target: str,
    flow_id: int,
    seq_base: int,
) -> Callable[[int, int], bytes]:
    """A function making probe `number` with `ttl`, all of one flow."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
    from scapy.packet import Packet, Raw

    port = params.port or UDP_PORT

    def build(number: int, ttl: int) -> bytes:
        ip: Packet
        if family is IpFamily.IPV6:
            ip = IPv6(src=source, dst=target, hlim=ttl, fl=flow_id & 0xFFFFF)
        else:
            # IP id tells probes apart (outside what load balancers hash); DF set.
            ip = IP(src=source, dst=target, ttl=ttl, id=number & 0xFFFF, flags="DF")
        word = struct.pack("!H", number & 0xFFFF)
        if params.protocol is TracerouteProtocol.ICMP:
            balance = struct.pack("!H", (_CHECKSUM_BALANCE - number) % 0xFFFF)
            if family is IpFamily.IPV6:
                return bytes(ip / ICMPv6EchoRequest(id=flow_id, seq=number, data=balance))
            return bytes(ip / ICMP(type=8, id=flow_id, seq=number) / Raw(balance))
        if params.protocol is TracerouteProtocol.UDP:
            return bytes(ip / UDP(sport=flow_id, dport=port) / Raw(word))
        return bytes(
            ip / TCP(sport=flow_id, dport=port, flags="S", seq=(seq_base + number) & 0xFFFFFFFF,
                     window=65535)
        )  # fmt: skip

    return build


def _listeners(params: TracerouteParams, family: IpFamily) -> list[socket.socket]:
    icmp = socket.IPPROTO_ICMPV6 if family is IpFamily.IPV6 else socket.IPPROTO_ICMP
    sockets = [pathnet.raw_listener(family, icmp, params.interface)]
    if params.protocol is TracerouteProtocol.TCP:
        sockets.append(pathnet.raw_listener(family, socket.IPPROTO_TCP, params.interface))
    return sockets


def _collect(tracer: _Tracer, waiting: list[_Probe], until: float) -> None:
    """Read answers until every probe in `waiting` has one or `until` passes."""
    while any(p.answer is None for p in waiting):
        remaining = until - time.monotonic()
        if remaining <= 0:
            return
        readable, _, _ = select.select(tracer.sockets, [], [], remaining)
        for sock in readable:
            while True:
                try:
                    data, ancillary, _flags, sender = sock.recvmsg(65535, _ANCILLARY_BYTES)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:
                    if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                        break
                    raise
                # The kernel's receive time (SO_TIMESTAMPNS): not how late this
                # loop came to read it.
                read_monotonic_ns = time.perf_counter_ns()
                received_ns = time.time_ns()
                hop_limit = None
                for level, kind, value in ancillary:
                    if level == socket.IPPROTO_IPV6 and kind == pathnet.IPV6_HOPLIMIT:
                        hop_limit = int.from_bytes(value[:4], sys.byteorder)
                    elif level == socket.SOL_SOCKET and kind == pathnet.SO_TIMESTAMPNS:
                        seconds, nanoseconds = _TIMESPEC.unpack(value[: _TIMESPEC.size])
                        received_ns = seconds * 1_000_000_000 + nanoseconds
                matched = _match(tracer, data, str(sender[0]).split("%")[0], sock.proto, hop_limit)
                if matched is None:
                    continue
                number, answer_fields = matched
                probe = tracer.probes.get(number)
                if (
                    probe is not None
                    and probe.answer is not None
                    and tracer.params.protocol is TracerouteProtocol.TCP
                    and answer_fields["from_target"]
                ):
                    # The target answers a second SYN of the same flow with an
                    # ACK of the first one (RFC 5961's challenge ACK): it is the
                    # answer to the oldest probe of this hop still waiting.
                    probe = next((p for p in waiting if p.answer is None), None)
                if probe is None or probe.answer is not None:
                    continue
                rtt_ns = received_ns - probe.sent_ns
                upper_ns = read_monotonic_ns - probe.sent_monotonic_ns
                if not 0 <= rtt_ns <= upper_ns:
                    rtt_ns = upper_ns  # the wall clock was stepped meanwhile
                probe.answer = _Answer(rtt_ms=rtt_ns / 1e6, **answer_fields)


def _match(
    tracer: _Tracer, data: bytes, sender: str, proto: int, hop_limit: int | None
) -> tuple[int, dict[str, Any]] | None:
    """The probe number an answer belongs to, and what it says (None: not ours)."""
    if tracer.family is IpFamily.IPV6:
        return _match_v6(tracer, data, sender, proto, hop_limit)
    return _match_v4(tracer, data, sender, proto)


def _match_v4(
    tracer: _Tracer, data: bytes, sender: str, proto: int
) -> tuple[int, dict[str, Any]] | None:
    from scapy.layers.inet import ICMP, IP, TCP, ICMPerror, IPerror, UDPerror

    packet = IP(data)
    ttl = int(packet.ttl)
    if proto == socket.IPPROTO_TCP:
        if not packet.haslayer(TCP) or sender != tracer.target:
            return None
        tcp = packet[TCP]
        if int(tcp.sport) != (tracer.params.port or 0) or int(tcp.dport) != tracer.flow_id:
            return None
        acked = (int(tcp.ack) - 1 - tracer.seq_base) & 0xFFFFFFFF
        fields = _fields(sender, None, None, ttl, from_target=True, unreachable=False)
        return acked, fields
    if not packet.haslayer(ICMP):
        return None
    icmp = packet[ICMP]
    kind, code = int(icmp.type), int(icmp.code)
    if kind == _V4_ECHO_REPLY:
        if tracer.params.protocol is not TracerouteProtocol.ICMP or int(icmp.id) != tracer.flow_id:
            return None
        return int(icmp.seq), _fields(sender, kind, code, ttl, from_target=True, unreachable=False)
    if kind not in (_V4_TIME_EXCEEDED, _V4_UNREACHABLE) or not packet.haslayer(IPerror):
        return None
    quoted = packet[IPerror]
    if str(quoted.dst) != tracer.target:
        return None
    number: int | None = None
    if tracer.params.protocol is TracerouteProtocol.ICMP and packet.haslayer(ICMPerror):
        if int(packet[ICMPerror].id) == tracer.flow_id:
            number = int(packet[ICMPerror].seq)
    elif tracer.params.protocol is TracerouteProtocol.UDP and packet.haslayer(UDPerror):
        if int(packet[UDPerror].dport) == (tracer.params.port or UDP_PORT):
            number = _latest(tracer, int(quoted.id))
    elif tracer.params.protocol is TracerouteProtocol.TCP:
        number = _quoted_tcp_number(tracer, packet)
    return _error_answer(
        tracer, number, sender, kind, code, ttl,
        unreachable_type=_V4_UNREACHABLE, port_unreachable_code=_V4_PORT_UNREACHABLE,
    )  # fmt: skip


def _match_v6(
    tracer: _Tracer, data: bytes, sender: str, proto: int, hop_limit: int | None
) -> tuple[int, dict[str, Any]] | None:
    from scapy.layers.inet import TCP, UDPerror
    from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPerror6, IPv6
    from scapy.packet import Raw

    if proto == socket.IPPROTO_TCP:
        if sender != tracer.target or len(data) < 20:
            return None
        tcp = TCP(data)
        if int(tcp.sport) != (tracer.params.port or 0) or int(tcp.dport) != tracer.flow_id:
            return None
        acked = (int(tcp.ack) - 1 - tracer.seq_base) & 0xFFFFFFFF
        return acked, _fields(sender, None, None, hop_limit, from_target=True, unreachable=False)
    if len(data) < 4:
        return None
    # The raw socket gives the ICMPv6 message alone: put the header back for scapy.
    packet = IPv6(
        bytes(IPv6(src=sender, dst=tracer.source, nh=58, hlim=hop_limit or 0) / Raw(data))
    )
    kind, code = data[0], data[1]
    if kind == _V6_ECHO_REPLY:
        if tracer.params.protocol is not TracerouteProtocol.ICMP or not packet.haslayer(
            ICMPv6EchoReply
        ):
            return None
        reply = packet[ICMPv6EchoReply]
        if int(reply.id) != tracer.flow_id:
            return None
        return int(reply.seq), _fields(
            sender, kind, code, hop_limit, from_target=True, unreachable=False
        )
    if kind not in (_V6_TIME_EXCEEDED, _V6_UNREACHABLE) or not packet.haslayer(IPerror6):
        return None
    quoted = packet[IPerror6]
    if str(quoted.dst) != tracer.target:
        return None
    number: int | None = None
    if tracer.params.protocol is TracerouteProtocol.ICMP and packet.haslayer(ICMPv6EchoRequest):
        request = packet[ICMPv6EchoRequest]
        if int(request.id) == tracer.flow_id:
            number = int(request.seq)
    elif tracer.params.protocol is TracerouteProtocol.UDP and packet.haslayer(UDPerror):
        udp = packet[UDPerror]
        payload = bytes(udp.payload)
        if int(udp.dport) == (tracer.params.port or UDP_PORT) and len(payload) >= 2:
            number = _latest(tracer, struct.unpack("!H", payload[:2])[0])
    elif tracer.params.protocol is TracerouteProtocol.TCP:
        number = _quoted_tcp_number(tracer, packet)
    return _error_answer(
        tracer, number, sender, kind, code, hop_limit,
        unreachable_type=_V6_UNREACHABLE, port_unreachable_code=_V6_PORT_UNREACHABLE,
    )  # fmt: skip


def _quoted_tcp_number(tracer: _Tracer, packet: Any) -> int | None:
    """The probe number of our TCP SYN quoted in an ICMP error (None: not ours)."""
    from scapy.layers.inet import TCPerror

    if not packet.haslayer(TCPerror) or int(packet[TCPerror].dport) != tracer.params.port:
        return None
    return (int(packet[TCPerror].seq) - tracer.seq_base) & 0xFFFFFFFF


def _error_answer(
    tracer: _Tracer,
    number: int | None,
    sender: str,
    kind: int,
    code: int,
    ttl: int | None,
    *,
    unreachable_type: int,
    port_unreachable_code: int,
) -> tuple[int, dict[str, Any]] | None:
    """What an ICMP error quoting probe `number` says; the family's type and code
    numbers tell a port unreachable from the target (arrived) from any other."""
    if number is None:
        return None
    reached = sender == tracer.target and kind == unreachable_type and code == port_unreachable_code
    return number, _fields(
        sender, kind, code, ttl,
        from_target=reached, unreachable=kind == unreachable_type and not reached,
    )  # fmt: skip


def _latest(tracer: _Tracer, word: int) -> int | None:
    """The latest probe whose number's low 16 bits are `word` (an IP id, a UDP payload word)."""
    candidates = [n for n in tracer.probes if n & 0xFFFF == word]
    return max(candidates) if candidates else None


def _fields(
    sender: str,
    kind: int | None,
    code: int | None,
    ttl: int | None,
    *,
    from_target: bool,
    unreachable: bool,
) -> dict[str, Any]:
    return {
        "address": sender,
        "icmp_type": kind,
        "icmp_code": code,
        "reply_ttl": ttl,
        "from_target": from_target,
        "unreachable": unreachable,
    }
