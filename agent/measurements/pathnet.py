"""What the path measurements (traceroute, IPv6 path MTU) share: raw sockets,
the probe's own addresses and routes, and keeping household addresses out
of results.

Stdlib only: scapy, which builds and reads their packets, is imported by
the measurement modules inside `run`, so that importing the measurement
table never loads it (the resident daemon does not import these at all).

Household addresses: an address inside the home (the CPE's LAN address, a
second router behind it, the box's own) identifies a household as its
public address would, so results keep only its prefix, an IPv4 /24 or an
IPv6 /64, as the IPv6 check keeps only the /64 of the box's address.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import dns.exception
import dns.resolver

from agent.measurements.base import IpFamily
from agent.measurements.ipv6 import has_ipv6_default_route

IPV6_ROUTE = Path("/proc/net/ipv6_route")
IPV4_ROUTE = Path("/proc/net/route")
SYS_CLASS_NET = Path("/sys/class/net")

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Addresses a household's own routers answer from behind the CPE: RFC 1918
# and link-local. Carrier-grade NAT's 100.64.0.0/10 is the operator's, and
# IPv6 households number their LAN from the operator's global prefix, so on
# IPv6 only link-local addresses are the home's by themselves.
_HOUSEHOLD_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "fe80::/10")
)

# Linux's setsockopt/cmsg numbers the socket module lacks on some builds.
IPV6_RECVHOPLIMIT = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
IPV6_HOPLIMIT = getattr(socket, "IPV6_HOPLIMIT", 52)
_IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
_IPV6_MTU_DISCOVER = getattr(socket, "IPV6_MTU_DISCOVER", 23)
_PMTUDISC_PROBE = 3  # IP_PMTUDISC_PROBE and IPV6_PMTUDISC_PROBE (linux/in.h, in6.h)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


def resolve(host: str, family: IpFamily, dns_server: str = "", dns_port: int = 53,
            timeout_s: float = 5.0) -> tuple[list[str], str]:  # fmt: skip
    """The addresses of `host` in `family` (a literal is its own), or none and
    why. With `dns_server` set the name is asked of it (dnspython, as the IPv6
    check does), else of the system's resolver (getaddrinfo)."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        return ([host], "") if family_of(host) is family else ([], f"{host} is not {family}")
    if dns_server:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns_server]
        resolver.port = dns_port
        resolver.timeout = resolver.lifetime = timeout_s
        rdtype = "AAAA" if family is IpFamily.IPV6 else "A"
        try:
            answer = resolver.resolve(host, rdtype, search=False)
        except dns.exception.DNSException as exc:
            return [], f"{host} has no {family} address ({exc})"
        return [rdata.to_text() for rdata in answer], ""
    try:
        infos = socket.getaddrinfo(
            host,
            None,
            socket.AF_INET6 if family is IpFamily.IPV6 else socket.AF_INET,
            socket.SOCK_DGRAM,
        )
    except socket.gaierror as exc:
        return [], f"{host} has no {family} address ({exc.strerror})"
    return [str(info[4][0]).split("%")[0] for info in infos], ""


def family_of(address: str) -> IpFamily:
    """IPV4 or IPV6 for an address literal (ValueError for anything else)."""
    return IpFamily.IPV6 if ipaddress.ip_address(address).version == 6 else IpFamily.IPV4


