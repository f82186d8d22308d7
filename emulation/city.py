"""The emulated city: Linux network namespaces joined by shaped veth links.

One core namespace holds the central site (aggregator, reference server);
each probe gets its own namespace, joined to the core by a veth pair whose
two ends are shaped like the probe's access line (see `emulation.shaping`).

    with City() as city:
        box = city.add_probe("ninh-kieu-1", FIBRE_300)
        server = city.run_in(city.core.netns, ["iperf3", "-s", "-p", "5201"])
        client = city.run_in(box.netns, ["iperf3", "-c", city.core.reference_ipv4])

Addressing (all inside the namespaces; they have no link to the host's
network, so nothing here can reach anything else):

- the core's reference address, on its loopback: 198.18.0.1 and fd00:5752::1;
- link n (n = 1, 2, ...): 198.18.0.0/15's n-th /24 and fd00:5752:<n hex>::/64,
  core side .1 / ::1, probe side .2 / ::2; the probe's default routes point
  at the core side. An IPv4-only profile gets no IPv6 on its link at all.

Namespace names are "<prefix>-core" and "<prefix>-<probe name>". The
prefix is random per run, so parallel runs never clash; each run records its
owner process in STATE_DIR, and `cleanup_stale()` removes the namespaces of
runs whose owner died without closing.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import ipaddress
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, MappingProxyType, TracebackType
from typing import Any

from emulation.shaping import LinkProfile, apply_tbf, link_shapers

REFERENCE_IPV4 = "198.18.0.1"
REFERENCE_IPV6 = "fd00:5752::1"
# 198.18.0.0/15 holds 512 /24s; the first is the core's own, so links use 1..511.
LINK_IPV4_SPACE = ipaddress.IPv4Network("198.18.0.0/15")
MAX_LINKS = 511
PROBE_IFACE = "eth0"  # what the agent binds to on a real box, too
STATE_DIR = Path("/run/wardprobe-city")
# Seconds a process in a namespace gets to exit after SIGTERM before SIGKILL.
TERMINATE_GRACE_S = 3.0

_PREFIX = re.compile(r"^[a-z][a-z0-9]{1,11}$")  # no "-": it separates prefix and host
_PROBE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")

SignalHandler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class CityError(RuntimeError):
    """A command that builds the city failed; the message carries its stderr."""


@dataclass(frozen=True, kw_only=True)
class CoreHost:
    """The central site's namespace and the address probes test against."""

    netns: str
    reference_ipv4: str
    reference_ipv6: str


@dataclass(frozen=True, kw_only=True)
class ProbeHost:
    """A probe box: its namespace, its addresses and its access line."""

    name: str
    netns: str
    ipv4: str
    ipv6: str | None  # None on an IPv4-only line
    iface: str  # the probe-side interface, in `netns`
    profile: LinkProfile
    gateway_ipv4: str
    gateway_ipv6: str | None
    core_iface: str  # the core-side end of the link, in the core namespace


def _run(argv: Sequence[str], *, timeout_s: float = 30.0) -> str:
    """Run a set-up command; raise CityError with its stderr if it fails."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise CityError(f"{' '.join(argv)}: timed out after {timeout_s} s") from exc
    if done.returncode != 0:
        raise CityError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def _sysctl(netns: str, *settings: str) -> None:
    # /proc/sys/net is per namespace: the writer's namespace is the one changed.
    _run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w", *settings])


def netns_names() -> list[str]:
    """Names of all named network namespaces on this machine."""
    # Lines look like "wpab12cd-core (id: 3)" or just the name.
    return [line.split()[0] for line in _run(["ip", "netns", "list"]).splitlines() if line]


def _netns_pids(netns: str) -> list[int]:
    done = subprocess.run(
        ["ip", "netns", "pids", netns], capture_output=True, text=True, check=False
    )
    return [int(p) for p in done.stdout.split() if p.isdigit()]


def _process_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (None if gone):
    with the pid, it tells a live owner from a later process reusing its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2 (comm) may hold spaces and parentheses; the rest follows the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])  # field 22 overall: starttime


def _delete_netns(netns: str) -> None:
    """Stop every process in `netns` (these are the city's own), then delete it."""
    pids = _netns_pids(netns)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + TERMINATE_GRACE_S
    while pids and time.monotonic() < deadline:
        time.sleep(0.05)
        pids = _netns_pids(netns)
    for pid in _netns_pids(netns):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)


