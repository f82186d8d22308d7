"""The store opens a file made by an older release and brings it up to the
current schema without changing what it holds."""

from __future__ import annotations

from pathlib import Path

import duckdb

from aggregator.store import Store


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
    assert {"link_speed_mbps", "access_tech", "synthetic"} <= columns
    assert store.query("select probe_id, mbps, synthetic, link_speed_mbps from throughput") == [
        ("wp-1", 93.5, False, None)
    ]
    store.close()
