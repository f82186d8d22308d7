"""Round-trip time to one target: ICMP echo, or the time a TCP connect takes.

ICMP uses the kernel's unprivileged ping sockets (SOCK_DGRAM, IPPROTO_ICMP or
IPPROTO_ICMPV6; allowed for the groups in net.ipv4.ping_group_range) and
falls back to a raw socket, which needs CAP_NET_RAW. No packet library: the
echo request is eight header bytes and a payload.

TCP latency is the time `connect()` takes: one SYN / SYN-ACK round trip,
answered by the target's kernel. How a failed probe counts:

- no answer within `timeout_s` (or a network error such as "host
  unreachable") is a lost probe; the test still completes and reports loss;
- "connection refused" (the target's kernel answered with a reset: nothing
  listens on that port) is not loss but a configuration fault, so the test
  stops and is FAILED with that reason.

100 % loss is a completed test (status OK, loss_pct 100, RTT figures None).
"""

from __future__ import annotations

import enum
import errno
import itertools
import math
import os
import socket
import statistics
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent.measurements.base import (
    IpFamily,
    MeasurementContext,
    MeasurementResult,
    Method,
    ReasonKind,
    Status,
)

# ICMP and ICMPv6 echo types (RFC 792, RFC 4443).
_ECHO_REQUEST = {socket.AF_INET: 8, socket.AF_INET6: 128}
_ECHO_REPLY = {socket.AF_INET: 0, socket.AF_INET6: 129}
_ICMP_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
_PAYLOAD_BYTES = 56  # what ping sends by default
_TOKEN_BYTES = 8  # random start of the payload: tells our replies from anyone else's


class LatencyProtocol(enum.StrEnum):
    """How the round trip is measured."""

    ICMP = "icmp"  # echo request / echo reply
    TCP = "tcp"  # TCP connect (SYN / SYN-ACK)


@dataclass(frozen=True, kw_only=True)
class LatencyParams:
    """One latency test: `count` probes to `target`, `interval_s` apart."""

    protocol: LatencyProtocol
    target: str  # name or address
    port: int | None = None  # TCP only
    count: int = 10
    interval_s: float = 1.0  # between probe starts
    timeout_s: float = 2.0  # how long one probe waits for its answer
    interface: str = ""  # SO_BINDTODEVICE ("" = routing decides)

    def __post_init__(self) -> None:
        if not self.target:
            raise ValueError("target is empty")
        if self.protocol is LatencyProtocol.TCP:
            if self.port is None or not 0 < self.port < 65536:
                raise ValueError(f"a TCP latency test needs a port, got {self.port!r}")
        elif self.port is not None:
            raise ValueError("an ICMP latency test has no port")
        if not 1 <= self.count <= 65535:
            raise ValueError(f"count must be 1..65535, got {self.count}")
        if self.interval_s < 0:
            raise ValueError(f"interval_s must not be negative, got {self.interval_s}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s}")


@dataclass(frozen=True, kw_only=True)
class LatencyResult(MeasurementResult):
    """Round-trip times to one target (proto: wardprobe.v1.LatencyResult)."""

    protocol: str  # "icmp" or "tcp"
    target: str = ""  # the address probed ("" when the name did not resolve)
    target_port: int | None = None
    packets_sent: int = 0
    packets_received: int = 0
    rtt_min_ms: float | None = None
    rtt_median_ms: float | None = None
    rtt_p95_ms: float | None = None
    rtt_max_ms: float | None = None
    jitter_ms: float | None = None  # mean absolute difference of consecutive RTTs
    loss_pct: float | None = None  # 0..100


@dataclass(frozen=True, kw_only=True)
class RttSummary:
    """The statistics of a list of round-trip times; None where there are too few."""

    rtt_min_ms: float | None
    rtt_median_ms: float | None
    rtt_p95_ms: float | None
    rtt_max_ms: float | None
    jitter_ms: float | None


def icmp_params_from(ctx: MeasurementContext) -> LatencyParams:
    """ICMP echo to the reference server."""
    return LatencyParams(
        protocol=LatencyProtocol.ICMP,
        target=ctx.server_host,
        interface=ctx.interface,
        count=ctx.latency_count,
        interval_s=ctx.latency_interval_s,
    )


def tcp_params_from(ctx: MeasurementContext) -> LatencyParams:
    """TCP connect time to the reference server's echo port (a port that accepts and
    shrugs off bare connections, unlike an iperf3 port)."""
    return LatencyParams(
        protocol=LatencyProtocol.TCP,
        target=ctx.server_host,
        port=ctx.tcp_echo_port,
        interface=ctx.interface,
        count=ctx.latency_count,
        interval_s=ctx.latency_interval_s,
    )


