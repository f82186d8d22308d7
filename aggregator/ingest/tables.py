"""The result tables, declared once: what each column reads from the wire
and the rules its values must pass.

A result table is the envelope's columns followed by its body's. Each
`Column` names its store column, the field it is read from (a path in
`wardprobe.v1.Result`; a body column defaults to `<table>.<column>`) and
its own rules: a plausible range, choices, a pattern, whether "" is stored
as NULL. What the .proto already says is taken from it, not repeated here:
whether a field can be unset (proto3 `optional`: read as None), whether it
is an enum (stored as the value's name, lower case, without the enum's
prefix; `UNSPECIFIED_AS` says what 0 becomes), and the type a column is read
into. A repeated field is one column: a repeated message (a traceroute's
hops) a LIST of STRUCT with one member per field of the message, whose
rules are the column's `members`; a repeated scalar a LIST. The types a
column is stored as are schema.sql's (DuckDB's DDL, with
the analysts' comments); the aggregator refuses to start when schema.sql's
result tables and these declarations name different columns, and
tests/aggregator/ingest/test_tables.py checks the types too.

Everything the ingest path needs per table is derived from here once, at
import: the reader of one result (batch_reader.py), the raw Arrow types,
and the check tables (commit.py). A new kind of result is its message and
`Result.body` member in results.proto, its table in schema.sql, its
`ResultTable` below and its section in docs/schema.md.

This module is imported by the read workers: it must not import DuckDB.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import cast

import pyarrow as pa
from google.protobuf.descriptor import EnumDescriptor, FieldDescriptor

from wardprobe.service_list import KINDS as SERVICE_KINDS
from wardprobe.v1 import results_pb2

Row = tuple[object, ...]
# A read result: the row its table's reader returns, in `read_names` order.
Reader = Callable[[int, results_pb2.Result], Row]

# The result kinds are the members of Result's `body` oneof; each has a table.
RESULT_TABLES: tuple[str, ...] = tuple(
    f.name for f in results_pb2.Result.DESCRIPTOR.oneofs_by_name["body"].fields
)

# Columns the store fills, never read from a result: measured_at (from
# measured_at_s and _nanos), probe_id (the certificate's), received_at, and
# synthetic (set by ingest to false; the synthetic generator writes its own).
STORE_MADE: tuple[str, ...] = ("measured_at", "probe_id", "received_at", "synthetic")

# Each enum's values are stored as their names, lower case, without the
# enum's prefix (ACCESS_TECH_NR5G_NSA: "nr5g_nsa"), so a value added to
# results.proto is taken without an edit here. Its 0 (UNSPECIFIED) is stored
# as given here: a word, None (NULL), or REFUSED (the result is refused).
REFUSED = object()
UNSPECIFIED_AS: Mapping[str, object] = MappingProxyType(
    {
        "NetworkKind": REFUSED,
        "IpFamily": None,  # no test of a family: the ipv6 check's dual-stack family
        "ClockSync": "unknown",  # an agent from before the field
        "Status": REFUSED,
        "ReasonKind": None,  # an agent from before the field: reasons not classified
        "Direction": REFUSED,
        "AccessTech": None,  # a fixed line's test: no radio
        "SinrConversion": None,  # no SINR
    }
)

_DAY_S = 86_400.0
_MAX_RTT_MS = 60_000.0
_INT32_MAX = 2**31 - 1
# A traceroute's hops (IPv4's TTL and IPv6's hop limit are 8 bits), the
# probes of one hop or PMTU search, the queries of one DNS result.
_MAX_HOPS = 255
_MAX_PROBES = 64
_MAX_QUERIES = 256
# The services of one IPv6-readiness run (the city's list is tens, not thousands).
_MAX_SERVICES = 1024


@dataclass(frozen=True)
class Column:
    """One column of a result table as the wire gives it.

    `bounds` are inclusive; `choices` the only texts allowed; `pattern` a
    regular expression every value matches, with the reason a refusal
    gives; `at_most` another column this one may not exceed, with the
    reason; `required_when_ok` refuses a result with status ok without
    it; `present_with` a message whose absence reads this column as None
    (a field of a sub-message is otherwise its default). A repeated field
    holds at most `max_items` values; a repeated message's `members` are
    the rules of its fields (a member not declared has none; a member's
    `empty_is_null` is applied as it is read)."""

    name: str
    path: str = ""  # in Result; "" for a body column: "<table>.<name>"
    stored: bool = True
    present_with: str = ""
    bounds: tuple[float, float] | None = None
    empty_is_null: bool = False
    choices: tuple[str, ...] = ()
    pattern: tuple[str, str] | None = None
    at_most: tuple[str, str] | None = None
    required_when_ok: bool = False
    max_items: int | None = None
    members: tuple[Column, ...] = ()


# The envelope's columns, at the head of every result table. Read but not
# stored: claimed_probe_id (checked against the certificate) and the
# Timestamp's two fields (any value the wire allows fits in int64 this way;
# they are checked before they are combined into measured_at).
ENVELOPE: tuple[Column, ...] = (
    Column("result_id", "envelope.result_id"),
    Column("claimed_probe_id", "envelope.probe_id", stored=False),
    Column("ward_code", "envelope.ward_code"),
    Column(
        "measured_at_s",
        "envelope.measured_at.seconds",
        stored=False,
        present_with="envelope.measured_at",
    ),
    Column(
        "measured_at_nanos",
        "envelope.measured_at.nanos",
        stored=False,
        present_with="envelope.measured_at",
    ),
    Column("agent_version", "envelope.agent_version"),
    Column("interface", "envelope.interface"),
    Column("network_kind", "envelope.network_kind"),
    Column("ip_family", "envelope.ip_family"),
    Column("clock_sync", "envelope.clock_sync"),
    Column("tool", "envelope.method.tool"),
    Column("tool_version", "envelope.method.tool_version"),
    Column("server", "envelope.method.server"),
    Column("server_port", "envelope.method.server_port", bounds=(1, 65535)),
    Column("duration_s", "envelope.method.duration_s", bounds=(0.0, _DAY_S)),
    Column("streams", "envelope.method.streams", bounds=(0, 1024)),
    Column("status", "envelope.status"),
    Column("status_reason", "envelope.status_reason", empty_is_null=True),
    Column("status_reason_kind", "envelope.status_reason_kind"),
)

# The radio context a mobile test carries (throughput, latency, cellular).
_MCC_MNC = Column("mcc_mnc", empty_is_null=True, pattern=(r"^(\d{5,6})?$", "must be 5 or 6 digits"))
_OPERATOR_NAME = Column("operator_name", empty_is_null=True)
# RSRP/RSRQ/SINR: 3GPP TS 36.133 / 38.133 reporting ranges with some slack.
_RSRP_DBM = (-160.0, -30.0)
_SINR_DB = (-30.0, 50.0)
# EARFCN / NR-ARFCN; physical cell ids: LTE 0-503, NR 0-1007 (TS 36.211 / 38.211).
_CHANNEL = (0, 3_279_165)
_PCI = (0, 1007)
# A raw SINR in any unit a firmware prints (tenths: +-600).
_SINR_RAW = (-1000.0, 1000.0)

BODIES: Mapping[str, tuple[Column, ...]] = MappingProxyType(
    {
        "throughput": (
            Column("direction"),
            # Speeds above this are not physically plausible for an access line.
            Column("mbps", bounds=(0.0, 100_000.0), required_when_ok=True),
            Column("bytes_transferred"),
            Column("measured_s", bounds=(0.0, _DAY_S)),
            Column("retransmits", bounds=(0, _INT32_MAX)),
            Column("omitted_s", bounds=(0.0, _DAY_S)),
            Column("link_speed_mbps", bounds=(0.0, 1_000_000.0)),
            Column("mtu", bounds=(68, 65536)),  # the loopback interface has 65536
            Column("local_address", empty_is_null=True),
            Column("idle_rtt_median_ms", bounds=(0.0, _MAX_RTT_MS)),
            Column("loaded_rtt_median_ms", bounds=(0.0, _MAX_RTT_MS)),
            Column("loaded_rtt_p95_ms", bounds=(0.0, _MAX_RTT_MS)),
            Column("cross_traffic_bytes_per_s", bounds=(0.0, 1e12)),
            Column("cpu_load_pct", bounds=(0.0, 100.0)),
            Column("access_tech"),
            Column("access_tech_end"),
            _MCC_MNC,
            _OPERATOR_NAME,
        ),
        "latency": (
            Column("protocol", choices=("icmp", "tcp")),
            Column("target"),
            Column("target_port", bounds=(1, 65535)),
            Column("packets_sent", bounds=(0, _INT32_MAX)),
            Column(
                "packets_received",
                bounds=(0, _INT32_MAX),
                at_most=("packets_sent", "more replies than requests"),
            ),
            Column("rtt_min_ms", bounds=(0.0, _MAX_RTT_MS)),
            Column("rtt_median_ms", bounds=(0.0, _MAX_RTT_MS)),
            Column("rtt_p95_ms", bounds=(0.0, _MAX_RTT_MS)),
            Column("rtt_max_ms", bounds=(0.0, _MAX_RTT_MS)),
            Column("jitter_ms", bounds=(0.0, _MAX_RTT_MS)),
            Column("loss_pct", bounds=(0.0, 100.0)),
            Column("access_tech"),
            _MCC_MNC,
            _OPERATOR_NAME,
        ),
        "ipv6": (
            Column("has_global_address"),
            Column("has_default_route"),
            Column("aaaa_resolves"),
            Column("ipv6_only_tcp_ok"),
            Column("ipv6_only_connect_ms", bounds=(0.0, _MAX_RTT_MS)),
            Column("large_packet_ok"),
            Column("dual_stack_family"),
            Column("ipv6_capable"),
            Column("ipv6_preferred"),
            Column("global_prefix", empty_is_null=True),
        ),
        "cellular": (
            Column("access_tech"),
            _MCC_MNC,
            _OPERATOR_NAME,
            Column("band", bounds=(0, 1024)),
            Column("channel", bounds=_CHANNEL),
            Column("cell_id", empty_is_null=True),
            Column("tac", empty_is_null=True),
            Column("rsrp_dbm", bounds=_RSRP_DBM),
            Column("rsrq_db", bounds=(-45.0, 20.0)),
            Column("sinr_db", bounds=_SINR_DB),
            Column("registration_state", empty_is_null=True),
            Column("modem_model", empty_is_null=True),
            Column("modem_5g_capable"),
            Column("backend", empty_is_null=True),
            Column("nr_band", bounds=(0, 1024)),
            Column("nr_rsrp_dbm", bounds=_RSRP_DBM),
            Column("nr_sinr_db", bounds=_SINR_DB),
            Column("pci", bounds=_PCI),
            Column("nr_channel", bounds=_CHANNEL),
            Column("nr_pci", bounds=_PCI),
            # RSSI, RSCP (TS 25.133 reports -120..-25 dBm), Ec/Io (-24..0 dB), with slack.
            Column("rssi_dbm", bounds=(-160.0, -10.0)),
            Column("rscp_dbm", bounds=(-160.0, -10.0)),
            Column("ecio_db", bounds=(-50.0, 10.0)),
            Column("sinr_raw", bounds=_SINR_RAW),
            Column("sinr_conversion"),
            Column("nr_sinr_raw", bounds=_SINR_RAW),
            Column("nr_sinr_conversion"),
        ),
        "traceroute": (
            Column("protocol", choices=("icmp", "udp", "tcp")),
            Column("target"),
            Column("target_port", bounds=(1, 65535)),
            Column("flow_id", bounds=(0, 65535)),
            Column("max_hops", bounds=(1, _MAX_HOPS)),
            Column("reached"),
            Column(
                "stop_reason",
                empty_is_null=True,
                choices=("reached", "unreachable", "max_hops", "silent_hops", ""),
            ),
            Column("hop_count", bounds=(1, _MAX_HOPS)),
            Column("first_outside_hop", bounds=(1, _MAX_HOPS)),
            Column("first_outside_address", empty_is_null=True),
            Column("home_rtt_ms", bounds=(0.0, _MAX_RTT_MS)),
            Column("access_rtt_ms", bounds=(0.0, _MAX_RTT_MS)),
            Column("target_rtt_ms", bounds=(0.0, _MAX_RTT_MS)),
            Column(
                "hops",
                max_items=_MAX_HOPS,
                members=(
                    Column("hop", bounds=(1, _MAX_HOPS)),
                    Column("address", empty_is_null=True),
                    Column("rtts_ms", bounds=(0.0, _MAX_RTT_MS), max_items=_MAX_PROBES),
                    Column("probes_sent", bounds=(0, _MAX_PROBES)),
                    Column("loss_pct", bounds=(0.0, 100.0)),
                    Column("icmp_type", bounds=(0, 255)),
                    Column("icmp_code", bounds=(0, 255)),
                    Column("reply_ttl", bounds=(0, 255)),
                    Column("segment", empty_is_null=True),
                ),
            ),
            Column("access_tech"),
            _MCC_MNC,
            _OPERATOR_NAME,
        ),
        "ipv6_pmtu": (
            Column("target"),
            Column("interface_mtu", bounds=(1280, 65536)),
            Column("path_mtu", bounds=(1280, 65536)),
            Column("ptb_received"),
            Column("pmtu_blackhole"),
            Column("smallest_lost_bytes", bounds=(1280, 65536)),
            Column("probes_sent", bounds=(0, _INT32_MAX)),
            Column(
                "ptb_messages",
                max_items=_MAX_PROBES,
                members=(
                    Column("mtu_bytes", bounds=(0, 65536)),
                    Column("sender"),
                    Column("probe_bytes", bounds=(0, 65536)),
                ),
            ),
        ),
        "dns": (
            Column("resolver"),
            Column("resolver_kind", choices=("system", "configured")),
            Column("resolver_port", bounds=(1, 65535)),
            Column("queries_sent", bounds=(0, _MAX_QUERIES)),
            Column(
                "queries_failed",
                bounds=(0, _MAX_QUERIES),
                at_most=("queries_sent", "more failed queries than sent"),
            ),
            Column("failure_pct", bounds=(0.0, 100.0)),
            Column("time_median_ms", bounds=(0.0, _MAX_RTT_MS)),
            Column(
                "queries",
                max_items=_MAX_QUERIES,
                members=(
                    Column("rdtype", empty_is_null=True),
                    Column("rcode", empty_is_null=True),
                    Column("answers", max_items=_MAX_QUERIES),
                    Column("time_ms", bounds=(0.0, _MAX_RTT_MS)),
                    Column("transport", empty_is_null=True),
                    Column("reason", empty_is_null=True),
                ),
            ),
        ),
        "ipv6_services": (
            Column("resolver", empty_is_null=True),
            Column("services_checked", bounds=(0, _MAX_SERVICES)),
            Column(
                "services_ready",
                bounds=(0, _MAX_SERVICES),
                at_most=("services_checked", "more services ready than checked"),
            ),
            Column(
                "checks",
                max_items=_MAX_SERVICES,
                members=(
                    Column("kind", choices=SERVICE_KINDS),
                    Column("aaaa", max_items=_MAX_QUERIES),
                    Column("connect_ms", bounds=(0.0, _MAX_RTT_MS)),
                    Column("tls_ms", bounds=(0.0, _MAX_RTT_MS)),
                    Column("aaaa_reason", empty_is_null=True),
                    Column("web_reason", empty_is_null=True),
                    Column("ns_reason", empty_is_null=True),
                    Column("mx_reason", empty_is_null=True),
                ),
            ),
        ),
    }
)


@dataclass(frozen=True)
class ResultTable:
    """One result table with everything ingest derives from its declaration."""

    name: str
    columns: tuple[Column, ...]  # envelope then body, paths filled in
    # The reader's output: "index" (the result's place in its batch), then the columns.
    read_names: tuple[str, ...]
    read: Reader
    # How each read column is held before validation: enums and integers as
    # int64 (wide enough for any uint32 the wire allows; ranges are checked
    # before the cast to the store's narrower types), the rest as stored.
    raw_types: Mapping[str, pa.DataType]
    enums: Mapping[str, Mapping[int, str | None]]  # accepted numbers and their words
    paths: Mapping[str, str]  # column: its field's path in a Result, for a refusal
    empty_is_null: frozenset[str]  # text columns stored as NULL when the probe sent ""
    not_stored: frozenset[str]  # read columns the store does not keep as they are

    @property
    def stored_names(self) -> frozenset[str]:
        """The columns of the table in the store (schema.sql's)."""
        return frozenset(c.name for c in self.columns if c.stored) | frozenset(STORE_MADE)


def field_of(path: str) -> FieldDescriptor:
    """The field a path in `wardprobe.v1.Result` names (KeyError if none)."""
    message = results_pb2.Result.DESCRIPTOR
    *parents, leaf = path.split(".")
    for name in parents:
        inner = message.fields_by_name[name].message_type
        if inner is None:
            raise KeyError(f"{path}: {name} is not a message")
        message = inner
    # The stubs type a descriptor of the C implementation apart; it is the same API.
    return cast(FieldDescriptor, message.fields_by_name[leaf])


def enum_words(enum: EnumDescriptor) -> dict[int, str | None]:
    """The numbers of an enum the store accepts, and the word each is stored as."""
    first = enum.values[0]
    if first.number != 0 or not first.name.endswith("_UNSPECIFIED"):
        raise ValueError(f"{enum.name}: its first value is not 0, <PREFIX>_UNSPECIFIED")
    prefix = first.name.removesuffix("UNSPECIFIED")
    words: dict[int, str | None] = {}
    for value in enum.values:
        if value.number != 0:
            words[value.number] = value.name.removeprefix(prefix).lower()
        else:
            unspecified = UNSPECIFIED_AS[enum.name]
            if unspecified is not REFUSED:
                words[0] = unspecified if isinstance(unspecified, str) else None
    return words


_INT64_KINDS = frozenset(
    {
        FieldDescriptor.TYPE_ENUM,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_SFIXED64,
    }
)
_RAW_TYPES = {
    FieldDescriptor.TYPE_STRING: pa.string(),
    FieldDescriptor.TYPE_BOOL: pa.bool_(),
    FieldDescriptor.TYPE_DOUBLE: pa.float64(),
    FieldDescriptor.TYPE_FLOAT: pa.float64(),
    FieldDescriptor.TYPE_UINT64: pa.uint64(),
    FieldDescriptor.TYPE_FIXED64: pa.uint64(),
}


def _raw_type(wire: FieldDescriptor) -> pa.DataType:
    if wire.is_repeated:
        if wire.message_type is not None:
            return pa.list_(pa.struct([(f.name, _raw_type(f)) for f in wire.message_type.fields]))
        return pa.list_(_scalar_raw_type(wire))
    return _scalar_raw_type(wire)


def _scalar_raw_type(wire: FieldDescriptor) -> pa.DataType:
    if wire.type in _INT64_KINDS:
        return pa.int64()
    return _RAW_TYPES[wire.type]


def _member_value(element: str, wire: FieldDescriptor, member: Column | None) -> str:
    """The expression reading one field of an element of a repeated message."""
    if wire.message_type is not None or wire.enum_type is not None:
        # Nothing needs them yet; their store types would need rules of their own.
        raise ValueError(f"{wire.full_name}: a repeated message's member is a message or enum")
    value = f"{element}.{wire.name}"
    if wire.is_repeated:
        return f"list({value})"
    if wire.has_presence:
        return f"({value} if {element}.HasField({wire.name!r}) else None)"
    if member is not None and member.empty_is_null:
        return f"({value} or None)"
    return value


def _compile_reader(table: str, columns: tuple[Column, ...]) -> Reader:
    """A function reading one result into a row, written out as Python source
    and compiled once (as `dataclasses` does): this is the only per-result
    Python of the ingest path, and a generic loop over the declaration costs
    several times the direct attribute reads. An optional field is read as
    `m.f if m.HasField("f") else None`, without a helper call per field."""
    lines: list[str] = []
    local = {"": "result"}  # a message's path: the variable holding it

    def message(path: str) -> str:
        if path not in local:
            parent, _, leaf = path.rpartition(".")
            holder = message(parent)
            local[path] = f"m{len(local)}"
            lines.append(f"    {local[path]} = {holder}.{leaf}")
        return local[path]

    present: dict[str, str] = {}  # a message's path: the variable saying it was sent

    def sent(path: str) -> str:
        if path not in present:
            outer, _, inner = path.rpartition(".")
            present[path] = f"p{len(present)}"
            lines.append(f"    {present[path]} = {message(outer)}.HasField({inner!r})")
        return present[path]

    values = ["index"]
    for column in columns:
        parent, _, leaf = column.path.rpartition(".")
        holder = message(parent)
        value = f"{holder}.{leaf}"
        wire = field_of(column.path)
        if wire.is_repeated and wire.message_type is not None:
            declared = {m.name: m for m in column.members}
            items = ", ".join(
                _member_value("e", f, declared.get(f.name)) for f in wire.message_type.fields
            )
            value = f"[({items},) for e in {value}]"
        elif wire.is_repeated:
            value = f"list({value})"
        elif wire.has_presence:
            value = f"({value} if {holder}.HasField({leaf!r}) else None)"
        if column.present_with:
            value = f"({value} if {sent(column.present_with)} else None)"
        values.append(value)
    source = "\n".join(["def read(index, result):", *lines, f"    return ({', '.join(values)},)"])
    namespace: dict[str, Reader] = {}
    exec(compile(source, f"<reader of the {table} table>", "exec"), namespace)
    return namespace["read"]


def result_table(name: str, body: tuple[Column, ...]) -> ResultTable:
    """The table of one result kind from its body's declaration; a path that
    names no field (KeyError) or a column declared twice (ValueError) is
    refused here, at import."""
    columns = (
        *ENVELOPE,
        *(replace(c, path=c.path or f"{name}.{c.name}") for c in body),
    )
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        raise ValueError(f"table {name} declares a column twice")
    for column in columns:
        if not all(part.isidentifier() for part in column.path.split(".")):
            raise ValueError(f"table {name}: {column.path!r} is not a field path")
        if column.at_most and column.at_most[0] not in names:
            raise ValueError(f"table {name}: {column.name} is bounded by an unknown column")
        if column.members:
            inner = field_of(column.path).message_type
            fields = set() if inner is None else set(inner.fields_by_name)
            unknown = [m.name for m in column.members if m.name not in fields]
            if unknown:
                raise KeyError(f"table {name}: {column.name} has no member {unknown}")
    wires = {c.name: field_of(c.path) for c in columns}
    paths = {c.name: c.path for c in columns}
    paths["measured_at"] = "envelope.measured_at"
    return ResultTable(
        name=name,
        columns=columns,
        read_names=("index", *names),
        read=_compile_reader(name, columns),
        raw_types=MappingProxyType(
            {"index": pa.int64(), **{n: _raw_type(w) for n, w in wires.items()}}
        ),
        enums=MappingProxyType(
            {
                n: MappingProxyType(enum_words(w.enum_type))
                for n, w in wires.items()
                if w.enum_type is not None
            }
        ),
        paths=MappingProxyType(paths),
        empty_is_null=frozenset(c.name for c in columns if c.empty_is_null),
        not_stored=frozenset({"index", *(c.name for c in columns if not c.stored)}),
    )


if set(BODIES) != set(RESULT_TABLES):
    raise RuntimeError(f"results.proto's body kinds {RESULT_TABLES} and BODIES disagree")
TABLES: Mapping[str, ResultTable] = MappingProxyType(
    {kind: result_table(kind, BODIES[kind]) for kind in RESULT_TABLES}
)
