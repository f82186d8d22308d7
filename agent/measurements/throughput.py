"""Download and upload speed with iperf3, against the reference server's port pool.

The test itself is libiperf's, driven through the `iperf3` Python wrapper
(ctypes). The wrapper is known to hang or lose output when it captures
libiperf's stdout through a pipe, and under daemons without a terminal
(iperf3-python issues #13, #53, #75). So each test runs in a child Python
process that we can kill: the child sets the test up with the wrapper, calls
libiperf's `iperf_run_client` itself with stdout pointed at /dev/null, and
hands back libiperf's own JSON text (`iperf_get_test_json_output_string`).
The parent enforces a hard timeout, kills the child when it passes, and
parses the JSON exactly once, here, into a `ThroughputResult`.

Which figure is the speed: `end.sum_received`, the receiving side's count of
the payload that actually arrived. For a download (reverse mode, server
sends) that is the probe's own count; for an upload it is the server's
count, which libiperf fetches at the end of the test. `end.sum_sent` is not
used for the speed because it also counts bytes still queued in the sender's
socket buffer when the clock stopped, which overstates a slow line. The
sender's TCP retransmissions come from `end.sum_sent.retransmits` (in reverse
mode libiperf reports the server's). The warm-up (`omit_s`, TCP slow start)
is excluded by libiperf from both sums.

A busy iperf3 server ("the server is busy running a test") is not a
measurement of the line: the next port of the pool is tried; when every
port was busy the agent backs off (doubling waits, `busy_backoff_s`) and
tries the pool again, and only when the hard limit leaves no room for
another round does the test fail with "all iperf3 ports were busy".

Around the test itself, `run` also:
- checks the line first (agent/preflight.py): a household using it, or a
  busy CPU, defers the test (status SKIPPED, reason starting "deferred:",
  with the observed rate and load);
- records the port the test left from: interface, negotiated link speed,
  MTU, local address (agent/netif.py);
- measures the RTT to the server idle, just before, and loaded, while the
  transfer runs (a thread sending one ICMP echo, or a TCP connect when
  ICMP is not allowed, every `rtt_interval_s`); loaded samples from the
  warm-up are dropped like the warm-up's bytes;
- applies the validity rule (wardprobe/validity.py): a transfer too small
  or cut short is FAILED with a reason starting "invalid transfer:".

Caps: `duration_s` (iperf3 -t) or `bytes_cap` (iperf3 -n: the test ends
when that many bytes have been sent; libiperf takes one end condition, so
then the duration is only the hard limit's yardstick). Both directions at
once (`run_both`, iperf3 --bidir) give two results from one test.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent import netif
from agent.measurements import latency
from agent.measurements.base import (
    MALFORMED_PREFIX,
    IpFamily,
    MeasurementContext,
    MeasurementResult,
    Method,
    Status,
)
from agent.preflight import PreflightLimits, PreflightReading, check_line
from wardprobe import validity

TOOL = "iperf3"

# iperf3's own text for IEACCESSDENIED; the only error that sends us to the next port.
_SERVER_BUSY_MARKER = "server is busy"

# libiperf refuses report intervals above 60 s on its command line (MAX_INTERVAL);
# we stay inside what it supports even though the setter does not check.
_MAX_REPORT_INTERVAL_S = 60.0

# How the child tells the parent that it could not even start the test
# (libiperf missing, the server name has no address of the wanted family).
_EXIT_SETUP_FAILED = 3

# Enough of the child's stderr to explain a crash, not enough to flood a log.
_STDERR_TAIL_CHARS = 500


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


def run(params: ThroughputParams) -> ThroughputResult:
    """Run one throughput test; a failed test is a FAILED result, never an exception.

    Ports are tried in order; only "server busy" moves on to the next one,
    and a round of busy ports is retried after a back-off. The whole call,
    all ports and rounds included, ends within `params.timeout_s` (plus the
    moment it takes to kill and reap the child).
    """
    return _run_test(replace(params, bidirectional=False))[0]


def run_both(params: ThroughputParams) -> tuple[ThroughputResult, ThroughputResult]:
    """Download and upload at the same time (iperf3 --bidir): (download, upload)."""
    results = _run_test(replace(params, bidirectional=True))
    by_direction = {result.direction: result for result in results}
    return by_direction[Direction.DOWNLOAD], by_direction[Direction.UPLOAD]


def skipped(params: ThroughputParams, reason: str) -> ThroughputResult:
    """A result for a test the agent chose not to run (e.g. over its byte budget)."""
    return ThroughputResult(
        measured_at=datetime.now(UTC),
        status=Status.SKIPPED,
        status_reason=reason,
        method=_method(params, params.ports[0], ""),
        interface=params.interface,
        direction=params.direction,
    )


def _directions(params: ThroughputParams) -> tuple[Direction, ...]:
    if params.bidirectional:
        return (Direction.DOWNLOAD, Direction.UPLOAD)
    return (params.direction,)


@dataclass(frozen=True)
class _LinkInfo:
    interface: str
    link_speed_mbps: float | None
    mtu: int | None


def _link_info(params: ThroughputParams, local_address: str) -> _LinkInfo:
    """The port the test used: the bound interface, else the one holding the address."""
    interface = params.interface or netif.interface_of_address(local_address)
    return _LinkInfo(interface, netif.link_speed_mbps(interface), netif.mtu(interface))


def _run_test(params: ThroughputParams) -> list[ThroughputResult]:
    measured_at = datetime.now(UTC)
    deadline = time.monotonic() + params.timeout_s
    reading: PreflightReading | None = None
    if params.preflight is not None:
        interface = params.interface or netif.interface_of_address(
            netif.local_address_towards(params.server_host, params.ports[0])
        )
        reading = check_line(interface, params.preflight)
        if reading.deferred_reason:
            return [
                replace(
                    skipped(replace(params, direction=direction), reading.deferred_reason),
                    measured_at=measured_at,
                    cross_traffic_bytes_per_s=reading.cross_traffic_bytes_per_s,
                    cpu_load_pct=reading.cpu_load_pct,
                )
                for direction in _directions(params)
            ]
    idle = RttSampler(params)
    if params.rtt_samples_idle:
        idle.sample(params.rtt_samples_idle)
    results = _run_on_pool(params, measured_at, deadline)
    extra: dict[str, Any] = {
        "idle_rtt_median_ms": idle.median_ms(),
        "loaded_rtt_median_ms": results.loaded.median_ms(),
        "loaded_rtt_p95_ms": results.loaded.p95_ms(),
    }
    if reading is not None:
        extra["cross_traffic_bytes_per_s"] = reading.cross_traffic_bytes_per_s
        extra["cpu_load_pct"] = reading.cpu_load_pct
    finished = []
    for result in results.results:
        link = _link_info(params, result.local_address)
        result = replace(
            result,
            interface=link.interface,
            link_speed_mbps=link.link_speed_mbps,
            mtu=link.mtu,
            **extra,
        )
        finished.append(_apply_validity(result, params))
    return finished


def _apply_validity(result: ThroughputResult, params: ThroughputParams) -> ThroughputResult:
    if result.status is not Status.OK:
        return result
    verdict = validity.check_throughput(
        validity.Transfer(
            tool=TOOL,
            bytes_transferred=result.bytes_transferred,
            measured_s=result.measured_s,
            mbps=result.mbps,
        )
    )
    if verdict.valid:
        return result
    return replace(result, status=Status.FAILED, status_reason=verdict.reason)


@dataclass
class _PoolOutcome:
    results: list[ThroughputResult]
    loaded: RttSampler


def _run_on_pool(params: ThroughputParams, measured_at: datetime, deadline: float) -> _PoolOutcome:
    busy_messages: list[str] = []
    backoff_s = params.busy_backoff_s
    loaded = RttSampler(params)
    while True:
        for port in params.ports:
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                return _PoolOutcome(
                    _failed_all(params, port, measured_at, _timeout_reason(params, port)), loaded
                )
            loaded = RttSampler(params)
            with loaded.running(skip_first_s=float(params.omit_s)):
                outcome = _run_child(params, port, remaining_s)
            if isinstance(outcome, _ChildFailure):
                return _PoolOutcome(_failed_all(params, port, measured_at, outcome.reason), loaded)
            results = parse_iperf3_output(
                outcome, params=params, server_port=port, measured_at=measured_at
            )
            first = results[0]
            if first.status is Status.FAILED and _SERVER_BUSY_MARKER in first.status_reason:
                busy_messages.append(first.status_reason)
                continue
            return _PoolOutcome(results, loaded)
        # Every port busy: wait, then try the pool again, while the limit allows
        # the wait and a whole test after it.
        needed_s = backoff_s + params.omit_s + params.duration_s + params.connect_timeout_s
        if params.busy_backoff_s <= 0 or deadline - time.monotonic() < needed_s:
            break
        time.sleep(backoff_s)
        backoff_s *= 2
    ports = ", ".join(str(port) for port in params.ports)
    return _PoolOutcome(
        _failed_all(
            params,
            params.ports[-1],
            measured_at,
            f"all iperf3 ports were busy ({ports}): {busy_messages[-1]}",
        ),
        loaded,
    )


def _failed_all(
    params: ThroughputParams, port: int, measured_at: datetime, reason: str
) -> list[ThroughputResult]:
    return [
        _failed(replace(params, direction=direction), port, measured_at, reason)
        for direction in _directions(params)
    ]


class RttSampler:
    """Round trips to the server, one at a time: idle before a test, or in a
    thread while it runs (loaded latency). ICMP echo first; when the probe
    may not send ICMP, a TCP connect to `rtt_tcp_port`."""

    def __init__(self, params: ThroughputParams) -> None:
        self._params = params
        self._protocol = latency.LatencyProtocol.ICMP
        self.rtts_ms: list[float] = []
        self._stop = threading.Event()

    def _one(self) -> float | None:
        port = None if self._protocol is latency.LatencyProtocol.ICMP else self._params.rtt_tcp_port
        try:
            probe = latency.LatencyParams(
                protocol=self._protocol,
                target=self._params.server_host,
                port=port,
                count=1,
                interval_s=0.0,
                timeout_s=1.0,
                interface=self._params.interface,
            )
        except ValueError:
            return None
        result = latency.run(probe)
        if result.status is Status.FAILED and result.packets_sent == 0:
            # No ICMP socket (no permission): the TCP connect time instead, if we have a port.
            if self._protocol is latency.LatencyProtocol.ICMP and self._params.rtt_tcp_port:
                self._protocol = latency.LatencyProtocol.TCP
            return None
        return result.rtt_median_ms

    def sample(self, count: int) -> None:
        """`count` samples, `rtt_interval_s` apart (idle latency)."""
        for index in range(count):
            if index:
                time.sleep(self._params.rtt_interval_s)
            rtt = self._one()
            if rtt is not None:
                self.rtts_ms.append(rtt)

    def _loop(self, skip_until: float) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            rtt = self._one()
            if rtt is not None and started >= skip_until:
                self.rtts_ms.append(rtt)
            self._stop.wait(max(0.0, self._params.rtt_interval_s - (time.monotonic() - started)))

    def running(self, skip_first_s: float) -> _SamplerRun:
        """A context in which a thread samples; samples from the first `skip_first_s`
        seconds (the warm-up) are dropped."""
        return _SamplerRun(self, skip_first_s)

    def median_ms(self) -> float | None:
        """Median of the samples (None without any)."""
        return statistics.median(self.rtts_ms) if self.rtts_ms else None

    def p95_ms(self) -> float | None:
        """95th percentile of the samples, as latency.summarise_rtts computes it."""
        return latency.summarise_rtts(self.rtts_ms).rtt_p95_ms


class _SamplerRun:
    def __init__(self, sampler: RttSampler, skip_first_s: float) -> None:
        self._sampler = sampler
        self._skip_first_s = skip_first_s
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RttSampler:
        skip_until = time.monotonic() + self._skip_first_s
        self._thread = threading.Thread(
            target=self._sampler._loop, args=(skip_until,), name="loaded-rtt", daemon=True
        )
        self._thread.start()
        return self._sampler

    def __exit__(self, *exc: object) -> None:
        self._sampler._stop.set()
        if self._thread is not None:
            self._thread.join()


def parse_iperf3_json(
    text: str, *, params: ThroughputParams, server_port: int, measured_at: datetime
) -> ThroughputResult:
    """The result of a one-direction test (see `parse_iperf3_output`)."""
    return parse_iperf3_output(
        text, params=params, server_port=server_port, measured_at=measured_at
    )[0]


def parse_iperf3_output(
    text: str, *, params: ThroughputParams, server_port: int, measured_at: datetime
) -> list[ThroughputResult]:
    """Turn libiperf's JSON output for one client test into results: one, or
    (download, upload) for a bidirectional test.

    "iperf3 reported an error" (the JSON has `error`) gives FAILED with the
    tool's message; JSON that does not parse or lacks the figures gives
    FAILED with a reason starting with `MALFORMED_PREFIX`.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return _failed_all(
            params, server_port, measured_at, f"{MALFORMED_PREFIX}iperf3 JSON does not parse: {exc}"
        )
    if not isinstance(document, dict):
        return _failed_all(
            params, server_port, measured_at, f"{MALFORMED_PREFIX}iperf3 JSON is not an object"
        )
    start = document.get("start")
    tool_version = ""
    if isinstance(start, dict) and isinstance(start.get("version"), str):
        tool_version = start["version"]
    error = document.get("error")
    if error is not None:
        reason = f"iperf3 reported an error: {error}"
        return [
            _failed(replace(params, direction=direction), server_port, measured_at, reason,
                    tool_version)
            for direction in _directions(params)
        ]  # fmt: skip
    try:
        return _parse_success(
            document,
            params=params,
            server_port=server_port,
            measured_at=measured_at,
            tool_version=tool_version,
        )
    except _MalformedOutputError as exc:
        reason = f"{MALFORMED_PREFIX}{exc}"
        return [
            _failed(replace(params, direction=direction), server_port, measured_at, reason,
                    tool_version)
            for direction in _directions(params)
        ]  # fmt: skip


