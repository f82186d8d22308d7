"""IPv6 readiness, after test-ipv6.com's checks and APNIC's capable/preferred split.

Capability checks (all must pass for `ipv6_capable`):

1. a global IPv6 address: kernel scope "global" in /proc/net/if_inet6 (on the
   bound interface when one is set). Unique local addresses (fd00::/8) have
   that scope too and count. Only the /64 prefix is reported, never the
   address, which would identify the household;
2. an IPv6 default route in /proc/net/ipv6_route (up, not a reject route);
3. the IPv6-only target's name has an AAAA record (dnspython, asking
   `dns_server` when set). A literal IPv6 address as target skips DNS: the
   check is then left unset and does not count against capability;
4. a TCP connection to the IPv6-only target (its connect time is reported);
5. a large-packet exchange on that connection: `large_packet_bytes` (1400)
   sent to the target's echo service and read back, with the socket's own
   MSS and the kernel's defaults (IPv6 routers never fragment). A path-MTU
   black hole, the commonest silent IPv6 fault, makes it stall.

Preference: the dual-stack target's A and AAAA records are looked up, then
a "Happy Eyeballs lite" connect: IPv6 first with a short head start
(`ipv6_head_start_s`, like a browser's fallback timer), then IPv4. The
family that connected is `dual_stack_family`; `ipv6_preferred` is whether
that was IPv6.

The test completes (status OK) whether or not the probe is capable: "not
capable" is the finding, and it must count in the share of capable probes.
`status_reason` then names the checks that failed, so the reason reaches the
analyst. Network checks that cannot run because an earlier one failed (no
AAAA, so no connect) are left unset.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dns.exception
import dns.name
import dns.resolver
import dns.version

from agent.measurements.base import (
    IpFamily,
    MeasurementContext,
    MeasurementResult,
    Method,
    ReasonKind,
    Status,
)

IF_INET6 = Path("/proc/net/if_inet6")
IPV6_ROUTE = Path("/proc/net/ipv6_route")

# /proc/net/if_inet6 scope and flag values (include/net/ipv6.h, if_addr.h).
_SCOPE_GLOBAL = 0x00
_IFA_F_DADFAILED = 0x08
_IFA_F_TENTATIVE = 0x40
# /proc/net/ipv6_route flags (include/uapi/linux/route.h).
_RTF_UP = 0x0001
_RTF_REJECT = 0x0200

_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")


@dataclass(frozen=True, kw_only=True)
class Ipv6Params:
    """The targets and resolver of one IPv6 readiness check."""

    ipv6_only_host: str  # name (or IPv6 literal) with only an AAAA record
    dual_stack_host: str  # name (or literal) with A and AAAA records
    tcp_port: int  # the targets' TCP echo service
    dns_server: str = ""  # resolver address ("" = the system's, from /etc/resolv.conf)
    dns_port: int = 53
    interface: str = ""  # check and bind to this interface ("" = any, routing decides)
    timeout_s: float = 5.0  # limit for each DNS lookup, connect and exchange
    ipv6_head_start_s: float = 0.3  # IPv6's head start towards the dual-stack target
    large_packet_bytes: int = 1400

    def __post_init__(self) -> None:
        if _literal(self.ipv6_only_host) is not None and not _is_ipv6_literal(self.ipv6_only_host):
            raise ValueError(f"ipv6_only_host {self.ipv6_only_host!r} is an IPv4 address")
        if not 0 < self.tcp_port < 65536 or not 0 < self.dns_port < 65536:
            raise ValueError("tcp_port and dns_port must be TCP/UDP ports")
        if self.dns_server and _literal(self.dns_server) is None:
            raise ValueError(f"dns_server must be an address, got {self.dns_server!r}")
        if self.timeout_s <= 0 or self.ipv6_head_start_s <= 0:
            raise ValueError("timeout_s and ipv6_head_start_s must be positive")
        if not 1 <= self.large_packet_bytes <= 65000:
            raise ValueError(f"large_packet_bytes out of range: {self.large_packet_bytes}")


@dataclass(frozen=True, kw_only=True)
class Ipv6Result(MeasurementResult):
    """IPv6 readiness checks (proto: wardprobe.v1.Ipv6Result). None = not run."""

    has_global_address: bool | None = None
    has_default_route: bool | None = None
    aaaa_resolves: bool | None = None
    ipv6_only_tcp_ok: bool | None = None
    ipv6_only_connect_ms: float | None = None
    large_packet_ok: bool | None = None
    dual_stack_family: IpFamily | None = None
    ipv6_capable: bool | None = None
    ipv6_preferred: bool | None = None
    global_prefix: str = ""  # the /64 of the global address, e.g. "fd00:5eed:1:2::/64"


def params_from(ctx: MeasurementContext) -> Ipv6Params:
    """IPv6 check params; the reference server itself is the dual-stack target by default."""
    return Ipv6Params(
        ipv6_only_host=ctx.ipv6_only_host,
        dual_stack_host=ctx.dual_stack_host or ctx.server_host,
        tcp_port=ctx.tcp_echo_port,
        dns_server=ctx.dns_server,
        dns_port=ctx.dns_port,
        interface=ctx.interface,
    )


def global_ipv6_addresses(if_inet6: str, interface: str = "") -> list[ipaddress.IPv6Address]:
    """Usable global-scope addresses in /proc/net/if_inet6 text, on `interface` if set.

    Tentative (duplicate address detection still running) and DAD-failed
    addresses are left out: the kernel will not use them.
    """
    found = []
    for line in if_inet6.splitlines():
        fields = line.split()
        if len(fields) != 6:
            continue
        hex_address, _index, _prefix_len, scope, flags, name = fields
        if interface and name != interface:
            continue
        if int(scope, 16) != _SCOPE_GLOBAL:
            continue
        if int(flags, 16) & (_IFA_F_TENTATIVE | _IFA_F_DADFAILED):
            continue
        found.append(ipaddress.IPv6Address(bytes.fromhex(hex_address)))
    return found


def has_ipv6_default_route(ipv6_route: str, interface: str = "") -> bool:
    """Whether /proc/net/ipv6_route text has a usable default route (via `interface` if set)."""
    for line in ipv6_route.splitlines():
        fields = line.split()
        if len(fields) != 10:
            continue
        destination, prefix_len, flags, name = fields[0], fields[1], fields[8], fields[9]
        if int(destination, 16) != 0 or int(prefix_len, 16) != 0:
            continue
        flag_bits = int(flags, 16)
        # The kernel lists "unreachable" defaults on lo; those are not a way out.
        if not flag_bits & _RTF_UP or flag_bits & _RTF_REJECT or name == "lo":
            continue
        if interface and name != interface:
            continue
        return True
    return False


def prefix_of(addresses: list[ipaddress.IPv6Address]) -> str:
    """The /64 of the address a user would call "my IPv6": global unicast before ULA."""
    if not addresses:
        return ""
    chosen = sorted(addresses, key=lambda a: a not in _GLOBAL_UNICAST)[0]
    return str(ipaddress.IPv6Network((chosen, 64), strict=False))


def run(params: Ipv6Params) -> Ipv6Result:
    """Run every check; a probe that is not capable is a completed (OK) result."""
    measured_at = datetime.now(UTC)
    method = Method(
        tool="dnspython+socket",
        tool_version=f"dnspython {dns.version.version}",
        server=params.ipv6_only_host,
        server_port=params.tcp_port,
    )
    if not params.ipv6_only_host:
        return Ipv6Result(
            measured_at=measured_at,
            status=Status.SKIPPED,
            status_reason="no IPv6-only target configured",
            status_reason_kind=ReasonKind.NOT_CONFIGURED,
            method=method,
            interface=params.interface,
        )
    checks = _Checks()
    _local_checks(params, checks)
    resolver = _Resolver(params)
    _ipv6_only_checks(params, resolver, checks)
    _dual_stack_check(params, resolver, checks)

    required = [
        checks.has_global_address,
        checks.has_default_route,
        checks.ipv6_only_tcp_ok,
        checks.large_packet_ok,
    ]
    if _literal(params.ipv6_only_host) is None:
        required.append(checks.aaaa_resolves)
    capable: bool | None
    if any(check is False for check in required):
        capable = False
    elif any(check is None for check in required):
        capable = None
    else:
        capable = True
    reason = []
    if checks.problems:
        reason.append("not IPv6-capable: " + "; ".join(checks.problems))
    reason.extend(checks.notes)
    return Ipv6Result(
        measured_at=measured_at,
        status=Status.OK,
        status_reason=". ".join(reason),
        method=method,
        interface=params.interface,
        ip_family=IpFamily.IPV6 if checks.ipv6_only_tcp_ok is not None else None,
        has_global_address=checks.has_global_address,
        has_default_route=checks.has_default_route,
        aaaa_resolves=checks.aaaa_resolves,
        ipv6_only_tcp_ok=checks.ipv6_only_tcp_ok,
        ipv6_only_connect_ms=checks.ipv6_only_connect_ms,
        large_packet_ok=checks.large_packet_ok,
        dual_stack_family=checks.dual_stack_family,
        ipv6_capable=capable,
        ipv6_preferred=(
            None if checks.dual_stack_family is None else checks.dual_stack_family is IpFamily.IPV6
        ),
        global_prefix=checks.global_prefix,
    )


@dataclass
class _Checks:
    """What the checks found so far, and why a failed one failed."""

    has_global_address: bool | None = None
    global_prefix: str = ""
    has_default_route: bool | None = None
    aaaa_resolves: bool | None = None
    ipv6_only_tcp_ok: bool | None = None
    ipv6_only_connect_ms: float | None = None
    large_packet_ok: bool | None = None
    dual_stack_family: IpFamily | None = None
    problems: list[str] = field(default_factory=list)  # failed capability checks
    notes: list[str] = field(default_factory=list)  # the preference check's trouble


def _local_checks(params: Ipv6Params, checks: _Checks) -> None:
    where = f"on {params.interface}" if params.interface else "on any interface"
    try:
        addresses = global_ipv6_addresses(IF_INET6.read_text(), params.interface)
        checks.has_global_address = bool(addresses)
        checks.global_prefix = prefix_of(addresses)
        if not addresses:
            checks.problems.append(f"no global IPv6 address {where}")
    except OSError as exc:
        checks.problems.append(f"cannot read {IF_INET6}: {exc.strerror}")
    try:
        checks.has_default_route = has_ipv6_default_route(IPV6_ROUTE.read_text(), params.interface)
        if not checks.has_default_route:
            checks.problems.append(f"no IPv6 default route {where}")
    except OSError as exc:
        checks.problems.append(f"cannot read {IPV6_ROUTE}: {exc.strerror}")


def _ipv6_only_checks(params: Ipv6Params, resolver: _Resolver, checks: _Checks) -> None:
    host = params.ipv6_only_host
    if _literal(host) is not None:
        addresses = [host]
    else:
        addresses, error = resolver.addresses(host, "AAAA")
        checks.aaaa_resolves = bool(addresses)
        if not addresses:
            checks.problems.append(error)
            return
    connection, connect_ms, error = _connect_first(
        addresses, params.tcp_port, params.timeout_s, params.interface
    )
    checks.ipv6_only_tcp_ok = connection is not None
    checks.ipv6_only_connect_ms = connect_ms
    if connection is None:
        checks.problems.append(f"TCP to the IPv6-only target {host} failed: {error}")
        return
    with connection:
        checks.large_packet_ok, error = _echo_exchange(
            connection, params.large_packet_bytes, params.timeout_s
        )
    if not checks.large_packet_ok:
        checks.problems.append(
            f"{params.large_packet_bytes}-byte exchange with {host} over IPv6 failed: {error}"
        )


def _dual_stack_check(params: Ipv6Params, resolver: _Resolver, checks: _Checks) -> None:
    host = params.dual_stack_host
    if not host:
        checks.notes.append("no dual-stack target configured")
        return
    literal = _literal(host)
    if literal is not None:
        v6 = [host] if literal.version == 6 else []
        v4 = [host] if literal.version == 4 else []
    else:
        v6, _ = resolver.addresses(host, "AAAA")
        v4, _ = resolver.addresses(host, "A")
    errors = []
    # Happy Eyeballs lite: IPv6 gets a head start, then IPv4 gets its chance.
    for addresses, timeout_s, family in (
        (v6, params.ipv6_head_start_s, IpFamily.IPV6),
        (v4, params.timeout_s, IpFamily.IPV4),
    ):
        if not addresses:
            errors.append(f"no {family} address")
            continue
        connection, _, error = _connect_first(
            addresses[:1], params.tcp_port, timeout_s, params.interface
        )
        if connection is not None:
            connection.close()
            checks.dual_stack_family = family
            return
        errors.append(f"{family}: {error}")
    checks.notes.append(f"dual-stack target {host} unreachable ({'; '.join(errors)})")


class _Resolver:
    """dnspython, asking the configured server or the system's resolvers."""

    def __init__(self, params: Ipv6Params) -> None:
        self._setup_error = ""
        self._resolver: dns.resolver.Resolver | None = None
        try:
            if params.dns_server:
                resolver = dns.resolver.Resolver(configure=False)
                resolver.nameservers = [params.dns_server]
                resolver.port = params.dns_port
            else:
                resolver = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            self._setup_error = "no DNS resolver configured (/etc/resolv.conf)"
            return
        resolver.timeout = params.timeout_s
        resolver.lifetime = params.timeout_s
        self._resolver = resolver

    def addresses(self, host: str, rdtype: str) -> tuple[list[str], str]:
        """The addresses of `host`'s `rdtype` records, or none and the reason."""
        if self._resolver is None:
            return [], self._setup_error
        try:
            answer = self._resolver.resolve(dns.name.from_text(host), rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            return [], f"{host} does not exist in DNS"
        except dns.resolver.NoAnswer:
            return [], f"{host} has no {rdtype} record"
        except dns.exception.Timeout:
            return [], f"no DNS answer for {host} {rdtype} within {self._resolver.lifetime:g} s"
        except dns.exception.DNSException as exc:
            return [], f"DNS lookup of {host} {rdtype} failed: {exc}"
        return [rdata.to_text() for rdata in answer], ""


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_ipv6_literal(host: str) -> bool:
    literal = _literal(host)
    return literal is not None and literal.version == 6


def _connect_first(
    addresses: list[str], port: int, timeout_s: float, interface: str
) -> tuple[socket.socket | None, float | None, str]:
    """Connect to the first address that answers: (socket, connect ms, "") or (None, None, why)."""
    error = "no address to connect to"
    for address in addresses:
        family = socket.AF_INET6 if _is_ipv6_literal(address) else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if interface:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
            sock.settimeout(timeout_s)
            started_ns = time.perf_counter_ns()
            sock.connect((address, port))
            return sock, (time.perf_counter_ns() - started_ns) / 1e6, ""
        except TimeoutError:
            error = f"[{address}]:{port} did not answer within {timeout_s:g} s"
        except OSError as exc:
            error = f"[{address}]:{port}: {exc.strerror or exc}"
        sock.close()
    return None, None, error


def _echo_exchange(connection: socket.socket, size: int, timeout_s: float) -> tuple[bool, str]:
    """Send `size` random bytes to an echo service and check they all come back."""
    payload = os.urandom(size)
    deadline = time.monotonic() + timeout_s
    received = bytearray()
    try:
        connection.settimeout(timeout_s)
        connection.sendall(payload)
        while len(received) < size:
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                raise TimeoutError
            connection.settimeout(remaining_s)
            chunk = connection.recv(size - len(received))
            if not chunk:
                return False, f"the connection closed after {len(received)} of {size} bytes"
            received += chunk
    except TimeoutError:
        return False, (
            f"{len(received)} of {size} bytes came back within {timeout_s:g} s "
            "(a path-MTU black hole looks like this)"
        )
    except OSError as exc:
        return False, f"{exc.strerror or exc} after {len(received)} of {size} bytes"
    if bytes(received) != payload:
        return False, "the bytes that came back differ from those sent"
    return True, ""
