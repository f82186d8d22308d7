"""The uploader: spooled results to the aggregator over an mTLS gRPC stream.

Batches go out with a sequence number, a few in flight at a time; a batch
leaves the spool only when its ack arrives (the aggregator acks after the
commit). After a failure the daemon tries again later (agent/daemon.py:
exponential backoff with full jitter) and everything not yet acked is sent
again: the store absorbs by result id what had in fact arrived.

Several aggregators (replicas behind agent.toml's `aggregators`, or one name
with several A/AAAA records, every record resolved): a drain starts with the
one that worked last (remembered in the spool, as each drain runs in its own
worker process), or a random one the first time, so that a city's probes
spread over the replicas. When it cannot be reached or breaks the stream,
even mid-batch, the next one is tried after a jittered delay and the unacked
batches are sent there again; the drain gives up when every one has failed
in turn without an ack.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import grpc

from agent.backoff import Backoff
from agent.config import split_host_port
from agent.spool import Spool, SpooledResult
from wardprobe.v1 import ingest_pb2, ingest_pb2_grpc, results_pb2

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class UploadSettings:
    batch_size: int = 500
    window: int = 4  # batches in flight before waiting for an ack


@dataclass
class UploadReport:
    batches_acked: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0


class UploadError(Exception):
    """The aggregator could not be reached or broke the stream."""


# The spool's state row naming the aggregator the last drain delivered to.
IN_USE_STATE = "aggregator_in_use"

# (host, port) -> the host's addresses, in the resolver's order.
Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """Every A and AAAA record of `host`, as the system's resolver answers
    (getaddrinfo: /etc/hosts, then DNS), duplicates left out."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Endpoint:
    """One aggregator to dial: what agent.toml names, the address gRPC
    connects to, and the name its certificate must carry ("" = the target's host)."""

    address: str
    target: str
    server_name: str

    def describe(self) -> str:
        """The address as configured, and the record it resolved to when that differs."""
        return self.address if self.target == self.address else f"{self.address} at {self.target}"


