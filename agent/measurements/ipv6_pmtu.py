"""The path MTU to the IPv6 target, and the black hole that breaks it.

IPv6 routers never fragment: a packet too big for the next link is dropped
and its sender told with an ICMPv6 Packet Too Big (PTB) carrying the link's
MTU (RFC 8201). When something on the way drops those PTBs (a firewall that
drops all ICMPv6, say), large packets vanish without a word: small exchanges
work, pages and downloads stall. That black hole is the commonest silent
IPv6 fault, and the IPv6 check's large exchange (agent/measurements/ipv6.py)
only says that something is wrong; this says what.

ICMPv6 echo requests of growing size go to the target: first the IPv6
minimum (1280 bytes, which every link carries), then the probe's own link
MTU (the largest the box can send), then a binary search between the
largest size that came back and the smallest that did not, to the byte.
Sizes are whole IPv6 packets. A PTB received makes its announced MTU the
next size tried. Each size is tried `tries` times, `probe_timeout_s` each,
before it counts as lost.

- `path_mtu`: the largest echo that came back;
- `ptb_received`, `ptb_messages`: the PTBs (announced MTU, who sent it: a
  household router as its /64 only);
- `pmtu_blackhole`: a size above `path_mtu` was lost with no PTB for it,
  while smaller ones came back.

The echoes are built with scapy (imported in `run` only) and sent on a raw
socket with the IPv6 header included: the kernel then checks them against
the interface's MTU only, not against a path MTU it learnt from an earlier
PTB, so every run measures the path afresh. CAP_NET_RAW is needed.
"""

from __future__ import annotations

import ipaddress
import os
import select
import socket
import struct
import time
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
from agent.measurements.ipv6 import IF_INET6, global_ipv6_addresses

IPV6_MIN_MTU = 1280  # RFC 8200: every IPv6 link carries this
_IPV6_HEADER = 40
_ECHO_HEADER = 8
_ECHO_REPLY, _PACKET_TOO_BIG = 129, 2


@dataclass(frozen=True, kw_only=True)
class PmtuParams:
    """One path MTU search towards `target`."""

    target: str  # IPv6 address or a name with an AAAA record
    interface: str = ""  # send on this interface ("" = routing decides)
    tries: int = 3  # echoes of one size before it counts as lost
    probe_timeout_s: float = 1.0  # how long one echo waits for its answer
    timeout_s: float = 60.0  # the whole search
    dns_server: str = ""  # who resolves a target name ("" = the system's resolver)
    dns_port: int = 53

    def __post_init__(self) -> None:
        if not 1 <= self.tries <= 10:
            raise ValueError(f"tries must be 1..10, got {self.tries}")
        if self.probe_timeout_s <= 0 or self.timeout_s <= 0:
            raise ValueError("probe_timeout_s and timeout_s must be positive")


@dataclass(frozen=True, kw_only=True)
class PacketTooBig:
    """One Packet Too Big received (proto: wardprobe.v1.PacketTooBig)."""

    mtu_bytes: int
    sender: str
    probe_bytes: int


@dataclass(frozen=True, kw_only=True)
class Ipv6PmtuResult(MeasurementResult):
    """The path MTU search's findings (proto: wardprobe.v1.Ipv6PmtuResult)."""

    target: str = ""
    interface_mtu: int | None = None
    path_mtu: int | None = None
    ptb_received: bool | None = None
    pmtu_blackhole: bool | None = None
    smallest_lost_bytes: int | None = None
    probes_sent: int = 0
    ptb_messages: tuple[PacketTooBig, ...] = ()


def params_from(ctx: MeasurementContext) -> PmtuParams:
    """The IPv6-only target (the reference server's), else the dual-stack one."""
    return PmtuParams(
        target=ctx.ipv6_only_host or ctx.dual_stack_host,
        interface=ctx.interface,
        timeout_s=ctx.timeout_s,
        dns_server=ctx.dns_server,
        dns_port=ctx.dns_port,
    )