def summarise_rtts(rtts_ms: Sequence[float]) -> RttSummary:
    """Min, median, 95th percentile, max and jitter of RTTs in the order they were taken.

    The 95th percentile interpolates linearly between the two nearest ranks
    (the "inclusive" method of `statistics.quantiles`, numpy's default).
    Jitter is the mean absolute difference of consecutive RTTs (RFC 3550's
    idea without its smoothing); it needs at least two replies.
    """
    if not rtts_ms:
        return RttSummary(
            rtt_min_ms=None, rtt_median_ms=None, rtt_p95_ms=None, rtt_max_ms=None, jitter_ms=None
        )
    ordered = sorted(rtts_ms)
    rank = 0.95 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    p95 = ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
    jitter = (
        statistics.fmean(abs(b - a) for a, b in itertools.pairwise(rtts_ms))
        if len(rtts_ms) >= 2
        else None
    )
    return RttSummary(
        rtt_min_ms=ordered[0],
        rtt_median_ms=statistics.median(ordered),
        rtt_p95_ms=p95,
        rtt_max_ms=ordered[-1],
        jitter_ms=jitter,
    )


def run(params: LatencyParams) -> LatencyResult:
    """Send `count` probes and summarise the round trips; failures are FAILED results."""
    measured_at = datetime.now(UTC)
    method = Method(
        tool="icmp" if params.protocol is LatencyProtocol.ICMP else "tcp-connect",
        server=params.target,
        server_port=params.port,
    )
    try:
        family, sockaddr = _resolve(params.target, params.port or 0)
    except OSError as exc:
        return LatencyResult(
            measured_at=measured_at,
            status=Status.FAILED,
            status_reason=f"cannot resolve {params.target}: {exc.strerror or exc}",
            status_reason_kind=ReasonKind.NETWORK_ERROR,
            method=method,
            interface=params.interface,
            protocol=params.protocol.value,
            target_port=params.port,
        )
    if params.protocol is LatencyProtocol.ICMP:
        probes = _icmp_probes(params, family, sockaddr)
    else:
        probes = _tcp_probes(params, family, sockaddr)
    common: dict[str, Any] = {
        "measured_at": measured_at,
        "method": method,
        "interface": params.interface,
        "ip_family": IpFamily.IPV4 if family == socket.AF_INET else IpFamily.IPV6,
        "protocol": params.protocol.value,
        "target": str(sockaddr[0]),
        "target_port": params.port,
        "packets_sent": probes.sent,
        "packets_received": len(probes.rtts_ms),
    }
    if probes.failure:
        return LatencyResult(
            status=Status.FAILED,
            status_reason=probes.failure,
            status_reason_kind=probes.failure_kind,
            **common,
        )
    summary = summarise_rtts(probes.rtts_ms)
    return LatencyResult(
        status=Status.OK,
        rtt_min_ms=summary.rtt_min_ms,
        rtt_median_ms=summary.rtt_median_ms,
        rtt_p95_ms=summary.rtt_p95_ms,
        rtt_max_ms=summary.rtt_max_ms,
        jitter_ms=summary.jitter_ms,
        loss_pct=100.0 * (probes.sent - len(probes.rtts_ms)) / probes.sent,
        **common,
    )


@dataclass
class _Probes:
    sent: int = 0
    rtts_ms: list[float] = field(default_factory=list)  # in the order sent
    failure: str = ""  # set when the test could not go on
    failure_kind: ReasonKind = ReasonKind.NONE

    def fail(self, reason: str, kind: ReasonKind) -> _Probes:
        """Stop the test with this reason."""
        self.failure, self.failure_kind = reason, kind
        return self


def _resolve(target: str, port: int) -> tuple[socket.AddressFamily, tuple[Any, ...]]:
    """The first address of `target` (a literal passes through unchanged)."""
    infos = socket.getaddrinfo(target, port, socket.AF_UNSPEC, socket.SOCK_STREAM)
    for family, _type, _proto, _name, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            return family, tuple(sockaddr)
    raise OSError(errno.EAFNOSUPPORT, "no IPv4 or IPv6 address")


def _bind_to_interface(sock: socket.socket, interface: str) -> None:
    if interface:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())


def _wait_for_slot(started: float, index: int, interval_s: float) -> None:
    """Probe `index` starts `index * interval_s` after the first (later if a wait overran)."""
    delay = started + index * interval_s - time.monotonic()
    if delay > 0:
        time.sleep(delay)


# --- ICMP ---------------------------------------------------------------------------


