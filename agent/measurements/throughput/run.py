"""Running one throughput test: the line check, the port pool, the RTT samples,
the validity rule. The libiperf child (libiperf_child.py) moves the bytes; its
JSON is parsed in iperf3_output.py.

A busy iperf3 server ("the server is busy running a test") is not a
measurement of the line: the next port of the pool is tried; when every
port was busy the agent backs off (doubling waits, `busy_backoff_s`) and
tries the pool again, and only when the hard limit leaves no room for
another round does the test fail with "all iperf3 ports were busy" (kind
SERVER_BUSY).

Around the test itself, `run` also:
- checks the line first (agent/preflight.py): a household using it, or a
  busy CPU, defers the test (status SKIPPED, kind DEFERRED, with the
  observed rate and load);
- records the port the test left from: interface, negotiated link speed,
  MTU, local address (agent/netif.py);
- measures the RTT to the server idle, just before, and loaded, while the
  transfer runs (rtt_sampler.py: one ICMP echo, or a TCP connect when
  ICMP is not allowed, every `rtt_interval_s`); loaded samples from the
  warm-up are dropped like the warm-up's bytes;
- applies the validity rule (wardprobe/validity.py): a transfer too small
  or cut short is FAILED, kind INVALID_TRANSFER.

Caps: `duration_s` (iperf3 -t) or `bytes_cap` (iperf3 -n: the test ends
when that many bytes have been sent; libiperf takes one end condition, so
then the duration is only the hard limit's yardstick). Both directions at
once (`run_both`, iperf3 --bidir) give two results from one test.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from agent import netif
from agent.measurements.base import ReasonKind, Status
from agent.measurements.throughput.iperf3_output import parse_iperf3_output
from agent.measurements.throughput.libiperf_child import ChildFailure, run_child
from agent.measurements.throughput.model import (
    TOOL,
    Direction,
    ThroughputParams,
    ThroughputResult,
    directions,
    failed_all,
    skipped,
    timeout_reason,
)
from agent.measurements.throughput.rtt_sampler import RttSampler
from agent.preflight import PreflightReading, check_line
from wardprobe import validity


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
                    skipped(
                        replace(params, direction=direction),
                        reading.deferred_reason,
                        ReasonKind.DEFERRED,
                    ),
                    measured_at=measured_at,
                    cross_traffic_bytes_per_s=reading.cross_traffic_bytes_per_s,
                    cpu_load_pct=reading.cpu_load_pct,
                )
                for direction in directions(params)
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
    return replace(
        result,
        status=Status.FAILED,
        status_reason=verdict.reason,
        status_reason_kind=ReasonKind.INVALID_TRANSFER,
    )


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
                reason = timeout_reason(params, port)
                return _PoolOutcome(
                    failed_all(params, port, measured_at, reason, ReasonKind.TIMEOUT), loaded
                )
            loaded = RttSampler(params)
            with loaded.running(skip_first_s=float(params.omit_s)):
                outcome = run_child(params, port, remaining_s)
            if isinstance(outcome, ChildFailure):
                return _PoolOutcome(
                    failed_all(params, port, measured_at, outcome.reason, outcome.kind), loaded
                )
            results = parse_iperf3_output(
                outcome, params=params, server_port=port, measured_at=measured_at
            )
            first = results[0]
            if first.status_reason_kind is ReasonKind.SERVER_BUSY:
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
        failed_all(
            params,
            params.ports[-1],
            measured_at,
            f"all iperf3 ports were busy ({ports}): {busy_messages[-1]}",
            ReasonKind.SERVER_BUSY,
        ),
        loaded,
    )
