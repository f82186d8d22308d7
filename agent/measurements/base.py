"""What every measurement result has in common.

Each measurement module (`throughput.py`, `latency.py`, `ipv6.py`, ...) has a
frozen params dataclass and `run(params) -> <Name>Result`, where the result
subclasses `MeasurementResult`. Tool output is parsed once, in the module,
into these typed fields; units are in the names; a figure that was not
measured is `None`.

"The tool reported a failure" (status FAILED, reason from the tool) is kept
apart from "the tool's output was malformed" (status FAILED, reason starting
with `malformed output:`), and from "the agent chose not to run it"
(status SKIPPED).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from agent.cellular.observe import ModemSettings
from agent.preflight import PreflightLimits


class Status(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


class IpFamily(enum.StrEnum):
    IPV4 = "ipv4"
    IPV6 = "ipv6"


MALFORMED_PREFIX = "malformed output: "


@dataclass(frozen=True, kw_only=True)
class Method:
    """How a measurement was obtained, so an analyst can judge it."""

    tool: str  # "iperf3", "icmp", "tcp-connect", "dnspython+socket"
    tool_version: str = ""
    server: str = ""
    server_port: int | None = None
    duration_s: float | None = None  # configured length of the test
    streams: int | None = None  # parallel TCP streams


@dataclass(frozen=True, kw_only=True)
class MeasurementResult:
    """Fields every measurement fills in. The agent adds the rest of the
    envelope (result id, agent version, ward, clock state) when it records it."""

    measured_at: datetime  # start of the measurement, timezone-aware UTC
    status: Status
    status_reason: str = ""
    method: Method
    interface: str = ""  # interface the test was bound to ("" = routing decided)
    ip_family: IpFamily | None = None  # family actually used


@dataclass(frozen=True, kw_only=True)
class MeasurementContext:
    """What the scheduler knows when it builds a measurement's params: the
    reference server (from the config RPC or agent.toml) and the line to test.
    Each measurement module has `params_from(ctx) -> Params`."""

    server_host: str  # reference server name or address
    iperf3_ports: tuple[int, ...] = (5201,)
    tcp_echo_port: int = 7
    ipv6_only_host: str = ""
    dual_stack_host: str = ""
    dns_server: str = ""  # resolver address for the IPv6 check ("" = system resolver)
    dns_port: int = 53
    interface: str = ""  # bind tests to this interface ("" = let routing decide)
    bind_address: str = ""  # send from this local address ("" = routing decides)
    throughput_duration_s: int = 10
    throughput_bytes_cap: int | None = None  # end a throughput test after this many bytes
    preflight: PreflightLimits | None = None  # cross-traffic / CPU check before throughput
    speedtest_config_url: str = ""  # where the speedtest backend reads its configuration
    daily_budget_bytes: int | None = None  # this line's daily byte budget (agent/budget.py)
    budget_first_test_estimate_bytes: int = 100_000_000  # a test not seen before moves this
    # Test slot from the config RPC (wardprobe/slots.py); period 0: no slot.
    throughput_slot_period_s: int = 0
    throughput_slot_offset_s: int = 0
    throughput_slot_length_s: int = 0
    throughput_streams: int = 4
    latency_count: int = 10  # echoes / connects per latency test
    latency_interval_s: float = 1.0
    timeout_s: float = 60.0  # hard limit for one test, child process included
    modem: ModemSettings | None = None  # the mobile line's modem, for `cellular`
