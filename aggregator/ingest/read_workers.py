"""The ingest's read worker processes (`ingest_read_workers`), kept working.

A ProcessPoolExecutor whose process dies (killed, out of memory) is broken
for good: every later submission fails with BrokenProcessPool, so every
batch would be refused with UNAVAILABLE until the aggregator restarts.
`ReadWorkers` replaces a broken pool with a new one and reads the batch
again on it, once. Reading has no effect outside the worker (the batch is
committed after it, in the main process), so a batch read twice is stored
once.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from aggregator.ingest.batch_reader import IngestLimits, ReadOutcome, read_batch

log = logging.getLogger(__name__)


class ReadWorkers:
    """A pool of `workers` processes that run `read_batch`, replaced when broken.

    Used from the event loop's thread only (the servicer's coroutines), so
    replacing the pool needs no lock: the first coroutine to see a pool
    broken replaces it, and the others, failed by the same death, find the
    new one already there."""

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._pool = self._new_pool()
        self.replaced = 0  # pools replaced since the start (for the log and tests)

    def _new_pool(self) -> ProcessPoolExecutor:
        # forkserver: never fork a process that already runs gRPC's threads.
        return ProcessPoolExecutor(
            max_workers=self._workers, mp_context=multiprocessing.get_context("forkserver")
        )

    async def read(self, raw: bytes, limits: IngestLimits) -> ReadOutcome:
        """`read_batch(raw, limits)` in a worker process. A pool broken while
        (or before) it ran is replaced and the batch read again on the new
        one; BrokenProcessPool only if that breaks too (the next batch then
        has a new pool again)."""
        try:
            return await self._read_once(raw, limits)
        except BrokenProcessPool:
            log.info("a read worker process died; reading the batch again on a new pool")
        return await self._read_once(raw, limits)

    async def _read_once(self, raw: bytes, limits: IngestLimits) -> ReadOutcome:
        pool = self._pool
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, read_batch, raw, limits)
        except BrokenProcessPool:
            self._replace(pool)
            raise

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        if self._pool is not broken:
            return  # replaced already, for another batch failed by the same death
        self._pool = self._new_pool()
        self.replaced += 1
        log.warning(
            "ingest read workers: a process died and broke the pool; replaced it "
            "with %d new worker(s) (replacement %d since start)",
            self._workers,
            self.replaced,
        )
        # Its processes are dead or being ended by the pool itself: no waiting.
        broken.shutdown(wait=False, cancel_futures=True)

    def shutdown(self, wait: bool = True) -> None:
        """Stop the worker processes (after the batches in flight, if `wait`)."""
        self._pool.shutdown(wait=wait)
