"""The validity rule: what counts, what does not, and the SQL form agreeing with it."""

from __future__ import annotations

import duckdb
import pytest

from tests.wardprobe.threshold_rows import threshold_rows
from wardprobe import validity
from wardprobe.validity import (
    INVALID_PREFIX,
    MAX_MEASURED_S,
    MIN_BYTES_TRANSFERRED,
    MIN_MEASURED_S,
    StoredThroughput,
    Transfer,
    check_throughput,
    exclusion_reason,
    throughput_exclusion_sql,
)

CASES = [
    # (bytes, seconds, mbps, valid)
    (125_000_000, 10.0, 100.0, True),  # a 10 s test at 100 Mb/s
    (MIN_BYTES_TRANSFERRED - 1, 10.0, None, False),  # too little data
    (50_000_000, MIN_MEASURED_S - 0.1, None, False),  # cut short
    (12_500_000, 1.9998, 50.0, True),  # libiperf's 2-second test
    (10_000_000_000, MAX_MEASURED_S + 1, None, False),  # longer than any test we run
    (125_000_000, 10.0, 150.0, False),  # the rate is not what was moved
    (None, 10.0, None, False),
]


@pytest.mark.parametrize(("size", "seconds", "mbps", "valid"), CASES)
def test_rule(size: int | None, seconds: float, mbps: float | None, valid: bool) -> None:
    verdict = check_throughput(
        Transfer(tool="iperf3", bytes_transferred=size, measured_s=seconds, mbps=mbps)
    )
    assert verdict.valid is valid
    assert verdict.reason.startswith(INVALID_PREFIX) is (not valid)


def test_the_probe_refuses_a_transfer_longer_than_any_test() -> None:
    verdict = check_throughput(
        Transfer(tool="iperf3", bytes_transferred=10**9, measured_s=MAX_MEASURED_S + 1, mbps=None)
    )
    assert verdict.reason == f"{INVALID_PREFIX}measured over 131.0 s, longer than 130 s"


def _sql_reasons(rows: list[StoredThroughput]) -> list[str | None]:
    """throughput_exclusion_sql over the rows, in a table with the store's column types."""
    connection = duckdb.connect()
    connection.execute(
        "create table throughput (n integer, status varchar, clock_sync varchar, "
        "cross_traffic_bytes_per_s double, bytes_transferred ubigint, measured_s double, "
        "mbps double)"
    )
    connection.executemany(
        "insert into throughput values (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                n,
                r.status,
                r.clock_sync,
                r.cross_traffic_bytes_per_s,
                r.bytes_transferred,
                r.measured_s,
                r.mbps,
            )
            for n, r in enumerate(rows)
        ],
    )
    answers = connection.execute(
        f"select {throughput_exclusion_sql('t')} from throughput t order by n"
    ).fetchall()
    return [row[0] for row in answers]


def test_sql_form_agrees_with_the_python_rule_at_every_threshold() -> None:
    rows = threshold_rows()
    expected = [exclusion_reason(r) for r in rows]
    # the rows reach every part of the rule, each threshold from both sides
    assert {
        None,
        "status failed",
        validity.CLOCK_NOT_SYNCHRONISED,
        validity.CROSS_TRAFFIC,
        validity.FIGURES_MISSING,
        validity.TOO_LITTLE_DATA,
        validity.TOO_SHORT,
        validity.TOO_LONG,
        validity.RATE_DISAGREES,
    } <= set(expected)
    assert _sql_reasons(rows) == expected


def test_the_stored_rule_is_the_probe_rule_after_status_clock_and_cross_traffic() -> None:
    for row in threshold_rows():
        if row.status != "ok" or row.clock_sync != "synchronised" or row.mbps is None:
            continue
        if validity.cross_traffic_flagged(row.cross_traffic_bytes_per_s):
            continue
        verdict = check_throughput(
            Transfer(
                tool="iperf3",
                bytes_transferred=row.bytes_transferred,
                measured_s=row.measured_s,
                mbps=row.mbps,
            )
        )
        assert verdict.valid is (exclusion_reason(row) is None), row


def test_cross_traffic_at_the_limit_counts_and_above_it_does_not() -> None:
    limit = validity.MAX_CROSS_TRAFFIC_BYTES_PER_S
    assert not validity.cross_traffic_flagged(None)
    assert not validity.cross_traffic_flagged(limit)
    assert validity.cross_traffic_flagged(limit + 1)


def test_a_change_to_a_threshold_reaches_the_sql(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SQL is made from the constants when asked for, not written once."""
    monkeypatch.setattr(validity, "MAX_MEASURED_S", 60.0)
    row = StoredThroughput(
        status="ok",
        clock_sync="synchronised",
        cross_traffic_bytes_per_s=None,
        bytes_transferred=750_000_000,
        measured_s=100.0,
        mbps=60.0,
    )
    assert exclusion_reason(row) == validity.TOO_LONG
    assert _sql_reasons([row]) == [validity.TOO_LONG]
