"""The aggregator process: gRPC servers, thin servicers, graceful stop.

Two ports:
- enrolment (TLS, server-authenticated): `Enrolment`, where a probe trades a
  bootstrap token and a CSR for its certificate;
- ingest (mTLS, client certificate required): `Ingest` and `ProbeConfig`.
  The probe is whoever its certificate names, looked up in the registry on
  every call and again for every batch of an open stream, so a revoked
  probe is refused from its next batch on.

No exception text reaches a client: refusals say what is wrong in fixed
words, and an error a handler did not expect ends the call with INTERNAL and
a fixed message (`_InternalErrorsStayInside`); the detail goes to the log.

The servicers only parse, identify and hand typed objects to
aggregator/ingest.py; nothing here knows about columns or DuckDB.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import grpc
from google.rpc import code_pb2

from aggregator.batch_reader import RESULT_TABLES, IngestLimits, read_batch
from aggregator.ca import CertificateAuthority, server_credentials
from aggregator.config import AggregatorConfig
from aggregator.enrolment_service import EnrolmentServicer
from aggregator.ingest import BatchConverter, CommitOutcome, GroupCommitter, ReadBatch
from aggregator.registry import (
    IdentityRefused,
    ProbeIdentity,
    ProbeRecord,
    ProbeRegistry,
    ProbeState,
)
from aggregator.rich_status import abort, bad_request, rich_status
from aggregator.snapshot import snapshot_loop
from aggregator.store import ProbeRow, Store
from analysis.wards import can_tho_wards, ward_name
from wardprobe.slots import assign_slot
from wardprobe.v1 import enrolment_pb2, enrolment_pb2_grpc, ingest_pb2

log = logging.getLogger(__name__)

_INGEST_SERVICE = ingest_pb2.DESCRIPTOR.services_by_name["Ingest"].full_name
# What a client is told when the aggregator, not its request, is at fault.
COMMIT_FAILED = "the store could not commit the batch; send it again later"
READ_FAILED = "the aggregator could not read the batch; send it again later"
INTERNAL_ERROR = "internal error in the aggregator (details in its log)"


def _status(code: int, message: str, field: str | None = None) -> grpc.Status:
    if field is None:
        return rich_status(code, message)
    return rich_status(code, message, bad_request(field, message))


async def _identify(
    registry: ProbeRegistry, context: grpc.aio.ServicerContext[Any, Any]
) -> ProbeIdentity:
    """The calling probe, from its verified client certificate."""
    pems = context.auth_context().get("x509_pem_cert")
    if not pems:
        await abort(context, _status(code_pb2.UNAUTHENTICATED, "no client certificate"))
    try:
        return await asyncio.to_thread(registry.identify, next(iter(pems)))
    except IdentityRefused as err:
        # The registry's words name the probe or serial, never an exception's text.
        log.warning("refused %s: %s", context.peer(), err, exc_info=err.__cause__ is not None)
        await abort(context, _status(code_pb2.UNAUTHENTICATED, str(err)))


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


class IngestServicer:
    """`Ingest.Upload`: read each batch, validate, commit, ack in order.

    Requests arrive as bytes (no deserializer) so that a message that is not
    a ResultBatch gets a clear INVALID_ARGUMENT instead of gRPC's generic
    error. Each message is read in a worker process while earlier ones
    commit; acks leave in the order the batches came."""

    def __init__(
        self,
        registry: ProbeRegistry,
        converter: BatchConverter,
        committer: GroupCommitter,
        limits: IngestLimits,
        readers: Executor,
    ) -> None:
        self._registry = registry
        self._converter = converter
        self._committer = committer
        self._limits = limits
        self._readers = readers

    def handler(self) -> grpc.GenericRpcHandler[Any, Any]:
        return grpc.method_handlers_generic_handler(
            _INGEST_SERVICE,
            {
                "Upload": grpc.stream_stream_rpc_method_handler(
                    self.Upload,
                    request_deserializer=None,
                    response_serializer=ingest_pb2.BatchAck.SerializeToString,
                )
            },
        )

    async def Upload(
        self,
        request_iterator: AsyncIterator[bytes],
        context: grpc.aio.ServicerContext[bytes, ingest_pb2.BatchAck],
    ) -> AsyncIterator[ingest_pb2.BatchAck]:
        probe = await _identify(self._registry, context)
        # Bounded: a fast sender waits for its earlier batches to commit.
        queue: asyncio.Queue[asyncio.Future[ingest_pb2.BatchAck | grpc.Status] | None] = (
            asyncio.Queue(maxsize=8)
        )
        reader = asyncio.create_task(self._read(request_iterator, probe, queue))
        try:
            while (item := await queue.get()) is not None:
                try:
                    answer = await item
                except Exception:  # the store could not commit: the agent retries
                    # The detail (DuckDB's text, the store's path) is for the log only.
                    log.exception("commit failed for probe %s", probe.probe_id)
                    await abort(context, _status(code_pb2.UNAVAILABLE, COMMIT_FAILED))
                    return
                if isinstance(answer, grpc.Status):
                    await abort(context, answer)
                    return
                yield answer
            await reader  # surfaces an error of the request stream itself
        finally:
            reader.cancel()

    async def _read(
        self,
        request_iterator: AsyncIterator[bytes],
        probe: ProbeIdentity,
        queue: asyncio.Queue[asyncio.Future[ingest_pb2.BatchAck | grpc.Status] | None],
    ) -> None:
        previous: asyncio.Event | None = None
        async for raw in request_iterator:
            submitted = asyncio.Event()
            await queue.put(asyncio.ensure_future(self._process(raw, probe, previous, submitted)))
            previous = submitted
        await queue.put(None)

    async def _process(
        self,
        raw: bytes,
        probe: ProbeIdentity,
        previous: asyncio.Event | None,
        submitted: asyncio.Event,
    ) -> ingest_pb2.BatchAck | grpc.Status:
        """Read in a worker (in parallel with the stream's other batches), then
        commit in the stream's order, so a re-sent id counts as stored for
        the earlier batch and as a duplicate for the later one. Just before
        the commit, the probe is looked up in the registry again: a probe
        revoked while its stream is open has none of its later batches
        stored, and a move applies to the next batch."""
        loop = asyncio.get_running_loop()
        try:
            try:
                outcome = await loop.run_in_executor(
                    self._readers, read_batch, raw, self._converter.raw_types, self._limits
                )
            except Exception:  # a read worker died (out of memory, killed)
                log.exception("reading a batch of probe %s failed", probe.probe_id)
                return _status(code_pb2.UNAVAILABLE, READ_FAILED)
            if previous is not None:
                await previous.wait()
            if outcome.error is not None:
                return _status(outcome.error.code, outcome.error.message, outcome.error.field)
            try:
                current = await asyncio.to_thread(self._registry.identify_serial, probe.cert_serial)
            except IdentityRefused as err:
                log.warning("stream of %s ended: %s", probe.probe_id, err)
                return _status(code_pb2.UNAUTHENTICATED, str(err))
            batch = ReadBatch.from_outcome(outcome, current, datetime.now(UTC))
            pending = self._committer.submit(batch)
        finally:
            submitted.set()
        committed = await pending
        _log_refused_claims(probe.probe_id, committed)
        return ingest_pb2.BatchAck(
            sequence=outcome.sequence,
            stored=committed.stored,
            duplicates=committed.duplicates,
            rejected=committed.rejections,
        )


def _log_refused_claims(probe_id: str, committed: CommitOutcome) -> None:
    """Count, in the log, the results a probe sent claiming what only its
    certificate and the registry decide (another probe, another ward)."""
    denied = [r for r in committed.rejections if r.code == code_pb2.PERMISSION_DENIED]
    if denied:
        first = denied[0].bad_request.field_violations[0]
        log.warning(
            "probe %s: %d result(s) refused with PERMISSION_DENIED; first: %s %s",
            probe_id,
            len(denied),
            first.field,
            first.description,
        )


class ProbeConfigServicer(enrolment_pb2_grpc.ProbeConfigServicer):
    """`ProbeConfig.GetConfig`: the schedule and reference server for a probe."""

    def __init__(self, registry: ProbeRegistry, config: AggregatorConfig) -> None:
        self._registry = registry
        self._config = config

    async def GetConfig(
        self,
        request: enrolment_pb2.ConfigRequest,
        context: grpc.aio.ServicerContext[enrolment_pb2.ConfigRequest, enrolment_pb2.AgentConfig],
    ) -> enrolment_pb2.AgentConfig:
        probe = await _identify(self._registry, context)
        ref = self._config.reference_server
        slot = None
        if ref.throughput_slot_s and ref.iperf3_ports:
            active = await asyncio.to_thread(self._registry.list_probes, ProbeState.ACTIVE)
            slot = assign_slot(
                probe.probe_id,
                [record.probe_id for record in active],
                ref.iperf3_ports,
                length_s=ref.throughput_slot_s,
                capacity=ref.max_concurrent_throughput_tests,
            )
        return enrolment_pb2.AgentConfig(
            probe_id=probe.probe_id,
            ward_code=probe.ward_code,
            ward_name=ward_name(probe.ward_code) or "",
            site_class=str(probe.site_class),
            schedule=[
                enrolment_pb2.ScheduleEntry(
                    measurement=item.measurement,
                    interval_s=item.interval_s,
                    jitter_s=item.jitter_s,
                    network_kind=item.network_kind,
                )
                for item in self._config.schedule
            ],
            reference_server=enrolment_pb2.ReferenceServer(
                host=ref.host,
                iperf3_ports=ref.iperf3_ports,
                tcp_echo_port=ref.tcp_echo_port,
                ipv6_only_host=ref.ipv6_only_host,
                dual_stack_host=ref.dual_stack_host,
                dns_server=ref.dns_server,
                dns_port=ref.dns_port,
            ),
            throughput_duration_s=self._config.throughput_duration_s,
            throughput_streams=self._config.throughput_streams,
            latency_count=self._config.latency_count,
            latency_interval_s=self._config.latency_interval_s,
            throughput_slot_period_s=slot.period_s if slot else 0,
            throughput_slot_offset_s=slot.offset_s if slot else 0,
            throughput_slot_length_s=slot.length_s if slot else 0,
            throughput_port_order=slot.port_order if slot else (),
        )


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
        self.store = Store(config.store_path)
        self.registry = ProbeRegistry.in_state_dir(config.state_dir, ward_name)
        self.ca = CertificateAuthority.load(config.state_dir)
        self.limits = IngestLimits(
            max_batch_results=config.max_batch_results,
            max_message_bytes=config.max_message_bytes,
        )
        schemas = {t: self.store.arrow_schema(t) for t in RESULT_TABLES}
        known_wards = frozenset(can_tho_wards())
        self.converter = BatchConverter(schemas, known_wards, self.limits)
        self.committer = GroupCommitter(self.store, self.converter)
        # forkserver: never fork a process that already runs gRPC's threads.
        self.readers = ProcessPoolExecutor(
            max_workers=config.ingest_read_workers,
            mp_context=multiprocessing.get_context("forkserver"),
        )
        self._servers: list[grpc.aio.Server] = []
        self._sync_task: asyncio.Task[None] | None = None
        self._snapshot_task: asyncio.Task[None] | None = None
        self._synced: list[ProbeRow] | None = None
        self.ingest_port = 0
        self.enrol_port = 0

    async def start(self) -> None:
        """Bind both ports and start serving."""
        options = [
            ("grpc.max_receive_message_length", self.limits.max_message_bytes),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ]
        self.committer.start()
        self.sync_probes()

        ingest = grpc.aio.server(options=options, interceptors=[_InternalErrorsStayInside()])
        ingest.add_generic_rpc_handlers(
            (
                IngestServicer(
                    self.registry, self.converter, self.committer, self.limits, self.readers
                ).handler(),
            )
        )
        enrolment_pb2_grpc.add_ProbeConfigServicer_to_server(
            ProbeConfigServicer(self.registry, self.config), ingest
        )
        self.ingest_port = ingest.add_secure_port(
            self.config.ingest_listen,
            server_credentials(self.config.state_dir, require_client_auth=True),
        )

        enrol = grpc.aio.server(options=options, interceptors=[_InternalErrorsStayInside()])
        enrolment_pb2_grpc.add_EnrolmentServicer_to_server(
            EnrolmentServicer(self.registry, self.ca, self.config.ingest_public_address), enrol
        )
        self.enrol_port = enrol.add_secure_port(
            self.config.enrol_listen,
            server_credentials(self.config.state_dir, require_client_auth=False),
        )
        for server in (ingest, enrol):
            await server.start()
            self._servers.append(server)
        self._sync_task = asyncio.create_task(self._sync_loop(), name="probe-sync")
        if self.config.snapshot_path is not None:
            self._snapshot_task = asyncio.create_task(
                snapshot_loop(
                    self.store, self.config.snapshot_path, self.config.snapshot_interval_s
                ),
                name="snapshot",
            )
        log.info(
            "aggregator serving: ingest (mTLS) on %s, enrolment (TLS) on %s, store %s",
            self.config.ingest_listen,
            self.config.enrol_listen,
            self.config.store_path,
        )

    def sync_probes(self) -> None:
        """Mirror the registry's probes into the store's `probes` table when they changed."""
        rows = [_probe_row(r) for r in self.registry.list_probes()]
        if rows != self._synced:
            self.store.replace_probes(rows)
            self._synced = rows

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.probe_sync_interval_s)
            try:
                await asyncio.to_thread(self.sync_probes)
            except Exception:
                log.exception("probe registry sync failed; will retry")

    async def stop(self) -> None:
        """Stop accepting, let in-flight streams finish their commits, close the store."""
        for server in self._servers:
            await server.stop(self.config.grace_period_s)
        if self._sync_task is not None:
            self._sync_task.cancel()
        if self._snapshot_task is not None:
            self._snapshot_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._snapshot_task
        await self.committer.stop()
        self.readers.shutdown(wait=True)
        await asyncio.to_thread(self.sync_probes)
        self.store.checkpoint()
        self.store.close()

    async def __aenter__(self) -> Aggregator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def serve(config: AggregatorConfig) -> None:
    """Run until SIGTERM or SIGINT, then stop gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with Aggregator(config):
        await stop.wait()
        log.info("stopping: finishing in-flight batches")
