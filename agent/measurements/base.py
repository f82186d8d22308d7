"""What every measurement result has in common.

Each measurement module (`throughput/`, `latency.py`, `ipv6.py`, ...) has a
frozen params dataclass and `run(params) -> <Name>Result`, where the result
subclasses `MeasurementResult`. Tool output is parsed once, in the module,
into these typed fields; units are in the names; a figure that was not
measured is `None`.

"The tool reported a failure" (status FAILED, kind `TOOL_FAILED`, reason
from the tool) is kept apart from "the tool's output was malformed" (status
FAILED, kind `MALFORMED_OUTPUT`), and from "the agent chose not to run it"
(status SKIPPED, kind `DEFERRED`, `OVER_BUDGET` or `NOT_CONFIGURED`). Code
and analysts look at `status_reason_kind`; `status_reason` is the same in
words, for people.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from agent.cellular.observe import ModemSettings
from agent.preflight import PreflightLimits
from wardprobe.service_list import CityService


class Status(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


class IpFamily(enum.StrEnum):
    IPV4 = "ipv4"
    IPV6 = "ipv6"


class ReasonKind(enum.StrEnum):
    """What kind of reason a result carries (proto: wardprobe.v1.ReasonKind,
    same names). NONE exactly when the status is OK."""

    NONE = "none"
    NOT_CONFIGURED = "not_configured"  # nothing to measure against: no target, no modem
    DEFERRED = "deferred"  # the line or the CPU was busy (agent/preflight.py); retried soon
    OVER_BUDGET = "over_budget"  # the line's daily byte budget would be passed (agent/budget.py)
    SERVER_BUSY = "server_busy"  # every iperf3 port of the server was busy
    TIMEOUT = "timeout"  # the tool or the modem did not finish in time
    TOOL_FAILED = "tool_failed"  # the tool could not run, or reported an error
    NETWORK_ERROR = "network_error"  # name not resolved, interface gone, no route, refused
    MALFORMED_OUTPUT = "malformed_output"  # the tool's output could not be read
    INVALID_TRANSFER = "invalid_transfer"  # too small or too short to count (wardprobe/validity)
    MODEM_UNAVAILABLE = "modem_unavailable"  # unplugged, no SIM, SIM locked, no ModemManager


# Start of the text of a MALFORMED_OUTPUT reason, for people reading it.
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
    status_reason: str = ""  # in words, for people ("" when OK, or notes)
    status_reason_kind: ReasonKind = ReasonKind.NONE  # what code and analysts test
    method: Method
    interface: str = ""  # interface the test was bound to ("" = routing decided)
    ip_family: IpFamily | None = None  # family actually used

    def __post_init__(self) -> None:
        # A FAILED or SKIPPED result without a kind would be counted as nothing
        # in particular; an OK one with a kind would hide a failure.
        if (self.status == Status.OK) != (self.status_reason_kind == ReasonKind.NONE):
            raise ValueError(
                f"a {self.status} result cannot have reason kind {self.status_reason_kind}"
            )


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
    # Traceroute: its targets ("" = the reference server and the IPv6-only target).
    traceroute_targets: tuple[str, ...] = ()
    traceroute_max_hops: int = 30
    traceroute_silent_hops: int = 5  # stop after this many silent hops in a row
    # DNS resolution: the names (empty = the reference server's), the resolvers
    # asked besides the reference server's, and whether the system's is asked.
    dns_names: tuple[str, ...] = ()
    dns_resolvers: tuple[str, ...] = ()
    dns_system_resolver: bool = True
    # IPv6 readiness of the city's services: the aggregator's service list and
    # the CA certificates (PEM) their TLS is verified against (b"" = system store).
    city_services: tuple[CityService, ...] = ()
    services_ca_pem: bytes = b""
