"""The central site's process: ingest and enrolment served together.

The aggregator host runs both gRPC servers in one process (systemd's
wardprobe-aggregator.service): the enrolment port issues the certificates
the ingest port then checks, and both read the one probe registry, so one
process owns the registry, the CA, the store and the read workers. It sits
above the three sub-packages because it is the only code that needs both
aggregator.ingest and aggregator.enrolment; neither imports it.

Two ports:
- enrolment (TLS, server-authenticated): `Enrolment`, where a probe trades a
  bootstrap token and a CSR for its certificate;
- ingest (mTLS, client certificate required): `Ingest` and `ProbeConfig`.
Both answer grpc.health.v1 too; for the operator, optionally, the same
health in plaintext on `health_listen`, Prometheus metrics on
`metrics_listen` (aggregator/monitoring.py), and always the control socket
that `wardprobe-aggregator backup` asks for a copy of the store
(aggregator/backup.py).

No exception text reaches a client: an error a handler did not expect ends
the call with INTERNAL and a fixed message (`_InternalErrorsStayInside`);
the detail goes to the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import duckdb
import grpc
import pyarrow as pa
from grpc_health.v1 import health_pb2_grpc

from aggregator.backup import ControlServer
from aggregator.config import AggregatorConfig, split_listen
from aggregator.enrolment.ca import CertificateAuthority, server_credentials
from aggregator.enrolment.registry import ProbeRecord, ProbeRegistry
from aggregator.enrolment.service import EnrolmentServicer
from aggregator.ingest.batch_reader import IngestLimits
from aggregator.ingest.commit import BatchConverter, GroupCommitter
from aggregator.ingest.lake import LakeStore
from aggregator.ingest.read_workers import ReadWorkers
from aggregator.ingest.service import IngestServicer, ProbeConfigServicer
from aggregator.ingest.snapshot import snapshot_loop
from aggregator.ingest.store import ProbeRow, Store, StoreSettings
from aggregator.ingest.stores import ResultStore, open_store
from aggregator.ingest.tables import RESULT_TABLES
from aggregator.monitoring import IngestMetrics, MetricsServer, StoreHealth
from analysis.wards import can_tho_wards, ward_name
from wardprobe.v1 import enrolment_pb2_grpc

log = logging.getLogger(__name__)

# What a client is told when a handler failed in a way it did not expect.
INTERNAL_ERROR = "internal error in the aggregator (details in its log)"


if TYPE_CHECKING:  # generic in the type stubs only
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.aio.ServerInterceptor


class _InternalErrorsStayInside(_ServerInterceptor):
    """An exception a handler did not turn into a status would reach the
    client as gRPC's "Unexpected <class>: <text>" (a file path, a SQL error);
    it ends the call with INTERNAL and a fixed message instead, and the
    detail goes to the log. Unary and bidirectional-stream handlers are the
    aggregator's kinds; others pass unchanged."""

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None:
            return handler
        if handler.unary_unary is not None:
            # The aio server's handlers are coroutines; the stubs type them as the sync API's.
            unary: Any = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                try:
                    return await unary(request, context)
                except (grpc.aio.BaseError, asyncio.CancelledError):
                    raise  # an abort, or the call ended
                except Exception:
                    log.exception("%s failed", method)
                    await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_ERROR)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            streaming: Any = handler.stream_stream

            async def stream_stream(
                requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                try:
                    async for response in streaming(requests, context):
                        yield response
                except (grpc.aio.BaseError, asyncio.CancelledError):
                    raise
                except Exception:
                    log.exception("%s failed", method)
                    await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_ERROR)

            return grpc.stream_stream_rpc_method_handler(
                stream_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


class ListenFailed(Exception):
    """A port aggregator.toml names could not be bound: taken, or not host:port."""

    def __init__(self, key: str, address: str) -> None:
        super().__init__(f"cannot listen on {address} ({key})")
        self.key = key
        self.address = address


def _bind(key: str, address: str, add_port: Callable[[str], int]) -> int:
    """`add_port(address)`; grpc's bare 'Failed to bind' as a ListenFailed naming the key."""
    try:
        return add_port(address)
    except RuntimeError as err:
        if "Failed to bind" not in str(err):
            raise
        raise ListenFailed(key, address) from None


def _probe_row(record: ProbeRecord) -> ProbeRow:
    return ProbeRow(
        probe_id=record.probe_id,
        ward_code=record.ward_code,
        ward_name=ward_name(record.ward_code),
        site_class=str(record.site_class),
        hostname=record.hostname or None,
        agent_version=record.agent_version or None,
        enrolled_at=record.enrolled_at,
        cert_serial=record.cert_serial,
        cert_not_after=record.cert_not_after,
        cert_state=str(record.state),
        revoked_at=record.revoked_at,
        isp=record.isp,
        plan_down_mbps=record.plan_down_mbps,
        plan_up_mbps=record.plan_up_mbps,
    )


class Aggregator:
    """The whole central process; `async with Aggregator(config) as agg:`."""

    def __init__(self, config: AggregatorConfig) -> None:
        self.config = config
        # The embedded file or a lake (aggregator/ingest/stores.py); the
        # lake's commit groups wait longer, to write Parquet files of a
        # sensible size (lake_flush_s, docs/scaling.md).
        self.store: ResultStore = open_store(config.store_spec)
        # The same store when it is the embedded file (its backup and snapshot need it).
        self.embedded_store = self.store if isinstance(self.store, Store) else None
        if self.embedded_store is not None:
            self.embedded_store.configure(
                StoreSettings(
                    memory_limit_mib=config.store_memory_limit_mib or None,
                    checkpoint_threshold_mib=config.store_checkpoint_threshold_mib,
                    threads=config.store_threads or None,
                )
            )
        self.registry = ProbeRegistry.at(config.registry, config.state_dir, ward_name)
        self.ca = CertificateAuthority.load(config.state_dir)
        self.limits = IngestLimits(
            max_batch_results=config.max_batch_results,
            max_message_bytes=config.max_message_bytes,
            max_in_flight_bytes=config.ingest_in_flight_mib * 2**20,
        )
        schemas = {t: self.store.arrow_schema(t) for t in RESULT_TABLES}
        known_wards = frozenset(can_tho_wards())
        self.converter = BatchConverter(schemas, known_wards, self.limits)
        self.health = StoreHealth()
        self.metrics = IngestMetrics(
            self.registry,
            config.store_path if self.embedded_store is not None else None,
            config.snapshot_path,
            self.health,
        )
        self.metrics.seen_at(self._last_received())
        if self.embedded_store is not None:
            self.committer = GroupCommitter(self.store, self.converter, observer=self.metrics)
        else:
            self.committer = GroupCommitter(
                self.store,
                self.converter,
                max_delay_s=config.lake_flush_s,
                max_rows=config.lake_flush_rows,
                observer=self.metrics,
            )
        self.readers = ReadWorkers(config.ingest_read_workers)
        self._servers: list[grpc.aio.Server] = []
        self._sync_task: asyncio.Task[None] | None = None
        self._snapshot_task: asyncio.Task[None] | None = None
        self._compact_task: asyncio.Task[None] | None = None
        self._synced: list[ProbeRow] | None = None
        self._metrics_server: MetricsServer | None = None
        # The control socket copies an embedded file for a backup; a lake is
        # backed up where it lives (PostgreSQL and its data path).
        self.control = (
            ControlServer(self.embedded_store, config.state_dir)
            if self.embedded_store is not None
            else None
        )
        self.ingest_port = 0
        self.enrol_port = 0
        self.health_port = 0  # 0: no plaintext health port
        self.metrics_port = 0  # 0: no metrics

    def _last_received(self) -> dict[str, float]:
        """Each probe's newest result in the store (unix seconds): its last
        contact as far as this process, just started, can tell."""
        union = " union all ".join(f"select probe_id, received_at from {t}" for t in RESULT_TABLES)
        rows = self.store.query(
            f"select probe_id::varchar, epoch(max(received_at)) from ({union}) group by all"
        )
        return {str(probe): float(when) for probe, when in rows}

    async def start(self) -> None:
        """Bind both ports and start serving."""
        options = [
            ("grpc.max_receive_message_length", self.limits.max_message_bytes),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            # HTTP/2 windows stay at 64 KiB a stream (plus the rest of a message
            # being read). BDP probing grows them up to 16 MiB a stream on a fast
            # link, and gRPC then takes in a sender's batches before the in-flight
            # bound lets them in: 100 MiB held by gRPC in a 600 k-result burst from
            # 100 probes (docs/ingest.md, "Memory and checkpoints").
            ("grpc.http2.bdp_probe", 0),
        ]
        self.committer.start()
        self.sync_probes()
        await self.health.start()

        ingest = grpc.aio.server(options=options, interceptors=[_InternalErrorsStayInside()])
        ingest.add_generic_rpc_handlers(
            (
                IngestServicer(
                    self.registry,
                    self.converter,
                    self.committer,
                    self.limits,
                    self.readers,
                    self.metrics,
                ).handler(),
            )
        )
        enrolment_pb2_grpc.add_ProbeConfigServicer_to_server(
            ProbeConfigServicer(self.registry, self.config, self.metrics), ingest
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health.servicer, ingest)
        self.ingest_port = _bind(
            "ingest_listen",
            self.config.ingest_listen,
            lambda address: ingest.add_secure_port(
                address, server_credentials(self.config.state_dir, require_client_auth=True)
            ),
        )

        enrol = grpc.aio.server(options=options, interceptors=[_InternalErrorsStayInside()])
        enrolment_pb2_grpc.add_EnrolmentServicer_to_server(
            EnrolmentServicer(self.registry, self.ca, self.config.ingest_public_address), enrol
        )
        self.enrol_port = _bind(
            "enrol_listen",
            self.config.enrol_listen,
            lambda address: enrol.add_secure_port(
                address, server_credentials(self.config.state_dir, require_client_auth=False)
            ),
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health.servicer, enrol)
        servers = [ingest, enrol]
        if self.config.health_listen is not None:
            # Health alone, in plaintext: what a local check or load balancer
            # can ask without the probes' client certificates.
            plain = grpc.aio.server(options=options)
            health_pb2_grpc.add_HealthServicer_to_server(self.health.servicer, plain)
            self.health_port = _bind(
                "health_listen", self.config.health_listen, plain.add_insecure_port
            )
            servers.append(plain)
        # Bound last of all: every address is taken before anything serves.
        if self.config.metrics_listen is not None:
            host, port = split_listen(self.config.metrics_listen)
            try:
                self._metrics_server = MetricsServer(self.metrics, host, port)
            except OSError as err:
                log.error("metrics_listen %s: %s", self.config.metrics_listen, err)
                raise ListenFailed("metrics_listen", self.config.metrics_listen) from None
            self.metrics_port = self._metrics_server.port
        for server in servers:
            await server.start()
            self._servers.append(server)
        if self.control is not None:
            await self.control.start()
        self._sync_task = asyncio.create_task(self._sync_loop(), name="probe-sync")
        if self.config.snapshot_path is not None and self.embedded_store is not None:
            self._snapshot_task = asyncio.create_task(
                snapshot_loop(
                    self.embedded_store, self.config.snapshot_path, self.config.snapshot_interval_s
                ),
                name="snapshot",
            )
        if isinstance(self.store, LakeStore):
            self._compact_task = asyncio.create_task(
                self._compact_loop(self.store), name="lake-compaction"
            )
        log.info(
            "aggregator serving: ingest (mTLS) on %s, enrolment (TLS) on %s, store %s",
            self.config.ingest_listen,
            self.config.enrol_listen,
            self.config.store_spec,
        )

    def sync_probes(self) -> bool:
        """Mirror the registry's probes into the store's `probes` table when
        they changed; whether it wrote."""
        rows = [_probe_row(r) for r in self.registry.list_probes()]
        if rows != self._synced:
            self.store.replace_probes(rows)
            self._synced = rows
            return True
        return False

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.probe_sync_interval_s)
            try:
                wrote = await asyncio.to_thread(self.sync_probes)
            except duckdb.Error as err:  # a write to the store: the health follows it
                log.exception("probe registry sync failed; will retry")
                self.metrics.store_write(err)
            except Exception:
                log.exception("probe registry sync failed; will retry")
            else:
                if wrote:
                    self.metrics.store_write(None)

    async def _compact_loop(self, lake: LakeStore) -> None:
        """Compact the lake every lake_compact_interval_s (its small files
        merged, old snapshots expired). Every replica runs it; one that
        conflicts with another's is tried again next time."""
        while True:
            await asyncio.sleep(self.config.lake_compact_interval_s)
            try:
                stats = await asyncio.to_thread(
                    lake.compact, keep_snapshots_s=self.config.lake_keep_snapshots_s
                )
            except duckdb.Error:
                log.exception(
                    "lake compaction failed; next in %ss", self.config.lake_compact_interval_s
                )
            else:
                log.info(
                    "lake compacted: %d data files before, %d after, %.1f s",
                    stats.files_before,
                    stats.files_after,
                    stats.seconds,
                )

    async def stop(self) -> None:
        """Stop accepting, let in-flight streams finish their commits, close the store."""
        await self.health.shut_down()  # NOT_SERVING while the streams finish
        if self.control is not None:
            await self.control.stop()
        for server in self._servers:
            await server.stop(self.config.grace_period_s)
        if self._sync_task is not None:
            self._sync_task.cancel()
        for task in (self._snapshot_task, self._compact_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.committer.stop()
        self.readers.shutdown(wait=True)
        await asyncio.to_thread(self.sync_probes)
        self.store.checkpoint()
        self.store.close()
        if self._metrics_server is not None:
            self._metrics_server.stop()

    async def __aenter__(self) -> Aggregator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# glibc's mallopt parameter: allocations from this size up get pages of
# their own, handed back to the system when freed.
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 128 * 1024


def hand_back_freed_memory() -> None:
    """Make this process return the memory of a burst once it is freed.

    glibc's default raises its mmap threshold to the largest block freed so
    far (up to 32 MiB), after which received batches, Arrow buffers and
    gRPC's slices of a burst come from its heaps, and one live block keeps
    the freed ones around it resident; a fixed threshold keeps every block
    of 128 KiB and more in pages of its own. Arrow then uses the same
    allocator (its mimalloc pool held about 100 MiB of a burst's peak).
    Called once by `serve`; memory figures in docs/ingest.md."""
    pa.set_memory_pool(pa.system_memory_pool())
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is not None and hasattr(libc, "mallopt"):  # glibc; other C libraries keep theirs
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


async def serve(config: AggregatorConfig) -> None:
    """Run until SIGTERM or SIGINT, then stop gracefully."""
    hand_back_freed_memory()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with Aggregator(config):
        await stop.wait()
        log.info("stopping: finishing in-flight batches")