class Uploader:
    """Delivers the spool (`drain`); the daemon runs it in an upload worker
    and paces the retries (agent/daemon.py)."""

    def __init__(
        self,
        spool: Spool,
        target: str | Sequence[str],
        credentials: grpc.ChannelCredentials,
        settings: UploadSettings,
        channel_options: tuple[tuple[str, str | int], ...] = (),
        *,
        tls_server_name: str = "",
        resolver: Resolver = system_resolver,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """`target`: one host:port or several (replicas, tried in turn);
        `tls_server_name` replaces the name expected in their certificate;
        `backoff` paces the tries from one aggregator to the next."""
        self._spool = spool
        self._addresses = (target,) if isinstance(target, str) else tuple(target)
        if not self._addresses:
            raise ValueError("no aggregator address to upload to")
        self._credentials = credentials
        self._settings = settings
        self._channel_options = channel_options
        self._tls_server_name = tls_server_name
        self._resolver = resolver
        self._backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        # Halved when the aggregator refuses a whole batch (too large, or one
        # result it cannot read), grown back after acks.
        self._batch_size = settings.batch_size
        self._narrowing = False  # one batch in flight until the refused result is found

    async def drain(self) -> UploadReport:
        """Send everything in the spool now, failing over between the
        aggregators; raise UploadError when none of them takes it."""
        report = UploadReport()
        endpoints = await self.endpoints()
        index = 0
        failures: deque[str] = deque(maxlen=len(endpoints))
        failed_in_a_row = 0
        while True:
            endpoint = endpoints[index]
            answered_before = report.batches_acked
            try:
                await self._session(endpoint, report)
            except (grpc.aio.AioRpcError, ConnectionError) as err:
                if self._isolate_refused_batch(err, report):
                    continue
                # An aggregator that acked something before it failed was
                # working: the count of failures in a row starts again.
                failed_in_a_row = (
                    1 if report.batches_acked > answered_before else failed_in_a_row + 1
                )
                failures.append(
                    _describe(err)
                    if len(endpoints) == 1
                    else f"{endpoint.describe()}: {_describe(err)}"
                )
                if failed_in_a_row >= len(endpoints):
                    text = "; ".join(failures)
                    self._spool.set_state("last_upload_error", f"{_now()} {text}")
                    raise UploadError(text) from err
                index = (index + 1) % len(endpoints)
                delay_s = self._backoff.delay_s(failed_in_a_row - 1, self._rng)
                log.warning(
                    "aggregator %s failed (%s); trying %s in %.1f s",
                    endpoint.describe(),
                    _describe(err),
                    endpoints[index].describe(),
                    delay_s,
                )
                await asyncio.sleep(delay_s)
                continue
            self._spool.set_state(IN_USE_STATE, endpoint.describe())
            return report

    async def endpoints(self) -> list[Endpoint]:
        """The aggregators to try, in order: every address configured, a name
        resolved to each of its records (now: the records may have changed),
        starting with the one the last drain delivered to, else a random one.
        UploadError when no address resolves."""
        endpoints: list[Endpoint] = []
        unresolved: list[str] = []
        for address in self._addresses:
            host, port = split_host_port(address)
            try:
                ipaddress.ip_address(host)
            except ValueError:
                pass
            else:
                endpoints.append(Endpoint(address, address, self._tls_server_name))
                continue
            try:
                records = await asyncio.to_thread(self._resolver, host, port)
            except OSError as err:
                log.warning("cannot resolve %s: %s", host, err)
                unresolved.append(f"{address}: cannot resolve {host}: {err}")
                continue
            for record in records:
                # The certificate names the host, not each of its addresses.
                target = f"[{record}]:{port}" if ":" in record else f"{record}:{port}"
                endpoints.append(Endpoint(address, target, self._tls_server_name or host))
        if not endpoints:
            text = "; ".join(unresolved) or "no address to upload to"
            self._spool.set_state("last_upload_error", f"{_now()} {text}")
            raise UploadError(text)
        in_use = self._spool.get_state(IN_USE_STATE)
        named = [e.describe() for e in endpoints]
        first = named.index(in_use) if in_use in named else self._rng.randrange(len(endpoints))
        return endpoints[first:] + endpoints[:first]

    def channel_options(self, endpoint: Endpoint) -> tuple[tuple[str, str | int], ...]:
        """The gRPC options to dial `endpoint` with (its certificate's name added)."""
        if not endpoint.server_name:
            return self._channel_options
        return (*self._channel_options, ("grpc.ssl_target_name_override", endpoint.server_name))

    def _isolate_refused_batch(self, err: BaseException, report: UploadReport) -> bool:
        """After the aggregator refused a whole batch (RESOURCE_EXHAUSTED,
        INVALID_ARGUMENT), send smaller ones; at one result per batch the
        oldest unacked result is the one it cannot take: set it aside with the
        reason, so one bad result cannot stop the probe's uploads for ever.
        True when the upload should go on at once."""
        if not isinstance(err, grpc.aio.AioRpcError) or err.code() not in (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            grpc.StatusCode.INVALID_ARGUMENT,
        ):
            return False
        if self._batch_size > 1 or not self._narrowing:
            self._narrowing = True
            self._batch_size = max(1, self._batch_size // 2)
            log.warning(
                "aggregator refused a batch (%s); batches of %d, one at a time",
                _describe(err),
                self._batch_size,
            )
            return True
        # One result alone, one batch in flight: the oldest unacked is the one.
        oldest = self._spool.pending(0, 1)
        if not oldest:
            return False
        reason = f"the aggregator refused it: {_describe(err)}"
        self._spool.acknowledge([oldest[0].seq], [(oldest[0].seq, reason)])
        report.rejected += 1
        log.error("result %s set aside: %s", oldest[0].result_id, reason)
        return True

    async def _session(self, endpoint: Endpoint, report: UploadReport) -> None:
        async with grpc.aio.secure_channel(
            endpoint.target, self._credentials, options=self.channel_options(endpoint)
        ) as channel:
            # No request iterator: batches go out with call.write() as the
            # window allows (the stubs only know the iterator form).
            call = ingest_pb2_grpc.IngestStub(channel).Upload()  # type: ignore[call-arg]
            delivered = _DeliveredStatus(call)
            try:
                await self._stream(call, report)
            except (grpc.aio.AioRpcError, ConnectionError) as err:
                server = await delivered.instead_of(err)
                if server is None:
                    raise
                raise server from err

    async def _stream(
        self, call: grpc.aio.StreamStreamCall[Any, Any], report: UploadReport
    ) -> None:
        """The batches of one session on `call`, as the window allows."""
        in_flight: deque[tuple[int, list[SpooledResult]]] = deque()
        last_spooled_seq = 0
        sequence = 0
        while True:
            # While narrowing down a refused batch, one batch at a time:
            # then the batch that fails the stream is the one in flight.
            window = 1 if self._narrowing else self._settings.window
            while len(in_flight) < window:
                rows = self._spool.pending(last_spooled_seq, self._batch_size)
                if not rows:
                    break
                sequence += 1
                batch = ingest_pb2.ResultBatch(
                    sequence=sequence,
                    results=[results_pb2.Result.FromString(r.payload) for r in rows],
                    # For the operator's metrics: what waits here, what was lost.
                    spool_depth=self._spool.depth(),
                    spool_dropped=self._spool.counter("dropped_results"),
                )
                try:
                    await call.write(batch)
                except asyncio.InvalidStateError:
                    # The call ended between two writes (the aggregator
                    # went away): its status says why.
                    code = await call.code()
                    raise ConnectionError(
                        f"stream ended with {code.name}: {await call.details()}"
                    ) from None
                in_flight.append((sequence, rows))
                last_spooled_seq = rows[-1].seq
            if not in_flight:
                try:
                    await call.done_writing()
                except Exception:
                    # When the call has failed already (the aggregator
                    # cannot be reached), grpc raises its internal
                    # ExecuteBatchError here, not an AioRpcError; the
                    # call's status below says why.
                    if not call.done():
                        raise
                code = await call.code()
                if code != grpc.StatusCode.OK:
                    raise ConnectionError(f"stream ended with {code.name}: {await call.details()}")
                return
            ack = await call.read()
            if ack is grpc.aio.EOF:  # type: ignore[attr-defined]
                code = await call.code()
                raise ConnectionError(
                    f"the aggregator closed the stream: {code.name}: {await call.details()}"
                )
            self._apply_ack(cast(ingest_pb2.BatchAck, ack), in_flight, report)

    def _apply_ack(
        self,
        ack: ingest_pb2.BatchAck,
        in_flight: deque[tuple[int, list[SpooledResult]]],
        report: UploadReport,
    ) -> None:
        sequence, rows = in_flight.popleft()
        if ack.sequence != sequence:
            raise ConnectionError(f"ack for batch {ack.sequence}, expected {sequence}")
        refused = []
        for rejection in ack.rejected:
            reason = "; ".join(
                f"{v.field}: {v.description}" for v in rejection.bad_request.field_violations
            )
            refused.append((rows[rejection.index].seq, reason))
            log.error("aggregator refused result %s: %s", rows[rejection.index].result_id, reason)
        self._spool.acknowledge([r.seq for r in rows], refused)
        report.batches_acked += 1
        self._batch_size = min(self._settings.batch_size, self._batch_size * 2)
        if self._batch_size == self._settings.batch_size:
            self._narrowing = False
        report.stored += ack.stored
        report.duplicates += ack.duplicates
        report.rejected += len(ack.rejected)
        self._spool.set_state("last_upload_at", _now())


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# What grpcio's asyncio client reports, in place of the server's status, when
# a write fails because the call has just ended (below).
_SYNTHETIC_STATUS = (grpc.StatusCode.INTERNAL, "Internal error from Core")
# How long to wait for the server's status once grpcio has reported its own.
_SERVER_STATUS_WAIT_S = 2.0


class _DeliveredStatus:
    """The aggregator's status of a call, where grpcio reports its own instead.

    When the aggregator ends a stream (a refused batch: RESOURCE_EXHAUSTED,
    INVALID_ARGUMENT) while a write of the agent is under way or starts,
    grpcio's asyncio client fails that write with INTERNAL "Internal error
    from Core" and sets that as the call's status, over the aggregator's if
    it had come first (grpc/grpc#36066; fixed in grpc/grpc#43486, not
    released). The agent would then take a refusal for a failure of the
    aggregator: back off and send the same batch again, instead of narrowing
    it down and setting aside the result the aggregator cannot take. grpcio
    runs a call's done callbacks when it sets the status: this keeps each
    status so set, and the call's own status is read again after the error."""

    def __init__(self, call: grpc.aio.StreamStreamCall[Any, Any]) -> None:
        self._call = call
        self._statuses: list[tuple[grpc.StatusCode, str]] = []
        call.add_done_callback(self._record)

    def _record(self, call: grpc.aio.Call) -> None:
        # The callback runs inside grpcio's setting of the status, which a
        # later setting replaces: read it now. code() and details() return at
        # once when the call has a status (they wait only for one not set yet).
        code, details = _at_once(call.code()), _at_once(call.details())
        if code is not None:
            self._statuses.append((code, details or ""))

    async def instead_of(self, err: BaseException) -> grpc.aio.AioRpcError | None:
        """The aggregator's status when grpcio reported its own INTERNAL in its
        place (waiting up to `_SERVER_STATUS_WAIT_S` for it to come); else None."""
        if not self._call.done():
            return None
        reported = (
            (err.code(), err.details() or "")
            if isinstance(err, grpc.aio.AioRpcError)
            else (await self._call.code(), await self._call.details() or "")
        )
        if reported != _SYNTHETIC_STATUS:
            return None
        deadline = asyncio.get_running_loop().time() + _SERVER_STATUS_WAIT_S
        while True:
            current = (await self._call.code(), await self._call.details() or "")
            server = [s for s in (*self._statuses, current) if s != _SYNTHETIC_STATUS]
            if server:
                code, details = server[0]
                return grpc.aio.AioRpcError(
                    code, grpc.aio.Metadata(), grpc.aio.Metadata(), details, None
                )
            if asyncio.get_running_loop().time() >= deadline:
                return None
            await asyncio.sleep(0.02)


def _at_once(step: Coroutine[Any, Any, T]) -> T | None:
    """A coroutine's value if it finishes without waiting; None otherwise."""
    try:
        step.send(None)
    except StopIteration as finished:
        return cast(T, finished.value)
    step.close()
    return None


def _describe(err: BaseException) -> str:
    if isinstance(err, grpc.aio.AioRpcError):
        return f"{err.code().name}: {err.details()}"
    return str(err)