def cleanup_stale(prefix: str | None = None) -> list[str]:
    """Remove namespaces left behind by runs that died without closing.

    With `prefix`, every namespace of that run is removed, whoever owns it.
    Without, every run recorded in STATE_DIR whose owner process is gone.
    Returns the names of the namespaces removed.
    """
    prefixes: list[str] = []
    if prefix is not None:
        prefixes.append(prefix)
    elif STATE_DIR.is_dir():
        for record in STATE_DIR.glob("*.owner"):
            try:
                pid_text, ticks_text = record.read_text().split()
                owner_alive = _process_start_ticks(int(pid_text)) == int(ticks_text)
            except (OSError, ValueError):
                owner_alive = False
            if not owner_alive:
                prefixes.append(record.stem)
    removed: list[str] = []
    for run_prefix in prefixes:
        for name in netns_names():
            if name.startswith(f"{run_prefix}-"):
                _delete_netns(name)
                removed.append(name)
        (STATE_DIR / f"{run_prefix}.owner").unlink(missing_ok=True)
    return removed


def have_netns() -> tuple[bool, str]:
    """Whether this process can build a city (root, iproute2, `ip netns`),
    and if not, why: tests skip with that reason."""
    if not sys.platform.startswith("linux"):
        return False, "network namespaces need Linux"
    if os.geteuid() != 0:
        return False, "needs root to create network namespaces"
    for tool in ("ip", "tc", "sysctl"):
        if shutil.which(tool) is None:
            return False, f"`{tool}` is not installed (Debian: iproute2, procps)"
    probe_ns = f"wpcheck{os.getpid()}"
    added = subprocess.run(["ip", "netns", "add", probe_ns], capture_output=True, text=True)
    if added.returncode != 0:
        return False, f"`ip netns add` failed: {added.stderr.strip()}"
    try:
        entered = subprocess.run(
            ["ip", "netns", "exec", probe_ns, "true"], capture_output=True, text=True
        )
        if entered.returncode != 0:
            return False, f"`ip netns exec` failed: {entered.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", probe_ns], capture_output=True)
    return True, ""


