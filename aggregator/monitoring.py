"""The operator's view of the central process: gRPC health and Prometheus metrics.

Health (grpc.health.v1, the standard service of grpcio-health-checking):
the central process answers it on the ingest (mTLS) and enrolment (TLS)
ports, and in plaintext on `health_listen` when set. The overall service
("") and `wardprobe.v1.Ingest` turn NOT_SERVING when a write to the store
fails, and SERVING again when one succeeds. The signal is the commit path
itself (and the probe mirror's writes): a test write rolled back would not
show a full disk, and the commits are what the probes need to succeed.
`wardprobe.v1.ProbeConfig` and `wardprobe.v1.Enrolment` do not need the
store and stay SERVING. On shutdown every service turns NOT_SERVING.

Metrics (prometheus-client, one registry of this process's own, served on
`metrics_listen`): counts from the ingest path (`IngestObserver`), and, at
each scrape, the probes' last contact, what they report of their spools,
the store's size and the snapshot's age. The names are listed in
docs/operations.md.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.rpc import code_pb2
from grpc_health.v1 import health, health_pb2
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from aggregator.enrolment.registry import ProbeRegistry, ProbeState
from aggregator.ingest.events import BatchAnswered, GroupCommitted, SpoolReport
from analysis.wards import ward_name
from wardprobe.v1 import enrolment_pb2, ingest_pb2

log = logging.getLogger(__name__)

OVERALL = ""  # grpc.health.v1's name for the whole server
INGEST_SERVICE = ingest_pb2.DESCRIPTOR.services_by_name["Ingest"].full_name
CONFIG_SERVICE = enrolment_pb2.DESCRIPTOR.services_by_name["ProbeConfig"].full_name
ENROLMENT_SERVICE = enrolment_pb2.DESCRIPTOR.services_by_name["Enrolment"].full_name
# What a store that cannot be written takes down; the others answer without it.
NEEDS_THE_STORE = (OVERALL, INGEST_SERVICE)
SERVICES = (OVERALL, INGEST_SERVICE, CONFIG_SERVICE, ENROLMENT_SERVICE)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

# A probe not heard from for longer than this is silent.
SILENT_AFTER_S = 86_400.0
# The windows of wardprobe_probes_seen.
SEEN_WINDOWS_S = {"1h": 3_600.0, "24h": 86_400.0}
# Batch received → answered: an ack waits for its group commit (10 ms) and
# the commit; a backlog or a slow disk shows in the upper buckets.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class StoreHealth:
    """grpc.health.v1's servicer for every port of the process, and whether
    the store can be written as the last write found it."""

    def __init__(self) -> None:
        # The asyncio servicer; grpc-stubs know only the threaded one.
        self.servicer: Any = health.aio.HealthServicer()  # type: ignore[attr-defined]
        self.writable = True
        self.last_error: str | None = None
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Every service SERVING (the store opened, so it could be written)."""
        for service in SERVICES:
            await self.servicer.set(service, SERVING)

    def store_write(self, error: BaseException | None) -> None:
        """A write succeeded (None) or failed: update the services that need
        the store (from the event loop's thread; the change is applied in a task)."""
        writable = error is None
        if error is not None:
            self.last_error = f"{type(error).__name__}: {error}"
        if writable == self.writable:
            return
        self.writable = writable
        if writable:
            log.info("the store can be written again: health SERVING")
        else:
            log.error("the store cannot be written (%s): health NOT_SERVING", self.last_error)
        task = asyncio.get_running_loop().create_task(self._apply())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _apply(self) -> None:
        # The state as it is when the task runs: a quick fail-then-succeed ends SERVING.
        async with self._lock:
            status = SERVING if self.writable else NOT_SERVING
            for service in NEEDS_THE_STORE:
                await self.servicer.set(service, status)

    async def settle(self) -> None:
        """Wait for the changes scheduled so far (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def shut_down(self) -> None:
        """Every service NOT_SERVING for good: the process is stopping."""
        await self.settle()
        await self.servicer.enter_graceful_shutdown()


@dataclass(frozen=True)
class _Spool:
    ward_code: int
    depth: int | None
    dropped: int | None


class IngestMetrics:
    """The counters of the ingest path (an `IngestObserver`) and the state
    read at each scrape (a prometheus_client Collector)."""

    def __init__(
        self,
        registry: ProbeRegistry,
        store_path: Path | None,  # None: the store is a lake (no file to measure)
        snapshot_path: Path | None,
        health: StoreHealth,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.prometheus = CollectorRegistry(auto_describe=True)
        self._registry = registry
        self._store_path = store_path
        self._snapshot_path = snapshot_path
        self._health = health
        self.clock = clock  # unix seconds: last contacts and the snapshot's age
        self._lock = threading.Lock()  # the scrape runs in the HTTP server's thread
        self._last_seen: dict[str, float] = {}  # probe → unix seconds of its last call
        self._spools: dict[str, _Spool] = {}
        self.stored = Counter(
            "wardprobe_results_stored", "Results stored (new rows), by result table.",
            ["table"], registry=self.prometheus,
        )  # fmt: skip
        self.duplicates = Counter(
            "wardprobe_results_duplicate",
            "Results received again and not stored again (already in the store), by table.",
            ["table"], registry=self.prometheus,
        )  # fmt: skip
        self.refused = Counter(
            "wardprobe_results_refused",
            "Results refused, by table ('none': no body), reason (the field refused) and code.",
            ["table", "reason", "code"], registry=self.prometheus,
        )  # fmt: skip
        self.batches = Counter(
            "wardprobe_batches",
            "Batches answered: acked; refused (the batch as a whole); failed (the aggregator "
            "could not read or commit it).",
            ["outcome"], registry=self.prometheus,
        )  # fmt: skip
        self.latency = Histogram(
            "wardprobe_ingest_latency_seconds",
            "Seconds from a batch's arrival to its answer (the ack is sent after the commit).",
            buckets=LATENCY_BUCKETS_S, registry=self.prometheus,
        )  # fmt: skip
        self.write_failures = Counter(
            "wardprobe_store_write_failures",
            "Writes to the store that failed (commit groups, the probe mirror).",
            registry=self.prometheus,
        )  # fmt: skip
        self.prometheus.register(_ScrapeTime(self))

    # --- IngestObserver ------------------------------------------------

    def group_committed(self, group: GroupCommitted) -> None:
        """Count the group's stored, duplicate and refused results."""
        for table, count in group.stored.items():
            self.stored.labels(table).inc(count)
        for table, count in group.duplicates.items():
            self.duplicates.labels(table).inc(count)
        for refusal in group.refused:
            code = (
                code_pb2.Code.Name(refusal.code)
                if refusal.code in code_pb2.Code.values()
                else (str(refusal.code))
            )
            self.refused.labels(refusal.table, refusal.field, code).inc()

    def store_write(self, error: BaseException | None) -> None:
        """Count a failed write; the health follows every write."""
        if error is not None:
            self.write_failures.inc()
        self._health.store_write(error)

    def batch_answered(self, answer: BatchAnswered) -> None:
        """Count the batch and its latency; the probe was heard from."""
        self.batches.labels(answer.outcome).inc()
        self.latency.observe(answer.seconds)
        self.probe_seen(answer.probe_id)

    def probe_seen(self, probe_id: str) -> None:
        """The probe's last contact is now."""
        with self._lock:
            self._last_seen[probe_id] = self.clock()

    def spool_reported(self, report: SpoolReport) -> None:
        """Keep the probe's latest spool report."""
        with self._lock:
            self._spools[report.probe_id] = _Spool(report.ward_code, report.depth, report.dropped)

    # --- state -----------------------------------------------------------

    def seen_at(self, last_seen: dict[str, float]) -> None:
        """Last contacts known from before this process (the store's newest
        received_at per probe); a later call of the probe wins."""
        with self._lock:
            for probe_id, when in last_seen.items():
                if when > self._last_seen.get(probe_id, float("-inf")):
                    self._last_seen[probe_id] = when

    def collect_state(self) -> Iterator[GaugeMetricFamily]:
        """The gauges computed at a scrape."""
        now = self.clock()
        with self._lock:
            last_seen = dict(self._last_seen)
            spools = dict(self._spools)
        active = self._registry.list_probes(ProbeState.ACTIVE)
        yield _gauge(
            "wardprobe_probes_active", "Probes enrolled and not revoked.", [], [((), len(active))]
        )
        seen = GaugeMetricFamily(
            "wardprobe_probes_seen",
            "Active probes that called (uploaded or fetched their configuration) within the "
            "window.",
            labels=["window"],
        )
        for window, seconds in SEEN_WINDOWS_S.items():
            count = sum(1 for p in active if now - last_seen.get(p.probe_id, -1e18) <= seconds)
            seen.add_metric([window], count)
        yield seen
        silent: dict[int, int] = {}
        for probe in active:
            # A probe never heard from counts from its enrolment.
            heard = last_seen.get(probe.probe_id, probe.enrolled_at.timestamp())
            silent[probe.ward_code] = silent.get(probe.ward_code, 0) + (
                now - heard > SILENT_AFTER_S
            )
        yield _gauge(
            "wardprobe_probes_silent",
            "Active probes not heard from for more than a day (never: since their "
            "enrolment), by ward; every ward with an active probe is listed.",
            ["ward_code", "ward_name"],
            [((str(code), ward_name(code) or ""), n) for code, n in sorted(silent.items())],
        )
        ids = {p.probe_id for p in active}
        reported = sorted((pid, spool) for pid, spool in spools.items() if pid in ids)
        yield _gauge(
            "wardprobe_probe_spool_depth_results",
            "Results waiting in a probe's spool, as its latest batch said (since this process "
            "started; agents older than the report send none).",
            ["probe_id", "ward_code"],
            [((p, str(s.ward_code)), s.depth) for p, s in reported if s.depth is not None],
        )
        yield _gauge(
            "wardprobe_probe_spool_dropped_results",
            "Results a probe's full spool dropped since it was made, as its latest batch said.",
            ["probe_id", "ward_code"],
            [((p, str(s.ward_code)), s.dropped) for p, s in reported if s.dropped is not None],
        )
        yield _gauge(
            "wardprobe_store_writable",
            "1 when the last write to the store succeeded, 0 when it failed.",
            [],
            [((), 1 if self._health.writable else 0)],
        )
        store = self._store_path
        size = None if store is None else _file_bytes(store, store.with_name(store.name + ".wal"))
        yield _gauge(
            "wardprobe_store_size_bytes",
            "Bytes of the DuckDB store on disk (its file and its write-ahead log).",
            [],
            [((), size)] if size is not None else [],
        )
        age = None
        if self._snapshot_path is not None:
            try:
                age = max(0.0, now - self._snapshot_path.stat().st_mtime)
            except FileNotFoundError:
                age = None  # not published yet: no sample
        yield _gauge(
            "wardprobe_snapshot_age_seconds",
            "Seconds since the analysts' snapshot was last published (absent: no snapshot).",
            [],
            [((), age)] if age is not None else [],
        )