class _MalformedOutputError(Exception):
    """The JSON parsed but does not hold what a finished iperf3 test reports."""


def _parse_success(
    document: dict[str, Any],
    *,
    params: ThroughputParams,
    server_port: int,
    measured_at: datetime,
    tool_version: str,
) -> list[ThroughputResult]:
    start = _object(document, "start")
    test_start = _object(start, "test_start", "start.")
    end = _object(document, "end")
    reverse = test_start.get("reverse")
    if params.bidirectional:
        if "sum_received_bidir_reverse" not in end:
            raise _MalformedOutputError("a bidirectional test was asked for, no bidir sums")
        # Forward sums are the client's sending (upload), *_bidir_reverse the server's.
        sums = {
            Direction.UPLOAD: ("sum_received", "sum_sent"),
            Direction.DOWNLOAD: ("sum_received_bidir_reverse", "sum_sent_bidir_reverse"),
        }
    else:
        expected_reverse = 1 if params.direction is Direction.DOWNLOAD else 0
        if reverse != expected_reverse:
            raise _MalformedOutputError(
                f"start.test_start.reverse is {reverse!r} but a {params.direction} test "
                "was asked for"
            )
        sums = {params.direction: ("sum_received", "sum_sent")}
    family = _family_of_connection(start)
    local_address = _local_address(start)
    omitted_s = _number(test_start, "omit", "start.test_start.")
    results = []
    for direction, (received_key, sent_key) in sums.items():
        received = _object(end, received_key, "end.")
        sent = end.get(sent_key)
        retransmits: int | None = None
        if isinstance(sent, dict):
            value = sent.get("retransmits")
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                retransmits = value
        where = f"end.{received_key}."
        results.append(
            ThroughputResult(
                measured_at=measured_at,
                status=Status.OK,
                method=_method(params, server_port, tool_version),
                interface=params.interface,
                ip_family=family,
                direction=direction,
                mbps=_number(received, "bits_per_second", where) / 1e6,
                bytes_transferred=int(_number(received, "bytes", where)),
                measured_s=_number(received, "seconds", where),
                retransmits=retransmits,
                omitted_s=omitted_s,
                local_address=local_address,
            )
        )
    return results