def run(params: PmtuParams) -> Ipv6PmtuResult:
    """Search the path MTU; a probe without IPv6 is SKIPPED, an unreachable target FAILED."""
    from scapy import VERSION as scapy_version  # only here: see the module's docstring

    measured_at = datetime.now(UTC)
    method = Method(tool="scapy-icmpv6-pmtu", tool_version=f"scapy {scapy_version}",
                    server=params.target)  # fmt: skip
    common: dict[str, Any] = {
        "measured_at": measured_at,
        "method": method,
        "interface": params.interface,
    }
    if not params.target:
        return Ipv6PmtuResult(status=Status.SKIPPED, status_reason="no IPv6 target configured",
                              status_reason_kind=ReasonKind.NOT_CONFIGURED, **common)  # fmt: skip
    if not pathnet.has_default_route(IpFamily.IPV6, params.interface):
        return Ipv6PmtuResult(
            status=Status.SKIPPED,
            status_reason="no IPv6 default route on this line",
            status_reason_kind=ReasonKind.NOT_CONFIGURED,
            **common,
        )
    addresses, why = pathnet.resolve(
        params.target, IpFamily.IPV6, params.dns_server, params.dns_port
    )
    if not addresses:
        return Ipv6PmtuResult(status=Status.FAILED, status_reason=why,
                              status_reason_kind=ReasonKind.NETWORK_ERROR, **common)  # fmt: skip
    target = addresses[0]
    try:
        source = pathnet.source_address(target, params.interface)
    except OSError as exc:
        return Ipv6PmtuResult(status=Status.FAILED,
                              status_reason=f"cannot reach {params.target} over IPv6: "
                              f"{exc.strerror or exc}",
                              status_reason_kind=ReasonKind.NETWORK_ERROR, **common)  # fmt: skip
    common.update(ip_family=IpFamily.IPV6, target=target)
    device = params.interface or pathnet.ipv6_route_interface(
        target, pathnet.IPV6_ROUTE.read_text()
    )
    link_mtu = pathnet.interface_mtu(device) if device else None
    if link_mtu is None or link_mtu < IPV6_MIN_MTU:
        return Ipv6PmtuResult(status=Status.FAILED,
                              status_reason=f"cannot read the MTU of the interface to {target}",
                              status_reason_kind=ReasonKind.NETWORK_ERROR, **common)  # fmt: skip
    try:
        search = _Search(params, target, source, _own_prefixes(params.interface))
    except PermissionError as exc:
        return Ipv6PmtuResult(status=Status.FAILED,
                              status_reason=f"raw sockets need CAP_NET_RAW: {exc.strerror}",
                              status_reason_kind=ReasonKind.TOOL_FAILED, **common)  # fmt: skip
    except OSError as exc:
        # A kernel (or an emulator such as qemu-user) that lacks a socket
        # option the search needs: the test fails, the cycle goes on.
        return Ipv6PmtuResult(status=Status.FAILED,
                              status_reason=f"cannot open the raw sockets: {exc.strerror or exc}",
                              status_reason_kind=ReasonKind.TOOL_FAILED, **common)  # fmt: skip
    try:
        outcome = search.run(link_mtu, time.monotonic() + params.timeout_s)
    except OSError as exc:
        return Ipv6PmtuResult(status=Status.FAILED,
                              status_reason=f"sending to {target} failed: {exc.strerror or exc}",
                              status_reason_kind=ReasonKind.NETWORK_ERROR, **common)  # fmt: skip
    finally:
        search.close()
    figures: dict[str, Any] = {
        "interface_mtu": link_mtu,
        "probes_sent": search.sent,
        "ptb_messages": tuple(search.ptbs),
        "ptb_received": bool(search.ptbs),
    }
    if outcome == "unreachable":
        return Ipv6PmtuResult(
            status=Status.FAILED,
            status_reason=f"no echo reply from {target} even at {IPV6_MIN_MTU} bytes",
            status_reason_kind=ReasonKind.NETWORK_ERROR,
            **common,
            **figures,
        )
    if outcome == "timeout":
        return Ipv6PmtuResult(
            status=Status.FAILED,
            status_reason=f"the search did not finish within {params.timeout_s:g} s",
            status_reason_kind=ReasonKind.TIMEOUT,
            **common,
            **figures,
        )
    blackhole = bool(search.silently_lost)
    notes = ""
    if blackhole:
        notes = (
            f"path-MTU black hole: {min(search.silently_lost)}-byte packets were dropped "
            f"with no Packet Too Big; {search.largest_ok} bytes get through"
        )
    return Ipv6PmtuResult(
        status=Status.OK,
        status_reason=notes,
        path_mtu=search.largest_ok,
        pmtu_blackhole=blackhole,
        smallest_lost_bytes=search.smallest_lost,
        **common,
        **figures,
    )


def _own_prefixes(interface: str) -> list[ipaddress.IPv6Network]:
    """The /64s of the box's own global addresses: a PTB from inside them is the household's."""
    try:
        addresses = global_ipv6_addresses(IF_INET6.read_text(), interface)
    except OSError:
        return []
    return [ipaddress.IPv6Network((a, 64), strict=False) for a in addresses]


