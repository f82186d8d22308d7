"""DNS resolution time and failures, as SamKnows measures them: the
configured names (A and AAAA) asked of the system's resolver and of each
configured resolver, one query at a time.

The system resolver is the first `nameserver` of the box's
/etc/resolv.conf (what its programs ask); the configured ones are the
reference server's DNS and agent.toml's `[dns] resolvers`. Each resolver's
queries are one result (one row of the `dns` table), with the resolver's
address. Per query: the rcode, the addresses answered, the time from
sending the query to its answer, and the transport (UDP, then TCP when the
answer came back truncated). A query fails when no answer came within
`timeout_s` or its rcode is not NOERROR (NXDOMAIN included: the names are
ones that should resolve). An empty NOERROR answer (a name without AAAA)
is an answer, not a failure.

dnspython sends the queries itself (no resolver library's cache or retries
in the way); a query is not retried, so a lost one counts, as a user's
first try does.
"""

from __future__ import annotations

import ipaddress
import socket
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.version

from agent.measurements import pathnet
from agent.measurements.base import (
    MeasurementContext,
    MeasurementResult,
    Method,
    ReasonKind,
    Status,
)

RDTYPES = ("A", "AAAA")


@dataclass(frozen=True, kw_only=True)
class DnsParams:
    """The names and resolvers of one DNS run."""

    names: tuple[str, ...]
    resolvers: tuple[str, ...] = ()  # configured resolvers' addresses
    port: int = 53  # the configured resolvers' port
    system_resolver: bool = True  # ask /etc/resolv.conf's first nameserver too
    rdtypes: tuple[str, ...] = RDTYPES
    timeout_s: float = 3.0  # one query's wait for its answer
    interface: str = ""  # send on this interface ("" = routing decides)

    def __post_init__(self) -> None:
        for resolver in self.resolvers:
            try:
                ipaddress.ip_address(resolver)
            except ValueError:
                raise ValueError(f"a resolver must be an address, got {resolver!r}") from None
        unknown = [t for t in self.rdtypes if t not in RDTYPES]
        if unknown or not self.rdtypes:
            raise ValueError(f"rdtypes must be among {RDTYPES}, got {self.rdtypes}")
        if not 0 < self.port < 65536:
            raise ValueError(f"port out of range: {self.port}")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")


@dataclass(frozen=True, kw_only=True)
class DnsQuery:
    """One query and its answer (proto: wardprobe.v1.DnsQuery)."""

    hostname: str
    rdtype: str
    rcode: str = ""  # "" = no answer
    answers: tuple[str, ...] = ()
    time_ms: float | None = None
    transport: str = ""
    failed: bool = False
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class DnsResult(MeasurementResult):
    """One resolver's queries (proto: wardprobe.v1.DnsResult)."""

    resolver: str = ""
    resolver_kind: str = ""  # system | configured
    resolver_port: int | None = None
    queries_sent: int = 0
    queries_failed: int = 0
    failure_pct: float | None = None
    time_median_ms: float | None = None
    queries: tuple[DnsQuery, ...] = ()


def params_from(ctx: MeasurementContext) -> DnsParams:
    """agent.toml's names, else the reference server's names; its DNS and agent.toml's
    resolvers, and the system's unless turned off."""
    names = ctx.dns_names or tuple(
        dict.fromkeys(
            h for h in (ctx.server_host, ctx.ipv6_only_host, ctx.dual_stack_host) if _is_name(h)
        )
    )
    resolvers = tuple(dict.fromkeys(r for r in (ctx.dns_server, *ctx.dns_resolvers) if r))
    return DnsParams(
        names=names,
        resolvers=resolvers,
        port=ctx.dns_port,
        system_resolver=ctx.dns_system_resolver,
        interface=ctx.interface,
    )


def _is_name(host: str) -> bool:
    if not host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


def run(params: DnsParams) -> tuple[DnsResult, ...]:
    """Every name and type asked of every resolver; one result per resolver."""
    measured_at = datetime.now(UTC)
    if not params.names or not (params.resolvers or params.system_resolver):
        what = "no names to resolve" if not params.names else "no resolver to ask"
        return (
            DnsResult(
                measured_at=measured_at,
                status=Status.SKIPPED,
                status_reason=what,
                status_reason_kind=ReasonKind.NOT_CONFIGURED,
                method=_method("", None),
                interface=params.interface,
            ),
        )
    asked: list[tuple[str, int, str]] = []
    results: list[DnsResult] = []
    if params.system_resolver:
        try:
            system = dns.resolver.Resolver()
            nameservers = [str(n) for n in system.nameservers]
        except dns.resolver.NoResolverConfiguration:
            nameservers = []
        if nameservers:
            asked.append((nameservers[0], system.port, "system"))
        else:
            results.append(
                DnsResult(
                    measured_at=measured_at,
                    status=Status.FAILED,
                    status_reason="no nameserver in /etc/resolv.conf",
                    status_reason_kind=ReasonKind.NOT_CONFIGURED,
                    method=_method("", None),
                    interface=params.interface,
                    resolver_kind="system",
                )
            )
    asked.extend((r, params.port, "configured") for r in params.resolvers)
    for resolver, port, kind in asked:
        results.append(_ask(params, resolver, port, kind))
    return tuple(results)