def _local_address(start: dict[str, Any]) -> str:
    connected = start["connected"][0]  # checked by _family_of_connection
    address = ipaddress.ip_address(str(connected.get("local_host")))
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _object(parent: dict[str, Any], key: str, where: str = "") -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise _MalformedOutputError(f"no {where}{key} object")
    return value


def _number(parent: dict[str, Any], key: str, where: str) -> float:
    value = parent.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _MalformedOutputError(f"{where}{key} is not a number: {value!r}")
    if not math.isfinite(value) or value < 0:
        raise _MalformedOutputError(f"{where}{key} is out of range: {value!r}")
    return float(value)


def _family_of_connection(start: dict[str, Any]) -> IpFamily:
    connected = start.get("connected")
    if not isinstance(connected, list) or not connected or not isinstance(connected[0], dict):
        raise _MalformedOutputError("no start.connected[0] entry")
    local_host = connected[0].get("local_host")
    try:
        address = ipaddress.ip_address(str(local_host))
    except ValueError:
        raise _MalformedOutputError(
            f"start.connected[0].local_host is not an address: {local_host!r}"
        ) from None
    # An IPv6 socket talking to an IPv4 peer shows ::ffff:a.b.c.d; the wire was IPv4.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return IpFamily.IPV6
    return IpFamily.IPV4


