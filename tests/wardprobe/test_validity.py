"""The validity rule: what counts, what does not, and the SQL form agreeing with it."""

from __future__ import annotations

import duckdb
import pytest

from wardprobe.validity import (
    INVALID_PREFIX,
    MAX_MEASURED_S,
    MIN_BYTES_TRANSFERRED,
    MIN_MEASURED_S,
    THROUGHPUT_RULE_SQL,
    Transfer,
    check_throughput,
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


def test_sql_form_agrees_with_the_python_rule() -> None:
    connection = duckdb.connect()
    connection.execute("create table t (bytes_transferred ubigint, measured_s double, mbps double)")
    connection.executemany("insert into t values (?, ?, ?)", [c[:3] for c in CASES])
    answers = connection.execute(
        f"select {THROUGHPUT_RULE_SQL} is null from t order by rowid"
    ).fetchall()
    assert [row[0] for row in answers] == [case[3] for case in CASES]
