"""The emulated city with a routed core: every probe reaches the central site
through real routers, so a traceroute sees real hops.

    probe ──LAN── home router ──access line── access router ──── core router ──── central site
                  (NAT for IPv4)  (shaped; a delay              (shared by          (City.core:
                                   line if asked)                every probe)        aggregator,
                                                                                     reference)

Each box is a network namespace that forwards as a router does: it
decrements the TTL / hop limit and answers with ICMP time exceeded (the
kernel's ICMP rate limits are off in the city, so no answer goes missing
while a traceroute runs). The home router masquerades the LAN's IPv4 behind
its WAN address (nftables) and routes IPv6 as it is. The access line is
shaped like the profile (tbf, upload on the home router's WAN port,
download on the access router's line port); with `PathSpec.line_delay_ms`
a delay line sits on it in a namespace of its own, bridged (TAP devices,
emulation/delayline.py): a link, not a router, so it adds delay and no hop.

    with RoutedCity() as city:
        box = city.add_probe("ninh-kieu-1", FIBRE_300, PathSpec(line_delay_ms=20))
        city.path(box.name).access_ipv4   # the hop after the home router

A path may have a narrow link between its access and core routers
(`core_mtu`): the access router then answers larger IPv6 packets with a
Packet Too Big; with `drop_packet_too_big` it drops its own Packet Too Big
instead (nftables), the path-MTU black hole of a firewall that drops ICMPv6.

Addressing: a probe takes three of the city's links (City._allocate_link:
198.18.0.0/15's n-th /24, fd00:5752:<n hex>::/64): its LAN (home router .1,
probe .2), its access line (access router .1, home router .2) and the
access router's link to the core router (core router .1, access router .2).
The core router reaches the central site over one more link (central .1,
core router .2). Each probe namespace resolves names with the reference
server's DNS (/etc/netns/<namespace>/resolv.conf, which `ip netns exec`
mounts over /etc/resolv.conf), as a home router's DNS proxy would have it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from emulation.city import (
    PROBE_IFACE,
    City,
    CityError,
    ProbeHost,
    _delete_netns,
    _run,
    _sysctl,
)
from emulation.delayline import _READY
from emulation.shaping import LinkProfile, apply_tbf, link_shapers

NETNS_ETC = Path("/etc/netns")
# Sysctls of every router of the city: forward, never hold back an ICMP
# error (traceroute asks for many at once), static addresses usable at once.
_ROUTER_SYSCTLS = (
    "net.ipv4.ip_forward=1",
    "net.ipv6.conf.all.forwarding=1",
    "net.ipv6.conf.default.forwarding=1",
    "net.ipv4.icmp_ratelimit=0",
    "net.ipv6.icmp.ratelimit=0",
    "net.ipv6.conf.all.accept_dad=0",
    "net.ipv6.conf.default.accept_dad=0",
)
_CORE_ROUTER = "corert"


@dataclass(frozen=True, kw_only=True)
class PathSpec:
    """How one probe's path differs from a plain one."""

    line_delay_ms: float = 0.0  # round trip the access line adds (0: none)
    core_mtu: int = 1500  # MTU of the access router's link to the core router
    drop_packet_too_big: bool = False  # the access router drops its own ICMPv6 Packet Too Big

    def __post_init__(self) -> None:
        if self.line_delay_ms < 0:
            raise ValueError("line_delay_ms must not be negative")
        if not 1280 <= self.core_mtu <= 9000:
            raise ValueError(f"core_mtu must be 1280..9000 (IPv6's minimum), got {self.core_mtu}")


@dataclass(frozen=True, kw_only=True)
class RoutedPath:
    """The routers of one probe's path and the addresses a traceroute sees."""

    spec: PathSpec
    home_netns: str
    line_netns: str | None  # the delay line's namespace (None: no delay)
    access_netns: str
    home_lan_ipv4: str  # the home router as the probe sees it (its gateway)
    home_wan_ipv4: str  # the probe's IPv4 address as the world sees it (NAT)
    access_ipv4: str  # the access router's address on the line: the first hop outside
    core_router_ipv4: str  # the core router's address toward the access router
    home_lan_ipv6: str | None
    access_ipv6: str
    core_router_ipv6: str


def _link(index: int) -> tuple[ipaddress.IPv4Network, ipaddress.IPv6Network]:
    v4 = ipaddress.IPv4Network((int(ipaddress.IPv4Address("198.18.0.0")) + index * 256, 24))
    return v4, ipaddress.IPv6Network(f"fd00:5752:{index:x}::/64")


