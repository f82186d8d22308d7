"""The measurements the agent can run, in one explicit table.

Each entry pairs a name (as used in schedules, the spool and the wire
mapping) with the module's `params_from(ctx)` and `run(params)`. Adding a
measurement means writing its module and adding one line here.

The modules keep their imports light: libiperf is loaded only inside the
throughput test's child process, and nothing here pulls scapy, pyarrow or
DuckDB onto the probe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from agent.measurements import cellular, ipv6, latency, speedtest, throughput
from agent.measurements.base import MeasurementContext, MeasurementResult

ParamsT = TypeVar("ParamsT")


@dataclass(frozen=True)
class Measurement(Generic[ParamsT]):
    """One runnable measurement: how to build its params, and how to run it."""

    name: str
    params_from: Callable[[MeasurementContext], ParamsT]
    run: Callable[[ParamsT], MeasurementResult]


MEASUREMENTS: Mapping[str, Measurement[Any]] = MappingProxyType(
    {
        entry.name: entry
        for entry in (
            Measurement("download", throughput.download_params_from, throughput.run),
            Measurement("upload", throughput.upload_params_from, throughput.run),
            # The second backend: speedtest-cli against the reference server's mini.
            Measurement("speedtest_download", speedtest.download_params_from, speedtest.run),
            Measurement("speedtest_upload", speedtest.upload_params_from, speedtest.run),
            Measurement("latency_icmp", latency.icmp_params_from, latency.run),
            Measurement("latency_tcp", latency.tcp_params_from, latency.run),
            Measurement("ipv6", ipv6.params_from, ipv6.run),
            Measurement("cellular", cellular.params_from, cellular.run),
        )
    }
)


def run_measurement(name: str, ctx: MeasurementContext) -> MeasurementResult:
    """Build the params of measurement `name` from `ctx` and run it (synchronously).

    A measurement that fails is a FAILED result. Raises KeyError for a name
    not in `MEASUREMENTS` and ValueError when `ctx` cannot make valid params
    (e.g. a timeout shorter than the test): both are configuration errors.
    """
    try:
        measurement = MEASUREMENTS[name]
    except KeyError:
        known = ", ".join(MEASUREMENTS)
        raise KeyError(f"unknown measurement {name!r} (known: {known})") from None
    return measurement.run(measurement.params_from(ctx))
