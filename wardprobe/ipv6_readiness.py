"""The IPv6-readiness checks of the city's services, as NIST's USGv6
deployment monitor checks US federal domains: the code both the probes'
`ipv6_services` measurement (agent/measurements/ipv6_services.py, which
documents the checks and their reasons) and the central site's
`wardprobe-aggregator services check` run.

For each service of the list (wardprobe/service_list.py): AAAA (web kinds),
the web service over IPv6 with a verified TLS handshake (web kinds), the
zone's name servers with AAAA answering over IPv6 (every kind), the mail
exchangers' AAAA (mail domains); each with its reason when it did not pass,
unset when it does not apply or this vantage point could not decide.

Only dnspython and the standard library: the agent and the central site
both have them.
"""

from __future__ import annotations

import errno
import socket
import ssl
import time
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver

from wardprobe.service_list import CityService

PROBE_NO_IPV6 = "probe_no_ipv6"
DNS_TIMEOUT = "dns_timeout"
# Routing errors that mean this box has no IPv6 path at all, not that the service is down.
_NO_ROUTE = frozenset({errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT})
# OpenSSL's X509_V_ERR_* codes worth a short word of their own.
_VERIFY_WORDS = {
    62: "hostname_mismatch",
    10: "certificate_expired",
    9: "certificate_not_yet_valid",
    18: "self_signed_certificate",
    19: "self_signed_certificate_in_chain",
    20: "untrusted_issuer",
    21: "untrusted_issuer",
}


@dataclass(frozen=True, kw_only=True)
class ServiceCheck:
    """One service's checks (proto: wardprobe.v1.ServiceCheck, as the
    measurement stores it); None: not
    applicable to its kind, or not decided from here (the reason says which)."""

    hostname: str
    department: str
    kind: str
    aaaa_ok: bool | None = None
    aaaa: tuple[str, ...] = ()
    web_ok: bool | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    ns_ok: bool | None = None
    mx_ok: bool | None = None
    ready: bool | None = None
    aaaa_reason: str = ""
    web_reason: str = ""
    ns_reason: str = ""
    mx_reason: str = ""


def system_resolver() -> tuple[str, int] | None:
    """The first nameserver of /etc/resolv.conf and its port (None: none)."""
    try:
        system = dns.resolver.Resolver()
        return str(system.nameservers[0]), int(system.port)
    except (dns.resolver.NoResolverConfiguration, IndexError):
        return None


def check_services(
    services: tuple[CityService, ...],
    *,
    resolver: str,
    resolver_port: int = 53,
    ca_pem: bytes = b"",
    web_port: int = 443,
    name_server_port: int = 53,
    timeout_s: float = 3.0,
    interface: str = "",
) -> tuple[ServiceCheck, ...]:
    """Every check of every service, names asked of `resolver`; TLS verified
    against `ca_pem` (b"": the system's CA store)."""
    checker = _Checker(
        resolver=resolver, port=resolver_port, ca_pem=ca_pem, web_port=web_port,
        name_server_port=name_server_port, timeout_s=timeout_s, interface=interface,
    )  # fmt: skip
    return tuple(checker.check(service) for service in services)


class _Undecided(Exception):
    """This vantage point cannot say (no IPv6 route of its own, resolver silent)."""