def _method(params: ThroughputParams, server_port: int, tool_version: str) -> Method:
    return Method(
        tool=TOOL,
        tool_version=tool_version,
        server=params.server_host,
        server_port=server_port,
        duration_s=float(params.duration_s),
        streams=params.streams,
    )


def _failed(
    params: ThroughputParams,
    server_port: int,
    measured_at: datetime,
    reason: str,
    tool_version: str = "",
) -> ThroughputResult:
    return ThroughputResult(
        measured_at=measured_at,
        status=Status.FAILED,
        status_reason=reason,
        method=_method(params, server_port, tool_version),
        interface=params.interface,
        direction=params.direction,
    )


def _timeout_reason(params: ThroughputParams, port: int) -> str:
    return (
        f"timed out after {params.timeout_s:g} s: iperf3 against "
        f"{params.server_host} port {port} did not finish and was stopped"
    )


# --- the child process -------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _ChildRequest:
    """What the child needs to run one libiperf client test (sent as JSON on stdin)."""

    host: str
    port: int
    reverse: bool
    duration_s: int
    omit_s: int
    streams: int
    bind_address: str
    interface: str
    connect_timeout_ms: int
    ip_family: str  # "" = any, else an IpFamily value
    bytes_cap: int  # 0 = end by duration
    bidirectional: bool
    parent_pid: int  # the agent process that waits for this test
    time_limit_s: int  # the child ends itself after this, whatever happens to the parent


