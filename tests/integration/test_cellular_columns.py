"""The radio figures of issue 10 reach the store over the real stream as the
agent's wire code sends them: UMTS RSCP and Ec/Io, RSSI, and the SINR as
printed beside the word for its conversion, so that an analyst can redo it;
implausible values are refused by field, and a store from before them gains
the columns empty."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import grpc

from agent.cellular.observe import AccessTech, SinrConversion
from agent.clock import ClockState
from agent.identity import channel_credentials
from agent.measurements.base import Method, Status
from agent.measurements.cellular import CellularObservationResult
from agent.wire import ProbeContext, to_proto
from aggregator.ingest.store import Store
from tests.integration.conftest import NINH_KIEU, Central
from wardprobe.v1 import ingest_pb2, ingest_pb2_grpc, results_pb2

PROBE = ProbeContext(probe_id="", ward_code=NINH_KIEU, agent_version="0.1.0", network_kind="mobile")


async def _send(
    central: Central, state_dir: Path, results: list[results_pb2.Result]
) -> ingest_pb2.BatchAck:
    batch = ingest_pb2.ResultBatch(sequence=1, results=results)
    async with grpc.aio.secure_channel(
        central.ingest_address, channel_credentials(state_dir)
    ) as channel:
        acks = [ack async for ack in ingest_pb2_grpc.IngestStub(channel).Upload(iter([batch]))]
    assert len(acks) == 1
    return acks[0]


def _observation(**figures: object) -> results_pb2.Result:
    result = CellularObservationResult(
        measured_at=datetime.now(UTC) - timedelta(minutes=1),
        status=Status.OK,
        method=Method(tool="at"),
        interface="wwan0",
        backend="at",
        registration_state="home",
        **figures,  # type: ignore[arg-type]
    )
    return to_proto("cellular", result, PROBE, ClockState.SYNCHRONISED)


async def test_sinr_raw_and_conversion_and_umts_figures_are_stored(
    central: Central, tmp_path: Path
) -> None:
    probe = await central.enrol_probe(tmp_path / "probe")
    ec25_lte = _observation(
        access_tech=AccessTech.LTE,
        mcc_mnc="45204",
        sinr_db=15.0,
        sinr_raw=175.0,
        sinr_conversion=SinrConversion.FIFTHS_MINUS_20,
        rssi_dbm=-65.0,
    )
    early_nsa = _observation(
        access_tech=AccessTech.NR5G_NSA,
        sinr_db=15.0,
        sinr_raw=15.0,
        sinr_conversion=SinrConversion.AS_PRINTED,
        nr_sinr_db=21.0,
        nr_sinr_raw=210.0,
        nr_sinr_conversion=SinrConversion.TENTHS,
    )
    umts = _observation(access_tech=AccessTech.UMTS, rscp_dbm=-85.0, ecio_db=-7.5, rssi_dbm=-70.0)

    ack = await _send(central, probe.state_dir, [ec25_lte, early_nsa, umts])

    assert (ack.stored, list(ack.rejected)) == (3, [])
    store = central.aggregator.store
    rows = store.query(
        "select access_tech, sinr_db, sinr_raw, sinr_conversion, nr_sinr_db, nr_sinr_raw,"
        " nr_sinr_conversion, rssi_dbm, rscp_dbm, ecio_db from cellular order by access_tech"
    )
    assert rows == [
        ("lte", 15.0, 175.0, "fifths_minus_20", None, None, None, -65.0, None, None),
        ("nr5g_nsa", 15.0, 15.0, "as_printed", 21.0, 210.0, "tenths", None, None, None),
        ("umts", None, None, None, None, None, None, -70.0, -85.0, -7.5),
    ]
    # The analyst's redo of the EC25's conversion, from what is stored.
    redone = store.query("select sinr_raw / 5 - 20 from cellular where access_tech = 'lte'")
    assert redone == [(15.0,)]


async def test_an_unknown_conversion_or_an_implausible_rscp_is_refused_by_field(
    central: Central, tmp_path: Path
) -> None:
    probe = await central.enrol_probe(tmp_path / "probe")
    future = _observation(access_tech=AccessTech.LTE, sinr_db=10.0, sinr_raw=10.0)
    future.cellular.sinr_conversion = 9  # type: ignore[assignment]
    deaf = _observation(access_tech=AccessTech.UMTS, rscp_dbm=-400.0)

    ack = await _send(central, probe.state_dir, [future, deaf])

    fields = [r.bad_request.field_violations[0].field for r in ack.rejected]
    assert fields == ["results[0].cellular.sinr_conversion", "results[1].cellular.rscp_dbm"]
    assert central.aggregator.store.count("cellular") == 0


def test_an_older_cellular_table_gains_the_columns_empty(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as old:
        old.execute(
            "create table cellular (result_id uuid primary key, probe_id varchar not null,"
            " ward_code integer not null, measured_at timestamptz not null,"
            " received_at timestamptz not null, network_kind varchar not null,"
            " clock_sync varchar not null, status varchar not null, sinr_db double)"
        )
        old.execute(
            "insert into cellular values ('01900000-0000-7000-8000-000000000001', 'wp-1',"
            " 31135, now(), now(), 'mobile', 'synchronised', 'ok', 12.5)"
        )

    store = Store(path)

    assert store.query(
        "select sinr_db, sinr_raw, sinr_conversion, rscp_dbm, nr_sinr_conversion from cellular"
    ) == [(12.5, None, None, None, None)]
    store.close()
