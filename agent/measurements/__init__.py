"""The measurements the agent can run, in one explicit table.

Each entry names a measurement (as used in schedules, the spool and the
wire) and says everything the rest of the agent looks up about it: its
module's `params_from(ctx)` and `run(params)`, which member of the wire
`Result`'s `body` oneof carries its result, whether the line's daily byte
budget applies (agent/budget.py, which then needs its `skipped` builder),
whether it waits for the probe's slot at the shared server (agent/worker.py,
agent/daemon.py) and how a mobile test is framed by radio observations
(agent/runtime.py). agent/wire.py, agent/budget.py, agent/worker.py and
agent/runtime.py read this table; none of them names a measurement.

A measurement's `run` gives one result, or a tuple of them when one run
measures several things of one kind: a traceroute one result per target
address, the DNS test one per resolver. `results_of` makes either a tuple.

Adding a measurement of an existing kind (say, another throughput backend)
is its module and one entry here. A new kind of result also needs its
message and its member of `Result.body` in proto/wardprobe/v1/results.proto
(then `make proto`), its table in aggregator/ingest/schema.sql, its
declaration in aggregator/ingest/tables.py (the columns with their ranges and
rules; the aggregator's reader and checks follow from it), and its section in
docs/schema.md.

The modules keep their imports light: libiperf is loaded only inside the
throughput test's child process, scapy only inside the `run` of the
traceroute and IPv6 path-MTU tests (in the worker that runs them), and
nothing here pulls pyarrow or DuckDB onto the probe.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from agent.measurements import (
    cellular,
    dns_resolution,
    ipv6,
    ipv6_pmtu,
    ipv6_services,
    latency,
    speedtest,
    throughput,
    traceroute,
)
from agent.measurements.base import MeasurementContext, MeasurementResult, ReasonKind

ParamsT = TypeVar("ParamsT")
# What a measurement's run gives: one result, or one per thing it measured.
Outcome = MeasurementResult | tuple[MeasurementResult, ...]


class RadioFraming(enum.Enum):
    """Which observations of the radio frame a test on the mobile line; each
    is stored as a `cellular` result, and the test's result carries the radio
    it ran on (access technology, operator)."""

    NONE = "none"  # not framed: the test is not about the line's speed or delay
    BEFORE = "before"  # observed just before the test
    BEFORE_AND_AFTER = "before_and_after"  # and after it, so a handover during it shows


@dataclass(frozen=True)
class Measurement(Generic[ParamsT]):
    """One runnable measurement and what the agent needs to know about it."""

    name: str
    params_from: Callable[[MeasurementContext], ParamsT]
    run: Callable[[ParamsT], Outcome]
    body: str  # the member of results.proto's Result.body oneof that carries the result
    # The result of a test the agent chose not to run (over budget, deferred).
    skipped: Callable[[ParamsT, str, ReasonKind], MeasurementResult] | None = None
    budgeted: bool = False  # counts against the line's daily byte budget
    needs_slot: bool = False  # waits for the probe's slot at the shared server
    radio: RadioFraming = RadioFraming.NONE  # on the mobile line

    def __post_init__(self) -> None:
        if self.budgeted and self.skipped is None:
            raise ValueError(f"{self.name}: a budgeted measurement needs a skipped() builder")


# The throughput tests move real volumes of data through the shared server:
# each waits for the probe's slot there and counts against a mobile budget.
MEASUREMENTS: Mapping[str, Measurement[Any]] = MappingProxyType(
    {
        entry.name: entry
        for entry in (
            Measurement(
                "download",
                throughput.download_params_from,
                throughput.run,
                body="throughput",
                skipped=throughput.skipped,
                budgeted=True,
                needs_slot=True,
                radio=RadioFraming.BEFORE_AND_AFTER,
            ),
            Measurement(
                "upload",
                throughput.upload_params_from,
                throughput.run,
                body="throughput",
                skipped=throughput.skipped,
                budgeted=True,
                needs_slot=True,
                radio=RadioFraming.BEFORE_AND_AFTER,
            ),
            # The second backend: speedtest-cli against the reference server's mini.
            Measurement(
                "speedtest_download",
                speedtest.download_params_from,
                speedtest.run,
                body="throughput",
                skipped=speedtest.skipped,
                budgeted=True,
                needs_slot=True,
                radio=RadioFraming.BEFORE_AND_AFTER,
            ),
            Measurement(
                "speedtest_upload",
                speedtest.upload_params_from,
                speedtest.run,
                body="throughput",
                skipped=speedtest.skipped,
                budgeted=True,
                needs_slot=True,
                radio=RadioFraming.BEFORE_AND_AFTER,
            ),
            Measurement(
                "latency_icmp",
                latency.icmp_params_from,
                latency.run,
                body="latency",
                radio=RadioFraming.BEFORE,
            ),
            Measurement(
                "latency_tcp",
                latency.tcp_params_from,
                latency.run,
                body="latency",
                radio=RadioFraming.BEFORE,
            ),
            Measurement("ipv6", ipv6.params_from, ipv6.run, body="ipv6"),
            # Where the path is slow: Paris traceroute, one result per target address.
            Measurement(
                "traceroute",
                traceroute.icmp_params_from,
                traceroute.run,
                body="traceroute",
                radio=RadioFraming.BEFORE,
            ),
            Measurement(
                "traceroute_udp",
                traceroute.udp_params_from,
                traceroute.run,
                body="traceroute",
                radio=RadioFraming.BEFORE,
            ),
            Measurement(
                "traceroute_tcp",
                traceroute.tcp_params_from,
                traceroute.run,
                body="traceroute",
                radio=RadioFraming.BEFORE,
            ),
            Measurement("ipv6_pmtu", ipv6_pmtu.params_from, ipv6_pmtu.run, body="ipv6_pmtu"),
            # One result per resolver asked.
            Measurement("dns", dns_resolution.params_from, dns_resolution.run, body="dns"),
            # IPv6 readiness of the city's own services (the aggregator's list).
            Measurement(
                "ipv6_services",
                ipv6_services.params_from,
                ipv6_services.run,
                body="ipv6_services",
            ),
            # The radio observation itself (what frames the others on the mobile line).
            Measurement("cellular", cellular.params_from, cellular.run, body="cellular"),
        )
    }
)


def results_of(outcome: Outcome) -> tuple[MeasurementResult, ...]:
    """A run's results as a tuple, whether it gave one or several."""
    return outcome if isinstance(outcome, tuple) else (outcome,)


def run_measurements(name: str, ctx: MeasurementContext) -> tuple[MeasurementResult, ...]:
    """Build the params of measurement `name` from `ctx` and run it (synchronously):
    its results, one or several (a traceroute's per target address).

    A measurement that fails is a FAILED result. Raises KeyError for a name
    not in `MEASUREMENTS` and ValueError when `ctx` cannot make valid params
    (e.g. a timeout shorter than the test): both are configuration errors.
    """
    try:
        measurement = MEASUREMENTS[name]
    except KeyError:
        known = ", ".join(MEASUREMENTS)
        raise KeyError(f"unknown measurement {name!r} (known: {known})") from None
    return results_of(measurement.run(measurement.params_from(ctx)))


def run_measurement(name: str, ctx: MeasurementContext) -> MeasurementResult:
    """`run_measurements` for a measurement that gives one result (ValueError
    when it gave several: their caller must take them all)."""
    results = run_measurements(name, ctx)
    if len(results) != 1:
        raise ValueError(f"{name} gave {len(results)} results: use run_measurements")
    return results[0]
