"""The store opens a file made by an older release and brings it up to the
current schema without changing what it holds; the registry's probes (their
fixed-line ISP too) are mirrored into it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from aggregator.central import Aggregator
from aggregator.config import AggregatorConfig
from aggregator.enrolment.ca import init_ca
from aggregator.enrolment.registry import SiteClass
from aggregator.ingest.store import ROW_GROUP_ROWS, ProbeRow, Store, id_ranges, uuid7_millis


def test_an_older_store_gains_the_new_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as old:
        # The first release's throughput table: no line context, no synthetic marker.
        old.execute(
            """
            create table throughput (
                result_id uuid primary key, probe_id varchar not null,
                ward_code integer not null, measured_at timestamptz not null,
                received_at timestamptz not null, agent_version varchar, interface varchar,
                network_kind varchar not null, ip_family varchar, clock_sync varchar not null,
                tool varchar, tool_version varchar, server varchar, server_port integer,
                duration_s double, streams integer, status varchar not null,
                status_reason varchar, direction varchar not null, mbps double,
                bytes_transferred ubigint, measured_s double, retransmits integer,
                omitted_s double
            )
            """
        )
        old.execute(
            "insert into throughput (result_id, probe_id, ward_code, measured_at, received_at,"
            " network_kind, clock_sync, status, direction, mbps) values"
            " ('01900000-0000-7000-8000-000000000001', 'wp-1', 31135, now(), now(),"
            " 'fixed', 'synchronised', 'ok', 'download', 93.5)"
        )

    store = Store(path)

    columns = {r[0] for r in store.query("describe throughput")}
    assert {"link_speed_mbps", "access_tech", "synthetic", "status_reason_kind"} <= columns
    assert store.query(
        "select probe_id, mbps, synthetic, link_speed_mbps, status_reason_kind from throughput"
    ) == [("wp-1", 93.5, False, None, None)]
    store.close()


_ID_A = "01900000-0000-7000-8000-00000000000a"
_ID_B = "01900000-0000-7000-8000-00000000000b"


def _rows(table: str, *ids: str) -> pa.Table:
    """Result rows with only the columns that must be set."""
    now = datetime(2026, 5, 1, 3, 0, tzinfo=UTC)
    kind = {"throughput": ("direction", "download"), "latency": ("protocol", "icmp")}[table]
    return pa.table(
        {
            "result_id": list(ids),
            "probe_id": ["wp-1"] * len(ids),
            "ward_code": [31135] * len(ids),
            "measured_at": [now] * len(ids),
            "received_at": [now] * len(ids),
            "network_kind": ["fixed"] * len(ids),
            "clock_sync": ["synchronised"] * len(ids),
            "status": ["ok"] * len(ids),
            kind[0]: [kind[1]] * len(ids),
        }
    )


def test_a_result_id_is_stored_once_whatever_table_it_names(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.duckdb")

    stored = store.insert_new_results(
        {"throughput": _rows("throughput", _ID_A, _ID_B), "latency": _rows("latency", _ID_A)}
    )
    again = store.insert_results("latency", _rows("latency", _ID_B))

    assert {t: m.tolist() for t, m in stored.items()} == {
        "throughput": [True, True],
        "latency": [False],
    }
    assert len(again) == 0
    assert (store.count("throughput"), store.count("latency")) == (2, 0)
    assert store.query("select result_table, count(*) from result_ids group by all") == [
        ("throughput", 2)
    ]
    store.close()


def test_an_older_store_enters_the_ids_it_holds_so_they_stay_one_result(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    Store(path).close()
    with duckdb.connect(str(path)) as old:
        # As a release before result_ids stored them: one id in two tables.
        old.execute("drop table result_ids")
        for table, result_id in (("throughput", _ID_A), ("latency", _ID_A), ("latency", _ID_B)):
            rows = _rows(table, result_id)  # noqa: F841 (read by the query below)
            old.execute(f"insert into {table} by name select * from rows")

    store = Store(path)

    assert store.query("select result_id::varchar, result_table from result_ids order by 1") == [
        (_ID_A, "throughput"),
        (_ID_B, "latency"),
    ]
    assert len(store.insert_results("throughput", _rows("throughput", _ID_B))) == 0
    assert store.count("throughput") == 1
    store.close()


def test_an_older_probes_table_gains_the_isp_and_plan_and_takes_the_registry_mirror(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as old:
        # The probes table before the fixed line's ISP was recorded.
        old.execute(
            """
            create table probes (
                probe_id varchar primary key, ward_code integer not null, ward_name varchar,
                site_class varchar not null, hostname varchar, agent_version varchar,
                enrolled_at timestamptz not null, cert_serial varchar,
                cert_not_after timestamptz, cert_state varchar not null, revoked_at timestamptz
            )
            """
        )
        old.execute(
            "insert into probes (probe_id, ward_code, site_class, enrolled_at, cert_state)"
            " values ('wp-1', 31135, 'household', now(), 'active')"
        )

    store = Store(path)
    assert [r[0] for r in store.query("describe probes")][-3:] == [
        "isp",
        "plan_down_mbps",
        "plan_up_mbps",
    ]
    assert store.query("select probe_id, isp, plan_down_mbps from probes") == [("wp-1", None, None)]
    enrolled = datetime(2026, 3, 2, 8, tzinfo=UTC)
    store.replace_probes(
        [
            ProbeRow(
                "wp-1",
                31135,
                None,
                "household",
                None,
                None,
                enrolled,
                None,
                None,
                "active",
                None,
                "VNPT",
                300.0,
                100.0,
            ),
            ProbeRow(
                "wp-2", 31135, None, "school", None, None, enrolled, None, None, "active", None
            ),
        ]
    )
    assert store.query(
        "select probe_id, site_class, isp, plan_down_mbps, plan_up_mbps from probes order by 1"
    ) == [
        ("wp-1", "household", "VNPT", 300.0, 100.0),
        ("wp-2", "school", None, None, None),
    ]
    store.close()


def test_the_aggregator_mirrors_the_registrys_isp_into_the_store(tmp_path: Path) -> None:
    state = tmp_path / "aggregator"
    authority = init_ca(state, ["localhost"])
    config = AggregatorConfig(
        state_dir=state,
        store_path=state / "wardprobe.duckdb",
        ingest_listen="127.0.0.1:0",
        enrol_listen="127.0.0.1:0",
        ingest_public_address="127.0.0.1:1",
    )
    aggregator = Aggregator(config)
    try:
        registry = aggregator.registry
        token = registry.create_token(
            31135, SiteClass.HOUSEHOLD, timedelta(days=1), authority.pin, isp="fpt telecom"
        )
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "box")]))
            .sign(key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM)
        )
        probe_id = registry.new_probe_id()
        issued = authority.sign_probe_csr(csr, probe_id)
        registry.record_probe(
            probe_id,
            registry.redeem_token(token),
            "pi",
            "0.1.0",
            issued.serial_hex,
            issued.not_after,
        )
        aggregator.sync_probes()
        assert aggregator.store.query("select probe_id, isp from probes") == [
            (probe_id, "FPT Telecom")
        ]
        # the household's ISP is corrected: the next sync carries it
        registry.set_probe_isp(probe_id, "SCTV")
        aggregator.sync_probes()
        assert aggregator.store.query("select isp from probes") == [("SCTV",)]
    finally:
        aggregator.readers.shutdown()
        aggregator.store.close()


def _v7(at: datetime, serial: int) -> str:
    """A UUIDv7 whose time is `at` (its first 48 bits, unix ms)."""
    stamp = f"{int(at.timestamp() * 1000):012x}"
    return f"{stamp[:8]}-{stamp[8:]}-7000-8000-{serial:012x}"


def _timed_rows(ids: list[str], at: datetime) -> pa.Table:
    """Throughput rows measured at `at`."""
    return _rows("throughput", *ids).set_column(
        3, "measured_at", pa.array([at] * len(ids), pa.timestamp("us", "UTC"))
    )


_NOW = datetime(2026, 5, 1, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize("age", [timedelta(days=1), timedelta(days=7), timedelta(days=31)])
def test_a_result_sent_again_a_day_a_week_or_a_month_later_is_stored_once(
    tmp_path: Path, age: timedelta
) -> None:
    store = Store(tmp_path / "store.duckdb")
    then = _NOW - age
    resent = _v7(then, 1)
    store.insert_new_results({"throughput": _timed_rows([resent, _v7(then, 2)], then)})
    # Every day between then and now: a group of that day's results, one an hour.
    day, serial = then, 10
    while day < _NOW:
        hours = [day + timedelta(hours=h) for h in range(24)]
        ids = [_v7(hour, serial + h) for h, hour in enumerate(hours)]
        store.insert_new_results({"throughput": _timed_rows(ids, day)})
        day, serial = day + timedelta(days=1), serial + 24
    fresh = [_v7(_NOW, n) for n in range(100_000, 100_005)]

    # The old result arrives again in a group of today's, and once more alone.
    mixed = store.insert_new_results({"throughput": _timed_rows([*fresh, resent], _NOW)})
    alone = store.insert_new_results({"throughput": _timed_rows([resent], then)})

    assert mixed["throughput"].tolist() == [True] * 5 + [False]
    assert alone["throughput"].tolist() == [False]
    assert store.query("select count(*) from throughput where result_id = ?", [resent]) == [(1,)]
    assert store.query("select count(*) from result_ids where result_id = ?", [resent]) == [(1,)]
    assert store.count("throughput") == store.count("result_ids") == 2 + (serial - 10) + 5
    store.close()


def test_ids_spread_over_more_times_than_ranges_are_each_found(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.duckdb")
    # 40 results, a day apart each: more separate times than one lookup has ranges.
    days = [_NOW - timedelta(days=d) for d in range(40)]
    old = [_v7(day, d) for d, day in enumerate(days)]
    store.insert_new_results({"throughput": _timed_rows(old, _NOW)})
    fresh = [_v7(day, 1000 + d) for d, day in enumerate(days)]

    again = store.insert_new_results({"throughput": _timed_rows([*old, *fresh], _NOW)})

    assert len(id_ranges(pa.array(sorted(old)))) == 16
    assert again["throughput"].tolist() == [False] * 40 + [True] * 40
    assert store.count("result_ids") == 80
    store.close()


def test_an_id_whose_time_is_not_its_results_time_is_still_stored_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.duckdb")
    # A UUIDv7 of 2021 on a result of today, a random (v4) id, and one in capitals.
    bogus = ["0177a000-0000-7000-8000-000000000001"]
    not_v7 = ["6f1c2a4e-8b1d-4c3e-9f00-3a5b7c9d1e2f"]
    capitals = [_v7(_NOW, 700).upper()]
    ids = bogus + not_v7 + capitals
    store.insert_new_results({"throughput": _timed_rows(ids, _NOW)})
    store.insert_new_results({"throughput": _timed_rows([_v7(_NOW, n) for n in range(20)], _NOW)})

    again = store.insert_new_results(
        {"throughput": _timed_rows([_v7(_NOW, 99), *bogus, *not_v7, capitals[0].lower()], _NOW)}
    )

    assert again["throughput"].tolist() == [True, False, False, False]
    assert store.count("throughput") == store.count("result_ids") == 24
    store.close()


def test_id_ranges_cover_every_id_and_split_at_the_gaps() -> None:
    hours = [
        _NOW,
        _NOW + timedelta(minutes=30),
        _NOW + timedelta(days=2),
        _NOW + timedelta(days=30),
    ]
    ids = sorted(_v7(at, n) for n, at in enumerate(hours))

    ranges = id_ranges(pa.array(ids))

    # the first two are half an hour apart: one range; the others alone
    assert ranges == [(ids[0], ids[1]), (ids[2], ids[2]), (ids[3], ids[3])]
    assert uuid7_millis(pa.array(ids[:1])).tolist() == [int(_NOW.timestamp() * 1000)]


def test_a_store_with_keyed_tables_loses_the_keys_and_keeps_its_rows_and_ids(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.duckdb"
    Store(path).close()
    with duckdb.connect(str(path)) as old:
        # As the release before: a primary key on result_id in result_ids and
        # in every result table (here throughput's and result_ids').
        for table in ("throughput", "result_ids"):
            ddl = old.execute(
                "select sql from duckdb_tables() where table_name = ?", [table]
            ).fetchone()
            assert ddl is not None
            old.execute(f"drop table {table}")
            old.execute(ddl[0].replace("result_id UUID NOT NULL", "result_id UUID PRIMARY KEY"))
        stored = [_v7(_NOW - timedelta(days=d), d) for d in (3, 1, 2)]
        rows = _timed_rows(stored, _NOW)  # noqa: F841 (read by the queries below)
        old.execute("insert into throughput by name select * from rows")
        old.execute("insert into result_ids select result_id::uuid, 'throughput' from rows")
        assert old.execute(
            "select count(*) from duckdb_constraints() where constraint_type = 'PRIMARY KEY'"
            " and table_name in ('throughput', 'result_ids')"
        ).fetchone() == (2,)

    store = Store(path)

    assert store.query(
        "select count(*) from duckdb_constraints() where constraint_type = 'PRIMARY KEY'"
        " and table_name in ('throughput', 'result_ids')"
    ) == [(0,)]
    # the rows in their order (the snapshot follows rowids), the ids ordered
    assert store.query("select result_id::varchar from throughput order by rowid") == [
        (i,) for i in stored
    ]
    assert store.query("select result_id::varchar from result_ids order by rowid") == [
        (i,) for i in sorted(stored)
    ]
    again = store.insert_new_results({"throughput": _timed_rows([stored[1], _v7(_NOW, 9)], _NOW)})
    assert again["throughput"].tolist() == [False, True]
    assert store.count("throughput") == store.count("result_ids") == 4
    store.close()


def test_appended_rows_go_into_row_groups_of_the_stores_size_and_the_file_reads_plainly(
    tmp_path: Path,
) -> None:
    """A checkpoint rewrites the last row group whole: the store's row groups
    are ROW_GROUP_ROWS rows, and the file opens as any DuckDB file does."""
    path = tmp_path / "store.duckdb"
    store = Store(path)
    rows = 2 * ROW_GROUP_ROWS + 1000
    ids = [_v7(_NOW, n) for n in range(rows)]
    for start in range(0, rows, 20_000):
        store.insert_new_results({"throughput": _timed_rows(ids[start : start + 20_000], _NOW)})
    store.checkpoint()
    # the analysts' second connection finds the store's tables, not an empty database
    reader = store.reader()
    assert reader.execute("select count(*) from throughput").fetchone() == (rows,)
    reader.close()
    store.close()
    with duckdb.connect(str(path), read_only=True) as con:
        sizes = con.execute(
            "select row_group_id, max(count) from pragma_storage_info('throughput') "
            "group by all order by row_group_id"
        ).fetchall()
        assert con.execute("select count(*) from result_ids").fetchone() == (rows,)
    # DuckDB's own size would hold all of them in one row group
    assert max(size for _, size in sizes) == ROW_GROUP_ROWS
    assert sum(size for _, size in sizes) == rows and len(sizes) >= 3
    assert not (tmp_path / ".tmp").exists()  # nothing spilled beside the working directory
