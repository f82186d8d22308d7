"""The kind of a result's status reason reaches the store as a word an analyst
can group by; a number outside the proto's enum is refused by field, and a
result from an agent older than the field stores NULL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.enrolment.registry import ProbeIdentity, SiteClass
from aggregator.ingest.batch_reader import IngestLimits, read_batch
from aggregator.ingest.commit import BatchConverter, ReadBatch
from aggregator.ingest.store import Store
from aggregator.ingest.tables import RESULT_TABLES
from analysis.wards import can_tho_wards
from tests.integration.conftest import NINH_KIEU, throughput_result
from wardprobe.v1 import ingest_pb2, results_pb2


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


def _with_kind(kind: int, status: int, reason: str) -> results_pb2.Result:
    message = throughput_result(mbps=42.0)
    message.envelope.status = status  # type: ignore[assignment]
    message.envelope.status_reason = reason
    message.envelope.status_reason_kind = kind  # type: ignore[assignment]
    return message


def test_the_kind_is_stored_as_a_word(store: Store) -> None:
    results = [
        _with_kind(results_pb2.REASON_KIND_NONE, results_pb2.STATUS_OK, ""),
        _with_kind(
            results_pb2.REASON_KIND_DEFERRED,
            results_pb2.STATUS_SKIPPED,
            "deferred: cross-traffic of 90,000 B/s on eth0 is above 25,000 B/s",
        ),
        _with_kind(
            results_pb2.REASON_KIND_INVALID_TRANSFER,
            results_pb2.STATUS_FAILED,
            "invalid transfer: measured over 0.40 s",
        ),
        # An agent from before the field: its reason is not classified.
        _with_kind(results_pb2.REASON_KIND_UNSPECIFIED, results_pb2.STATUS_FAILED, "old agent"),
    ]

    assert _ingest(store, results) == []

    rows = store.query(
        "select status_reason_kind, count(*) from throughput group by all order by all"
    )
    assert rows == [("deferred", 1), ("invalid_transfer", 1), ("none", 1), (None, 1)]


def test_an_unknown_kind_is_refused_by_field(store: Store) -> None:
    (refused,) = _ingest(store, [_with_kind(99, results_pb2.STATUS_FAILED, "from the future")])

    violation = refused.bad_request.field_violations[0]
    assert violation.field == "results[0].envelope.status_reason_kind"
    assert "99 is not one of" in violation.description
    assert store.count("throughput") == 0
