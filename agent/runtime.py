"""The running agent: what to measure, when, and where the results go.

`AgentRuntime` ties the pieces together: the enrolment (who the probe is),
the effective config (aggregator's config RPC, cached on disk, with
agent.toml's overrides), the spool and the uploader. The daemon's workers
(agent/worker.py) and `once` use it; the resident scheduler (agent/daemon.py)
does not, so that it stays small.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import grpc
from google.protobuf import json_format

from agent import AGENT_VERSION
from agent.backoff import Backoff
from agent.budget import ByteBudget, run_within_budget
from agent.cellular.observe import AccessTech, ModemSettings
from agent.clock import clock_state
from agent.config import AgentSettings
from agent.identity import EnrolmentRecord, channel_credentials, load_enrolment
from agent.measurements import MEASUREMENTS, RadioFraming, run_measurement
from agent.measurements.base import MeasurementContext, MeasurementResult, Status
from agent.measurements.cellular import CellularObservationResult
from agent.plan import MAX_HELD_RESULTS
from agent.preflight import PreflightLimits
from agent.spool import Spool, SpoolFull
from agent.uploader import Uploader, UploadError, UploadSettings
from agent.wire import ProbeContext, flat_text, to_json_dict, to_proto
from wardprobe.service_list import KINDS as SERVICE_KINDS
from wardprobe.service_list import CityService, host_name
from wardprobe.v1 import enrolment_pb2, enrolment_pb2_grpc, results_pb2

log = logging.getLogger(__name__)

CONFIG_CACHE_FILE = "config.json"
SPOOL_FILE = "spool.sqlite"


class NotEnrolled(Exception):
    """The box has no enrolment in its state directory."""


@dataclass(frozen=True)
class ScheduledTest:
    measurement: str
    interval_s: int
    jitter_s: int
    network_kind: str  # "fixed" | "mobile"


@dataclass(frozen=True)
class EffectiveConfig:
    """What the agent runs with after merging the aggregator's config and agent.toml."""

    schedule: tuple[ScheduledTest, ...]
    contexts: dict[str, MeasurementContext]  # by network kind
    source: str  # "aggregator", "cache (…)", "agent.toml"


# Keepalives find an aggregator that went away without closing the stream;
# the uploader adds the name its certificate must carry per address.
_GRPC_OPTIONS: tuple[tuple[str, str | int], ...] = (
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
)