class _Checker:
    """The checks of one run, sharing its resolver and TLS context."""

    def __init__(
        self,
        *,
        resolver: str,
        port: int,
        ca_pem: bytes,
        web_port: int,
        name_server_port: int,
        timeout_s: float,
        interface: str,
    ) -> None:
        self.resolver = resolver
        self.port = port
        self.web_port = web_port
        self.name_server_port = name_server_port
        self.timeout_s = timeout_s
        self.interface = interface
        self.tls = ssl.create_default_context(cadata=ca_pem.decode("ascii") if ca_pem else None)
        if not ca_pem:
            self.tls.load_default_certs()

    def check(self, service: CityService) -> ServiceCheck:
        """All checks that apply to `service`'s kind."""
        fields: dict[str, object] = {}
        if service.is_web:
            fields |= self._aaaa_and_web(service.name)
        try:
            fields["ns_ok"], fields["ns_reason"] = self._name_servers(service.name)
        except _Undecided as exc:
            fields["ns_reason"] = str(exc)
        if not service.is_web:
            try:
                fields["mx_ok"], fields["mx_reason"] = self._mail_exchangers(service.name)
            except _Undecided as exc:
                fields["mx_reason"] = str(exc)
        applicable = ("aaaa_ok", "web_ok", "ns_ok") if service.is_web else ("ns_ok", "mx_ok")
        verdicts = [fields.get(k) for k in applicable]
        ready = False if False in verdicts else True if all(verdicts) else None
        return ServiceCheck(
            hostname=service.name, department=service.department, kind=service.kind,
            ready=ready, **fields,  # type: ignore[arg-type]
        )  # fmt: skip

    # -- DNS ---------------------------------------------------------------

    def _socket(self, address: str, kind: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, kind)
        if self.interface:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.interface.encode())
        return sock

    def _ask(
        self, server: str, port: int, name: str, rdtype: str, *, recurse: bool = True
    ) -> dns.message.Message:
        """One query (UDP, then TCP when truncated); _Undecided when unanswered."""
        query = dns.message.make_query(name, dns.rdatatype.from_text(rdtype))
        if not recurse:
            query.flags &= ~dns.flags.RD
        timeout = self.timeout_s
        try:
            with self._socket(server, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)
                answer = dns.query.udp(query, server, timeout=timeout, port=port, sock=sock,
                                       ignore_trailing=True)  # fmt: skip
            if answer.flags & dns.flags.TC:
                with self._socket(server, socket.SOCK_STREAM) as sock:
                    sock.settimeout(timeout)
                    sock.connect((server, port))
                    answer = dns.query.tcp(query, server, timeout=timeout, sock=sock)
        except dns.exception.Timeout:
            raise _Undecided(DNS_TIMEOUT) from None
        except OSError as exc:
            if ":" in server and exc.errno in _NO_ROUTE:
                raise _Undecided(PROBE_NO_IPV6) from None
            raise _Undecided(f"dns_error:{exc.strerror or exc}") from None
        except dns.exception.DNSException as exc:
            raise _Undecided(f"dns_error:{exc}") from None
        return answer

    def _lookup(self, name: str, rdtype: str) -> tuple[str, ...]:
        """The records of one type ((): none); FileNotFoundError for NXDOMAIN,
        _Undecided when the resolver gave no usable answer."""
        answer = self._ask(self.resolver, self.port, name, rdtype)
        rcode = answer.rcode()
        if rcode == dns.rcode.NXDOMAIN:
            raise FileNotFoundError(name)
        if rcode != dns.rcode.NOERROR:
            raise _Undecided(f"dns_error:{dns.rcode.to_text(rcode).lower()}")
        wanted = dns.rdatatype.from_text(rdtype)
        return tuple(
            rdata.to_text() for rrset in answer.answer if rrset.rdtype == wanted for rdata in rrset
        )

    def _zone_of(self, name: str) -> str:
        """The zone `name` is in: the owner of the SOA its SOA query brings."""
        answer = self._ask(self.resolver, self.port, name, "SOA")
        for rrset in (*answer.answer, *answer.authority):
            if rrset.rdtype == dns.rdatatype.SOA:
                return str(rrset.name.to_text(omit_final_dot=True))
        raise _Undecided("dns_error:no SOA for the name")

    # -- the checks ----------------------------------------------------------

    def _aaaa_and_web(self, name: str) -> dict[str, object]:
        try:
            addresses = self._lookup(name, "AAAA")
        except FileNotFoundError:
            return {"aaaa_ok": False, "aaaa_reason": "nxdomain", "web_ok": False,
                    "web_reason": "nxdomain"}  # fmt: skip
        except _Undecided as exc:
            return {"aaaa_reason": str(exc), "web_reason": str(exc)}
        if not addresses:
            return {"aaaa_ok": False, "aaaa_reason": "no_aaaa", "web_ok": False,
                    "web_reason": "no_aaaa"}  # fmt: skip
        fields: dict[str, object] = {"aaaa_ok": True, "aaaa": addresses}
        reason = ""
        for address in addresses:
            outcome = self._web(name, address)
            fields |= outcome
            reason = str(outcome.get("web_reason", ""))
            if outcome.get("web_ok"):
                break
        fields["web_reason"] = reason
        return fields

    def _web(self, name: str, address: str) -> dict[str, object]:
        """TCP to the web port of `address` and a verified TLS handshake for `name`."""
        timeout = self.timeout_s
        with self._socket(address, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            started = time.perf_counter()
            try:
                sock.connect((address, self.web_port))
            except TimeoutError:
                return {"web_ok": False, "web_reason": "tcp_timeout"}
            except ConnectionRefusedError:
                return {"web_ok": False, "web_reason": "tcp_refused"}
            except OSError as exc:
                if exc.errno in _NO_ROUTE:
                    return {"web_reason": PROBE_NO_IPV6}
                if exc.errno == errno.EHOSTUNREACH:
                    return {"web_ok": False, "web_reason": "tcp_unreachable"}
                return {"web_ok": False, "web_reason": f"tcp_error:{exc.strerror or exc}"}
            connect_ms = (time.perf_counter() - started) * 1000.0
            handshake_started = time.perf_counter()
            try:
                with self.tls.wrap_socket(sock, server_hostname=name):
                    tls_ms = (time.perf_counter() - handshake_started) * 1000.0
            except ssl.SSLCertVerificationError as exc:
                word = _VERIFY_WORDS.get(exc.verify_code, exc.verify_message or "verify_failed")
                return {"web_ok": False, "connect_ms": connect_ms,
                        "web_reason": f"tls_failed:{word}"}  # fmt: skip
            except TimeoutError:
                return {"web_ok": False, "connect_ms": connect_ms,
                        "web_reason": "tls_failed:timeout"}  # fmt: skip
            except (ssl.SSLError, OSError) as exc:
                why = getattr(exc, "reason", None) or exc.strerror or str(exc)
                return {"web_ok": False, "connect_ms": connect_ms,
                        "web_reason": f"tls_failed:{str(why).lower()}"}  # fmt: skip
        return {"web_ok": True, "connect_ms": connect_ms, "tls_ms": tls_ms, "web_reason": ""}

    def _name_servers(self, name: str) -> tuple[bool, str]:
        """Each authoritative server of the zone has AAAA and answers over IPv6."""
        zone = self._zone_of(name)
        try:
            servers = sorted(s.rstrip(".") for s in self._lookup(zone, "NS"))
        except FileNotFoundError:
            return False, "nxdomain"
        if not servers:
            return False, "no_ns"
        for server in servers:
            try:
                addresses = self._lookup(server, "AAAA")
            except FileNotFoundError:
                addresses = ()
            if not addresses:
                return False, f"ns_no_ipv6:{server}"
            answered = False
            for address in addresses:
                try:
                    answer = self._ask(address, self.name_server_port, zone, "SOA",
                                       recurse=False)  # fmt: skip
                except _Undecided as exc:
                    if str(exc) == PROBE_NO_IPV6:
                        raise
                    continue
                answered = answer.rcode() == dns.rcode.NOERROR
                if answered:
                    break
            if not answered:
                return False, f"ns_no_answer:{server}"
        return True, ""

    def _mail_exchangers(self, name: str) -> tuple[bool, str]:
        """The domain has mail exchangers and each has AAAA."""
        try:
            records = self._lookup(name, "MX")
        except FileNotFoundError:
            return False, "nxdomain"
        # A null MX (RFC 7505, "0 .") says the domain takes no mail.
        exchangers = sorted({r.split()[-1].rstrip(".") for r in records} - {""})
        if not exchangers:
            return False, "no_mx"
        for exchanger in exchangers:
            try:
                addresses = self._lookup(exchanger, "AAAA")
            except FileNotFoundError:
                addresses = ()
            if not addresses:
                return False, f"mx_no_aaaa:{exchanger}"
        return True, ""
