"""The aggregator on a lake: the real ingest stream into DuckLake with a
PostgreSQL catalogue, acked only once committed, stored once, and read by an
analyst's own DuckDB attached read-only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from typer.testing import CliRunner

from agent.identity import channel_credentials
from aggregator.central import Aggregator
from aggregator.cli import app
from aggregator.config import AggregatorConfig, ReferenceServerConfig
from aggregator.enrolment.ca import init_ca
from aggregator.ingest.lake import LakeStore, connect_lake
from emulation.deployment import free_tcp_port
from tests.integration.conftest import Central, throughput_result
from wardprobe.v1 import ingest_pb2, ingest_pb2_grpc


@pytest.fixture
async def lake_central(tmp_path: Path, lake_spec: str) -> AsyncIterator[Central]:
    state = tmp_path / "aggregator"
    init_ca(state, ["localhost", "127.0.0.1"])
    ingest_port, enrol_port = free_tcp_port(), free_tcp_port()
    config = AggregatorConfig(
        state_dir=state,
        store=lake_spec,
        ingest_listen=f"127.0.0.1:{ingest_port}",
        enrol_listen=f"127.0.0.1:{enrol_port}",
        ingest_public_address=f"127.0.0.1:{ingest_port}",
        reference_server=ReferenceServerConfig(host="127.0.0.1"),
        probe_sync_interval_s=0.2,
        lake_flush_s=0.05,
        grace_period_s=1.0,
    )
    async with Aggregator(config) as aggregator:
        yield Central(aggregator, f"127.0.0.1:{ingest_port}", f"127.0.0.1:{enrol_port}")


async def _send(
    central: Central, state_dir: Path, *batches: ingest_pb2.ResultBatch
) -> list[ingest_pb2.BatchAck]:
    channel = grpc.aio.secure_channel(central.ingest_address, channel_credentials(state_dir))
    async with channel:
        call = ingest_pb2_grpc.IngestStub(channel).Upload(iter(batches))
        return [ack async for ack in call]


async def test_the_aggregator_stores_on_the_lake_once_and_analysts_see_it(
    lake_central: Central, tmp_path: Path
) -> None:
    aggregator = lake_central.aggregator
    assert isinstance(aggregator.store, LakeStore)
    probe = await lake_central.enrol_probe(tmp_path / "probe")
    results = [throughput_result(mbps=10.0 + i) for i in range(20)]

    first, again = await _send(
        lake_central,
        probe.state_dir,
        ingest_pb2.ResultBatch(sequence=1, results=results),
        ingest_pb2.ResultBatch(sequence=2, results=results),
    )

    assert (first.stored, first.duplicates) == (20, 0)
    assert (again.stored, again.duplicates) == (0, 20)
    await asyncio.to_thread(aggregator.sync_probes)  # the registry's probes, mirrored
    # acked means committed in the lake: an analyst's own DuckDB sees it now
    analyst = connect_lake(aggregator.store.spec, read_only=True)
    try:
        assert analyst.execute(
            "select count(*), count(distinct result_id), min(mbps), max(mbps) from throughput"
        ).fetchone() == (20, 20, 10.0, 29.0)
        assert analyst.execute("select probe_id from probes").fetchall() == [(probe.probe_id,)]
    finally:
        analyst.close()
    # no DuckDB file to measure: the store's size has no sample, the rest is there
    families = {family.name: family for family in aggregator.metrics.prometheus.collect()}
    assert families["wardprobe_store_size_bytes"].samples == []
    assert families["wardprobe_store_writable"].samples[0].value == 1


def test_serve_refuses_a_store_it_does_not_know(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--store", "ducklake:postgres://h/db"])

    assert result.exit_code == 2
    assert "needs one data_path" in result.output


def test_serve_says_in_one_line_when_it_cannot_use_its_lake(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", "utf-8")
    lake = f"ducklake:postgres://postgres@/none?host={tmp_path}&data_path={blocker}/lake"

    result = CliRunner().invoke(app, ["serve", "--store", lake])

    assert result.exit_code == 1
    assert "cannot use the lake" in result.output
    assert f"cannot make the data path {blocker}/lake" in result.output
    assert "Traceback" not in result.output
    # no PostgreSQL at that socket: DuckDB's refusal, in one line
    unreachable = f"ducklake:postgres://postgres@/none?host={tmp_path}&data_path={tmp_path}/lake"
    result = CliRunner().invoke(app, ["serve", "--store", unreachable])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("error: cannot use the lake ducklake:postgres://")