@dataclass(frozen=True)
class _ChildFailure:
    reason: str


def _run_child(params: ThroughputParams, port: int, timeout_s: float) -> str | _ChildFailure:
    """Run one test in a fresh Python process; its stdout is libiperf's JSON text."""
    request = _ChildRequest(
        host=params.server_host,
        port=port,
        reverse=params.direction is Direction.DOWNLOAD and not params.bidirectional,
        duration_s=params.duration_s,
        omit_s=params.omit_s,
        streams=params.streams,
        bind_address=params.bind_address,
        interface=params.interface,
        connect_timeout_ms=max(1, round(params.connect_timeout_s * 1000)),
        ip_family=params.ip_family.value if params.ip_family else "",
        bytes_cap=params.bytes_cap or 0,
        bidirectional=params.bidirectional,
        parent_pid=os.getpid(),
        # A little past the parent's own limit: the parent normally kills first.
        time_limit_s=math.ceil(timeout_s) + 5,
    )
    # The child must import this package even when the agent runs from a source tree.
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    command = [
        sys.executable,
        "-c",
        "from agent.measurements.throughput import _child_main; _child_main()",
    ]
    try:
        completed = subprocess.run(
            command,
            input=json.dumps(asdict(request)).encode(),
            capture_output=True,
            timeout=timeout_s,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        # subprocess.run has already killed and reaped the child.
        return _ChildFailure(_timeout_reason(params, port))
    stderr = completed.stderr.decode("utf-8", errors="replace").strip()
    if completed.returncode == _EXIT_SETUP_FAILED:
        return _ChildFailure(stderr.splitlines()[-1] if stderr else "iperf3 could not start")
    if completed.returncode < 0:
        try:
            name = signal.Signals(-completed.returncode).name
        except ValueError:  # a real-time signal has no name
            name = f"signal {-completed.returncode}"
        return _ChildFailure(
            f"iperf3 child process died from {name}: {stderr[-_STDERR_TAIL_CHARS:]}"
        )
    if completed.returncode != 0:
        return _ChildFailure(
            f"iperf3 child process exited with status {completed.returncode}: "
            f"{stderr[-_STDERR_TAIL_CHARS:]}"
        )
    text = completed.stdout.decode("utf-8", errors="replace")
    if not text.strip():
        return _ChildFailure(f"{MALFORMED_PREFIX}iperf3 produced no output")
    return text


def _child_main() -> None:
    """Entry point of the child process: one libiperf client test, JSON to stdout."""
    request = _ChildRequest(**json.loads(sys.stdin.read()))
    _end_with_parent_or_time_limit(request)
    # Keep the real stdout for our answer and send libiperf's own prints to
    # /dev/null: a stray line there must not corrupt the JSON we hand back.
    answer_fd = os.dup(1)
    devnull_fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull_fd, 1)
    try:
        host = _address_for_family(request.host, request.port, request.ip_family)
        text = _run_libiperf_client(request, host)
    except _ChildSetupError as exc:
        print(str(exc), file=sys.stderr, flush=True)
        sys.exit(_EXIT_SETUP_FAILED)
    payload = text.encode("utf-8")
    while payload:
        written = os.write(answer_fd, payload)
        payload = payload[written:]
    os.close(answer_fd)


