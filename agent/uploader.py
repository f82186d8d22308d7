"""The uploader: spooled results to the aggregator over an mTLS gRPC stream.

Batches go out with a sequence number, a few in flight at a time; a batch
leaves the spool only when its ack arrives (the aggregator acks after the
commit). After a failure the daemon tries again later (agent/daemon.py:
exponential backoff with full jitter) and everything not yet acked is sent
again: the store's primary key absorbs what had in fact arrived.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import grpc

from agent.spool import Spool, SpooledResult
from wardprobe.v1 import ingest_pb2, ingest_pb2_grpc, results_pb2

log = logging.getLogger(__name__)


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


class Uploader:
    """Delivers the spool (`drain`); the daemon runs it in an upload worker
    and paces the retries (agent/daemon.py)."""

    def __init__(
        self,
        spool: Spool,
        target: str,
        credentials: grpc.ChannelCredentials,
        settings: UploadSettings,
        channel_options: tuple[tuple[str, str | int], ...] = (),
    ) -> None:
        self._spool = spool
        self._target = target
        self._credentials = credentials
        self._settings = settings
        self._channel_options = channel_options
        # Halved when the aggregator refuses a whole batch (too large, or one
        # result it cannot read), grown back after acks.
        self._batch_size = settings.batch_size
        self._narrowing = False  # one batch in flight until the refused result is found

    async def drain(self) -> UploadReport:
        """Send everything in the spool now; raise UploadError if that fails."""
        report = UploadReport()
        while True:
            try:
                await self._session(report)
                return report
            except (grpc.aio.AioRpcError, ConnectionError) as err:
                if self._isolate_refused_batch(err, report):
                    continue
                self._note_failure(err)
                raise UploadError(_describe(err)) from err

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

    def _note_failure(self, err: BaseException) -> None:
        self._spool.set_state("last_upload_error", f"{_now()} {_describe(err)}")

    async def _session(self, report: UploadReport) -> None:
        async with grpc.aio.secure_channel(
            self._target, self._credentials, options=self._channel_options
        ) as channel:
            # No request iterator: batches go out with call.write() as the
            # window allows (the stubs only know the iterator form).
            call = ingest_pb2_grpc.IngestStub(channel).Upload()  # type: ignore[call-arg]
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
                    await call.write(batch)
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
                        raise ConnectionError(
                            f"stream ended with {code.name}: {await call.details()}"
                        )
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


def _describe(err: BaseException) -> str:
    if isinstance(err, grpc.aio.AioRpcError):
        return f"{err.code().name}: {err.details()}"
    return str(err)
