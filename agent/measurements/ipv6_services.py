"""IPv6 readiness of the city's own services, checked as NIST's USGv6
deployment monitor checks US federal domains.

For each service of the operator's list (wardprobe/service_list.py):

- AAAA (web kinds): the name has AAAA records (`no_aaaa` otherwise);
- web (web kinds): a TCP connection to port 443 of an AAAA address and a
  TLS handshake with SNI = the name, the certificate verified against the
  configured CA certificates (`tcp_timeout`, `tcp_refused`,
  `tcp_error:<why>`, `tls_failed:<why>`); the addresses are tried in the
  order answered and the first that works counts;
- NS (every kind): each authoritative name server of the name's zone has
  AAAA (`ns_no_ipv6:<server>`) and answers a query for the zone's SOA over
  IPv6 (`ns_no_answer:<server>`);
- MX (mail domains): the domain has mail exchangers (`no_mx`) and each has
  AAAA (`mx_no_aaaa:<exchanger>`).

A service is fully ready when every check that applies to its kind passed.
A check this vantage point cannot decide is unset, not failed: when the box
itself has no IPv6 route (`probe_no_ipv6`) or its resolver did not answer
(`dns_timeout`), the service is not to blame. `ready` is then unset too,
unless another check already failed.

Names are asked of the configured resolver (the system's when none), one
query at a time with dnspython, as dns_resolution.py does; the name servers
are asked directly, without recursion. The checks themselves are
wardprobe/ipv6_readiness.py's, which `wardprobe-aggregator services check`
runs at the central site too.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import UTC, datetime

import dns.version

from agent.measurements.base import (
    IpFamily,
    MeasurementContext,
    MeasurementResult,
    Method,
    ReasonKind,
    Status,
)
from wardprobe.ipv6_readiness import ServiceCheck, check_services, system_resolver
from wardprobe.service_list import CityService


@dataclass(frozen=True, kw_only=True)
class Ipv6ServicesParams:
    """The services of one run and where their names are asked."""

    services: tuple[CityService, ...]
    resolver: str = ""  # address of the resolver to ask ("" = /etc/resolv.conf's first)
    resolver_port: int = 53
    ca_pem: bytes = b""  # CA certificates the services' TLS is verified against (b"" = system)
    web_port: int = 443
    name_server_port: int = 53  # where the authoritative servers are asked
    timeout_s: float = 3.0  # one query's, one connect's or one handshake's wait
    interface: str = ""  # send on this interface ("" = routing decides)

    def __post_init__(self) -> None:
        for port in (self.resolver_port, self.web_port, self.name_server_port):
            if not 0 < port < 65536:
                raise ValueError(f"port out of range: {port}")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")


@dataclass(frozen=True, kw_only=True)
class Ipv6ServicesResult(MeasurementResult):
    """Every listed service checked once (proto: wardprobe.v1.Ipv6ServicesResult)."""

    resolver: str = ""
    services_checked: int = 0
    services_ready: int = 0
    checks: tuple[ServiceCheck, ...] = ()


def params_from(ctx: MeasurementContext) -> Ipv6ServicesParams:
    """The aggregator's service list and CA certificates; names asked of the
    box's own resolver (a citizen's view), or agent.toml's first configured one."""
    return Ipv6ServicesParams(
        services=ctx.city_services,
        resolver=ctx.dns_resolvers[0] if ctx.dns_resolvers else "",
        resolver_port=ctx.dns_port if ctx.dns_resolvers else 53,
        ca_pem=ctx.services_ca_pem,
        interface=ctx.interface,
    )


def run(params: Ipv6ServicesParams) -> Ipv6ServicesResult:
    """Every service of `params` checked; one result."""
    measured_at = datetime.now(UTC)
    resolver, port = params.resolver, params.resolver_port
    if not resolver:
        resolver, port = system_resolver() or ("", port)
    method = Method(
        tool="dnspython+tls",
        tool_version=f"dnspython {dns.version.version}; {ssl.OPENSSL_VERSION}",
        server=resolver,
        server_port=port if resolver else None,
    )
    why_not = (
        "no services listed"
        if not params.services
        else "no resolver: none configured and none in /etc/resolv.conf"
        if not resolver
        else ""
    )
    if why_not:
        return Ipv6ServicesResult(
            measured_at=measured_at, status=Status.SKIPPED, status_reason=why_not,
            status_reason_kind=ReasonKind.NOT_CONFIGURED, method=method,
            interface=params.interface,
        )  # fmt: skip
    checks = check_services(
        params.services, resolver=resolver, resolver_port=port, ca_pem=params.ca_pem,
        web_port=params.web_port, name_server_port=params.name_server_port,
        timeout_s=params.timeout_s, interface=params.interface,
    )  # fmt: skip
    return Ipv6ServicesResult(
        measured_at=measured_at,
        status=Status.OK,
        method=method,
        interface=params.interface,
        ip_family=IpFamily.IPV6,
        resolver=resolver,
        services_checked=len(checks),
        services_ready=sum(c.ready is True for c in checks),
        checks=checks,
    )