class AgentRuntime:
    """One probe box's agent, built from its settings and state directory."""

    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.state_dir = settings.state_dir
        enrolment = load_enrolment(self.state_dir)
        if enrolment is None:
            raise NotEnrolled(
                f"no enrolment in {self.state_dir}: run `wardprobe-agent enroll` first"
            )
        self.enrolment: EnrolmentRecord = enrolment
        self.spool = Spool(self.state_dir / SPOOL_FILE, settings.spool.max_rows)
        self.budget = ByteBudget(self.state_dir)  # daily bytes per interface (mobile data)
        # Results the spool could not take (a full disk), oldest first.
        self.held: deque[tuple[str, str, bytes]] = deque(maxlen=MAX_HELD_RESULTS)
        self.results_lost = 0  # held results pushed out while the disk refused writes
        addresses = settings.aggregator_addresses(enrolment.ingest_address)
        self.target = " or ".join(addresses)  # for messages
        self.uploader = Uploader(
            self.spool,
            addresses,
            channel_credentials(self.state_dir),
            UploadSettings(batch_size=settings.upload.batch_size, window=settings.upload.window),
            channel_options=_GRPC_OPTIONS,
            tls_server_name=settings.upload.tls_server_name,
            backoff=Backoff(settings.upload.backoff_base_s, settings.upload.backoff_cap_s),
        )

    # --- configuration -------------------------------------------------

    async def fetch_config(self, timeout_s: float = 10.0) -> enrolment_pb2.AgentConfig | None:
        """Ask the aggregator for the schedule and servers (each replica in
        the uploader's order until one answers); cache the answer. Falls back
        to the cache when none can be reached."""
        cache = self.state_dir / CONFIG_CACHE_FILE
        try:
            endpoints = await self.uploader.endpoints()
        except UploadError as err:
            log.warning("config RPC not sent: %s", err)
            return self.cached_config()
        for endpoint in endpoints:
            try:
                async with grpc.aio.secure_channel(
                    endpoint.target,
                    channel_credentials(self.state_dir),
                    options=self.uploader.channel_options(endpoint),
                ) as channel:
                    stub = enrolment_pb2_grpc.ProbeConfigStub(channel)
                    config = await stub.GetConfig(
                        enrolment_pb2.ConfigRequest(agent_version=AGENT_VERSION),
                        timeout=timeout_s,
                    )
            except grpc.aio.AioRpcError as err:
                log.warning(
                    "config RPC to %s failed (%s: %s)",
                    endpoint.describe(),
                    err.code().name,
                    err.details(),
                )
                continue
            cache.write_text(json_format.MessageToJson(config), "utf-8")
            return config
        return self.cached_config()

    def cached_config(self) -> enrolment_pb2.AgentConfig | None:
        """The aggregator's last answer, as `fetch_config` cached it (None: never)."""
        cache = self.state_dir / CONFIG_CACHE_FILE
        if not cache.exists():
            return None
        return json_format.Parse(cache.read_text("utf-8"), enrolment_pb2.AgentConfig())

    def effective_config(self, remote: enrolment_pb2.AgentConfig | None) -> EffectiveConfig:
        """Merge the aggregator's config with agent.toml's overrides."""
        s = self.settings
        if s.schedule is not None:
            schedule = tuple(
                ScheduledTest(i.measurement, i.interval_s, i.jitter_s, i.network_kind)
                for i in s.schedule
            )
        elif remote is not None:
            schedule = tuple(
                ScheduledTest(e.measurement, e.interval_s, e.jitter_s, e.network_kind or "fixed")
                for e in remote.schedule
            )
        else:
            raise RuntimeError(
                "no schedule: the aggregator could not be reached and agent.toml has none"
            )
        unknown = [t.measurement for t in schedule if t.measurement not in MEASUREMENTS]
        if unknown:
            log.warning("ignoring unknown measurements in the schedule: %s", ", ".join(unknown))
            schedule = tuple(t for t in schedule if t.measurement in MEASUREMENTS)
        if s.mobile.enabled and not any(t.measurement == "cellular" for t in schedule):
            # The radio is observed on its own interval, so that availability
            # can be time-weighted; first in a cycle, so `once` shows it first.
            observe = ScheduledTest(
                "cellular",
                s.modem.observation_interval_s,
                s.modem.observation_jitter_s,
                "mobile",
            )
            schedule = (observe, *schedule)

        if s.reference is not None:
            ref = s.reference
            host, ports, echo = ref.host, tuple(ref.iperf3_ports), ref.tcp_echo_port
            v6only, dual, dns = ref.ipv6_only_host, ref.dual_stack_host, ref.dns_server
            dns_port = ref.dns_port
        elif remote is not None and remote.reference_server.host:
            r = remote.reference_server
            host, ports, echo = r.host, tuple(r.iperf3_ports), r.tcp_echo_port
            v6only, dual, dns = r.ipv6_only_host, r.dual_stack_host, r.dns_server
            dns_port = r.dns_port or 53
            if remote.throughput_port_order:
                ports = tuple(remote.throughput_port_order)  # this probe's own port first
        else:
            raise RuntimeError("no reference server: not from the aggregator, not in agent.toml")
        duration = s.throughput_duration_s or (remote.throughput_duration_s if remote else 0) or 10
        streams = s.throughput_streams or (remote.throughput_streams if remote else 0) or 4
        latency_count = (remote.latency_count if remote else 0) or 10
        latency_interval_s = (remote.latency_interval_s if remote else 0.0) or 1.0
        preflight = (
            PreflightLimits(
                max_cross_traffic_bytes_per_s=s.preflight.max_cross_traffic_bytes_per_s,
                max_cpu_load_pct=s.preflight.max_cpu_load_pct,
                window_s=s.preflight.window_s,
            )
            if s.preflight.enabled
            else None
        )
        services = _city_services(remote)
        contexts = {}
        for kind, line in (("fixed", s.fixed), ("mobile", s.mobile)):
            if line.enabled:
                contexts[kind] = MeasurementContext(
                    server_host=host,
                    iperf3_ports=ports,
                    tcp_echo_port=echo,
                    ipv6_only_host=v6only,
                    dual_stack_host=dual,
                    dns_server=dns,
                    dns_port=dns_port,
                    interface=line.interface,
                    throughput_duration_s=duration,
                    throughput_streams=streams,
                    latency_count=latency_count,
                    latency_interval_s=latency_interval_s,
                    timeout_s=duration * 2 + 30,
                    bind_address=line.bind_address,
                    throughput_bytes_cap=s.throughput_bytes_cap,
                    preflight=preflight,
                    speedtest_config_url=s.speedtest_config_url,
                    daily_budget_bytes=line.daily_budget_bytes,
                    budget_first_test_estimate_bytes=line.budget_first_test_estimate_bytes,
                    # The aggregator's slot applies to the aggregator's server only.
                    throughput_slot_period_s=remote.throughput_slot_period_s
                    if remote is not None and s.reference is None
                    else 0,
                    throughput_slot_offset_s=remote.throughput_slot_offset_s if remote else 0,
                    throughput_slot_length_s=remote.throughput_slot_length_s if remote else 0,
                    modem=ModemSettings(
                        backend=s.modem.backend,
                        serial_port=s.modem.serial_port,
                        modemmanager_index=s.modem.modemmanager_index,
                        mmcli_command=s.modem.mmcli_command,
                        at_timeout_s=s.modem.at_timeout_s,
                        mmcli_timeout_s=s.modem.mmcli_timeout_s,
                    )
                    if kind == "mobile"
                    else None,
                    traceroute_targets=tuple(s.traceroute.targets),
                    traceroute_max_hops=s.traceroute.max_hops,
                    traceroute_silent_hops=s.traceroute.silent_hops,
                    dns_names=tuple(s.dns.names),
                    dns_resolvers=tuple(str(r) for r in s.dns.resolvers),
                    dns_system_resolver=s.dns.system_resolver,
                    city_services=services,
                    services_ca_pem=remote.services_ca_pem if remote is not None else b"",
                )
        source = (
            "agent.toml"
            if s.schedule is not None and s.reference is not None
            else ("aggregator" if remote is not None else "agent.toml")
        )
        return EffectiveConfig(schedule, contexts, source)

    # --- measuring -----------------------------------------------------

    def spool_or_hold(self, result_id: str, measurement: str, payload: bytes) -> None:
        """Write a result to the spool; while the disk refuses (full, read-only),
        hold results in memory (bounded: the oldest fall out and are counted)
        and write them, oldest first, once it takes them again."""
        if len(self.held) == self.held.maxlen:
            self.results_lost += 1
        self.held.append((result_id, measurement, payload))
        while self.held:
            try:
                self.spool.add(*self.held[0])
            except SpoolFull as err:
                log.error("%s; holding %d results in memory", err, len(self.held))
                return
            self.held.popleft()

    def _note_state(self, name: str, value: str) -> None:
        """Status for `wardprobe-agent status`: best effort on a full disk."""
        try:
            self.spool.set_state(name, value)
        except sqlite3.Error as err:
            log.warning("cannot record %s: %s", name, err)

    def _probe_context(self, network_kind: str) -> ProbeContext:
        return ProbeContext(
            probe_id=self.enrolment.probe_id,
            # 0: the aggregator files each result under the ward its registry had
            # the probe in when it measured. The box is not told of a move, and
            # the ward it was enrolled into would be refused after one.
            ward_code=0,
            agent_version=AGENT_VERSION,
            network_kind=network_kind,
        )

    async def measure(
        self, test: ScheduledTest, ctx: MeasurementContext
    ) -> list[results_pb2.Result]:
        """Run one test in a worker thread and spool its results (one, or one per
        target or resolver of a traceroute or DNS test), in the order measured.
        A mobile test is framed by observations of the radio (each stored as a
        `cellular` result) and carries their access technology and operator."""
        # Which observations frame it: the measurement table's `radio`.
        framing = (
            MEASUREMENTS[test.measurement].radio
            if test.network_kind == "mobile"
            else RadioFraming.NONE
        )
        start = await self.observe_radio(ctx) if framing is not RadioFraming.NONE else None
        started = time.monotonic()
        results = await asyncio.to_thread(run_within_budget, self.budget, test.measurement, ctx)
        took_s = time.monotonic() - started
        end = await self.observe_radio(ctx) if framing is RadioFraming.BEFORE_AND_AFTER else None
        return [
            self._record(test.measurement, test.network_kind, result, took_s, start, end)
            for result in results
        ]

    async def observe_radio(self, ctx: MeasurementContext) -> CellularObservationResult | None:
        """One observation of the modem, stored; None if the observation itself crashed
        (a modem problem is a stored FAILED observation, not a crash)."""
        started = time.monotonic()
        try:
            result = await asyncio.to_thread(run_measurement, "cellular", ctx)
        except Exception:  # a bug in the modem code must not cost the speed test
            log.exception("observing the modem crashed")
            return None
        self._record("cellular", "mobile", result, time.monotonic() - started)
        return result if isinstance(result, CellularObservationResult) else None

    def _record(
        self,
        measurement: str,
        network_kind: str,
        result: MeasurementResult,
        took_s: float,
        radio_start: CellularObservationResult | None = None,
        radio_end: CellularObservationResult | None = None,
    ) -> results_pb2.Result:
        message = to_proto(measurement, result, self._probe_context(network_kind), clock_state())
        _tag_radio(message, radio_start, radio_end)
        self.spool_or_hold(message.envelope.result_id, measurement, message.SerializeToString())
        self._note_state(
            f"last_result:{measurement}",
            json.dumps(
                {
                    "measured_at": result.measured_at.isoformat(timespec="seconds"),
                    "status": str(result.status),
                    "reason": result.status_reason,
                    "took_s": round(took_s, 1),
                }
            ),
        )
        if isinstance(result, CellularObservationResult):
            self._note_state("modem", json.dumps(modem_status(result)))
        return message

    async def run_cycle(
        self, config: EffectiveConfig, on_result: Callable[[dict[str, object]], None]
    ) -> list[results_pb2.Result]:
        """Every scheduled test once, one after the other (tests never overlap:
        a throughput test would disturb a latency test on the same line)."""
        messages = []
        for test in config.schedule:
            ctx = config.contexts.get(test.network_kind)
            if ctx is None:
                log.info(
                    "skipping %s: the %s line is disabled", test.measurement, test.network_kind
                )
                continue
            for message in await self.measure(test, ctx):
                on_result(to_json_dict(message))
                messages.append(message)
        return messages

    def close(self) -> None:
        self.spool.close()


