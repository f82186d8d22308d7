"""Traceroute, path-MTU and DNS results through ingest: their lists (hops,
Packet Too Big messages, queries) are stored as lists an analyst can unnest,
and a bad value inside one refuses its result by the member's path, while
the rest of the batch is stored."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.clock import ClockState
from agent.measurements.base import IpFamily, Method, Status
from agent.measurements.dns_resolution import DnsQuery, DnsResult
from agent.measurements.ipv6_pmtu import Ipv6PmtuResult, PacketTooBig
from agent.measurements.traceroute import TracerouteHop, TracerouteResult
from agent.wire import ProbeContext, to_proto
from aggregator.enrolment.registry import ProbeIdentity, SiteClass
from aggregator.ingest.batch_reader import IngestLimits, read_batch
from aggregator.ingest.commit import BatchConverter, ReadBatch
from aggregator.ingest.store import Store
from aggregator.ingest.tables import RESULT_TABLES
from analysis.wards import can_tho_wards
from tests.integration.conftest import NINH_KIEU
from wardprobe.v1 import ingest_pb2, results_pb2

PROBE = ProbeContext(probe_id="wp-1", ward_code=0, agent_version="0.1.0", network_kind="fixed")
AT = datetime.now(UTC)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store.duckdb")


def _ingest(store: Store, results: list[results_pb2.Result]) -> list[ingest_pb2.Rejection]:
    limits = IngestLimits()
    converter = BatchConverter(
        {t: store.arrow_schema(t) for t in RESULT_TABLES}, frozenset(can_tho_wards()), limits
    )
    raw = ingest_pb2.ResultBatch(sequence=1, results=results).SerializeToString()
    outcome = read_batch(raw, limits)
    assert outcome.error is None
    probe = ProbeIdentity("wp-1", NINH_KIEU, SiteClass.HOUSEHOLD)
    checked = converter.check([ReadBatch.from_outcome(outcome, probe, datetime.now(UTC))])
    for table, rows in checked.tables.items():
        store.insert_results(table, rows)
    return checked.rejections[0]


def _trace(*hops: TracerouteHop) -> results_pb2.Result:
    result = TracerouteResult(
        measured_at=AT, status=Status.OK, method=Method(tool="scapy-paris-traceroute-icmp"),
        ip_family=IpFamily.IPV4, protocol="icmp", target="198.18.0.1", reached=True,
        stop_reason="reached", hop_count=3, home_rtt_ms=0.5, access_rtt_ms=9.0,
        target_rtt_ms=12.0, hops=hops,
    )  # fmt: skip
    return to_proto("traceroute", result, PROBE, ClockState.SYNCHRONISED)


def test_the_three_kinds_are_stored_with_their_lists(store: Store) -> None:
    trace = _trace(
        TracerouteHop(hop=1, address="198.18.2.0/24", rtts_ms=(0.4, 0.6), probes_sent=3,
                      loss_pct=100 / 3, icmp_type=11, icmp_code=0, reply_ttl=64, segment="home"),
        TracerouteHop(hop=2, probes_sent=3, loss_pct=100.0),
        TracerouteHop(hop=3, address="198.18.0.1", rtts_ms=(12.0,), probes_sent=3,
                      loss_pct=200 / 3, icmp_type=0, icmp_code=0, segment="destination"),
    )  # fmt: skip
    pmtu = to_proto(
        "ipv6_pmtu",
        Ipv6PmtuResult(
            measured_at=AT, status=Status.OK, method=Method(tool="scapy-icmpv6-pmtu"),
            target="fd00:5752::1", interface_mtu=1500, path_mtu=1400, ptb_received=True,
            pmtu_blackhole=False, smallest_lost_bytes=1401, probes_sent=3,
            ptb_messages=(PacketTooBig(mtu_bytes=1400, sender="fd00:5752:3::1",
                                       probe_bytes=1500),),
        ),
        PROBE,
        ClockState.SYNCHRONISED,
    )  # fmt: skip
    dns = to_proto(
        "dns",
        DnsResult(
            measured_at=AT, status=Status.OK, method=Method(tool="dnspython"),
            resolver="198.18.0.1", resolver_kind="configured", resolver_port=53,
            queries_sent=2, queries_failed=1, failure_pct=50.0, time_median_ms=0.8,
            queries=(
                DnsQuery(hostname="ds.ref.wardprobe.test", rdtype="A", rcode="NOERROR",
                         answers=("198.18.0.1",), time_ms=0.8, transport="udp"),
                DnsQuery(hostname="gone.wardprobe.test", rdtype="A", rcode="NXDOMAIN",
                         time_ms=0.7, transport="udp", failed=True),
            ),
        ),
        PROBE,
        ClockState.SYNCHRONISED,
    )  # fmt: skip

    assert _ingest(store, [trace, pmtu, dns]) == []

    hops = store.query(
        "select h.hop, h.address, h.rtts_ms, h.segment, h.icmp_type "
        "from traceroute, unnest(hops) as u(h) order by h.hop"
    )
    assert hops == [
        (1, "198.18.2.0/24", [0.4, 0.6], "home", 11),
        (2, None, [], None, None),  # silent: no address, no segment
        (3, "198.18.0.1", [12.0], "destination", 0),
    ]
    assert store.query("select ptb_messages, path_mtu from ipv6_pmtu") == [
        ([{"mtu_bytes": 1400, "sender": "fd00:5752:3::1", "probe_bytes": 1500}], 1400)
    ]
    assert store.query(
        "select q.hostname, q.rcode, q.answers, q.failed, q.reason "
        "from dns, unnest(queries) as u(q) order by q.hostname"
    ) == [
        ("ds.ref.wardprobe.test", "NOERROR", ["198.18.0.1"], False, None),
        ("gone.wardprobe.test", "NXDOMAIN", [], True, None),
    ]


@pytest.mark.parametrize(
    ("hop", "path", "reason"),
    [
        (TracerouteHop(hop=1, probes_sent=3, loss_pct=150.0), "hops.loss_pct", "150.0 is outside"),
        (TracerouteHop(hop=1, rtts_ms=(1.0, math.nan), probes_sent=3), "hops.rtts_ms",
         "nan is not a number"),
        (TracerouteHop(hop=1, rtts_ms=(-2.0,), probes_sent=3), "hops.rtts_ms", "-2.0 is outside"),
        (TracerouteHop(hop=300, probes_sent=3), "hops.hop", "300 is outside [1, 255]"),
    ],
)  # fmt: skip
def test_a_bad_value_inside_a_list_refuses_its_result_only(
    store: Store, hop: TracerouteHop, path: str, reason: str
) -> None:
    good = _trace(TracerouteHop(hop=1, address="198.18.0.1", rtts_ms=(1.0,), probes_sent=1))

    (refused,) = _ingest(store, [_trace(hop), good])

    violation = refused.bad_request.field_violations[0]
    assert (refused.index, violation.field) == (0, f"results[0].traceroute.{path}")
    assert reason in violation.description
    assert store.query("select count(*) from traceroute") == [(1,)]


def test_a_control_character_inside_a_list_is_refused(store: Store) -> None:
    # The agent flattens its texts (agent/wire.py); a probe that does not is refused.
    message = _trace(TracerouteHop(hop=1, address="198.18.2.1", probes_sent=3))
    message.traceroute.hops[0].address = "198.18.2.1\x1b[2J"

    (refused,) = _ingest(store, [message])

    violation = refused.bad_request.field_violations[0]
    assert violation.field == "results[0].traceroute.hops.address"
    assert violation.description == "holds the control character U+001B at position 10"


def test_a_list_longer_than_allowed_is_refused(store: Store) -> None:
    hops = tuple(TracerouteHop(hop=1, probes_sent=1) for _ in range(256))
    (refused,) = _ingest(store, [_trace(*hops)])
    violation = refused.bad_request.field_violations[0]
    assert (violation.field, violation.description) == (
        "results[0].traceroute.hops", "holds more than 255 items",
    )  # fmt: skip


def test_the_snapshot_carries_the_path_tables_and_their_views(store: Store, tmp_path: Path) -> None:
    import duckdb

    from aggregator.ingest.snapshot import publish_snapshot

    hop = TracerouteHop(hop=1, address="198.18.0.1", rtts_ms=(1.0,), probes_sent=1,
                        segment="destination")  # fmt: skip
    assert _ingest(store, [_trace(hop)]) == []

    snapshot = tmp_path / "snapshot.duckdb"
    publish_snapshot(store, snapshot)

    with duckdb.connect(str(snapshot), read_only=True) as con:
        assert con.execute("select hops[1].address from traceroute").fetchall() == [("198.18.0.1",)]
        for view in ("latency_segments", "pmtu_by_isp", "dns_by_ward"):
            con.execute(f"select * from {view}").fetchall()
