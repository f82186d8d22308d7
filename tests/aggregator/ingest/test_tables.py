"""The result tables are declared once (aggregator/ingest/tables.py): schema.sql
must hold exactly the declared columns with types that fit what the wire
sends, every field a probe sends must reach a column, and the reader
compiled from the declaration reads each field into its column."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.descriptor import FieldDescriptor

from aggregator.ingest.store import Store
from aggregator.ingest.tables import (
    RESULT_TABLES,
    STORE_MADE,
    TABLES,
    Column,
    field_of,
    result_table,
)
from wardprobe.v1 import results_pb2

# The store type each wire type is kept as (enums as their words).
_STORED_AS = {
    FieldDescriptor.TYPE_ENUM: "VARCHAR",
    FieldDescriptor.TYPE_STRING: "VARCHAR",
    FieldDescriptor.TYPE_BOOL: "BOOLEAN",
    FieldDescriptor.TYPE_DOUBLE: "DOUBLE",
    FieldDescriptor.TYPE_UINT32: "INTEGER",
    FieldDescriptor.TYPE_UINT64: "UBIGINT",
}
_INT32_MAX = 2**31 - 1


@pytest.fixture(scope="module")
def described(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[str, str]]]:
    store = Store(tmp_path_factory.mktemp("store") / "store.duckdb")
    try:
        return {
            t: [(str(r[0]), str(r[1])) for r in store.query(f"describe {t}")] for t in RESULT_TABLES
        }
    finally:
        store.close()


def test_every_body_of_the_proto_has_a_table() -> None:
    assert set(TABLES) == {
        f.name for f in results_pb2.Result.DESCRIPTOR.oneofs_by_name["body"].fields
    }


@pytest.mark.parametrize("kind", RESULT_TABLES)
def test_schema_sql_has_the_declared_columns_in_their_order(
    kind: str, described: dict[str, list[tuple[str, str]]]
) -> None:
    in_store = [name for name, _ in described[kind] if name not in STORE_MADE]
    declared = [c.name for c in TABLES[kind].columns if c.stored]
    assert in_store == declared
    assert {name for name, _ in described[kind]} == TABLES[kind].stored_names


@pytest.mark.parametrize("kind", RESULT_TABLES)
def test_each_column_is_stored_as_its_wire_type(
    kind: str, described: dict[str, list[tuple[str, str]]]
) -> None:
    types = dict(described[kind])
    for column in TABLES[kind].columns:
        if not column.stored:
            continue
        expected = "UUID" if column.name == "result_id" else _stored_as(field_of(column.path))
        assert (column.name, types[column.name]) == (column.name, expected)


def _stored_as(wire: FieldDescriptor) -> str:
    """A repeated message as a LIST of STRUCT of its fields, a repeated scalar as a LIST."""
    if wire.is_repeated and wire.message_type is not None:
        members = ", ".join(f"{f.name} {_stored_as(f)}" for f in wire.message_type.fields)
        return f"STRUCT({members})[]"
    if wire.is_repeated:
        return _STORED_AS[wire.type] + "[]"
    return _STORED_AS[wire.type]


@pytest.mark.parametrize("kind", RESULT_TABLES)
def test_a_uint32_stored_as_integer_is_bounded_to_fit(kind: str) -> None:
    # The store's INTEGER holds half of what a uint32 can carry: a column
    # without bounds would fail the cast for a large value instead of
    # refusing that one result. The ward is checked against the city's wards.
    for column in TABLES[kind].columns:
        wire = field_of(column.path)
        if wire.is_repeated and wire.message_type is not None:
            # A struct's integer members need bounds as much as a column does.
            declared = {m.name: m for m in column.members}
            for member in wire.message_type.fields:
                if member.type == FieldDescriptor.TYPE_UINT32:
                    bounds = declared[member.name].bounds
                    assert bounds is not None, f"{column.name}.{member.name}"
                    assert bounds[0] >= 0 and bounds[1] <= _INT32_MAX, member.name
            continue
        if wire.type != FieldDescriptor.TYPE_UINT32 or not column.stored:
            continue
        if column.name == "ward_code":
            continue
        assert column.bounds is not None, column.name
        assert column.bounds[0] >= 0 and column.bounds[1] <= _INT32_MAX, column.name


def _leaf_paths(message: Any, prefix: str) -> set[str]:
    """Every scalar field under a message descriptor, as paths (a repeated
    message is one path: it is one column, a list)."""
    paths = set()
    for wire in message.fields:
        if wire.message_type is not None and not wire.is_repeated:
            paths |= _leaf_paths(wire.message_type, f"{prefix}{wire.name}.")
        else:
            paths.add(f"{prefix}{wire.name}")
    return paths


@pytest.mark.parametrize("kind", RESULT_TABLES)
def test_every_field_a_probe_sends_reaches_a_column(kind: str) -> None:
    body = results_pb2.Result.DESCRIPTOR.fields_by_name[kind].message_type
    sent = _leaf_paths(results_pb2.Envelope.DESCRIPTOR, "envelope.") | _leaf_paths(body, f"{kind}.")
    assert {c.path for c in TABLES[kind].columns} == sent


def _row(kind: str, result: results_pb2.Result) -> dict[str, object]:
    table = TABLES[kind]
    return dict(zip(table.read_names, table.read(7, result), strict=True))


def test_the_reader_reads_every_field_into_its_column() -> None:
    result = results_pb2.Result()
    env = result.envelope
    env.result_id = "0190b5a8-0000-7000-8000-000000000001"
    env.probe_id = "wp-1"
    env.ward_code = 31135
    env.measured_at.seconds, env.measured_at.nanos = 1_780_000_000, 5_000
    env.network_kind = results_pb2.NETWORK_KIND_MOBILE
    env.method.tool = "ping"
    env.method.server_port = 0  # set, though 0: read as 0, not as missing
    env.status_reason = "reason"
    lat = result.latency
    lat.protocol, lat.packets_sent, lat.packets_received = "icmp", 10, 9
    lat.rtt_median_ms = 12.5
    lat.access_tech = results_pb2.ACCESS_TECH_LTE
    lat.mcc_mnc = "45204"

    row = _row("latency", result)

    assert row["index"] == 7
    assert (row["result_id"], row["claimed_probe_id"], row["ward_code"]) == (
        env.result_id,
        "wp-1",
        31135,
    )
    assert (row["measured_at_s"], row["measured_at_nanos"]) == (1_780_000_000, 5_000)
    assert (row["network_kind"], row["tool"], row["server_port"]) == (
        results_pb2.NETWORK_KIND_MOBILE,
        "ping",
        0,
    )
    assert (row["duration_s"], row["streams"]) == (None, None)  # optional, not sent
    assert (row["protocol"], row["packets_sent"], row["packets_received"]) == ("icmp", 10, 9)
    assert (row["rtt_median_ms"], row["rtt_min_ms"], row["jitter_ms"]) == (12.5, None, None)
    assert (row["access_tech"], row["mcc_mnc"], row["operator_name"]) == (
        results_pb2.ACCESS_TECH_LTE,
        "45204",
        "",
    )


def test_a_missing_measured_at_reads_as_missing_not_as_1970() -> None:
    result = results_pb2.Result()
    result.envelope.result_id = "x"
    result.ipv6.has_global_address = False

    row = _row("ipv6", result)

    assert (row["measured_at_s"], row["measured_at_nanos"]) == (None, None)
    assert (row["has_global_address"], row["has_default_route"]) == (False, None)
    assert row["tool"] == ""  # a field of an absent Method is its default, as before


def test_enums_are_stored_as_their_names_and_unspecified_as_declared() -> None:
    enums = TABLES["throughput"].enums
    assert dict(enums["network_kind"]) == {1: "fixed", 2: "mobile"}  # 0 refused
    assert dict(enums["direction"]) == {1: "download", 2: "upload"}
    assert enums["clock_sync"][0] == "unknown"
    assert enums["access_tech"][0] is None
    assert enums["access_tech"][results_pb2.ACCESS_TECH_NR5G_NSA] == "nr5g_nsa"
    assert dict(TABLES["cellular"].enums["sinr_conversion"])[3] == "fifths_minus_20"


def test_a_column_naming_no_field_is_refused_when_declared() -> None:
    with pytest.raises(KeyError):
        result_table("throughput", (Column("no_such_field"),))


def test_a_column_declared_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        result_table("latency", (Column("target"), Column("target")))


def test_rejections_name_the_field_a_probe_sent() -> None:
    paths = TABLES["cellular"].paths
    assert paths["claimed_probe_id"] == "envelope.probe_id"
    assert paths["server_port"] == "envelope.method.server_port"
    assert paths["measured_at"] == "envelope.measured_at"
    assert paths["rsrp_dbm"] == "cellular.rsrp_dbm"


def test_a_repeated_message_is_read_as_a_list_of_its_fields() -> None:
    result = results_pb2.Result()
    trace = result.traceroute
    trace.protocol = "udp"
    home = trace.hops.add(hop=1, address="198.18.3.0/24", probes_sent=3, segment="home")
    home.rtts_ms.extend([0.4, 0.5])
    home.icmp_type = 11
    trace.hops.add(hop=2, probes_sent=3)  # silent: no address, no answer

    row = _row("traceroute", result)

    assert row["hops"] == [
        (1, "198.18.3.0/24", [0.4, 0.5], 3, None, 11, None, None, "home"),
        # "" read as NULL where declared so: a silent hop has no address, no segment
        (2, None, [], 3, None, None, None, None, None),
    ]
