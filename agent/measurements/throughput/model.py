"""A throughput test's params and results, and the results built without a transfer.

Shared by the orchestration (run.py), the iperf3 JSON parser (iperf3_output.py)
and the libiperf child's runner (libiperf_child.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from agent.measurements.base import (
    IpFamily,
    MeasurementContext,
    MeasurementResult,
    Method,
    ReasonKind,
    Status,
)
from agent.preflight import PreflightLimits

TOOL = "iperf3"


class Direction(enum.StrEnum):
    """Which way the payload flows, seen from the probe."""

    DOWNLOAD = "download"  # server to probe: iperf3 reverse mode
    UPLOAD = "upload"  # probe to server


@dataclass(frozen=True, kw_only=True)
class ThroughputParams:
    """One throughput test: where to, which way, how long, on which line."""

    server_host: str
    ports: tuple[int, ...]  # the reference server's iperf3 pool, tried in order when busy
    direction: Direction
    duration_s: int = 10  # measured part, after the warm-up
    streams: int = 4  # parallel TCP streams
    omit_s: int = 2  # warm-up seconds discarded (TCP slow start)
    bind_address: str = ""  # local address to send from ("" = routing decides)
    interface: str = ""  # SO_BINDTODEVICE ("" = routing decides)
    timeout_s: float = 60.0  # hard limit for the whole test, all ports included
    connect_timeout_s: float = 5.0  # libiperf's limit for opening the control connection
    ip_family: IpFamily | None = None  # None: whatever the server name resolves to first
    bytes_cap: int | None = None  # end the test after this many bytes (iperf3 -n)
    bidirectional: bool = False  # both directions at once (iperf3 --bidir); see run_both
    busy_backoff_s: float = 2.0  # first wait after a round of busy ports; doubles
    preflight: PreflightLimits | None = None  # None: no cross-traffic / CPU check
    rtt_samples_idle: int = 5  # RTT samples just before the test (0: none)
    rtt_interval_s: float = 0.2  # between RTT samples, idle and loaded
    rtt_tcp_port: int | None = None  # TCP fallback target when ICMP is not allowed

    def __post_init__(self) -> None:
        if not self.server_host:
            raise ValueError("server_host is empty")
        if not self.ports or any(not 0 < port < 65536 for port in self.ports):
            raise ValueError(f"ports must be a non-empty list of TCP ports, got {self.ports!r}")
        if self.duration_s < 1:
            raise ValueError(f"duration_s must be at least 1, got {self.duration_s}")
        if self.streams < 1:
            raise ValueError(f"streams must be at least 1, got {self.streams}")
        if self.omit_s < 0:
            raise ValueError(f"omit_s must not be negative, got {self.omit_s}")
        if self.connect_timeout_s <= 0:
            raise ValueError(f"connect_timeout_s must be positive, got {self.connect_timeout_s}")
        if self.bytes_cap is not None and self.bytes_cap < 1:
            raise ValueError(f"bytes_cap must be positive, got {self.bytes_cap}")
        if self.busy_backoff_s < 0:
            raise ValueError(f"busy_backoff_s must not be negative, got {self.busy_backoff_s}")
        if self.rtt_samples_idle < 0 or self.rtt_interval_s <= 0:
            raise ValueError("rtt_samples_idle must be >= 0 and rtt_interval_s > 0")
        # A limit shorter than the test itself would fail every test: a configuration error.
        if self.timeout_s <= self.omit_s + self.duration_s:
            raise ValueError(
                f"timeout_s ({self.timeout_s:g}) must exceed omit_s + duration_s "
                f"({self.omit_s + self.duration_s})"
            )


@dataclass(frozen=True, kw_only=True)
class ThroughputResult(MeasurementResult):
    """One direction of one throughput test (proto: wardprobe.v1.ThroughputResult)."""

    direction: Direction
    mbps: float | None = None  # 10^6 bits per second received, warm-up excluded
    bytes_transferred: int | None = None  # payload bytes the receiver counted
    measured_s: float | None = None  # seconds over which mbps was computed
    retransmits: int | None = None  # sender's TCP retransmissions, when reported
    omitted_s: float | None = None  # warm-up seconds discarded
    link_speed_mbps: float | None = None  # negotiated speed of the port (sysfs)
    mtu: int | None = None
    local_address: str = ""  # address the test left from
    idle_rtt_median_ms: float | None = None  # just before the test
    loaded_rtt_median_ms: float | None = None  # while the transfer ran (bufferbloat)
    loaded_rtt_p95_ms: float | None = None
    cross_traffic_bytes_per_s: float | None = None  # what the pre-test check saw
    cpu_load_pct: float | None = None


def download_params_from(ctx: MeasurementContext) -> ThroughputParams:
    """Download test params from what the scheduler knows."""
    return _params_from(ctx, Direction.DOWNLOAD)


def upload_params_from(ctx: MeasurementContext) -> ThroughputParams:
    """Upload test params from what the scheduler knows."""
    return _params_from(ctx, Direction.UPLOAD)


def _params_from(ctx: MeasurementContext, direction: Direction) -> ThroughputParams:
    return ThroughputParams(
        server_host=ctx.server_host,
        ports=tuple(ctx.iperf3_ports),
        direction=direction,
        duration_s=ctx.throughput_duration_s,
        streams=ctx.throughput_streams,
        interface=ctx.interface,
        bind_address=ctx.bind_address,
        timeout_s=ctx.timeout_s,
        bytes_cap=ctx.throughput_bytes_cap,
        preflight=ctx.preflight,
        rtt_tcp_port=ctx.tcp_echo_port,
    )


def skipped(params: ThroughputParams, reason: str, kind: ReasonKind) -> ThroughputResult:
    """A result for a test the agent chose not to run (deferred, over its byte budget)."""
    return ThroughputResult(
        measured_at=datetime.now(UTC),
        status=Status.SKIPPED,
        status_reason=reason,
        status_reason_kind=kind,
        method=method(params, params.ports[0], ""),
        interface=params.interface,
        direction=params.direction,
    )


def directions(params: ThroughputParams) -> tuple[Direction, ...]:
    """The directions one test gives results for: both for a bidirectional test."""
    if params.bidirectional:
        return (Direction.DOWNLOAD, Direction.UPLOAD)
    return (params.direction,)


def method(params: ThroughputParams, server_port: int, tool_version: str) -> Method:
    """How the test was run, for the result."""
    return Method(
        tool=TOOL,
        tool_version=tool_version,
        server=params.server_host,
        server_port=server_port,
        duration_s=float(params.duration_s),
        streams=params.streams,
    )


def failed(
    params: ThroughputParams,
    server_port: int,
    measured_at: datetime,
    reason: str,
    kind: ReasonKind,
    tool_version: str = "",
) -> ThroughputResult:
    """A FAILED result in `params.direction`."""
    return ThroughputResult(
        measured_at=measured_at,
        status=Status.FAILED,
        status_reason=reason,
        status_reason_kind=kind,
        method=method(params, server_port, tool_version),
        interface=params.interface,
        direction=params.direction,
    )


def failed_all(
    params: ThroughputParams,
    port: int,
    measured_at: datetime,
    reason: str,
    kind: ReasonKind,
    tool_version: str = "",
) -> list[ThroughputResult]:
    """The same failure in every direction of the test."""
    return [
        failed(replace(params, direction=d), port, measured_at, reason, kind, tool_version)
        for d in directions(params)
    ]


def timeout_reason(params: ThroughputParams, port: int) -> str:
    """The reason of a test stopped at its hard limit."""
    return (
        f"timed out after {params.timeout_s:g} s: iperf3 against "
        f"{params.server_host} port {port} did not finish and was stopped"
    )