def _access_tech_value(tech: AccessTech) -> results_pb2.AccessTech:
    number = results_pb2.AccessTech.Value(f"ACCESS_TECH_{tech.value.upper()}")
    return cast(results_pb2.AccessTech, number)


def _tag_radio(
    message: results_pb2.Result,
    start: CellularObservationResult | None,
    end: CellularObservationResult | None,
) -> None:
    """Put the radio a mobile test ran on into its result. An observation that
    failed leaves the fields unset: unknown, not "no service"."""
    first = start if start is not None and start.access_tech is not None else None
    last = end if end is not None and end.access_tech is not None else None
    named = first or last
    body: results_pb2.ThroughputResult | results_pb2.LatencyResult | results_pb2.TracerouteResult
    if message.HasField("throughput"):
        body = message.throughput
        if last is not None and last.access_tech is not None:
            message.throughput.access_tech_end = _access_tech_value(last.access_tech)
    elif message.HasField("latency"):
        body = message.latency
    elif message.HasField("traceroute"):
        body = message.traceroute
    else:
        return
    if first is not None and first.access_tech is not None:
        body.access_tech = _access_tech_value(first.access_tech)
    if named is not None:
        # Flattened as to_proto flattens the observation's own message.
        body.mcc_mnc = flat_text(named.mcc_mnc)
        body.operator_name = flat_text(named.operator_name)