def _end_with_parent_or_time_limit(request: _ChildRequest) -> None:
    """Never outlive the test: a hung libiperf must not linger after an agent restart."""
    import ctypes  # only the child needs it

    # SIGALRM's default action ends the process even while it is inside libiperf.
    signal.alarm(request.time_limit_s)
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1  # <linux/prctl.h>
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != request.parent_pid:  # the parent died before prctl took effect
        sys.exit(_EXIT_SETUP_FAILED)


class _ChildSetupError(Exception):
    """The test could not be started at all."""


def _address_for_family(host: str, port: int, family: str) -> str:
    """The server's address in the wanted family; libiperf has no setter for -4/-6."""
    if not family:
        return host
    wanted = socket.AF_INET if family == IpFamily.IPV4.value else socket.AF_INET6
    try:
        infos = socket.getaddrinfo(host, port, wanted, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise _ChildSetupError(f"{host} has no {family} address: {exc.strerror}") from None
    return str(infos[0][4][0])


def _run_libiperf_client(request: _ChildRequest, host: str) -> str:
    """Configure a libiperf client through the wrapper and run it; returns its JSON text."""
    from ctypes import c_char_p, c_double, c_int, c_uint64, c_void_p  # child only

    import iperf3  # loads libiperf: child only, keeps the agent light

    try:
        client = iperf3.Client()
    except OSError as exc:
        raise _ChildSetupError(
            f"libiperf could not be loaded (is iperf3 installed?): {exc}"
        ) from None
    client.verbose = False
    client.json_output = True
    client.server_hostname = host
    client.port = request.port
    client.duration = request.duration_s
    client.omit = request.omit_s
    client.num_streams = request.streams
    client.reverse = request.reverse
    if request.bind_address:
        client.bind_address = request.bind_address
    lib: Any = client.lib
    test: int = client._test
    # Setters the wrapper lacks. One report interval for the whole test keeps the
    # JSON small: we only read the end sums.
    for name in ("iperf_set_test_stats_interval", "iperf_set_test_reporter_interval"):
        setter = getattr(lib, name)
        setter.argtypes = (c_void_p, c_double)
        setter.restype = None
        setter(test, min(float(request.duration_s), _MAX_REPORT_INTERVAL_S))
    if request.bytes_cap:
        # libiperf takes one end condition: with a byte count it ignores the duration.
        lib.iperf_set_test_bytes.argtypes = (c_void_p, c_uint64)
        lib.iperf_set_test_bytes.restype = None
        lib.iperf_set_test_bytes(test, request.bytes_cap)
    if request.bidirectional:
        lib.iperf_set_test_bidirectional.argtypes = (c_void_p, c_int)
        lib.iperf_set_test_bidirectional.restype = None
        lib.iperf_set_test_bidirectional(test, 1)
    lib.iperf_set_test_connect_timeout.argtypes = (c_void_p, c_int)
    lib.iperf_set_test_connect_timeout.restype = None
    lib.iperf_set_test_connect_timeout(test, request.connect_timeout_ms)
    if request.interface:
        lib.iperf_set_test_bind_dev.argtypes = (c_void_p, c_char_p)
        lib.iperf_set_test_bind_dev.restype = None
        lib.iperf_set_test_bind_dev(test, request.interface.encode())
    lib.iperf_run_client(test)
    # libiperf 3.12 finishes its JSON (with "error" on failure) inside iperf_run_client.
    raw = lib.iperf_get_test_json_output_string(test)
    if raw:
        return bytes(raw).decode("utf-8", errors="replace")
    # Older libiperf leaves no JSON on some errors: describe it in iperf3's own shape.
    return json.dumps({"error": client._error_to_string(client._errno)})
