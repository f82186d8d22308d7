"""A delay line of our own, over TUN: this kernel has no netem (nor fq or cake).

In a router namespace between a probe and a server, packets from the probe
side are routed (policy routing on the incoming interface) into TUN device
A, packets from the server side into TUN device B. One process reads each
packet from A and writes it into B half the added round-trip time later,
and the other way round; a packet written into a TUN device is received on
it and routed on normally. Both directions keep their order (a FIFO: the
delay is constant), so TCP sees a longer path, not reordering.

    probe ns ──veth── [ router ns:  rule iif <probe side>  → dev tunA
                                     rule iif <server side> → dev tunB
                                     delayline: tunA ⇄ tunB, +delay/2 each way ] ──veth── server ns

It is one Python process, yet it carries 1 Gb/s: the TUN devices are
opened with offloads (IFF_VNET_HDR, TUNSETOFFLOAD), so the kernel hands it
TCP's GSO super-packets of up to 64 KiB whole, each behind a virtio-net
header, and segments them again after they are written back (~40× fewer
system calls than one packet per call). It reports on stderr, when it
stops, how many packets it wrote more than 1 ms late; docs/benchmarks.md
gives the figures per rate. The shaper (tbf) stays on the veth beside it.

Run as `python -m emulation.delayline --tun-a A --tun-b B --delay-ms 20`
inside the router namespace (`delay_line` does it and sets the routing up).
With `--tap` the two devices are TAP devices carrying Ethernet frames, for a
delay on a bridged link that is no router hop at all (a traceroute sees no
extra hop): emulation/routed.py bridges each to one end of an access line.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import gc
import os
import selectors
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

_TUNSETIFF = 0x400454CA  # _IOW('T', 202, int)
_TUNSETOFFLOAD = 0x400454D0  # _IOW('T', 208, unsigned int)
_IFF_TUN = 0x0001
_IFF_TAP = 0x0002
_IFF_NO_PI = 0x1000
_IFF_VNET_HDR = 0x4000
# What the reader says it can take (linux/if_tun.h): partial checksums and
# TCP (and UDP, where the kernel knows USO) super-packets.
_TUN_F_CSUM = 0x01
_TUN_F_TSO4 = 0x02
_TUN_F_TSO6 = 0x04
_TUN_F_TSO_ECN = 0x08
_TUN_F_USO4 = 0x20
_TUN_F_USO6 = 0x40
_OFFLOADS = _TUN_F_CSUM | _TUN_F_TSO4 | _TUN_F_TSO6 | _TUN_F_TSO_ECN
_OFFLOADS_WITH_USO = _OFFLOADS | _TUN_F_USO4 | _TUN_F_USO6
# struct virtio_net_hdr, in front of every packet read and written. It is
# passed on untouched, so its layout does not matter here, only that both
# devices use the same (the default, 10 bytes).
_VNET_HDR_BYTES = 10
# A GSO super-packet is at most 64 KiB (TUN's gso_max_size), plus the header.
_MAX_READ_BYTES = 65_536 + _VNET_HDR_BYTES
# The device's own queue of packets waiting for this process (its default
# is 500): room for a 1 Gb/s burst of full-size segments while the process
# is busy writing, so a burst is late rather than lost.
_TUN_TXQUEUELEN = 10_000
# Packets taken from one device per wake-up before looking at what is due.
_READ_BATCH = 256
_READY = "delayline ready"
# The router's two TUN devices, named for where what is written into them goes.
TUN_TO_SERVER = "dltoserver"
TUN_TO_PROBE = "dltoprobe"
# Routing tables for the two directions (any numbers not otherwise used in the router).
_TABLE_TO_SERVER = 100
_TABLE_TO_PROBE = 101


def open_tun(name: str, *, tap: bool = False) -> int:
    """Create (or attach to) TUN device `name` (a TAP device: Ethernet frames,
    when `tap`) with GSO offloads; returns its non-blocking fd. Every packet
    read from or written to it starts with a struct virtio_net_hdr
    (_VNET_HDR_BYTES)."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    flags = (_IFF_TAP if tap else _IFF_TUN) | _IFF_NO_PI | _IFF_VNET_HDR
    fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH", name.encode(), flags))
    try:
        fcntl.ioctl(fd, _TUNSETOFFLOAD, _OFFLOADS_WITH_USO)
    except OSError:  # a kernel before 6.2 has no USO: TCP's offloads are what matter
        fcntl.ioctl(fd, _TUNSETOFFLOAD, _OFFLOADS)
    return fd


