"""The agent's configuration: agent.toml, validated once at start.

Every key is documented in packaging/agent.example.toml. The schedule and
the reference server normally come from the aggregator (config RPC) and are
cached in the state directory, so the probe keeps measuring while the
aggregator is down; agent.toml may override either for a local set-up.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyAddress,
    ValidationError,
    field_validator,
    model_validator,
)

from wardprobe.config_errors import describe_config_error


class ConfigError(ValueError):
    """agent.toml cannot be read or breaks a rule; the message says which key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LineConfig(_Strict):
    """One access line the probe tests."""

    enabled: bool = True
    interface: str = ""  # bind tests to it; "" lets routing decide
    bind_address: str = ""  # send from this address; "" lets routing decide
    # Bytes per local day the throughput tests may move on this line (mobile
    # data costs money); None: no budget. A test not seen before counts as
    # budget_first_test_estimate_bytes until it has run once.
    daily_budget_bytes: int | None = Field(default=None, ge=1)
    budget_first_test_estimate_bytes: int = Field(default=100_000_000, ge=1)


class PreflightConfig(_Strict):
    """The check before a throughput test (agent/preflight.py says why these defaults)."""

    enabled: bool = True
    max_cross_traffic_bytes_per_s: float = Field(default=25_000.0, gt=0)
    max_cpu_load_pct: float = Field(default=30.0, gt=0, le=100)
    window_s: float = Field(default=1.0, gt=0, le=10)
    # A deferred test is tried again after this (or its own interval, if shorter).
    retry_after_s: int = Field(default=300, ge=10)


class SpoolConfig(_Strict):
    max_rows: int = Field(default=200_000, ge=100)


class UploadConfig(_Strict):
    batch_size: int = Field(default=500, ge=1, le=5000)
    window: int = Field(default=4, ge=1, le=64)
    backoff_base_s: float = Field(default=1.0, gt=0)
    backoff_cap_s: float = Field(default=300.0, gt=0)
    # Target name override for the aggregator certificate (when the address is
    # an IP not in its SAN list); "" = the host part of the address.
    tls_server_name: str = ""


class ReferenceOverride(_Strict):
    """Measure against this server instead of the one the aggregator hands out."""

    host: str
    iperf3_ports: list[int] = Field(default_factory=lambda: [5201])
    tcp_echo_port: int = 7007
    ipv6_only_host: str = ""
    dual_stack_host: str = ""
    dns_server: str = ""
    dns_port: int = Field(default=53, gt=0, lt=65536)


class ScheduleOverride(_Strict):
    measurement: str
    interval_s: int = Field(ge=10)
    jitter_s: int = Field(default=0, ge=0)
    network_kind: Literal["fixed", "mobile"] = "fixed"


class ModemConfig(_Strict):
    """The mobile line's cellular modem (agent/cellular/)."""

    # auto: ModemManager when mmcli is installed and serial_port is empty,
    # else AT commands on serial_port.
    backend: Literal["auto", "modemmanager", "at"] = "auto"
    serial_port: str = ""  # AT port; prefer a /dev/serial/by-id/ link (survives re-enumeration)
    modemmanager_index: int | None = Field(default=None, ge=0)  # None: the first modem listed
    mmcli_command: str = "mmcli"
    observation_interval_s: int = Field(default=300, ge=10)
    observation_jitter_s: int = Field(default=30, ge=0)
    at_timeout_s: float = Field(default=3.0, gt=0, le=60)
    mmcli_timeout_s: float = Field(default=10.0, gt=0, le=120)


class ClockConfig(_Strict):
    """The box's clock (many boards have no real-time clock and boot in the past)."""

    # At start, wait this long at most for NTP to synchronise the clock before
    # the first test; then measure anyway (results say the clock was not
    # synchronised, and the indicators do not count them). 0: do not wait.
    wait_for_sync_s: int = Field(default=600, ge=0, le=86_400)


class TracerouteConfig(_Strict):
    """The traceroute tests' targets and limits (agent/measurements/traceroute.py)."""

    targets: list[str] = Field(default_factory=list)  # empty: the reference server's
    max_hops: int = Field(default=30, ge=1, le=255)
    silent_hops: int = Field(default=5, ge=1, le=255)


