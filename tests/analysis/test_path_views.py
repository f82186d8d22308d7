"""The path views (latency_segments, pmtu_by_isp, dns_by_ward) on hand-made
traceroute, path-MTU and DNS results: docs/schema.md's three questions on
them ("```sql path") give the answers worked out here by hand."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from aggregator.ingest.store import Store
from analysis.indicators import install_views

DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"
AT = datetime(2026, 7, 1, 3, 0, tzinfo=UTC)
NINH_KIEU, CAI_KHE = 31135, 31120


def _questions() -> list[str]:
    return re.findall(r"```sql path\n(.*?)```", DOC.read_text("utf-8"), flags=re.DOTALL)


def _probe(con: duckdb.DuckDBPyConnection, probe_id: str, ward: int, isp: str) -> None:
    con.execute(
        "insert into probes (probe_id, ward_code, site_class, enrolled_at, cert_state, isp) "
        "values (?, ?, 'household', ?, 'active', ?)",
        [probe_id, ward, AT, isp],
    )


_ENVELOPE = (
    "uuid() as result_id, ? as probe_id, ? as ward_code, ?::timestamptz as measured_at, "
    "now() as received_at, 'fixed' as network_kind, ? as clock_sync, ? as status, "
    "false as synthetic"
)


def _trace(
    con: duckdb.DuckDBPyConnection,
    probe_id: str,
    ward: int,
    rtts: tuple[float, float, float],
    *,
    reached: bool = True,
    clock: str = "synchronised",
) -> None:
    home, access, target = rtts
    con.execute(
        f"insert into traceroute by name select {_ENVELOPE}, 'icmp' as protocol, "
        "'ipv4' as ip_family, ? as reached, ? as home_rtt_ms, ? as access_rtt_ms, "
        "? as target_rtt_ms",
        [probe_id, ward, AT, clock, "ok", reached, home, access, target],
    )


def _pmtu(
    con: duckdb.DuckDBPyConnection, probe_id: str, mtu: int, *, hole: bool, ptb: bool
) -> None:
    con.execute(
        f"insert into ipv6_pmtu by name select {_ENVELOPE}, 'ipv6' as ip_family, "
        "? as path_mtu, ? as pmtu_blackhole, ? as ptb_received",
        [probe_id, 0, AT, "synchronised", "ok", mtu, hole, ptb],
    )


def _dns(
    con: duckdb.DuckDBPyConnection,
    probe_id: str,
    ward: int,
    sent: int,
    failed: int,
    median_ms: float | None,
    *,
    status: str = "ok",
) -> None:
    con.execute(
        f"insert into dns by name select {_ENVELOPE}, 'system' as resolver_kind, "
        "? as queries_sent, ? as queries_failed, ? as time_median_ms",
        [probe_id, ward, AT, "synchronised", status, sent, failed, median_ms],
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    path = tmp_path_factory.mktemp("paths") / "store.duckdb"
    Store(path).close()
    with duckdb.connect(str(path)) as con:
        _probe(con, "a", NINH_KIEU, "VNPT")
        _probe(con, "b", NINH_KIEU, "VNPT")
        _probe(con, "c", CAI_KHE, "Viettel")
        # Probe a's medians: home 2, access 10, beyond 20, total 32 ms.
        _trace(con, "a", NINH_KIEU, (1.0, 11.0, 31.0))
        _trace(con, "a", NINH_KIEU, (3.0, 13.0, 33.0))
        _trace(con, "a", NINH_KIEU, (1.0, 500.0, 900.0), clock="unsynchronised")  # not counted
        _trace(con, "a", NINH_KIEU, (1.0, 500.0, 900.0), reached=False)  # not counted
        _trace(con, "b", NINH_KIEU, (1.0, 21.0, 41.0))  # 1, 20, 20, 41
        _trace(con, "c", CAI_KHE, (1.0, 5.0, 25.0))  # 1, 4, 20, 25
        _pmtu(con, "a", 1400, hole=True, ptb=False)
        _pmtu(con, "a", 1400, hole=True, ptb=False)
        _pmtu(con, "b", 1500, hole=False, ptb=False)
        _pmtu(con, "c", 1400, hole=False, ptb=True)
        _dns(con, "a", NINH_KIEU, 4, 1, 10.0)
        _dns(con, "a", NINH_KIEU, 4, 0, 20.0)
        _dns(con, "b", NINH_KIEU, 4, 4, None, status="failed")  # its resolver never answered
        _dns(con, "c", CAI_KHE, 4, 0, 5.0)
        install_views(con, temporary=False)
        yield con


def test_there_are_three_path_questions() -> None:
    assert len(_questions()) == 3


def test_latency_is_split_into_home_access_and_beyond(store: duckdb.DuckDBPyConnection) -> None:
    rows = store.execute(_questions()[0]).fetchall()
    assert rows == [
        # medians across the probes a (2, 10, 20, 32) and b (1, 20, 20, 41)
        (NINH_KIEU, "VNPT", 2, 1.5, 15.0, 20.0, 36.5),
        (CAI_KHE, "Viettel", 1, 1.0, 4.0, 20.0, 25.0),
    ]


def test_path_mtu_and_black_holes_per_isp(store: duckdb.DuckDBPyConnection) -> None:
    rows = store.execute(_questions()[1]).fetchall()
    assert rows == [
        # a is behind a black hole at 1400 bytes, b passes 1500
        ("fixed", "VNPT", 2, 1450.0, 1400, 0.5),
        ("fixed", "Viettel", 1, 1400.0, 1400, 0.0),
    ]
    ptb = store.execute("select isp, ptb_share from pmtu_by_isp order by isp").fetchall()
    assert ptb == [("VNPT", 0.0), ("Viettel", 1.0)]


def test_dns_failures_and_resolution_time_per_ward(store: duckdb.DuckDBPyConnection) -> None:
    rows = store.execute(_questions()[2]).fetchall()
    assert rows == [
        # 1 + 0 + 4 of 12 queries failed; b's resolver never answered (no time)
        (NINH_KIEU, "fixed", 2, 12, pytest.approx(5 / 12), 15.0),
        (CAI_KHE, "fixed", 1, 4, 0.0, 5.0),
    ]