def forward(tun_a: str, tun_b: str, one_way_delay_s: float, *, tap: bool = False) -> None:
    """Move packets A→B and B→A, each `one_way_delay_s` late, until SIGTERM."""
    fds = {open_tun(tun_a, tap=tap): open_tun(tun_b, tap=tap)}
    fds.update({b: a for a, b in fds.items()})
    for name in (tun_a, tun_b):
        subprocess.run(
            ["ip", "link", "set", name, "txqueuelen", str(_TUN_TXQUEUELEN), "up"], check=True
        )
    # Per output fd: (due time, header + packet), oldest first. Unbounded:
    # what is in flight is one bandwidth-delay product (1 Gb/s × 25 ms one
    # way ≈ 3 MB), and TCP never puts more than that in.
    queues: dict[int, collections.deque[tuple[float, bytes]]] = {
        fd: collections.deque() for fd in fds
    }
    # select(), not epoll: its timeout has microseconds, epoll's whole
    # milliseconds (up to 1 ms late per packet and direction).
    selector = selectors.SelectSelector()
    for fd in fds:
        selector.register(fd, selectors.EVENT_READ)
    stop = False

    def on_term(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    written, late_over_1ms, max_late_s = 0, 0, 0.0
    # Every packet in flight is a tuple the cyclic GC tracks: at 1 Gb/s its
    # full passes over them held the loop up to 25 ms (measured: 10–15 % of
    # packets more than 1 ms late; without the GC 0.4–3 %, at most ~8 ms,
    # what two shared cores allow). Nothing here makes cycles: reference
    # counting frees everything.
    gc.disable()
    print(_READY, flush=True)
    while not stop:
        now = time.monotonic()
        next_due = min((q[0][0] for q in queues.values() if q), default=now + 0.1)
        for key, _events in selector.select(max(0.0, next_due - now)):
            source = int(key.fd)
            due = time.monotonic() + one_way_delay_s
            queue = queues[fds[source]]
            # Drain what is waiting: one wake-up, many packets.
            for _ in range(_READ_BATCH):
                try:
                    queue.append((due, os.read(source, _MAX_READ_BYTES)))
                except BlockingIOError:
                    break
        now = time.monotonic()
        for output, queue in queues.items():
            while queue and queue[0][0] <= now:
                due_s, packet = queue.popleft()
                written += 1
                late_over_1ms += now - due_s > 0.001
                max_late_s = max(max_late_s, now - due_s)
                # The header goes back as it came: the kernel segments a
                # super-packet (and fills its checksums) where it leaves.
                with contextlib.suppress(BlockingIOError, OSError):
                    os.write(output, packet)  # a full TUN queue drops, as a link would
    # Whether it held its delay: how late the latest packet left (the bench
    # and a person at a terminal see it; the caller does not read stderr).
    print(
        f"delayline: {written} packets, {late_over_1ms} more than 1 ms late, "
        f"the latest {max_late_s * 1000:.2f} ms late",
        file=sys.stderr,
        flush=True,
    )


def _ip(netns: str, *argv: str) -> None:
    subprocess.run(["ip", "-n", netns, *argv], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def delay_line(
    router_netns: str, probe_side: str, server_side: str, rtt_ms: float
) -> Iterator[subprocess.Popen[str]]:
    """Add `rtt_ms` of round-trip delay to everything the router forwards
    between its `probe_side` and `server_side` interfaces."""
    tun_a, tun_b = TUN_TO_SERVER, TUN_TO_PROBE
    process = subprocess.Popen(
        ["ip", "netns", "exec", router_netns, sys.executable, "-m", "emulation.delayline",
         "--tun-a", tun_a, "--tun-b", tun_b, "--delay-ms", str(rtt_ms)],
        stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != _READY:
            raise RuntimeError("the delay line did not start")
        for setting in ("all", "default", tun_a, tun_b, probe_side, server_side):
            subprocess.run(
                ["ip", "netns", "exec", router_netns, "sysctl", "-qw",
                 f"net.ipv4.conf.{setting}.rp_filter=0"],
                check=True,
            )  # fmt: skip
        _ip(router_netns, "rule", "add", "iif", probe_side, "lookup", str(_TABLE_TO_SERVER))
        _ip(router_netns, "rule", "add", "iif", server_side, "lookup", str(_TABLE_TO_PROBE))
        _ip(router_netns, "route", "add", "default", "dev", tun_a, "table", str(_TABLE_TO_SERVER))
        _ip(router_netns, "route", "add", "default", "dev", tun_b, "table", str(_TABLE_TO_PROBE))
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


PROBE_ADDRESS = "198.18.20.2"
SERVER_ADDRESS = "198.18.21.2"


@contextlib.contextmanager
def routed_line(
    prefix: str,
    *,
    down_mbps: float | None = None,
    up_mbps: float | None = None,
    queue_ms: float = 50.0,
    rtt_ms: float = 0.0,
) -> Iterator[tuple[str, str, str]]:
    """Namespaces `<prefix>p` (probe, 198.18.20.2) — `<prefix>r` (router) —
    `<prefix>s` (server, 198.18.21.2): tbf on the router's side toward the
    probe (download) and on the probe's uplink (upload), and `rtt_ms` of
    added delay (0: no delay line). Yields (probe, router, server)."""
    from emulation.shaping import apply_tbf, tbf_params

    probe, router, server = f"{prefix}p", f"{prefix}r", f"{prefix}s"
    made: list[str] = []
    try:
        for netns in (probe, router, server):
            subprocess.run(["ip", "netns", "add", netns], check=True)
            made.append(netns)
            _ip(netns, "link", "set", "lo", "up")
        _ip(router, "link", "add", "rp", "type", "veth", "peer", "name", "up0", "netns", probe)
        _ip(router, "link", "add", "rs", "type", "veth", "peer", "name", "dn0", "netns", server)
        for netns, dev, address in (
            (probe, "up0", "198.18.20.2/24"), (router, "rp", "198.18.20.1/24"),
            (router, "rs", "198.18.21.1/24"), (server, "dn0", "198.18.21.2/24"),
        ):  # fmt: skip
            _ip(netns, "addr", "add", address, "dev", dev)
            _ip(netns, "link", "set", dev, "up")
        _ip(probe, "route", "add", "default", "via", "198.18.20.1")
        _ip(server, "route", "add", "default", "via", "198.18.21.1")
        subprocess.run(
            ["ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True
        )
        if down_mbps is not None:
            apply_tbf(router, "rp", tbf_params(down_mbps, queue_ms=queue_ms))
        if up_mbps is not None:
            apply_tbf(probe, "up0", tbf_params(up_mbps, queue_ms=queue_ms))
        if rtt_ms > 0:
            with delay_line(router, "rp", "rs", rtt_ms):
                yield probe, router, server
        else:
            yield probe, router, server
    finally:
        for netns in made:
            subprocess.run(["ip", "netns", "del", netns], check=False)


def main() -> None:
    """Command line: run the forwarder in the current namespace."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tun-a", required=True)
    parser.add_argument("--tun-b", required=True)
    parser.add_argument("--delay-ms", type=float, required=True, help="added round trip")
    parser.add_argument("--tap", action="store_true", help="TAP devices (Ethernet frames)")
    args = parser.parse_args()
    forward(args.tun_a, args.tun_b, args.delay_ms / 2000.0, tap=args.tap)


if __name__ == "__main__":
    main()
