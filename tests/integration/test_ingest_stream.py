"""The ingest stream, over real gRPC with mTLS into a real DuckDB store:
exactly-once storage, rejections that name the field, malformed and
oversized input, revoked probes, wards from the registry, no internal error
text to clients."""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import duckdb
import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status

from agent.config import AgentSettings
from agent.identity import channel_credentials
from agent.measurements.base import MeasurementContext
from agent.runtime import AgentRuntime, ScheduledTest
from aggregator.central import INTERNAL_ERROR
from aggregator.ingest.service import COMMIT_FAILED
from emulation.deployment import free_tcp_port
from tests.integration.conftest import (
    CAI_KHE,
    NINH_KIEU,
    Central,
    random_uuid4,
    raw_upload,
    throughput_result,
)
from wardprobe.v1 import enrolment_pb2, enrolment_pb2_grpc, ingest_pb2, ingest_pb2_grpc, results_pb2


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
    # ward 0: the agent leaves the ward to the registry
    good = [throughput_result(mbps=50.0), throughput_result(ward_code=0, mbps=60.0)]
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
        8: (
            throughput_result(ward_code=CAI_KHE),  # a ward of the city, not the probe's
            "envelope.ward_code",
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
    assert stored == [(NINH_KIEU, 50.0), (NINH_KIEU, 60.0)]


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


def _as_latency(result: results_pb2.Result) -> results_pb2.Result:
    """The same envelope (and result id) with a latency body instead."""
    message = results_pb2.Result()
    message.envelope.CopyFrom(result.envelope)
    message.latency.protocol = "icmp"
    message.latency.target = "198.18.0.1"
    message.latency.packets_sent = message.latency.packets_received = 10
    message.latency.rtt_median_ms = 12.0
    return message


async def test_a_result_id_names_one_result_whatever_its_table(
    central: Central, tmp_path: Path
) -> None:
    probe = await central.enrol_probe(tmp_path / "probe")
    earlier = throughput_result(mbps=10.0)
    same_batch = throughput_result(mbps=20.0)
    first = ingest_pb2.ResultBatch(sequence=1, results=[earlier])
    # the same ids again as latency results: one in a later batch, one beside its first copy
    second = ingest_pb2.ResultBatch(
        sequence=2, results=[_as_latency(earlier), same_batch, _as_latency(same_batch)]
    )

    acks = await _send(central, probe.state_dir, first, second)

    assert [(a.stored, a.duplicates, len(a.rejected)) for a in acks] == [(1, 0, 0), (1, 2, 0)]
    store = central.aggregator.store
    assert store.query("select mbps from throughput order by mbps") == [(10.0,), (20.0,)]
    assert store.count("latency") == 0
    assert store.count("result_ids") == 2


async def test_a_result_naming_a_ward_not_the_probes_is_refused(
    central: Central, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    probe = await central.enrol_probe(tmp_path / "probe", ward_code=CAI_KHE)
    batch = ingest_pb2.ResultBatch(
        sequence=1,
        results=[
            throughput_result(ward_code=NINH_KIEU, mbps=1.0),
            throughput_result(ward_code=CAI_KHE, mbps=2.0),
            throughput_result(ward_code=0, mbps=3.0),
        ],
    )

    with caplog.at_level(logging.WARNING, logger="aggregator.ingest.service"):
        (ack,) = await _send(central, probe.state_dir, batch)

    assert (ack.stored, ack.duplicates) == (2, 0)
    (refused,) = ack.rejected
    assert (refused.index, refused.code) == (0, code_pb2.PERMISSION_DENIED)
    violation = refused.bad_request.field_violations[0]
    assert violation.field == "results[0].envelope.ward_code"
    assert f"names ward {NINH_KIEU}" in violation.description
    assert f"in ward {CAI_KHE}" in violation.description
    stored = central.aggregator.store.query("select mbps, ward_code from throughput order by mbps")
    assert stored == [(2.0, CAI_KHE), (3.0, CAI_KHE)]
    # counted where the operator looks
    assert f"probe {probe.probe_id}: 1 result(s) refused with PERMISSION_DENIED" in caplog.text


async def test_a_moved_probes_results_count_in_the_ward_it_was_in_when_it_measured(
    central: Central, tmp_path: Path
) -> None:
    probe = await central.enrol_probe(tmp_path / "probe", ward_code=NINH_KIEU)
    registry = central.aggregator.registry
    registry.move_probe(probe.probe_id, CAI_KHE)
    moved_at = registry.ward_history(probe.probe_id)[-1].since
    before = moved_at - timedelta(microseconds=1)
    results = [
        throughput_result(ward_code=0, measured_at=before, mbps=1.0),
        throughput_result(ward_code=0, measured_at=moved_at, mbps=2.0),
        # stamped with the ward it was in when it measured: kept there
        throughput_result(ward_code=NINH_KIEU, measured_at=before, mbps=3.0),
        # an agent that has not learned of the move: refused, it names the old ward
        throughput_result(ward_code=NINH_KIEU, measured_at=moved_at, mbps=4.0),
        # the new ward for a time before the move
        throughput_result(ward_code=CAI_KHE, measured_at=before - timedelta(hours=1), mbps=5.0),
    ]

    (ack,) = await _send(
        central, probe.state_dir, ingest_pb2.ResultBatch(sequence=1, results=results)
    )

    assert ack.stored == 3
    assert {r.index: r.code for r in ack.rejected} == {
        3: code_pb2.PERMISSION_DENIED,
        4: code_pb2.PERMISSION_DENIED,
    }
    stored = central.aggregator.store.query("select mbps, ward_code from throughput order by mbps")
    assert stored == [(1.0, NINH_KIEU), (2.0, CAI_KHE), (3.0, NINH_KIEU)]


async def test_an_agent_not_told_of_its_move_has_its_results_filed_in_the_new_ward(
    central: Central, tmp_path: Path
) -> None:
    probe = await central.enrol_probe(tmp_path / "probe", ward_code=NINH_KIEU)
    central.aggregator.registry.move_probe(probe.probe_id, CAI_KHE)
    runtime = AgentRuntime(AgentSettings(state_dir=probe.state_dir))
    # a TCP latency test to a closed loopback port: a failed result, at once
    closed = MeasurementContext(
        server_host="127.0.0.1", tcp_echo_port=free_tcp_port(), latency_count=1
    )

    await runtime.measure(ScheduledTest("latency_tcp", 3600, 0, "fixed"), closed)
    report = await runtime.uploader.drain()

    assert (report.stored, report.rejected) == (1, 0)
    assert central.aggregator.store.query("select ward_code from latency") == [(CAI_KHE,)]


async def test_an_absurd_or_malformed_measured_at_is_refused_alone(
    central: Central, tmp_path: Path
) -> None:
    probe = await central.enrol_probe(tmp_path / "probe")
    far_future, far_past, negative_nanos = (throughput_result() for _ in range(3))
    far_future.envelope.measured_at.seconds = 2**62
    far_past.envelope.measured_at.seconds = -(2**62)
    negative_nanos.envelope.measured_at.nanos = -1
    good = [throughput_result(mbps=float(i)) for i in range(3)]
    batch = ingest_pb2.ResultBatch(
        sequence=1, results=[good[0], far_future, good[1], far_past, negative_nanos, good[2]]
    )

    (ack,) = await _send(central, probe.state_dir, batch)

    assert (ack.stored, ack.duplicates) == (3, 0)
    refused = {r.index: r.bad_request.field_violations[0] for r in ack.rejected}
    assert {i: v.field for i, v in refused.items()} == {
        1: "results[1].envelope.measured_at",
        3: "results[3].envelope.measured_at",
        4: "results[4].envelope.measured_at.nanos",
    }
    assert refused[1].description == "is in the future"
    assert refused[3].description == "is before 2020: the probe clock is wrong"
    assert refused[4].description == "-1 is outside [0, 999999999]"
    assert central.aggregator.store.count("throughput") == 3


async def test_an_id_from_a_wrong_clock_is_refused_and_one_far_from_its_result_stored_once(
    central: Central, tmp_path: Path
) -> None:
    probe = await central.enrol_probe(tmp_path / "probe")
    # UUIDv7 ids whose time (first 48 bits) is a year ahead, in 2019, and in
    # 2021 on a result measured a minute ago (a clock that was wrong then).
    ahead = _id_at(datetime.now(UTC) + timedelta(days=365))
    before_2020 = _id_at(datetime(2019, 6, 1, tzinfo=UTC))
    long_ago = _id_at(datetime(2021, 6, 1, tzinfo=UTC))
    results = [throughput_result(result_id=i) for i in (ahead, before_2020, long_ago)]
    batch = ingest_pb2.ResultBatch(sequence=1, results=results)

    (first,) = await _send(central, probe.state_dir, batch)
    (again,) = await _send(
        central, probe.state_dir, ingest_pb2.ResultBatch(sequence=1, results=results[2:])
    )

    assert (first.stored, again.stored, again.duplicates) == (1, 0, 1)
    refused = {r.index: r.bad_request.field_violations[0] for r in first.rejected}
    assert {i: (v.field, v.description) for i, v in refused.items()} == {
        0: (
            "results[0].envelope.result_id",
            "its time (a UUIDv7's first 48 bits) is in the future: the probe clock is wrong",
        ),
        1: (
            "results[1].envelope.result_id",
            "its time (a UUIDv7's first 48 bits) is before 2020: the probe clock is wrong",
        ),
    }
    assert central.aggregator.store.query("select result_id::varchar from throughput") == [
        (long_ago,)
    ]


def _id_at(at: datetime) -> str:
    """A UUIDv7 whose time is `at`."""
    stamp = f"{int(at.timestamp() * 1000):012x}"
    return f"{stamp[:8]}-{stamp[8:]}-7abc-8def-0123456789ab"


async def test_control_characters_in_text_are_refused_by_field(
    central: Central, tmp_path: Path
) -> None:
    probe = await central.enrol_probe(tmp_path / "probe")
    nul, newline, escape, c1 = (throughput_result() for _ in range(4))
    nul.envelope.status_reason = "iperf3\x00 failed"
    newline.envelope.interface = "eth0\nFORGED LOG LINE"
    escape.envelope.method.tool_version = "\x1b[2Jiperf 3.12"
    c1.envelope.agent_version = "0.1\x85"
    fine = throughput_result()
    # U+00A9 and U+00A0 are encoded from the same lead byte as the C1 controls
    fine.envelope.status_reason = "Cần Thơ — © 2026,\u00a0no control characters"
    batch = ingest_pb2.ResultBatch(sequence=1, results=[nul, newline, escape, c1, fine])

    (ack,) = await _send(central, probe.state_dir, batch)

    assert ack.stored == 1
    refused = {r.index: r.bad_request.field_violations[0] for r in ack.rejected}
    assert {i: (v.field, v.description) for i, v in refused.items()} == {
        0: (
            "results[0].envelope.status_reason",
            "holds the control character U+0000 at position 6",
        ),
        1: ("results[1].envelope.interface", "holds the control character U+000A at position 4"),
        2: (
            "results[2].envelope.method.tool_version",
            "holds the control character U+001B at position 0",
        ),
        3: (
            "results[3].envelope.agent_version",
            "holds the control character U+0085 at position 3",
        ),
    }
    assert all(r.code == code_pb2.INVALID_ARGUMENT for r in ack.rejected)


async def test_a_newer_agents_batch_field_is_ignored(central: Central, tmp_path: Path) -> None:
    probe = await central.enrol_probe(tmp_path / "probe")
    batch = ingest_pb2.ResultBatch(sequence=1, results=[throughput_result()]).SerializeToString()
    # fields 3 (a varint) and 15 (a string) that this aggregator does not know
    newer = batch + b"\x18\x2a" + b"\x7a\x05later"

    async with grpc.aio.secure_channel(
        central.ingest_address, channel_credentials(probe.state_dir)
    ) as channel:
        acks = [ack async for ack in raw_upload(channel)(iter([newer]))]

    assert [(a.sequence, a.stored) for a in acks] == [(1, 1)]


async def test_a_probe_revoked_while_its_stream_is_open_has_nothing_more_stored(
    central: Central, tmp_path: Path
) -> None:
    probe = await central.enrol_probe(tmp_path / "probe")
    outbox: asyncio.Queue[ingest_pb2.ResultBatch | None] = asyncio.Queue()

    async def batches() -> AsyncIterator[ingest_pb2.ResultBatch]:
        while (batch := await outbox.get()) is not None:
            yield batch

    async with probe.channel(central.ingest_address) as channel:
        call = ingest_pb2_grpc.IngestStub(channel).Upload(batches())
        await outbox.put(ingest_pb2.ResultBatch(sequence=1, results=[throughput_result()]))
        first = await call.read()
        assert isinstance(first, ingest_pb2.BatchAck) and first.stored == 1

        central.aggregator.registry.revoke(probe.probe_id)
        for sequence in (2, 3, 4):
            await outbox.put(
                ingest_pb2.ResultBatch(sequence=sequence, results=[throughput_result()])
            )
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await call.read()
        await outbox.put(None)

    assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in (ended.value.details() or "")
    assert central.aggregator.store.count("throughput") == 1


class _FullDisk:
    """The store's DuckDB connection on a full disk: every insert fails with
    DuckDB's own message, which names the store's file."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, message: str) -> None:
        self._connection = connection
        self._message = message

    def execute(self, sql: str, *args: object) -> object:
        if sql.lstrip().lower().startswith("insert"):
            raise duckdb.IOException(self._message)
        return self._connection.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._connection, name)


async def test_a_store_that_cannot_commit_tells_the_client_nothing_of_itself(
    central: Central,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    probe = await central.enrol_probe(tmp_path / "probe")
    store = central.aggregator.embedded_store
    assert store is not None
    detail = f'IO Error: Could not write file "{store.path}.wal": No space left on device'
    monkeypatch.setattr(store, "_con", _FullDisk(store._con, detail))
    batch = ingest_pb2.ResultBatch(sequence=1, results=[throughput_result()])

    with caplog.at_level(logging.ERROR, logger="aggregator.ingest.service"):
        error = await _stream_error(central, probe.state_dir, batch.SerializeToString())

    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error.details() == COMMIT_FAILED
    assert str(store.path) not in str(error.trailing_metadata())
    assert detail in caplog.text  # the operator still sees why
    monkeypatch.undo()
    assert store.count("throughput") == 0


async def test_an_unexpected_error_reaches_the_client_as_internal_in_fixed_words(
    central: Central,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    probe = await central.enrol_probe(tmp_path / "probe")
    secret = "unable to open database file /var/lib/wardprobe-aggregator/registry.sqlite"

    def broken(*args: object) -> object:
        raise sqlite3.OperationalError(secret)

    async def nothing_until_answered() -> AsyncIterator[bytes]:
        # The stream fails when it opens, before any batch is read. A batch
        # sent meanwhile races the end of the call, and when the send loses,
        # gRPC's client reports its own failure ("Internal error from Core"),
        # not the aggregator's status: 2 runs in 20 did.
        await asyncio.Event().wait()
        yield b""

    monkeypatch.setattr(central.aggregator.registry, "identify", broken)
    with caplog.at_level(logging.ERROR):
        async with probe.channel(central.ingest_address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as upload_error:
                async for _ in raw_upload(channel)(nothing_until_answered()):
                    pass
        upload = upload_error.value
        async with probe.channel(central.ingest_address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as config:
                await enrolment_pb2_grpc.ProbeConfigStub(channel).GetConfig(
                    enrolment_pb2.ConfigRequest()
                )

    for error in (upload, config.value):
        assert error.code() == grpc.StatusCode.INTERNAL
        assert error.details() == INTERNAL_ERROR
    assert secret in caplog.text