def modem_status(result: CellularObservationResult) -> dict[str, object]:
    """The modem's state in words, for `wardprobe-agent status`."""
    if result.status != Status.OK or result.access_tech is None:
        state = f"{result.status}: {result.status_reason}"
    elif result.access_tech == AccessTech.NONE:
        state = f"no service (registration {result.registration_state or 'unknown'})"
    else:
        where = f"{result.operator_name or 'unknown operator'} ({result.mcc_mnc or '?'})"
        band = f", band {result.band}" if result.band is not None else ""
        rsrp = f", RSRP {result.rsrp_dbm:g} dBm" if result.rsrp_dbm is not None else ""
        state = f"{result.access_tech} on {where}{band}{rsrp}"
    capable = {True: "yes", False: "no (4G-only modem: probe-limited for 5G)", None: "unknown"}
    return {
        "observed_at": result.measured_at.isoformat(timespec="seconds"),
        "state": state,
        "model": result.modem_model or "unknown",
        "5g_capable": capable[result.modem_5g_capable],
        "backend": result.backend or result.method.tool,
    }


def _city_services(remote: enrolment_pb2.AgentConfig | None) -> tuple[CityService, ...]:
    """The aggregator's service list, each entry checked again as the file was
    (an entry this agent cannot take is logged and left out, not fatal)."""
    services: list[CityService] = []
    for entry in remote.services if remote is not None else ():
        try:
            name = host_name(entry.name)
            if entry.kind not in SERVICE_KINDS or not entry.department:
                raise ValueError(f"kind {entry.kind!r}, department {entry.department!r}")
        except ValueError as exc:
            log.warning("ignoring the service %r from the aggregator: %s", entry.name, exc)
            continue
        services.append(CityService(name=name, department=entry.department, kind=entry.kind))
    return tuple(services)
