"""What a worker (agent/worker.py) tells the daemon: which tests wait for the
server slot, and whether a test was deferred by a busy line."""

from __future__ import annotations

from agent.measurements.base import MeasurementContext
from agent.plan import PlannedTest
from agent.runtime import EffectiveConfig, ScheduledTest
from agent.worker import planned_tests, summary_of
from wardprobe.v1 import results_pb2


def test_the_plan_takes_the_slot_from_the_measurement_table() -> None:
    config = EffectiveConfig(
        schedule=(
            ScheduledTest("latency_icmp", 300, 30, "fixed"),
            ScheduledTest("speedtest_download", 3600, 600, "fixed"),
            ScheduledTest("upload", 3600, 600, "fixed"),
            ScheduledTest("download", 3600, 600, "mobile"),  # the mobile line is off
        ),
        contexts={"fixed": MeasurementContext(server_host="198.18.0.1")},
        source="agent.toml",
    )
    assert planned_tests(config) == (
        PlannedTest("latency_icmp", 300, 30, "fixed", needs_slot=False),
        PlannedTest("speedtest_download", 3600, 600, "fixed", needs_slot=True),
        PlannedTest("upload", 3600, 600, "fixed", needs_slot=True),
    )


def _result(kind: int, reason: str) -> results_pb2.Result:
    message = results_pb2.Result()
    message.envelope.result_id = "r"
    message.envelope.status = results_pb2.STATUS_SKIPPED
    message.envelope.status_reason = reason
    message.envelope.status_reason_kind = kind  # type: ignore[assignment]
    return message


def test_deferred_is_the_reason_kind_not_the_words() -> None:
    busy = summary_of(_result(results_pb2.REASON_KIND_DEFERRED, "the line is busy"), 0)
    assert busy == {
        "result_id": "r",
        "status_reason": "the line is busy",
        "deferred": True,
        "results_lost": 0,
    }
    # Words that read like a deferral do not make one: a spent budget waits its interval.
    spent = summary_of(_result(results_pb2.REASON_KIND_OVER_BUDGET, "deferred: budget"), 2)
    assert spent["deferred"] is False and spent["results_lost"] == 2