class City:
    """A test bed of namespaces; a context manager that removes them on exit.

    The core namespace is made at once; probes are added with `add_probe`.
    Everything is removed by `close()`, on leaving the `with` block, at
    interpreter exit, and on SIGINT/SIGTERM (then the previous handler runs).
    """

    def __init__(self, prefix: str | None = None) -> None:
        """Build the core namespace. `prefix` (lowercase letters and digits,
        2-12, starting with a letter) defaults to a random "wp" + 6 hex."""
        self.prefix = prefix if prefix is not None else f"wp{secrets.token_hex(3)}"
        if not _PREFIX.match(self.prefix):
            raise ValueError(f"prefix {self.prefix!r} must match {_PREFIX.pattern}")
        if any(n.startswith(f"{self.prefix}-") for n in netns_names()):
            raise CityError(f"namespaces with prefix {self.prefix!r} exist already")
        self._closed = False
        self._links = 0  # link numbers given out (each a /24 and a /64)
        self._probes: dict[str, ProbeHost] = {}
        self._namespaces: list[str] = []
        self._processes: list[subprocess.Popen[Any]] = []
        self._previous_handlers: dict[int, tuple[SignalHandler, SignalHandler]] = {}
        self._record_owner()
        atexit.register(self.close)
        self._install_signal_handlers()
        try:
            self._core = self._make_core()
        except BaseException:
            self.close()
            raise

    # -- public API -------------------------------------------------------

    @property
    def core(self) -> CoreHost:
        """The central site's namespace and reference addresses."""
        return self._core

    @property
    def probes(self) -> Mapping[str, ProbeHost]:
        """The probes added so far, by name."""
        return MappingProxyType(self._probes)

    def add_probe(self, name: str, profile: LinkProfile) -> ProbeHost:
        """Make a probe namespace joined to the core by a link shaped as
        `profile`, with default routes via the core (IPv6 only if the
        profile has it)."""
        self._check_open()
        if not _PROBE_NAME.match(name):
            raise ValueError(f"probe name {name!r} must match {_PROBE_NAME.pattern}")
        if name in self._probes:
            raise ValueError(f"probe {name!r} exists already")
        index = self._allocate_link()
        netns = f"{self.prefix}-{name}"
        core_iface = f"pr{index}"
        v4_net = ipaddress.IPv4Network((int(LINK_IPV4_SPACE.network_address) + index * 256, 24))
        v6_net = ipaddress.IPv6Network(f"fd00:5752:{index:x}::/64")
        gw4, ip4 = str(v4_net.network_address + 1), str(v4_net.network_address + 2)
        gw6, ip6 = str(v6_net.network_address + 1), str(v6_net.network_address + 2)
        core = self._core.netns
        self._add_netns(netns)
        try:
            if profile.ipv6:
                # Static addresses usable at once: no duplicate detection.
                _sysctl(netns, "net.ipv6.conf.all.accept_dad=0",
                        "net.ipv6.conf.default.accept_dad=0")  # fmt: skip
            else:
                # Set before the link exists so its interface never gets IPv6,
                # not even link-local; lo keeps ::1 as on any IPv4-only box.
                _sysctl(netns, "net.ipv6.conf.default.disable_ipv6=1")
            _run(["ip", "link", "add", core_iface, "netns", core, "mtu", str(profile.mtu),
                  "type", "veth", "peer", "name", PROBE_IFACE, "netns", netns,
                  "mtu", str(profile.mtu)])  # fmt: skip
            _run(["ip", "-n", core, "addr", "add", f"{gw4}/24", "dev", core_iface])
            _run(["ip", "-n", netns, "addr", "add", f"{ip4}/24", "dev", PROBE_IFACE])
            if profile.ipv6:
                _run(["ip", "-n", core, "addr", "add", f"{gw6}/64", "dev", core_iface, "nodad"])
                _run(["ip", "-n", netns, "addr", "add", f"{ip6}/64", "dev", PROBE_IFACE,
                      "nodad"])  # fmt: skip
            else:
                # The core side of an IPv4-only line has no IPv6 either.
                _sysctl(core, f"net.ipv6.conf.{core_iface}.disable_ipv6=1")
            for ns, dev in ((core, core_iface), (netns, PROBE_IFACE), (netns, "lo")):
                _run(["ip", "-n", ns, "link", "set", dev, "up"])
            _run(["ip", "-n", netns, "route", "add", "default", "via", gw4])
            if profile.ipv6:
                _run(["ip", "-n", netns, "-6", "route", "add", "default", "via", gw6])
            probe = ProbeHost(
                name=name, netns=netns, ipv4=ip4, ipv6=ip6 if profile.ipv6 else None,
                iface=PROBE_IFACE, profile=profile, gateway_ipv4=gw4,
                gateway_ipv6=gw6 if profile.ipv6 else None, core_iface=core_iface,
            )  # fmt: skip
            self._shape(probe, profile)
        except BaseException:
            self._namespaces.remove(netns)
            _delete_netns(netns)
            raise
        self._probes[name] = probe
        return probe

    def reshape(self, name: str, profile: LinkProfile) -> ProbeHost:
        """Give probe `name`'s line new rates and queue (a plan change);
        IPv6 and MTU are fixed when the probe is made."""
        self._check_open()
        old = self._probes[name]
        if profile.ipv6 != old.profile.ipv6 or profile.mtu != old.profile.mtu:
            raise ValueError("reshape changes rates and queues only, not IPv6 or MTU")
        self._shape(old, profile)
        new = dataclasses.replace(old, profile=profile)
        self._probes[name] = new
        return new

    @staticmethod
    def netns_argv(netns: str, argv: Sequence[str]) -> list[str]:
        """`argv` wrapped to run inside `netns` (for asyncio subprocesses)."""
        return ["ip", "netns", "exec", netns, *argv]

    def run_in(self, netns: str, argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
        """Start `argv` inside `netns`; it is stopped by `close()` if still running."""
        self._check_open()
        process: subprocess.Popen[Any] = subprocess.Popen(
            self.netns_argv(netns, argv), **popen_kwargs
        )
        self._processes.append(process)
        return process

    def run(
        self, netns: str, argv: Sequence[str], *, timeout_s: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run `argv` inside `netns` to completion and return its output
        (text); a non-zero exit is returned, not raised."""
        self._check_open()
        return subprocess.run(
            self.netns_argv(netns, argv), capture_output=True, text=True,
            timeout=timeout_s, check=False,
        )  # fmt: skip

    def close(self) -> None:
        """Stop the processes started here and delete every namespace made."""
        if self._closed:
            return
        self._closed = True
        for process in self._processes:
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=TERMINATE_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        # Probes first: deleting a probe namespace also removes its veth pair.
        for netns in reversed(self._namespaces):
            _delete_netns(netns)
        self._namespaces.clear()
        (STATE_DIR / f"{self.prefix}.owner").unlink(missing_ok=True)
        atexit.unregister(self.close)
        self._restore_signal_handlers()

    def __enter__(self) -> City:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- building ---------------------------------------------------------

    def _allocate_link(self) -> int:
        """The next link number n: its addresses are 198.18.0.0/15's n-th /24
        and fd00:5752:<n hex>::/64 (a routed probe takes several)."""
        if self._links >= MAX_LINKS:
            raise CityError(f"at most {MAX_LINKS} links fit in 198.18.0.0/15")
        self._links += 1
        return self._links

    def _check_open(self) -> None:
        if self._closed:
            raise CityError(f"city {self.prefix!r} is closed")

    def _add_netns(self, netns: str) -> None:
        _run(["ip", "netns", "add", netns])
        self._namespaces.append(netns)
        _run(["ip", "-n", netns, "link", "set", "lo", "up"])

    def _make_core(self) -> CoreHost:
        netns = f"{self.prefix}-core"
        self._add_netns(netns)
        # The core routes between probes and its reference address; forwarding
        # is set on "all" and "default" so links added later inherit it.
        _sysctl(
            netns,
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1",
            "net.ipv6.conf.default.forwarding=1",
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        )
        # On loopback, the reference address is reachable over every link and
        # stays up whichever links exist.
        _run(["ip", "-n", netns, "addr", "add", f"{REFERENCE_IPV4}/32", "dev", "lo"])
        _run(["ip", "-n", netns, "addr", "add", f"{REFERENCE_IPV6}/128", "dev", "lo", "nodad"])
        return CoreHost(netns=netns, reference_ipv4=REFERENCE_IPV4, reference_ipv6=REFERENCE_IPV6)

    def _shape(self, probe: ProbeHost, profile: LinkProfile) -> None:
        down, up = link_shapers(profile)
        try:
            # Download: what the core sends to the probe leaves the core side.
            apply_tbf(self._core.netns, probe.core_iface, down)
            # Upload: what the probe sends leaves its own side.
            apply_tbf(probe.netns, probe.iface, up)
        except subprocess.CalledProcessError as exc:
            raise CityError(f"shaping {probe.name!r} failed: {exc.stderr.strip()}") from exc

    # -- owner record and signals ----------------------------------------

    def _record_owner(self) -> None:
        STATE_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        ticks = _process_start_ticks(os.getpid())
        (STATE_DIR / f"{self.prefix}.owner").write_text(f"{os.getpid()} {ticks}\n")

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers; atexit still applies
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(signum)

            def on_signal(
                received: int, frame: FrameType | None, previous: SignalHandler = previous
            ) -> None:
                self.close()
                if callable(previous):
                    previous(received, frame)
                elif previous != signal.SIG_IGN:
                    # Default action (terminate): re-deliver with it restored.
                    signal.signal(received, signal.SIG_DFL)
                    os.kill(os.getpid(), received)

            signal.signal(signum, on_signal)
            self._previous_handlers[signum] = (on_signal, previous)

    def _restore_signal_handlers(self) -> None:
        for signum, (ours, previous) in self._previous_handlers.items():
            # Only if nobody installed another handler on top of ours since.
            if signal.getsignal(signum) is ours and threading.current_thread() is (
                threading.main_thread()
            ):
                signal.signal(signum, previous)
        self._previous_handlers.clear()