def _gauge(
    name: str,
    documentation: str,
    labels: list[str],
    samples: Iterable[tuple[tuple[str, ...], float]],
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for values, value in samples:
        family.add_metric(list(values), value)
    return family


def _file_bytes(*paths: Path) -> int | None:
    """Total size of the files that exist; None when none does."""
    sizes = []
    for path in paths:
        try:
            sizes.append(path.stat().st_size)
        except FileNotFoundError:
            continue
    return sum(sizes) if sizes else None


class _ScrapeTime(Collector):
    """The gauges IngestMetrics computes at each scrape."""

    def __init__(self, metrics: IngestMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Read the registry, the last contacts and the files now."""
        try:
            yield from self._metrics.collect_state()
        except Exception:
            # A scrape must not take the process down; the gap shows in Prometheus.
            log.exception("computing the scrape-time metrics failed")

    def describe(self) -> list[GaugeMetricFamily]:
        """Nothing to check at registration (the families are made at scrape)."""
        return []


class MetricsServer:
    """prometheus_client's HTTP server (GET /metrics) in a thread of its own."""

    def __init__(self, metrics: IngestMetrics, host: str, port: int) -> None:
        self._server, self._thread = start_http_server(port, host, registry=metrics.prometheus)
        self.port = int(self._server.server_port)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