def _method(resolver: str, port: int | None) -> Method:
    return Method(
        tool="dnspython", tool_version=f"dnspython {dns.version.version}", server=resolver,
        server_port=port,
    )  # fmt: skip


def _ask(params: DnsParams, resolver: str, port: int, kind: str) -> DnsResult:
    measured_at = datetime.now(UTC)
    queries = [
        _query(params, resolver, port, name, rdtype)
        for name in params.names
        for rdtype in params.rdtypes
    ]
    failed = sum(q.failed for q in queries)
    times = [q.time_ms for q in queries if q.time_ms is not None]
    family = pathnet.family_of(resolver)
    status, reason, reason_kind = Status.OK, "", ReasonKind.NONE
    time_median_ms: float | None
    if all(q.rcode == "" for q in queries):
        # Not one answer: the resolver is unreachable (or down), which the
        # analyst counts as failures too, but the status says it plainly.
        reasons = sorted({q.reason for q in queries})
        status, reason_kind = Status.FAILED, ReasonKind.NETWORK_ERROR
        reason = f"no answer from {resolver}: {'; '.join(reasons)}"
        failure_pct, time_median_ms = 100.0, None
    else:
        failure_pct = 100.0 * failed / len(queries)
        time_median_ms = statistics.median(times) if times else None
    return DnsResult(
        measured_at=measured_at,
        status=status,
        status_reason=reason,
        status_reason_kind=reason_kind,
        method=_method(resolver, port),
        interface=params.interface,
        ip_family=family,
        resolver=resolver,
        resolver_kind=kind,
        resolver_port=port,
        queries_sent=len(queries),
        queries_failed=failed,
        failure_pct=failure_pct,
        time_median_ms=time_median_ms,
        queries=tuple(queries),
    )


def _socket(resolver: str, kind: int, interface: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in resolver else socket.AF_INET
    sock = socket.socket(family, kind)
    if interface:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
    return sock


def _query(params: DnsParams, resolver: str, port: int, name: str, rdtype: str) -> DnsQuery:
    """One query over UDP (then TCP if truncated), timed from send to answer."""
    message = dns.message.make_query(name, dns.rdatatype.from_text(rdtype))
    transport = "udp"
    started = time.perf_counter()
    try:
        with _socket(resolver, socket.SOCK_DGRAM, params.interface) as sock:
            sock.setblocking(False)
            answer = dns.query.udp(
                message, resolver, timeout=params.timeout_s, port=port, sock=sock,
                ignore_trailing=True,
            )  # fmt: skip
        if answer.flags & dns.flags.TC:
            transport = "tcp"
            remaining = max(0.001, params.timeout_s - (time.perf_counter() - started))
            with _socket(resolver, socket.SOCK_STREAM, params.interface) as sock:
                sock.settimeout(remaining)
                sock.connect((resolver, port))
                answer = dns.query.tcp(message, resolver, timeout=remaining, sock=sock)
    except dns.exception.Timeout:
        return DnsQuery(hostname=name, rdtype=rdtype, transport=transport, failed=True,
                        reason=f"no answer within {params.timeout_s:g} s")  # fmt: skip
    except (OSError, dns.exception.DNSException) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return DnsQuery(hostname=name, rdtype=rdtype, transport=transport, failed=True,
                        reason=why)  # fmt: skip
    time_ms = (time.perf_counter() - started) * 1000.0
    rcode = dns.rcode.to_text(answer.rcode())
    addresses = tuple(
        rdata.to_text()
        for rrset in answer.answer
        if rrset.rdtype == dns.rdatatype.from_text(rdtype)
        for rdata in rrset
    )
    return DnsQuery(
        hostname=name,
        rdtype=rdtype,
        rcode=rcode,
        answers=addresses,
        time_ms=time_ms,
        transport=transport,
        failed=answer.rcode() != dns.rcode.NOERROR,
    )
