"""Access-link profiles and the `tc` token-bucket shaping that emulates them.

A probe's access link is a veth pair between the probe's namespace and the
core. Download is shaped on the core-side end (its egress is what the probe
receives), upload on the probe-side end. This kernel has tbf, htb and
clsact, but no netem, fq or cake, so the shaper is a plain `tbf` root qdisc:
one class per direction is all an access link needs, and tbf's parameters
map one to one onto what the line sells (a rate) and what the modem does
(a burst and a drop-tail queue).

What a TCP test reads on such a link: tbf counts every byte of the Ethernet
frame (14 bytes of header + 1500 of IP), while iperf3 reports the TCP
payload (1448 bytes per full segment with timestamps), so a saturated link
reads 1448/1514 ≈ 0.956 × the shaped rate: 47.8 Mb/s on a 50 Mb/s link,
957 Mb/s on 1 Gb/s. That is what an ISP's line looks like too.
"""

from __future__ import annotations

import enum
import re
import subprocess
from dataclasses import dataclass
from types import MappingProxyType

# veth hands the qdisc GSO super-packets of up to 64 KiB. A bucket smaller
# than one of them makes tbf split every packet in software (measured here:
# 54 % CPU instead of 5 % at 1 Gb/s, and retransmits); two of them plus
# headers always fit.
GSO_MAX_BYTES = 65_536
MIN_BURST_BYTES = 2 * GSO_MAX_BYTES
# The bucket must hold at least one timer tick of tokens (rate / HZ) or the
# shaper cannot reach its rate between two wake-ups. 100 Hz is the lowest
# CONFIG_HZ a kernel is built with, so rate / 100 is safe on any kernel;
# it is 10 ms of line rate, which lets a test overshoot by at most that
# much once, negligible over a test of seconds.
LOWEST_KERNEL_HZ = 100
ETHERNET_HEADER_BYTES = 14


class NetworkKind(enum.StrEnum):
    """How the probe reaches the Internet, as the agent config says it."""

    FIXED = "fixed"
    MOBILE = "mobile"


@dataclass(frozen=True, kw_only=True)
class LinkProfile:
    """An access line as sold: rates per direction, IPv6 or not, its queue.

    `queue_ms` is how long the modem's drop-tail queue is at the line rate.
    TCP keeps a link full only while the queue holds about one
    bandwidth-delay product; the namespaces add no delay of their own, so
    any queue of a few ms would do, but a later delay line (tests' own, over
    TUN) adds tens of ms, and real CPE queues are that deep (mobile ones
    deeper), which is also what latency-under-load tests should see.
    """

    name: str
    down_mbps: float
    up_mbps: float
    ipv6: bool = True
    network_kind: NetworkKind = NetworkKind.FIXED
    queue_ms: float = 50.0
    burst_bytes: int | None = None  # None: computed from the rate (see tbf_params)
    mtu: int = 1500

    def __post_init__(self) -> None:
        if self.down_mbps <= 0 or self.up_mbps <= 0:
            raise ValueError(f"profile {self.name!r}: rates must be > 0 Mb/s")
        if self.queue_ms <= 0:
            raise ValueError(f"profile {self.name!r}: queue_ms must be > 0")
        if not 1280 <= self.mtu <= 9000:
            # 1280 is IPv6's minimum link MTU.
            raise ValueError(f"profile {self.name!r}: mtu must be in 1280..9000")


FIBRE_1G = LinkProfile(name="fibre_1g", down_mbps=1000, up_mbps=1000)
FIBRE_300 = LinkProfile(name="fibre_300", down_mbps=300, up_mbps=300)
LTE = LinkProfile(
    name="lte", down_mbps=40, up_mbps=15, network_kind=NetworkKind.MOBILE, queue_ms=100.0
)
NR5G = LinkProfile(
    name="nr5g", down_mbps=400, up_mbps=80, network_kind=NetworkKind.MOBILE, queue_ms=100.0
)
IPV4_ONLY = LinkProfile(name="ipv4_only", down_mbps=100, up_mbps=50, ipv6=False)

PROFILES: MappingProxyType[str, LinkProfile] = MappingProxyType(
    {p.name: p for p in (FIBRE_1G, FIBRE_300, LTE, NR5G, IPV4_ONLY)}
)

