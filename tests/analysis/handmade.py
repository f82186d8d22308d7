"""Hand-made results in a store, for tests that need exact rows (a
threshold, an observation's time) rather than the synthetic generator's."""

from __future__ import annotations

from datetime import datetime

import duckdb

from wardprobe.validity import StoredThroughput


def add_probe(
    con: duckdb.DuckDBPyConnection, probe_id: str, ward_code: int, enrolled_at: datetime
) -> None:
    """Register a probe the way enrolment leaves it (residential site, active)."""
    con.execute(
        "insert into probes (probe_id, ward_code, site_class, enrolled_at, cert_state) "
        "values (?, ?, 'residential', ?, 'active')",
        [probe_id, ward_code, enrolled_at],
    )


def add_throughput(
    con: duckdb.DuckDBPyConnection,
    probe_id: str,
    ward_code: int,
    at: datetime,
    test: StoredThroughput,
    *,
    direction: str = "download",
) -> None:
    """Store one fixed-line throughput test with the rule's columns of `test`."""
    con.execute(
        "insert into throughput by name select uuid() as result_id, ? as probe_id, "
        "? as ward_code, ?::timestamptz as measured_at, now() as received_at, "
        "'fixed' as network_kind, ? as clock_sync, ? as status, ? as direction, "
        "? as mbps, ?::ubigint as bytes_transferred, ? as measured_s, "
        "? as cross_traffic_bytes_per_s, false as synthetic",
        [
            probe_id,
            ward_code,
            at,
            test.clock_sync,
            test.status,
            direction,
            test.mbps,
            test.bytes_transferred,
            test.measured_s,
            test.cross_traffic_bytes_per_s,
        ],
    )


# Vietnam's mobile networks by name, as the operator table codes them.
MCC_MNC = {"Viettel": "45204", "VNPT": "45202", "MobiFone": "45201"}


def add_observation(
    con: duckdb.DuckDBPyConnection,
    probe_id: str,
    ward_code: int,
    at: datetime,
    access_tech: str,
    *,
    operator: str = "Viettel",
) -> None:
    """Store one valid radio observation of a 5G-capable modem (on Viettel unless told)."""
    con.execute(
        "insert into cellular by name select uuid() as result_id, ? as probe_id, "
        "? as ward_code, ?::timestamptz as measured_at, now() as received_at, "
        "'mobile' as network_kind, 'synchronised' as clock_sync, 'ok' as status, "
        "? as access_tech, ? as operator_name, ? as mcc_mnc, "
        "'1a2b' as cell_id, true as modem_5g_capable, false as synthetic",
        [probe_id, ward_code, at, access_tech, operator, MCC_MNC[operator]],
    )
