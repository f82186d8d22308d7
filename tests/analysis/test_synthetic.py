"""The synthetic generator (analysis/synthetic.py) keeps the store's one key
over all results: each synthetic result's id is in `result_ids`, under its
table, and a generation is written whole or not at all."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from aggregator.ingest.store import Store
from analysis.synthetic import SyntheticSpec, WardSpec, generate

_TABLES = ("throughput", "latency", "cellular", "ipv6")


def _spec(throughput_rows: int = 60) -> SyntheticSpec:
    return SyntheticSpec(
        wards=(WardSpec(31135, fixed_probes=2, mobile_probes=2),),
        start=datetime(2026, 3, 1, tzinfo=UTC),
        end=datetime(2026, 4, 1, tzinfo=UTC),
        throughput_rows=throughput_rows,
        latency_rows=60,
        cellular_rows=30,
        ipv6_rows=20,
    )


def _counts(store: Store) -> dict[str, int]:
    return {table: store.count(table) for table in (*_TABLES, "result_ids", "probes")}


def test_every_synthetic_result_has_its_own_id_in_result_ids(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.duckdb")

    generate(store._con, _spec())

    union = " union all ".join(f"select result_id, '{t}' as result_table from {t}" for t in _TABLES)
    assert store.query(f"select count(*), count(distinct result_id) from ({union})") == [(170, 170)]
    assert store.query("select result_table, count(*) from result_ids group by all order by 1") == [
        ("cellular", 30),
        ("ipv6", 20),
        ("latency", 60),
        ("throughput", 60),
    ]
    # each id under the table that holds it, and no other id
    assert store.query(f"select count(*) from ({union}) natural join result_ids") == [(170,)]
    store.close()


def test_a_generation_that_fails_midway_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.duckdb")
    generate(store._con, _spec(throughput_rows=0))
    before = _counts(store)

    # The same spec with throughput rows: those are new, then its latency
    # rows' ids are stored already.
    with pytest.raises(duckdb.ConstraintException):
        generate(store._con, _spec(throughput_rows=60))

    assert _counts(store) == before
    assert before["throughput"] == 0
    store.close()