class DnsConfig(_Strict):
    """The DNS test's names and resolvers (agent/measurements/dns_resolution.py)."""

    names: list[str] = Field(default_factory=list)  # empty: the reference server's names
    resolvers: list[IPvAnyAddress] = Field(default_factory=list)
    system_resolver: bool = True


class AgentSettings(_Strict):
    """Everything the agent reads from agent.toml."""

    state_dir: Path = Path("/var/lib/wardprobe")
    # host:port of the aggregator's mTLS port; "" = the one given at enrolment.
    aggregator: str = ""
    # Several aggregator replicas (host:port each; a name may have several
    # A/AAAA records): the uploader fails over between them (agent/uploader.py).
    # Empty: `aggregator`. Set one of the two, not both.
    aggregators: list[str] = Field(default_factory=list)
    fixed: LineConfig = Field(default_factory=LineConfig)
    mobile: LineConfig = Field(default_factory=lambda: LineConfig(enabled=False, interface="wwan0"))
    spool: SpoolConfig = Field(default_factory=SpoolConfig)
    upload: UploadConfig = Field(default_factory=UploadConfig)
    reference: ReferenceOverride | None = None
    schedule: list[ScheduleOverride] | None = None
    throughput_duration_s: int | None = Field(default=None, ge=1, le=120)
    throughput_streams: int | None = Field(default=None, ge=1, le=64)
    # End each throughput test after this many bytes instead of by duration.
    throughput_bytes_cap: int | None = Field(default=None, ge=1)
    preflight: PreflightConfig = Field(default_factory=PreflightConfig)
    # speedtest-cli backend: where it reads its configuration; "" = the
    # reference server's speedtest mini (http://<host>:8080/speedtest/...).
    speedtest_config_url: str = ""
    modem: ModemConfig = Field(default_factory=ModemConfig)
    clock: ClockConfig = Field(default_factory=ClockConfig)
    traceroute: TracerouteConfig = Field(default_factory=TracerouteConfig)
    dns: DnsConfig = Field(default_factory=DnsConfig)

    @field_validator("aggregators")
    @classmethod
    def _host_and_port_each(cls, value: list[str]) -> list[str]:
        for address in value:
            split_host_port(address)
        if len(set(value)) != len(value):
            raise ValueError("an address is listed twice")
        return value

    @model_validator(mode="after")
    def _one_way_to_name_the_aggregator(self) -> AgentSettings:
        if self.aggregator and self.aggregators:
            raise ValueError("set aggregator or aggregators, not both")
        return self

    def aggregator_addresses(self, enrolled: str) -> tuple[str, ...]:
        """Where results go: `aggregators`, else `aggregator`, else `enrolled`
        (the ingest address the aggregator gave at enrolment)."""
        if self.aggregators:
            return tuple(self.aggregators)
        return (self.aggregator or enrolled,)


def split_host_port(address: str) -> tuple[str, int]:
    """Split "host:port" or "[v6]:port" into (host, port); ValueError naming the form."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"expected host:port, got {address!r}")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"port out of range in {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"write IPv6 addresses in brackets: [{host}]:{port}")
    return host, port


DEFAULT_CONFIG_PATH = Path("/etc/wardprobe/agent.toml")


def load_settings(path: Path | None, state_dir: Path | None = None) -> AgentSettings:
    """Read and validate agent.toml. No path: the default file if it exists, else
    defaults. `state_dir` (a command-line override) replaces the file's."""
    if path is None:
        path = DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None
    settings = AgentSettings()
    if path is not None:
        try:
            with path.open("rb") as handle:
                settings = AgentSettings.model_validate(tomllib.load(handle))
        except (tomllib.TOMLDecodeError, ValidationError, UnicodeDecodeError, OSError) as err:
            # One line naming each bad key (pydantic's own text spans lines and URLs).
            raise ConfigError(describe_config_error(path, err)) from err
    if state_dir is not None:
        settings = settings.model_copy(update={"state_dir": state_dir})
    return settings