def _open_icmp_socket(family: socket.AddressFamily) -> tuple[socket.socket, bool]:
    """An ICMP socket and whether it is raw: a ping socket first, then a raw one."""
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    try:
        return socket.socket(family, socket.SOCK_DGRAM, proto), False
    except OSError as exc:
        dgram_error = exc
    try:
        return socket.socket(family, socket.SOCK_RAW, proto), True
    except PermissionError:
        raise OSError(
            dgram_error.errno,
            "no permission to send ICMP: this user's group is outside "
            "net.ipv4.ping_group_range and the process lacks CAP_NET_RAW",
        ) from None


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(int(word) for word in struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _echo_request(
    family: socket.AddressFamily, identifier: int, sequence: int, payload: bytes
) -> bytes:
    header = _ICMP_HEADER.pack(_ECHO_REQUEST[family], 0, 0, identifier, sequence)
    if family == socket.AF_INET6:
        return header + payload  # the kernel fills in the ICMPv6 checksum
    checksum = _checksum(header + payload)
    return _ICMP_HEADER.pack(_ECHO_REQUEST[family], 0, checksum, identifier, sequence) + payload


def _is_our_reply(
    data: bytes,
    *,
    family: socket.AddressFamily,
    raw: bool,
    identifier: int,
    sequence: int,
    token: bytes,
) -> bool:
    if raw and family == socket.AF_INET:
        data = data[(data[0] & 0x0F) * 4 :]  # raw IPv4 sockets hand us the IP header too
    if len(data) < _ICMP_HEADER.size + _TOKEN_BYTES:
        return False
    kind, _code, _checksum, reply_identifier, reply_sequence = _ICMP_HEADER.unpack_from(data)
    if kind != _ECHO_REPLY[family] or reply_sequence != sequence:
        return False
    # A ping socket rewrites the identifier and only hands us our own replies.
    if raw and reply_identifier != identifier:
        return False
    return data[_ICMP_HEADER.size : _ICMP_HEADER.size + _TOKEN_BYTES] == token


def _icmp_probes(
    params: LatencyParams, family: socket.AddressFamily, sockaddr: tuple[Any, ...]
) -> _Probes:
    probes = _Probes()
    try:
        sock, raw = _open_icmp_socket(family)
    except OSError as exc:
        # The probe's own setup (no ping group, no CAP_NET_RAW), not the line.
        return probes.fail(
            f"cannot open an ICMP socket: {exc.strerror or exc}", ReasonKind.TOOL_FAILED
        )
    with sock:
        try:
            _bind_to_interface(sock, params.interface)
        except OSError as exc:
            return probes.fail(
                f"cannot bind to interface {params.interface}: {exc.strerror}",
                ReasonKind.NETWORK_ERROR,
            )
        token = os.urandom(_TOKEN_BYTES)
        payload = token + bytes(_PAYLOAD_BYTES - _TOKEN_BYTES)
        identifier = int.from_bytes(os.urandom(2), "big")
        destination = (sockaddr[0], 0, *sockaddr[2:])  # ICMP has no port
        started = time.monotonic()
        for index in range(params.count):
            _wait_for_slot(started, index, params.interval_s)
            sequence = (index + 1) & 0xFFFF
            packet = _echo_request(family, identifier, sequence, payload)
            sent_ns = time.perf_counter_ns()
            try:
                sock.sendto(packet, destination)
            except OSError as exc:
                return probes.fail(
                    f"cannot send to {sockaddr[0]}: {exc.strerror or exc}",
                    ReasonKind.NETWORK_ERROR,
                )
            probes.sent += 1
            deadline_ns = sent_ns + int(params.timeout_s * 1e9)
            while (remaining_ns := deadline_ns - time.perf_counter_ns()) > 0:
                sock.settimeout(remaining_ns / 1e9)
                try:
                    data = sock.recv(65535)
                except TimeoutError:
                    break
                except OSError:
                    break  # an ICMP error for our probe (e.g. unreachable): it is lost
                received_ns = time.perf_counter_ns()
                if _is_our_reply(
                    data,
                    family=family,
                    raw=raw,
                    identifier=identifier,
                    sequence=sequence,
                    token=token,
                ):
                    probes.rtts_ms.append((received_ns - sent_ns) / 1e6)
                    break
    return probes


# --- TCP ----------------------------------------------------------------------------


def _tcp_probes(
    params: LatencyParams, family: socket.AddressFamily, sockaddr: tuple[Any, ...]
) -> _Probes:
    probes = _Probes()
    started = time.monotonic()
    for index in range(params.count):
        _wait_for_slot(started, index, params.interval_s)
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            try:
                _bind_to_interface(sock, params.interface)
            except OSError as exc:
                return probes.fail(
                    f"cannot bind to interface {params.interface}: {exc.strerror}",
                    ReasonKind.NETWORK_ERROR,
                )
            sock.settimeout(params.timeout_s)
            probes.sent += 1
            started_ns = time.perf_counter_ns()
            try:
                sock.connect(sockaddr)
            except ConnectionRefusedError:
                return probes.fail(
                    f"connection refused by {sockaddr[0]} port {sockaddr[1]}: "
                    "nothing listens there (a configuration fault, not packet loss)",
                    ReasonKind.NETWORK_ERROR,
                )
            except OSError:
                continue  # timed out, or the network said unreachable: a lost probe
            probes.rtts_ms.append((time.perf_counter_ns() - started_ns) / 1e6)
    return probes
