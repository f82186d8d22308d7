"""The aggregator's configuration: one TOML file, validated once at start.

Every key is documented in packaging/aggregator.example.toml.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from analysis.constants import BASELINE_KINDS, BASELINE_PREFERENCE
from wardprobe.service_list import CityService, ServiceListError, load_services

# How a store is named (`store` below, `serve --store`, `migrate`): the
# embedded file or a lake. aggregator/ingest/stores.py opens what they name.
EMBEDDED_PREFIX = "duckdb:"
LAKE_PREFIX = "ducklake:"


class StoreSpecError(ValueError):
    """A store spec that names no store this release knows, or lacks a part."""


@dataclass(frozen=True)
class EmbeddedSpec:
    """`duckdb:FILE`: one DuckDB file."""

    path: Path

    def __str__(self) -> str:
        return f"{EMBEDDED_PREFIX}{self.path}"


@dataclass(frozen=True)
class LakeSpec:
    """`ducklake:<libpq URI>&data_path=DIR`: a DuckLake with a PostgreSQL catalogue."""

    catalogue_uri: str  # libpq's URI, without data_path
    data_path: str  # where the Parquet files go (a directory; DuckLake takes it as given)

    def __str__(self) -> str:
        """The spec without any password (for logs and messages)."""
        parts = urlsplit(self.catalogue_uri)
        netloc = parts.netloc
        if "@" in netloc:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.split(':', 1)[0]}@{host}"
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "password"]
        shown = urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="/")))
        return f"{LAKE_PREFIX}{shown} (data_path {self.data_path})"


StoreSpec = EmbeddedSpec | LakeSpec
# A libpq URI's schemes: the lake's catalogue, the registry.
POSTGRES_SCHEMES = ("postgres", "postgresql")


def parse_store_spec(text: str) -> StoreSpec:
    """The store a spec names; StoreSpecError saying which form is expected.
    A lake's spec is a libpq URI with one more query parameter, data_path,
    taken out here (docs/scaling.md)."""
    if text.startswith(EMBEDDED_PREFIX):
        path = text.removeprefix(EMBEDDED_PREFIX)
        if not path:
            raise StoreSpecError("duckdb: names no file (e.g. duckdb:/var/lib/x/wardprobe.duckdb)")
        return EmbeddedSpec(Path(path))
    if text.startswith(LAKE_PREFIX):
        uri = text.removeprefix(LAKE_PREFIX)
        parts = urlsplit(uri)
        if parts.scheme not in POSTGRES_SCHEMES:
            raise StoreSpecError(
                "a lake's catalogue is a PostgreSQL URI: "
                "ducklake:postgres://USER@HOST/DB?data_path=DIR"
            )
        query = parse_qsl(parts.query, keep_blank_values=True)
        data = [v for k, v in query if k == "data_path"]
        if len(data) != 1 or not data[0]:
            raise StoreSpecError(
                "a lake spec needs one data_path (where its Parquet files go): "
                "ducklake:postgres://USER@HOST/DB?data_path=DIR"
            )
        rest = urlencode([(k, v) for k, v in query if k != "data_path"], safe="/")
        return LakeSpec(urlunsplit(parts._replace(query=rest)), data[0])
    raise StoreSpecError(
        f"unknown store {text[:40]!r}: expected duckdb:FILE or "
        "ducklake:postgres://USER@HOST/DB?data_path=DIR"
    )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScheduleItem(_Strict):
    """One measurement the probes run on an interval."""

    measurement: str  # a name from agent/measurements/__init__.py's table
    interval_s: int = Field(ge=10)
    jitter_s: int = Field(default=0, ge=0)
    network_kind: Literal["fixed", "mobile"] = "fixed"


class ReferenceServerConfig(_Strict):
    """The reference server the probes measure against (handed out by the config RPC)."""

    host: str = "localhost"
    iperf3_ports: list[int] = Field(default_factory=lambda: [5201, 5202, 5203, 5204])
    tcp_echo_port: int = Field(default=7007, gt=0, lt=65536)
    ipv6_only_host: str = ""
    dual_stack_host: str = ""
    dns_server: str = ""
    dns_port: int = Field(default=53, gt=0, lt=65536)
    # Test slots (wardprobe/slots.py): at most this many throughput tests at
    # the server at once (unset: one per iperf3 port), each probe's in a
    # window of throughput_slot_s seconds (longer than a download and an
    # upload together); 0 turns slots off.
    max_concurrent_throughput_tests: int | None = Field(default=None, ge=1)
    throughput_slot_s: int = Field(default=60, ge=0)


def _default_schedule() -> list[ScheduleItem]:
    hour = 3600
    fixed = [
        ScheduleItem(measurement="download", interval_s=4 * hour, jitter_s=hour),
        ScheduleItem(measurement="upload", interval_s=4 * hour, jitter_s=hour),
        ScheduleItem(measurement="latency_icmp", interval_s=15 * 60, jitter_s=300),
        ScheduleItem(measurement="latency_tcp", interval_s=15 * 60, jitter_s=300),
        ScheduleItem(measurement="ipv6", interval_s=6 * hour, jitter_s=hour),
        # Where the path is slow: a few kilobytes each.
        ScheduleItem(measurement="traceroute", interval_s=hour, jitter_s=600),
        ScheduleItem(measurement="ipv6_pmtu", interval_s=6 * hour, jitter_s=hour),
        ScheduleItem(measurement="dns", interval_s=hour, jitter_s=600),
        # The city's services (services_list): a few names, once a day is enough.
        ScheduleItem(measurement="ipv6_services", interval_s=24 * hour, jitter_s=2 * hour),
    ]
    # Mobile data costs money: throughput less often than on the fixed line.
    mobile = [
        ScheduleItem(
            measurement="download", interval_s=8 * hour, jitter_s=2 * hour, network_kind="mobile"
        ),
        ScheduleItem(
            measurement="upload", interval_s=8 * hour, jitter_s=2 * hour, network_kind="mobile"
        ),
        ScheduleItem(
            measurement="latency_icmp", interval_s=30 * 60, jitter_s=600, network_kind="mobile"
        ),
        ScheduleItem(
            measurement="ipv6", interval_s=12 * hour, jitter_s=hour, network_kind="mobile"
        ),
        ScheduleItem(
            measurement="traceroute", interval_s=2 * hour, jitter_s=600, network_kind="mobile"
        ),
        ScheduleItem(
            measurement="ipv6_pmtu", interval_s=12 * hour, jitter_s=hour, network_kind="mobile"
        ),
        ScheduleItem(measurement="dns", interval_s=2 * hour, jitter_s=600, network_kind="mobile"),
    ]
    return fixed + mobile


class AggregatorConfig(_Strict):
    """Everything the aggregator process needs to start."""

    state_dir: Path = Path("/var/lib/wardprobe-aggregator")  # CA, registry.sqlite
    store_path: Path = Path("/var/lib/wardprobe-aggregator/wardprobe.duckdb")
    # The store, named: "duckdb:FILE" (the embedded file; the same as
    # store_path) or "ducklake:postgres://USER@HOST/DB?...&data_path=DIR", a
    # DuckLake with its catalogue in PostgreSQL, which several aggregator
    # replicas share (docs/scaling.md). Unset: duckdb:<store_path>.
    store: str | None = None
    # The probe registry (tokens, probes, certificates): a libpq URI,
    # "postgres://USER@HOST/DB?...", shared by replicas on several hosts (the
    # lake's catalogue server serves; the tables go in their own schema).
    # Unset: registry.sqlite in state_dir (docs/scaling.md).
    registry: str | None = None
    # The lake only: a commit group waits up to lake_flush_s for more batches
    # (or until lake_flush_rows results) before it is written as one Parquet
    # file per table; acks wait for that commit, so this is their added latency.
    lake_flush_s: float = Field(default=1.0, gt=0, le=30)
    lake_flush_rows: int = Field(default=200_000, ge=1)
    # Seconds between compactions (inlined rows to Parquet, adjacent files
    # merged, old snapshots expired and their files deleted), and how long an
    # expired snapshot's files are kept for the analysts' queries still reading it.
    lake_compact_interval_s: float = Field(default=3600.0, ge=1)
    lake_keep_snapshots_s: float = Field(default=3600.0, ge=0)
    # The embedded store only (docs/ingest.md, "Memory and checkpoints"):
    # DuckDB's memory limit, MiB (its buffer pool of written blocks and a
    # commit's working memory; 0: DuckDB's default, 80 % of the machine's
    # memory, which it fills with every block written), and the WAL size,
    # MiB, at which a commit folds the WAL into the file (a checkpoint);
    # and DuckDB's threads (0: one per core). One: a commit group's inserts
    # are small for DuckDB, and its parallel scan of them cost more CPU than
    # it saved (docs/benchmarks.md); the analysts' snapshot builds its
    # rollups on a connection of its own, with every core.
    store_memory_limit_mib: int = Field(default=64, ge=0)
    store_checkpoint_threshold_mib: int = Field(default=64, ge=1)
    store_threads: int = Field(default=1, ge=0)
    ingest_listen: str = "[::]:7443"  # mTLS: Ingest and ProbeConfig
    enrol_listen: str = "[::]:7444"  # TLS, server-authenticated: Enrolment
    # host:port the probes should use for ingest (told to them at enrolment).
    ingest_public_address: str = "localhost:7443"
    reference_server: ReferenceServerConfig = Field(default_factory=ReferenceServerConfig)
    schedule: list[ScheduleItem] = Field(default_factory=_default_schedule)
    throughput_duration_s: int = Field(default=10, ge=1, le=120)
    throughput_streams: int = Field(default=4, ge=1, le=64)
    latency_count: int = Field(default=10, ge=1, le=1000)
    latency_interval_s: float = Field(default=1.0, ge=0.01, le=60)
    # Seconds between mirrors of the probe registry into the store's `probes` table.
    probe_sync_interval_s: float = Field(default=2.0, gt=0)
    max_batch_results: int = Field(default=5000, ge=1)
    max_message_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # Processes that parse and read received batches (the per-result Python).
    ingest_read_workers: int = Field(default=2, ge=1, le=64)
    # MiB of received batches not answered yet, over all streams: beyond it
    # the streams wait (gRPC's flow control holds the senders). It bounds the
    # aggregator's memory in a burst (docs/ingest.md, "Memory and checkpoints").
    ingest_in_flight_mib: int = Field(default=16, ge=1)
    grace_period_s: float = Field(default=10.0, ge=0)  # for in-flight streams on SIGTERM
    # The analysts' read-only copy of the store, republished every
    # snapshot_interval_s (aggregator/ingest/snapshot.py); None: no snapshot.
    snapshot_path: Path | None = None
    snapshot_interval_s: float = Field(default=300.0, ge=10)
    # The read-only HTTP API for the city (aggregator/api/, docs/api.md):
    # host:port it listens on, TLS with the server certificate; None: off.
    api_listen: str | None = None
    # Answers (indicator sets, maps, reports) the API keeps per snapshot.
    api_cache_entries: int = Field(default=64, ge=1)
    # Seconds between the API's looks for a new snapshot, whose default
    # indicator set it then computes ahead of the first request.
    api_poll_s: float = Field(default=5.0, gt=0)
    # The order the doubling ratio tries its 2024 baselines in (indicators,
    # map, report and the API, unless a request names one); kinds left out
    # come after, in the default order (docs/indicators.md, "The 2024 baseline").
    baseline_order: tuple[str, ...] = BASELINE_PREFERENCE
    # The operator's view (aggregator/monitoring.py, docs/operations.md):
    # grpc.health.v1 alone, in plaintext, on this host:port (the ingest and
    # enrolment ports answer it too, over their TLS); None: off.
    health_listen: str | None = None
    # Prometheus metrics over HTTP (GET /metrics) on this host:port; None: off.
    metrics_listen: str | None = None
    # The city's services whose IPv6 readiness the probes and `services check`
    # test (wardprobe/service_list.py: CSV name,department,kind), and the CA
    # certificates (PEM) their TLS is verified against (None: the system's).
    # Both are read and checked once, here, and handed to the probes with the
    # rest of their config.
    services_list: Path | None = None
    services_ca_file: Path | None = None
    _services: tuple[CityService, ...] = PrivateAttr(default=())
    _services_ca_pem: bytes = PrivateAttr(default=b"")

    @model_validator(mode="after")
    def _read_services(self) -> AggregatorConfig:
        if self.services_list is not None:
            try:
                self._services = load_services(self.services_list)
            except ServiceListError as exc:
                raise ValueError(str(exc)) from None
        if self.services_ca_file is not None:
            try:
                pem = self.services_ca_file.read_bytes()
            except OSError as exc:
                raise ValueError(f"{self.services_ca_file}: cannot be read ({exc})") from None
            if b"-----BEGIN CERTIFICATE-----" not in pem:
                raise ValueError(f"{self.services_ca_file}: no PEM certificate in it")
            self._services_ca_pem = pem
        return self

    @property
    def services(self) -> tuple[CityService, ...]:
        """The services of services_list, typed (empty without a list)."""
        return self._services

    @property
    def services_ca_pem(self) -> bytes:
        """The CA certificates of services_ca_file (b"": the system's)."""
        return self._services_ca_pem

    @field_validator("baseline_order")
    @classmethod
    def _known_kinds_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        expected = ", ".join(BASELINE_KINDS)
        if not value:
            raise ValueError(f"name at least one baseline of {expected}")
        unknown = [kind for kind in value if kind not in BASELINE_KINDS]
        if unknown:
            raise ValueError(f"unknown baseline {', '.join(unknown)}; expected {expected}")
        twice = sorted({kind for kind in value if value.count(kind) > 1})
        if twice:
            raise ValueError(f"{', '.join(twice)} named more than once")
        return value

    @model_validator(mode="before")
    @classmethod
    def _one_store(cls, data: object) -> object:
        """`store` or `store_path`, not both; "duckdb:FILE" is store_path = FILE,
        so everything that reads the embedded file finds it there."""
        if not isinstance(data, dict) or data.get("store") is None:
            return data
        if "store_path" in data:
            raise ValueError("set store or store_path, not both (store = 'duckdb:FILE' is both)")
        if not isinstance(data["store"], str):
            return data  # the field's own type check says what is wrong
        spec = parse_store_spec(data["store"])
        if isinstance(spec, EmbeddedSpec):
            return {**data, "store": None, "store_path": spec.path}
        if data.get("snapshot_path") is not None:
            raise ValueError(
                "snapshot_path is for the embedded store; analysts attach a lake "
                "read-only instead (docs/scaling.md)"
            )
        return data

    @property
    def store_spec(self) -> StoreSpec:
        """The store this aggregator writes: `store`, else the file at store_path."""
        return (
            parse_store_spec(self.store)
            if self.store is not None
            else EmbeddedSpec(self.store_path)
        )

    def with_store(self, store: str) -> AggregatorConfig:
        """This configuration with another store (the command line's --store
        wins over the file's store or store_path); validated again."""
        values = self.model_dump(exclude_unset=True)
        values.pop("store_path", None)
        return AggregatorConfig.model_validate({**values, "store": store})

    @field_validator("registry")
    @classmethod
    def _registry_uri(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in POSTGRES_SCHEMES:
            raise ValueError(
                "registry is a PostgreSQL URI (postgres://USER@HOST/DB); leave it "
                "out for registry.sqlite in state_dir"
            )
        return value

    @field_validator("api_listen", "health_listen", "metrics_listen")
    @classmethod
    def _host_and_port(cls, value: str | None) -> str | None:
        if value is not None:
            split_listen(value)
        return value


def split_listen(address: str) -> tuple[str, int]:
    """("host", port) of "host:port", "[::1]:port" or "[::]:port"; ValueError
    naming the form otherwise."""
    host, _, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{address!r} is not host:port (e.g. 127.0.0.1:8443 or [::]:8443)")
    return host, int(port)


def load_config(path: Path | None) -> AggregatorConfig:
    """Read and validate the TOML file; no file means all defaults."""
    if path is None:
        return AggregatorConfig()
    with path.open("rb") as handle:
        return AggregatorConfig.model_validate(tomllib.load(handle))