@dataclass
class _Search:
    """The sockets and what the search found so far."""

    params: PmtuParams
    target: str
    source: str
    own_prefixes: list[ipaddress.IPv6Network]
    sent: int = 0
    largest_ok: int | None = None
    smallest_lost: int | None = None
    silently_lost: list[int] = field(default_factory=list)  # lost with no PTB for them
    ptbs: list[PacketTooBig] = field(default_factory=list)
    _sizes_by_seq: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.identifier = int.from_bytes(os.urandom(2), "big")
        self.sender = pathnet.raw_sender(IpFamily.IPV6, self.params.interface)
        try:
            self.listener = pathnet.raw_listener(
                IpFamily.IPV6, socket.IPPROTO_ICMPV6, self.params.interface
            )
        except OSError:
            self.sender.close()
            raise

    def close(self) -> None:
        self.sender.close()
        self.listener.close()

    def run(self, link_mtu: int, deadline: float) -> str:
        """Search; "done", "unreachable" or "timeout"."""
        first = self.attempt(IPV6_MIN_MTU, deadline)
        if first is None:
            return "timeout"
        if first != "ok":
            return "unreachable"
        self.largest_ok = IPV6_MIN_MTU
        size = link_mtu
        while self.largest_ok is not None and size > self.largest_ok:
            outcome = self.attempt(size, deadline)
            if outcome is None:
                return "timeout"
            if outcome == "ok":
                self.largest_ok = size
            else:
                lost = size
                if outcome.startswith("ptb:"):
                    # The router says: nothing above its MTU passes (RFC 8201).
                    announced = int(outcome.removeprefix("ptb:"))
                    if IPV6_MIN_MTU <= announced < size:
                        lost = max(announced + 1, self.largest_ok + 1)
                else:
                    self.silently_lost.append(size)
                self.smallest_lost = min(lost, self.smallest_lost or lost)
            size = self._next_size(outcome)
        return "done"

    def _next_size(self, outcome: str) -> int:
        """A PTB's MTU when it announced one below the sizes still open, else halfway."""
        assert self.largest_ok is not None
        upper = self.smallest_lost
        if outcome.startswith("ptb:"):
            announced = int(outcome.removeprefix("ptb:"))
            if self.largest_ok < announced and (upper is None or announced < upper):
                return announced
        if upper is None:
            return self.largest_ok
        return (self.largest_ok + upper) // 2

    def attempt(self, size: int, deadline: float) -> str | None:
        """Echo `size` bytes up to `tries` times: "ok", "ptb:<mtu>", "lost";
        None past the deadline."""
        for _ in range(self.params.tries):
            if time.monotonic() >= deadline:
                return None
            seq = self._send(size)
            until = min(deadline, time.monotonic() + self.params.probe_timeout_s)
            outcome = self._await(seq, until)
            if outcome is not None:
                return outcome
        return "lost"

    def _send(self, size: int) -> int:
        from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6

        self.sent += 1
        seq = self.sent & 0xFFFF
        self._sizes_by_seq[seq] = size
        padding = b"\x00" * (size - _IPV6_HEADER - _ECHO_HEADER)
        packet = IPv6(src=self.source, dst=self.target, hlim=64) / ICMPv6EchoRequest(
            id=self.identifier, seq=seq, data=padding
        )
        self.sender.sendto(bytes(packet), (self.target, 0))
        return seq

    def _await(self, seq: int, until: float) -> str | None:
        """The answer to echo `seq`: "ok", "ptb:<mtu>", or None by `until`."""
        from scapy.layers.inet6 import ICMPv6EchoRequest, IPerror6, IPv6
        from scapy.packet import Raw

        while True:
            remaining = until - time.monotonic()
            if remaining <= 0:
                return None
            readable, _, _ = select.select([self.listener], [], [], remaining)
            if not readable:
                return None
            try:
                data, sender_address = self.listener.recvfrom(65535)
            except BlockingIOError:
                continue
            sender = str(sender_address[0]).split("%")[0]
            if len(data) < 8:
                continue
            kind = data[0]
            if kind == _ECHO_REPLY:
                identifier, reply_seq = struct.unpack("!HH", data[4:8])
                if identifier == self.identifier and sender == self.target and reply_seq == seq:
                    return "ok"
                continue
            if kind != _PACKET_TOO_BIG:
                continue
            packet = IPv6(bytes(IPv6(src=sender, dst=self.source, nh=58) / Raw(data)))
            if not packet.haslayer(IPerror6) or not packet.haslayer(ICMPv6EchoRequest):
                continue
            quoted = packet[ICMPv6EchoRequest]
            if str(packet[IPerror6].dst) != self.target or int(quoted.id) != self.identifier:
                continue
            mtu = struct.unpack("!I", data[4:8])[0]
            probe_bytes = self._sizes_by_seq.get(int(quoted.seq), 0)
            self.ptbs.append(
                PacketTooBig(mtu_bytes=mtu, sender=self._reported(sender), probe_bytes=probe_bytes)
            )
            if int(quoted.seq) == seq:
                return f"ptb:{mtu}"

    def _reported(self, sender: str) -> str:
        """A PTB's sender as stored: a household router (link-local, or in the
        box's own /64) as its /64 only."""
        address = ipaddress.IPv6Address(sender)
        if pathnet.is_household_private(sender) or any(address in p for p in self.own_prefixes):
            return pathnet.household_prefix(sender)
        return sender
