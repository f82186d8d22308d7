"""What the aggregator's tests on a lake share: a small synthetic city in an
embedded store (the lake tests copy it into a lake with tests/conftest.py's
lake_copy), and a comparison of answers that allows the lake's float sums."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.ingest.store import Store
from analysis.synthetic import SyntheticSpec, WardSpec, generate


@pytest.fixture(scope="session")
def small_city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic city in an embedded store: three wards, two months of
    2026; its IPv6 checks marked as the probes' own results (summary counts
    only those), the rest synthetic."""
    path = tmp_path_factory.mktemp("city") / "city.duckdb"
    store = Store(path)
    generate(
        store._con,
        SyntheticSpec(
            wards=tuple(
                WardSpec(code, fixed_probes=3, mobile_probes=3) for code in (31117, 31120, 31123)
            ),
            start=datetime(2026, 1, 1, tzinfo=UTC),
            end=datetime(2026, 3, 1, tzinfo=UTC),
            throughput_rows=600,
            latency_rows=300,
            cellular_rows=300,
            ipv6_rows=90,
        ),
    )
    store._con.execute("update ipv6 set synthetic = false")
    store.close()
    return path


def assert_close(got: object, expected: object, where: str = "") -> None:
    """Equal, floats to 1e-9 (the lake sums its rows in another order)."""
    if isinstance(got, float) and isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12), where
    elif isinstance(got, dict) and isinstance(expected, dict):
        assert got.keys() == expected.keys(), where
        for key in got:
            assert_close(got[key], expected[key], f"{where}.{key}")
    elif isinstance(got, list) and isinstance(expected, list):
        assert len(got) == len(expected), where
        for n, (a, b) in enumerate(zip(got, expected, strict=True)):
            assert_close(a, b, f"{where}[{n}]")
    else:
        assert got == expected, where
