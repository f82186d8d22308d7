"""What the probe knows about its own network interfaces, from /sys and /proc.

Every throughput result records the port it ran on (negotiated link speed,
MTU, the local address), so the indicators can tell a gigabit line from a
probe whose port cannot show one. The pre-test check reads the interface's
byte counters. No ethtool binary and no netlink library: the kernel exposes
all of it as files (`/sys/class/net/<if>/speed` is what `ethtool` prints as
"Speed", in Mb/s).
"""

from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct
from pathlib import Path

SYS_CLASS_NET = Path("/sys/class/net")
PROC_IF_INET6 = Path("/proc/net/if_inet6")
# <linux/sockios.h>: the primary IPv4 address of an interface.
_SIOCGIFADDR = 0x8915


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        # Virtual and wireless devices answer EINVAL for speed; a missing
        # interface is ENOENT: either way the figure is unknown.
        return None


def link_speed_mbps(interface: str) -> float | None:
    """Negotiated link speed of `interface` in Mb/s; None when the device has none
    (loopback, tun, a cable unplugged: the kernel reports -1 or refuses)."""
    if not interface:
        return None
    speed = _read_int(SYS_CLASS_NET / interface / "speed")
    return float(speed) if speed is not None and speed > 0 else None


def mtu(interface: str) -> int | None:
    """The interface's MTU in bytes; None when the interface is unknown."""
    if not interface:
        return None
    return _read_int(SYS_CLASS_NET / interface / "mtu")


def byte_counters(interface: str) -> tuple[int, int] | None:
    """(received, transmitted) bytes the kernel has counted on `interface`."""
    statistics = SYS_CLASS_NET / interface / "statistics"
    received = _read_int(statistics / "rx_bytes")
    sent = _read_int(statistics / "tx_bytes")
    if received is None or sent is None:
        return None
    return received, sent


def interface_of_address(address: str) -> str:
    """The interface that holds `address` ("" when none does).

    IPv6 from /proc/net/if_inet6; IPv4 by asking each interface for its
    primary address (SIOCGIFADDR), which is the one the kernel picks as a
    source unless a route says otherwise.
    """
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return ""
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    if isinstance(parsed, ipaddress.IPv6Address):
        try:
            lines = PROC_IF_INET6.read_text().splitlines()
        except OSError:
            return ""
        for line in lines:
            fields = line.split()
            if len(fields) >= 6 and fields[0] == parsed.exploded.replace(":", ""):
                return fields[5]
        return ""
    wanted = parsed.packed
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _index, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                answer = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)
            except OSError:
                continue  # no IPv4 address on this interface
            if answer[20:24] == wanted:
                return name
    return ""


def local_address_towards(host: str, port: int, interface: str = "") -> str:
    """The source address the kernel would use to reach `host` (bound to
    `interface` when given); "" when there is no route. Sends nothing: a
    connected UDP socket only looks the route up."""
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_DGRAM)
    except OSError:
        return ""
    for family, kind, proto, _name, sockaddr in infos:
        with socket.socket(family, kind, proto) as sock:
            try:
                if interface:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
                sock.connect(sockaddr)
            except OSError:
                continue
            return str(sock.getsockname()[0])
    return ""
