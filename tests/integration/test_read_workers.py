"""A killed ingest read worker costs nothing: the aggregator replaces its
broken pool and the batches keep being stored and acked, each once."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import grpc
import psutil
import pytest

from agent.identity import channel_credentials
from tests.integration.conftest import Central, throughput_result
from wardprobe.v1 import ingest_pb2, ingest_pb2_grpc

# Generous: only an upper bound on how long a killed process takes to go.
_GONE_WITHIN_S = 60.0


async def _send(
    central: Central, state_dir: Path, batch: ingest_pb2.ResultBatch
) -> list[ingest_pb2.BatchAck]:
    async with grpc.aio.secure_channel(
        central.ingest_address, channel_credentials(state_dir)
    ) as channel:
        call = ingest_pb2_grpc.IngestStub(channel).Upload(iter([batch]))
        return [ack async for ack in call]


def _read_workers() -> list[psutil.Process]:
    """The aggregator's read worker processes: this process runs it, and its
    pool's processes are the children of the forkserver it started."""
    forkservers = [
        child
        for child in psutil.Process().children()
        if any("forkserver" in part for part in child.cmdline())
    ]
    return [worker for server in forkservers for worker in server.children()]


async def test_a_killed_read_worker_is_replaced_and_batches_still_stored(
    central: Central, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    probe = await central.enrol_probe(tmp_path / "probe")
    before = [throughput_result(mbps=1.0)]
    (first,) = await _send(
        central, probe.state_dir, ingest_pb2.ResultBatch(sequence=1, results=before)
    )
    assert first.stored == 1
    workers = await asyncio.to_thread(_read_workers)
    assert workers, "no read worker after a batch was read"

    os.kill(workers[0].pid, signal.SIGKILL)
    _, alive = await asyncio.to_thread(psutil.wait_procs, [workers[0]], _GONE_WITHIN_S)
    assert not alive
    caplog.set_level(logging.INFO, logger="aggregator.ingest")
    after = [throughput_result(mbps=2.0 + i) for i in range(3)]
    acks = [
        await _send(central, probe.state_dir, ingest_pb2.ResultBatch(sequence=2, results=[r]))
        for r in after
    ]

    assert [(ack.stored, ack.duplicates, len(ack.rejected)) for (ack,) in acks] == [(1, 0, 0)] * 3
    stored = central.aggregator.store.query("select mbps from throughput order by mbps")
    assert stored == [(1.0,), (2.0,), (3.0,), (4.0,)]
    assert central.aggregator.readers.replaced == 1
    assert any(
        "replaced it" in record.getMessage() and record.levelno == logging.WARNING
        for record in caplog.records
    )
    assert workers[0].pid not in {w.pid for w in await asyncio.to_thread(_read_workers)}