def is_household_private(address: str) -> bool:
    """Whether `address` is one only a household's own network uses (RFC 1918,
    link-local); such an address after the CPE is still inside the home."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in _HOUSEHOLD_NETWORKS)


def household_prefix(address: str) -> str:
    """A household address reduced to its /24 (IPv4) or /64 (IPv6)."""
    parsed = ipaddress.ip_address(address)
    length = 24 if parsed.version == 4 else 64
    return str(ipaddress.ip_network((parsed, length), strict=False))


def source_address(destination: str, interface: str = "") -> str:
    """The address the kernel would send from towards `destination` (bound to
    `interface` when set). No packet leaves: a UDP socket's connect only
    looks up the route. OSError when there is none (ENETUNREACH)."""
    family = socket.AF_INET6 if family_of(destination) is IpFamily.IPV6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        if interface:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        sock.connect((destination, 9))
        return str(sock.getsockname()[0]).split("%")[0]


def raw_sender(family: IpFamily, interface: str = "") -> socket.socket:
    """A raw socket that sends whole IP packets as given (header included:
    IPv4's IP_HDRINCL is implied by IPPROTO_RAW, and so is IPv6's). The
    kernel routes them and resolves the next hop, but neither fragments them
    nor caps them at a path MTU it learnt: only the interface's MTU holds."""

    sock = socket.socket(
        socket.AF_INET6 if family is IpFamily.IPV6 else socket.AF_INET,
        socket.SOCK_RAW,
        socket.IPPROTO_RAW,
    )
    # PMTUDISC_PROBE: send up to the interface's MTU, with DF, whatever path
    # MTU the kernel learnt before (an earlier Packet Too Big would otherwise
    # make it refuse a larger packet, EMSGSIZE, and a path-MTU search see nothing).
    if family is IpFamily.IPV6:
        sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_MTU_DISCOVER, _PMTUDISC_PROBE)
    else:
        sock.setsockopt(socket.IPPROTO_IP, _IP_MTU_DISCOVER, _PMTUDISC_PROBE)
    if interface:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
    return sock


def raw_listener(family: IpFamily, protocol: int, interface: str = "") -> socket.socket:
    """A non-blocking raw socket receiving a copy of every `protocol` packet
    for this host (IPv4: with its IP header; IPv6: without, its hop limit in
    an IPV6_HOPLIMIT control message), each with its arrival time in an
    SO_TIMESTAMPNS control message. Needs CAP_NET_RAW."""
    sock = socket.socket(
        socket.AF_INET6 if family is IpFamily.IPV6 else socket.AF_INET, socket.SOCK_RAW, protocol
    )
    if family is IpFamily.IPV6:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
    # Each packet with the kernel's time of its arrival (CLOCK_REALTIME).
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    if interface:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
    sock.setblocking(False)
    return sock


def has_default_route(family: IpFamily, interface: str = "") -> bool:
    """Whether the kernel has a usable default route of `family` (via `interface` if set)."""
    if family is IpFamily.IPV6:
        try:
            return has_ipv6_default_route(IPV6_ROUTE.read_text(), interface)
        except OSError:
            return False
    try:
        lines = IPV4_ROUTE.read_text().splitlines()[1:]
    except OSError:
        return False
    for line in lines:
        fields = line.split()
        # Iface Destination Gateway Flags ...: a default route has destination 0, flag RTF_UP.
        if (
            len(fields) >= 4
            and fields[1] == "00000000"
            and int(fields[3], 16) & 0x1
            and (not interface or fields[0] == interface)
        ):
            return True
    return False


def ipv6_route_interface(destination: str, ipv6_route: str) -> str:
    """The interface of the longest-prefix route to `destination` in
    /proc/net/ipv6_route text ("" when none matches)."""
    target = int(ipaddress.IPv6Address(destination))
    best_length, best_name = -1, ""
    for line in ipv6_route.splitlines():
        fields = line.split()
        if len(fields) != 10:
            continue
        prefix, length, name = int(fields[0], 16), int(fields[1], 16), fields[9]
        if name == "lo" and length == 0:
            continue  # the kernel's unreachable default
        mask = ((1 << length) - 1) << (128 - length) if length else 0
        if target & mask == prefix and length > best_length:
            best_length, best_name = length, name
    return best_name


def interface_mtu(interface: str) -> int | None:
    """The MTU of `interface` from sysfs (None when it cannot be read)."""
    try:
        return int((SYS_CLASS_NET / interface / "mtu").read_text().strip())
    except (OSError, ValueError):
        return None
