"""The ingest stream, over real gRPC with mTLS into a real DuckDB store:
exactly-once storage, rejections that name the field, malformed and
oversized input, revoked probes."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status

from agent.identity import channel_credentials
from tests.integration.conftest import (
    CAI_KHE,
    NINH_KIEU,
    Central,
    random_uuid4,
    raw_upload,
    throughput_result,
)
from wardprobe.v1 import ingest_pb2, ingest_pb2_grpc


async def _send(
    central: Central, state_dir: Path, *batches: ingest_pb2.ResultBatch
) -> list[ingest_pb2.BatchAck]:
    probe_channel = grpc.aio.secure_channel(central.ingest_address, channel_credentials(state_dir))
    async with probe_channel:
        call = ingest_pb2_grpc.IngestStub(probe_channel).Upload(iter(batches))
        return [ack async for ack in call]


async def test_the_same_batch_twice_is_stored_once(central: Central, tmp_path: Path) -> None:
    probe = await central.enrol_probe(tmp_path / "probe")
    results = [throughput_result(mbps=10.0 + i) for i in range(20)]
    batch = ingest_pb2.ResultBatch(sequence=1, results=results)
    again = ingest_pb2.ResultBatch(sequence=2, results=results)

    first, second = await _send(central, probe.state_dir, batch, again)
    (third,) = await _send(central, probe.state_dir, batch)

    assert (first.sequence, first.stored, first.duplicates) == (1, 20, 0)
    assert (second.sequence, second.stored, second.duplicates) == (2, 0, 20)
    assert (third.stored, third.duplicates) == (0, 20)
    store = central.aggregator.store
    assert store.count("throughput") == 20
    rows = store.query("select distinct probe_id, ward_code from throughput")
    assert rows == [(probe.probe_id, NINH_KIEU)]


async def test_bad_results_are_refused_by_field_and_the_good_ones_stored(
    central: Central, tmp_path: Path
) -> None:
    probe = await central.enrol_probe(tmp_path / "probe")
    next_year = datetime.now(UTC) + timedelta(days=365)
    good = [throughput_result(mbps=50.0), throughput_result(ward_code=CAI_KHE, mbps=60.0)]
    bad = {
        2: (throughput_result(ward_code=1), "envelope.ward_code", code_pb2.INVALID_ARGUMENT),
        3: (throughput_result(mbps=math.nan), "throughput.mbps", code_pb2.INVALID_ARGUMENT),
        4: (
            throughput_result(measured_at=next_year),
            "envelope.measured_at",
            code_pb2.INVALID_ARGUMENT,
        ),
        5: (throughput_result(mbps=-5.0), "throughput.mbps", code_pb2.INVALID_ARGUMENT),
        6: (
            throughput_result(result_id=random_uuid4()),
            "envelope.result_id",
            code_pb2.INVALID_ARGUMENT,
        ),
        7: (
            throughput_result(probe_id="wp-someone-else"),
            "envelope.probe_id",
            code_pb2.PERMISSION_DENIED,
        ),
    }
    batch = ingest_pb2.ResultBatch(sequence=7, results=good + [r for r, _, _ in bad.values()])

    (ack,) = await _send(central, probe.state_dir, batch)

    assert ack.stored == 2
    assert ack.duplicates == 0
    refused = {r.index: r for r in ack.rejected}
    assert set(refused) == set(bad)
    for index, (_, field_suffix, code) in bad.items():
        violation = refused[index].bad_request.field_violations[0]
        assert violation.field == f"results[{index}].{field_suffix}"
        assert violation.description
        assert refused[index].code == code
    assert "unknown ward code 1" in refused[2].bad_request.field_violations[0].description
    stored = central.aggregator.store.query("select ward_code, mbps from throughput order by mbps")
    assert stored == [(NINH_KIEU, 50.0), (CAI_KHE, 60.0)]


async def test_a_resent_result_never_changes_what_is_stored(
    central: Central, tmp_path: Path
) -> None:
    probe = await central.enrol_probe(tmp_path / "probe")
    original = throughput_result(mbps=123.0)
    altered = throughput_result(mbps=999.0, result_id=original.envelope.result_id)

    await _send(central, probe.state_dir, ingest_pb2.ResultBatch(sequence=1, results=[original]))
    (ack,) = await _send(
        central, probe.state_dir, ingest_pb2.ResultBatch(sequence=1, results=[altered])
    )

    assert (ack.stored, ack.duplicates) == (0, 1)
    assert central.aggregator.store.query("select mbps from throughput") == [(123.0,)]


async def _stream_error(
    central: Central, state_dir: Path, *messages: bytes
) -> grpc.aio.AioRpcError:
    from agent.identity import channel_credentials

    async with grpc.aio.secure_channel(
        central.ingest_address, channel_credentials(state_dir)
    ) as channel:
        call = raw_upload(channel)(iter(messages))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in call:
                pass
        return caught.value


@pytest.mark.parametrize(
    ("malformed", "expected"),
    [
        # Field 2 (results) as a varint instead of a message: wrong type.
        (b"\x08\x02\x10\x05", "field number 2 has the wrong type"),
        # A results entry that claims 5 bytes and has 2: corrupt.
        (b"\x08\x02\x12\x05ab", "not a wardprobe.v1.ResultBatch"),
    ],
)
async def test_bytes_that_are_not_a_batch_get_invalid_argument(
    central: Central, tmp_path: Path, malformed: bytes, expected: str
) -> None:
    probe = await central.enrol_probe(tmp_path / "probe")
    good = ingest_pb2.ResultBatch(sequence=1, results=[throughput_result()]).SerializeToString()

    error = await _stream_error(central, probe.state_dir, good, malformed)

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert expected in (error.details() or "")
    # from_call reads code, details and trailers, which an AioRpcError has too.
    status = rpc_status.from_call(cast(grpc.Call, error))
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    assert bad_request.field_violations[0].field == "batch"
    # The good batch before the bad one was committed (and acked) first.
    assert central.aggregator.store.count("throughput") == 1


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


async def test_a_result_field_of_the_wrong_type_is_refused_by_name(
    central: Central, tmp_path: Path
) -> None:
    probe = await central.enrol_probe(tmp_path / "probe")
    result = throughput_result()
    result.throughput.ClearField("mbps")
    # mbps (field 2 of ThroughputResult) sent as a string: the parser keeps it
    # as an unknown field, so the result arrives without mbps.
    body = result.throughput.SerializeToString() + b"\x12\x04fast"
    result.ClearField("throughput")
    wire = result.SerializeToString() + b"\x12" + _varint(len(body)) + body
    batch = b"\x08\x01\x12" + _varint(len(wire)) + wire

    async with grpc.aio.secure_channel(
        central.ingest_address, channel_credentials(probe.state_dir)
    ) as channel:
        acks = [ack async for ack in raw_upload(channel)(iter([batch]))]

    assert acks[0].stored == 0
    violation = acks[0].rejected[0].bad_request.field_violations[0]
    assert violation.field == "results[0].throughput.mbps"
    assert "missing" in violation.description


async def test_oversized_batches_get_resource_exhausted(central: Central, tmp_path: Path) -> None:
    probe = await central.enrol_probe(tmp_path / "probe")
    limit = central.aggregator.limits.max_batch_results
    too_many = ingest_pb2.ResultBatch(
        sequence=1, results=[throughput_result() for _ in range(limit + 1)]
    ).SerializeToString()
    too_large = ingest_pb2.ResultBatch(sequence=2, results=[throughput_result()])
    too_large.results[0].envelope.status_reason = "x" * (
        central.aggregator.limits.max_message_bytes + 1
    )

    by_count = await _stream_error(central, probe.state_dir, too_many)
    by_bytes = await _stream_error(central, probe.state_dir, too_large.SerializeToString())

    assert by_count.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"limit of {limit}" in (by_count.details() or "")
    assert by_bytes.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert central.aggregator.store.count("throughput") == 0


async def test_a_revoked_probe_is_refused_from_the_next_call(
    central: Central, tmp_path: Path
) -> None:
    probe = await central.enrol_probe(tmp_path / "probe")
    await _send(
        central, probe.state_dir, ingest_pb2.ResultBatch(sequence=1, results=[throughput_result()])
    )

    central.aggregator.registry.revoke(probe.probe_id)
    error = await _stream_error(
        central,
        probe.state_dir,
        ingest_pb2.ResultBatch(sequence=2, results=[throughput_result()]).SerializeToString(),
    )

    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in (error.details() or "")
    assert central.aggregator.store.count("throughput") == 1


async def test_probes_table_mirrors_the_registry(central: Central, tmp_path: Path) -> None:
    probe = await central.enrol_probe(tmp_path / "probe", ward_code=CAI_KHE)
    central.aggregator.sync_probes()
    rows = central.aggregator.store.query(
        "select probe_id, ward_code, ward_name, site_class, cert_state from probes"
    )
    assert rows == [(probe.probe_id, CAI_KHE, "Phường Cái Khế", "household", "active")]
