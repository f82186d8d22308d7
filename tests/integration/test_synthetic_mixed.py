"""Synthetic results mixed into a live store beside real ones: a probe's
result sent later with one of their ids is a duplicate, whatever its table,
and changes nothing stored."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import grpc

from agent.identity import channel_credentials
from analysis.synthetic import SyntheticSpec, WardSpec, generate
from tests.integration.conftest import NINH_KIEU, Central, throughput_result
from wardprobe.v1 import ingest_pb2, ingest_pb2_grpc, results_pb2

# The ids ingest takes (canonical UUIDv7), as a DuckDB regular expression.
_UUID7 = "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"


async def _send(
    central: Central, state_dir: Path, *results: results_pb2.Result
) -> ingest_pb2.BatchAck:
    async with grpc.aio.secure_channel(
        central.ingest_address, channel_credentials(state_dir)
    ) as channel:
        batch = ingest_pb2.ResultBatch(sequence=1, results=results)
        (ack,) = [ack async for ack in ingest_pb2_grpc.IngestStub(channel).Upload(iter([batch]))]
        return ack


async def test_a_synthetic_id_ingested_later_is_a_duplicate(
    central: Central, tmp_path: Path
) -> None:
    probe = await central.enrol_probe(tmp_path / "probe")
    real = await _send(central, probe.state_dir, throughput_result(mbps=42.0))
    assert real.stored == 1
    store = central.aggregator.embedded_store
    assert store is not None
    spec = SyntheticSpec(
        wards=(WardSpec(NINH_KIEU, fixed_probes=2, mobile_probes=0),),
        start=datetime(2026, 3, 1, tzinfo=UTC),
        end=datetime(2026, 4, 1, tzinfo=UTC),
        throughput_rows=0,
        latency_rows=400,
        cellular_rows=0,
        ipv6_rows=0,
    )
    # The store already indexes a real result: only the generator can enter
    # the synthetic ids. Under the store's lock: its writer shares the connection.
    with store._lock:
        generate(store._con, spec, mix=True)
    # A synthetic latency result whose id ingest would take (UUIDv7 of a time
    # in the spec's period; the seeded hashes give the same ones every run).
    taken = store.query(
        f"select result_id::varchar from latency where synthetic"
        f" and regexp_matches(result_id::varchar, '{_UUID7}') order by 1 limit 1"
    )
    assert taken, "no UUIDv7-shaped id among the synthetic rows"
    ((synthetic_id,),) = taken

    ack = await _send(
        central, probe.state_dir, throughput_result(mbps=99.0, result_id=synthetic_id)
    )

    assert (ack.stored, ack.duplicates, len(ack.rejected)) == (0, 1, 0)
    assert store.query("select mbps from throughput") == [(42.0,)]
    assert store.query(
        "select synthetic from latency where result_id = ?::uuid", [synthetic_id]
    ) == [(True,)]