def _host(network: ipaddress.IPv4Network | ipaddress.IPv6Network, number: int) -> str:
    return str(network.network_address + number)


def _ip(netns: str, *argv: str) -> None:
    _run(["ip", "-n", netns, *argv])


def _nft(netns: str, ruleset: str) -> None:
    """Load an nftables ruleset into `netns` (Debian's nftables package)."""
    if shutil.which("nft") is None:
        raise CityError("`nft` is not installed (Debian: nftables): needed for NAT and filters")
    done = subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "-f", "-"],
        input=ruleset, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise CityError(f"nft in {netns}: {done.stderr.strip()}")


class RoutedCity(City):
    """A City whose probes reach the central site through home, access and core routers."""

    def __init__(self, prefix: str | None = None) -> None:
        self._paths: dict[str, RoutedPath] = {}
        self._delay_lines: list[subprocess.Popen[str]] = []
        self._core_router: str | None = None  # its namespace, made with the first probe
        super().__init__(prefix)
        try:
            # The central site answers traceroutes' UDP probes (port unreachable) in full too.
            _sysctl(self.core.netns, "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0")
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> RoutedCity:
        return self

    @property
    def paths(self) -> MappingProxyType[str, RoutedPath]:
        """Each routed probe's path, by probe name."""
        return MappingProxyType(self._paths)

    def path(self, name: str) -> RoutedPath:
        """Probe `name`'s path."""
        return self._paths[name]

    def add_probe(self, name: str, profile: LinkProfile, spec: PathSpec | None = None) -> ProbeHost:
        """A probe behind its own home router, access line and access router,
        joined to the shared core router (made with the first probe)."""
        self._check_open()
        spec = spec or PathSpec()
        if name in self._probes:
            raise ValueError(f"probe {name!r} exists already")
        core_netns = self._core_router or self._make_core_router()
        lan4, lan6 = _link(self._allocate_link())
        line4, line6 = _link(self._allocate_link())
        up4, up6 = _link(self._allocate_link())
        probe_ns = f"{self.prefix}-{name}"
        home, access = f"{probe_ns}-home", f"{probe_ns}-acc"
        line = f"{probe_ns}-line" if spec.line_delay_ms > 0 else None
        made_before = list(self._namespaces)
        try:
            for netns in (probe_ns, home, access, *([line] if line else [])):
                self._add_netns(netns)
            for router in (home, access):
                _sysctl(router, *_ROUTER_SYSCTLS)
            if profile.ipv6:
                _sysctl(probe_ns, "net.ipv6.conf.all.accept_dad=0",
                        "net.ipv6.conf.default.accept_dad=0")  # fmt: skip
            else:
                # As City.add_probe: an IPv4-only box gets no IPv6 at all on its LAN.
                _sysctl(probe_ns, "net.ipv6.conf.default.disable_ipv6=1")
            mtu = str(profile.mtu)
            # The LAN: probe eth0 <-> home lan0.
            _ip(probe_ns, "link", "add", PROBE_IFACE, "mtu", mtu, "type", "veth",
                "peer", "name", "lan0", "netns", home, "mtu", mtu)  # fmt: skip
            _ip(probe_ns, "addr", "add", f"{_host(lan4, 2)}/24", "dev", PROBE_IFACE)
            _ip(home, "addr", "add", f"{_host(lan4, 1)}/24", "dev", "lan0")
            if profile.ipv6:
                _ip(probe_ns, "addr", "add", f"{_host(lan6, 2)}/64", "dev", PROBE_IFACE, "nodad")
                _ip(home, "addr", "add", f"{_host(lan6, 1)}/64", "dev", "lan0", "nodad")
            else:
                _sysctl(home, "net.ipv6.conf.lan0.disable_ipv6=1")
            # The access line: home wan0 <-> access line0, through the delay line if any.
            if line is None:
                _ip(home, "link", "add", "wan0", "mtu", mtu, "type", "veth",
                    "peer", "name", "line0", "netns", access, "mtu", mtu)  # fmt: skip
            else:
                _ip(home, "link", "add", "wan0", "mtu", mtu, "type", "veth",
                    "peer", "name", "home0", "netns", line, "mtu", mtu)  # fmt: skip
                _ip(access, "link", "add", "line0", "mtu", mtu, "type", "veth",
                    "peer", "name", "acc0", "netns", line, "mtu", mtu)  # fmt: skip
            _ip(home, "addr", "add", f"{_host(line4, 2)}/24", "dev", "wan0")
            _ip(access, "addr", "add", f"{_host(line4, 1)}/24", "dev", "line0")
            _ip(home, "addr", "add", f"{_host(line6, 2)}/64", "dev", "wan0", "nodad")
            _ip(access, "addr", "add", f"{_host(line6, 1)}/64", "dev", "line0", "nodad")
            # Access router <-> core router, at the path's MTU.
            core_mtu = str(spec.core_mtu)
            index = len(self._paths) + 1
            core_port = f"acc{index}"
            _ip(access, "link", "add", "core0", "mtu", core_mtu, "type", "veth",
                "peer", "name", core_port, "netns", core_netns, "mtu", core_mtu)  # fmt: skip
            _ip(access, "addr", "add", f"{_host(up4, 2)}/24", "dev", "core0")
            _ip(core_netns, "addr", "add", f"{_host(up4, 1)}/24", "dev", core_port)
            _ip(access, "addr", "add", f"{_host(up6, 2)}/64", "dev", "core0", "nodad")
            _ip(core_netns, "addr", "add", f"{_host(up6, 1)}/64", "dev", core_port, "nodad")
            for netns, dev in (
                (probe_ns, PROBE_IFACE),
                (home, "lan0"),
                (home, "wan0"),
                (access, "line0"),
                (access, "core0"),
                (core_netns, core_port),
            ):
                _ip(netns, "link", "set", dev, "up")  # fmt: skip
            if line is not None:
                self._bridge_delay_line(line, spec.line_delay_ms, profile.mtu)
            # Routes: each box's default points toward the central site; the
            # routers know the prefixes behind them.
            _ip(probe_ns, "route", "add", "default", "via", _host(lan4, 1))
            _ip(home, "route", "add", "default", "via", _host(line4, 1))
            _ip(home, "-6", "route", "add", "default", "via", _host(line6, 1))
            _ip(access, "route", "add", "default", "via", _host(up4, 1))
            _ip(access, "-6", "route", "add", "default", "via", _host(up6, 1))
            _ip(core_netns, "route", "add", str(line4), "via", _host(up4, 2))
            _ip(core_netns, "-6", "route", "add", str(line6), "via", _host(up6, 2))
            if profile.ipv6:
                _ip(probe_ns, "-6", "route", "add", "default", "via", _host(lan6, 1))
                _ip(access, "-6", "route", "add", str(lan6), "via", _host(line6, 2))
                _ip(core_netns, "-6", "route", "add", str(lan6), "via", _host(up6, 2))
            # The household's IPv4 leaves behind the home router's WAN address.
            _nft(home, 'table ip nat {\n chain postrouting {\n'
                       '  type nat hook postrouting priority srcnat; policy accept;\n'
                       '  oifname "wan0" masquerade\n }\n}\n')  # fmt: skip
            if spec.drop_packet_too_big:
                _nft(access, "table ip6 blackhole {\n chain output {\n"
                             "  type filter hook output priority filter; policy accept;\n"
                             "  icmpv6 type packet-too-big drop\n }\n}\n")  # fmt: skip
            down, up = link_shapers(profile)
            apply_tbf(access, "line0", down)  # download: what the access router sends the home
            apply_tbf(home, "wan0", up)  # upload
            self._resolv_conf(probe_ns)
            probe = ProbeHost(
                name=name, netns=probe_ns, ipv4=_host(lan4, 2),
                ipv6=_host(lan6, 2) if profile.ipv6 else None, iface=PROBE_IFACE,
                profile=profile, gateway_ipv4=_host(lan4, 1),
                gateway_ipv6=_host(lan6, 1) if profile.ipv6 else None, core_iface="",
            )  # fmt: skip
        except BaseException:
            for netns in [n for n in self._namespaces if n not in made_before]:
                self._namespaces.remove(netns)
                _delete_netns(netns)
            with contextlib.suppress(OSError):
                shutil.rmtree(NETNS_ETC / probe_ns)
            raise
        self._probes[name] = probe
        self._paths[name] = RoutedPath(
            spec=spec, home_netns=home, line_netns=line, access_netns=access,
            home_lan_ipv4=_host(lan4, 1), home_wan_ipv4=_host(line4, 2),
            access_ipv4=_host(line4, 1), core_router_ipv4=_host(up4, 1),
            home_lan_ipv6=_host(lan6, 1) if profile.ipv6 else None,
            access_ipv6=_host(line6, 1), core_router_ipv6=_host(up6, 1),
        )  # fmt: skip
        return probe

    def reshape(self, name: str, profile: LinkProfile) -> ProbeHost:
        """New rates and queue for probe `name`'s access line (as City.reshape)."""
        self._check_open()
        old = self._probes[name]
        if profile.ipv6 != old.profile.ipv6 or profile.mtu != old.profile.mtu:
            raise ValueError("reshape changes rates and queues only, not IPv6 or MTU")
        path = self._paths[name]
        down, up = link_shapers(profile)
        apply_tbf(path.access_netns, "line0", down)
        apply_tbf(path.home_netns, "wan0", up)
        new = dataclasses.replace(old, profile=profile)
        self._probes[name] = new
        return new

    def close(self) -> None:
        """As City.close, and the delay lines and the probes' resolv.conf too."""
        for process in getattr(self, "_delay_lines", []):
            if process.poll() is None:
                process.terminate()
        for process in getattr(self, "_delay_lines", []):
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for name in list(getattr(self, "_probes", {})):
            with contextlib.suppress(OSError):
                shutil.rmtree(NETNS_ETC / f"{self.prefix}-{name}")
        super().close()

    # -- building ---------------------------------------------------------

    def _make_core_router(self) -> str:
        netns = f"{self.prefix}-{_CORE_ROUTER}"
        self._add_netns(netns)
        _sysctl(netns, *_ROUTER_SYSCTLS)
        link4, link6 = _link(self._allocate_link())
        core = self.core.netns
        _ip(netns, "link", "add", "central0", "type", "veth", "peer", "name", "corert0",
            "netns", core)  # fmt: skip
        _ip(core, "addr", "add", f"{_host(link4, 1)}/24", "dev", "corert0")
        _ip(netns, "addr", "add", f"{_host(link4, 2)}/24", "dev", "central0")
        _ip(core, "addr", "add", f"{_host(link6, 1)}/64", "dev", "corert0", "nodad")
        _ip(netns, "addr", "add", f"{_host(link6, 2)}/64", "dev", "central0", "nodad")
        _ip(core, "link", "set", "corert0", "up")
        _ip(netns, "link", "set", "central0", "up")
        _ip(netns, "route", "add", "default", "via", _host(link4, 1))
        _ip(netns, "-6", "route", "add", "default", "via", _host(link6, 1))
        # The central site reaches every routed probe's prefixes through the
        # core router (a flat probe's own link is more specific, so both mix).
        _ip(core, "route", "add", "198.18.0.0/15", "via", _host(link4, 2))
        _ip(core, "-6", "route", "add", "fd00:5752::/32", "via", _host(link6, 2))
        self._core_router = netns
        return netns

    def _bridge_delay_line(self, netns: str, rtt_ms: float, mtu: int) -> None:
        """A delay line between the line namespace's two ports, as a bridge:
        home0 + tap dlhome on one bridge, acc0 + tap dlacc on the other, the
        delay line copying frames between the taps."""
        root = Path(__file__).resolve().parents[1]
        process: subprocess.Popen[str] = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, "-m", "emulation.delayline",
             "--tun-a", "dlhome", "--tun-b", "dlacc", "--delay-ms", str(rtt_ms), "--tap"],
            stdout=subprocess.PIPE, text=True, cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
        )  # fmt: skip
        self._delay_lines.append(process)
        assert process.stdout is not None
        if process.stdout.readline().strip() != _READY:
            raise CityError(f"the delay line in {netns} did not start")
        for bridge, ports in (("brhome", ("home0", "dlhome")), ("bracc", ("acc0", "dlacc"))):
            # No STP: the ports forward at once.
            _ip(netns, "link", "add", bridge, "type", "bridge", "stp_state", "0",
                "forward_delay", "0")  # fmt: skip
            for port in ports:
                _ip(netns, "link", "set", port, "mtu", str(mtu), "master", bridge, "up")
            _ip(netns, "link", "set", bridge, "up")

    def _resolv_conf(self, netns: str) -> None:
        folder = NETNS_ETC / netns
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "resolv.conf").write_text(f"nameserver {self.core.reference_ipv4}\n", "utf-8")