_SHAPED_NAME = re.compile(r"^shaped_(\d+(?:\.\d+)?)(?:_(\d+(?:\.\d+)?))?$")


def shaped(
    down_mbps: float,
    up_mbps: float | None = None,
    *,
    ipv6: bool = True,
    network_kind: NetworkKind = NetworkKind.FIXED,
) -> LinkProfile:
    """A fixed line at an arbitrary rate, named `shaped_<down>` (or
    `shaped_<down>_<up>` when the directions differ); up defaults to down."""
    up = down_mbps if up_mbps is None else up_mbps
    name = f"shaped_{down_mbps:g}" if up == down_mbps else f"shaped_{down_mbps:g}_{up:g}"
    return LinkProfile(
        name=name, down_mbps=down_mbps, up_mbps=up, ipv6=ipv6, network_kind=network_kind
    )


def profile_named(name: str) -> LinkProfile:
    """The profile called `name`: one of PROFILES, or `shaped_<down>[_<up>]`."""
    if name in PROFILES:
        return PROFILES[name]
    match = _SHAPED_NAME.match(name)
    if match is None:
        known = ", ".join([*PROFILES, "shaped_<down>[_<up>]"])
        raise ValueError(f"unknown link profile {name!r}; known: {known}")
    down = float(match.group(1))
    up = float(match.group(2)) if match.group(2) else None
    return shaped(down, up)


@dataclass(frozen=True, kw_only=True)
class TbfParams:
    """One direction's token bucket, in the units `tc` takes."""

    rate_bit_s: int
    burst_bytes: int
    limit_bytes: int  # bytes that may wait in the queue for tokens


def tbf_params(
    rate_mbps: float, *, queue_ms: float, burst_bytes: int | None = None, mtu: int = 1500
) -> TbfParams:
    """Token-bucket parameters for a link of `rate_mbps` with a queue of
    `queue_ms` at that rate (see the module docstring for why these sizes)."""
    rate_bit_s = round(rate_mbps * 1_000_000)
    rate_bytes_s = rate_bit_s / 8
    if burst_bytes is None:
        burst_bytes = max(MIN_BURST_BYTES, round(rate_bytes_s / LOWEST_KERNEL_HZ))
    frame_bytes = mtu + ETHERNET_HEADER_BYTES
    if burst_bytes < frame_bytes:
        # tbf drops (does not queue) any packet larger than the bucket.
        raise ValueError(f"burst of {burst_bytes} B is below one frame ({frame_bytes} B)")
    queue_bytes = round(rate_bytes_s * queue_ms / 1000)
    # tbf's limit counts the bucket too; never less than a few full frames
    # so a slow link still absorbs the initial window of one connection.
    limit_bytes = burst_bytes + max(queue_bytes, 16 * frame_bytes)
    return TbfParams(rate_bit_s=rate_bit_s, burst_bytes=burst_bytes, limit_bytes=limit_bytes)


def tbf_argv(netns: str, device: str, params: TbfParams) -> list[str]:
    """The `tc` command that installs (or replaces) the shaper on `device`."""
    return [
        "tc", "-n", netns, "qdisc", "replace", "dev", device, "root", "tbf",
        "rate", f"{params.rate_bit_s}bit",
        "burst", str(params.burst_bytes),
        "limit", str(params.limit_bytes),
    ]  # fmt: skip


def apply_tbf(netns: str, device: str, params: TbfParams) -> None:
    """Install the shaper; raises CalledProcessError with tc's message."""
    subprocess.run(tbf_argv(netns, device, params), check=True, capture_output=True, text=True)


def link_shapers(profile: LinkProfile) -> tuple[TbfParams, TbfParams]:
    """(download, upload) token buckets for a profile."""
    down = tbf_params(
        profile.down_mbps, queue_ms=profile.queue_ms, burst_bytes=profile.burst_bytes,
        mtu=profile.mtu,
    )  # fmt: skip
    up = tbf_params(
        profile.up_mbps, queue_ms=profile.queue_ms, burst_bytes=profile.burst_bytes,
        mtu=profile.mtu,
    )  # fmt: skip
    return down, up
