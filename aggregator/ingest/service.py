"""The ingest port's servicers: `Ingest.Upload` and `ProbeConfig.GetConfig`.

Both run on the mTLS port. The probe is whoever its client certificate
names, looked up in the registry on every call and again for every batch of
an open stream, so a revoked probe is refused from its next batch on.
Refusals say what is wrong in fixed words; no exception text reaches a
client.

The servicers only parse, identify and hand typed objects to
aggregator/ingest/commit.py; nothing here knows about columns or DuckDB.
aggregator/central.py serves them next to the enrolment port.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
from google.rpc import code_pb2

from aggregator.config import AggregatorConfig
from aggregator.enrolment.registry import (
    IdentityRefused,
    ProbeIdentity,
    ProbeRegistry,
    ProbeState,
)
from aggregator.ingest.batch_reader import IngestLimits
from aggregator.ingest.commit import BatchConverter, CommitOutcome, GroupCommitter, ReadBatch
from aggregator.ingest.events import BatchAnswered, IngestObserver, NoObserver, SpoolReport
from aggregator.ingest.read_workers import ReadWorkers
from aggregator.rich_status import abort, bad_request, rich_status
from analysis.wards import ward_name
from wardprobe.slots import assign_slot
from wardprobe.v1 import enrolment_pb2, enrolment_pb2_grpc, ingest_pb2

log = logging.getLogger(__name__)

_INGEST_SERVICE = ingest_pb2.DESCRIPTOR.services_by_name["Ingest"].full_name
# What a client is told when the aggregator, not its request, is at fault.
COMMIT_FAILED = "the store could not commit the batch; send it again later"
READ_FAILED = "the aggregator could not read the batch; send it again later"


# A batch's arrival (time.monotonic()) and what becomes of it: its ack, or
# the status that ends the stream.
_Received = tuple[float, "asyncio.Future[ingest_pb2.BatchAck | grpc.Status]"]


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


class _InFlight:
    """Bytes of received batches not answered yet, over all streams."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._used = 0
        self._freed = asyncio.Event()

    async def take(self, size: int) -> None:
        """Wait until `size` more bytes fit (a batch larger than the limit
        waits until nothing else is in flight), then count them."""
        while self._used and self._used + size > self._limit:
            self._freed.clear()
            await self._freed.wait()
        self._used += size

    def give(self, size: int) -> None:
        """Count `size` bytes as answered; wake the streams waiting."""
        self._used -= size
        self._freed.set()


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
        readers: ReadWorkers,
        observer: IngestObserver | None = None,
    ) -> None:
        self._registry = registry
        self._converter = converter
        self._committer = committer
        self._limits = limits
        self._readers = readers
        self._observer: IngestObserver = observer or NoObserver()
        self._in_flight = _InFlight(limits.max_in_flight_bytes)

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
        self._observer.probe_seen(probe.probe_id)
        # Bounded: a fast sender waits for its earlier batches to commit.
        queue: asyncio.Queue[_Received | None] = asyncio.Queue(maxsize=8)
        reader = asyncio.create_task(self._read(request_iterator, probe, queue))
        try:
            while (item := await queue.get()) is not None:
                received_at, pending = item
                try:
                    answer = await pending
                except Exception:  # the store could not commit: the agent retries
                    # The detail (DuckDB's text, the store's path) is for the log only.
                    log.exception("commit failed for probe %s", probe.probe_id)
                    self._answered(probe, "failed", received_at)
                    await abort(context, _status(code_pb2.UNAVAILABLE, COMMIT_FAILED))
                    return
                if isinstance(answer, grpc.Status):
                    failed = answer.code == grpc.StatusCode.UNAVAILABLE  # ours, not the batch's
                    self._answered(probe, "failed" if failed else "refused", received_at)
                    await abort(context, answer)
                    return
                self._answered(probe, "acked", received_at)
                yield answer
            await reader  # surfaces an error of the request stream itself
        finally:
            reader.cancel()

    def _answered(self, probe: ProbeIdentity, outcome: str, received_at: float) -> None:
        self._observer.batch_answered(
            BatchAnswered(probe.probe_id, outcome, time.monotonic() - received_at)
        )

    async def _read(
        self,
        request_iterator: AsyncIterator[bytes],
        probe: ProbeIdentity,
        queue: asyncio.Queue[_Received | None],
    ) -> None:
        previous: asyncio.Event | None = None
        async for raw in request_iterator:
            await self._in_flight.take(len(raw))
            received_at = time.monotonic()
            submitted = asyncio.Event()
            processing = asyncio.ensure_future(self._process(raw, probe, previous, submitted))
            await queue.put((received_at, processing))
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
        stored, and a move applies to the next batch. Its bytes count as in
        flight (taken by `_read`) until it is answered."""
        try:
            return await self._answer(raw, probe, previous, submitted)
        finally:
            self._in_flight.give(len(raw))

    async def _answer(
        self,
        raw: bytes,
        probe: ProbeIdentity,
        previous: asyncio.Event | None,
        submitted: asyncio.Event,
    ) -> ingest_pb2.BatchAck | grpc.Status:
        """`_process` without the in-flight count."""
        try:
            try:
                # A pool broken by a dead worker is replaced and read on again, once.
                outcome = await self._readers.read(raw, self._limits)
            except Exception:  # the read failed again (a batch that kills its worker)
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
            if outcome.spool_depth is not None or outcome.spool_dropped is not None:
                self._observer.spool_reported(
                    SpoolReport(
                        current.probe_id,
                        current.ward_code,
                        outcome.spool_depth,
                        outcome.spool_dropped,
                    )
                )
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

    def __init__(
        self,
        registry: ProbeRegistry,
        config: AggregatorConfig,
        observer: IngestObserver | None = None,
    ) -> None:
        self._registry = registry
        self._config = config
        self._observer: IngestObserver = observer or NoObserver()

    async def GetConfig(
        self,
        request: enrolment_pb2.ConfigRequest,
        context: grpc.aio.ServicerContext[enrolment_pb2.ConfigRequest, enrolment_pb2.AgentConfig],
    ) -> enrolment_pb2.AgentConfig:
        probe = await _identify(self._registry, context)
        self._observer.probe_seen(probe.probe_id)
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
            services=[
                enrolment_pb2.CityService(name=c.name, department=c.department, kind=c.kind)
                for c in self._config.services
            ],
            services_ca_pem=self._config.services_ca_pem,
        )
