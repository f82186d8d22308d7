"""The daily byte budget: the ledger, and a real test skipped once the budget is spent."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from agent.budget import SKIPPED_PREFIX, ByteBudget, run_within_budget
from agent.measurements import MEASUREMENTS
from agent.measurements.base import MeasurementContext, ReasonKind, Status
from agent.measurements.throughput import ThroughputResult
from tests.agent.measurements.services import iperf3_server


class Day:
    def __init__(self) -> None:
        self.today = date(2026, 11, 24)

    def __call__(self) -> date:
        return self.today


def test_the_first_test_counts_as_the_estimate_then_as_what_it_moved(tmp_path: Path) -> None:
    ledger = ByteBudget(tmp_path, Day())
    first = ledger.check("wwan0", "download", 1_000, first_test_estimate_bytes=400)
    assert first.allowed and first.estimate_bytes == 400
    ledger.charge("wwan0", "download", 700)
    second = ledger.check("wwan0", "download", 1_000, first_test_estimate_bytes=400)
    assert not second.allowed
    assert second.reason.startswith(SKIPPED_PREFIX)
    assert "700 B used today" in second.reason and "about 700 B" in second.reason
    # Another interface has its own budget.
    assert ledger.check("eth0", "download", 1_000, first_test_estimate_bytes=400).allowed


def test_a_new_day_starts_from_zero_and_survives_a_restart(tmp_path: Path) -> None:
    day = Day()
    ByteBudget(tmp_path, day).charge("wwan0", "upload", 900)
    assert ByteBudget(tmp_path, day).used_bytes("wwan0") == 900  # a restarted agent
    day.today = date(2026, 11, 25)
    ledger = ByteBudget(tmp_path, day)
    assert ledger.used_bytes("wwan0") == 0
    # Yesterday's size is still the best guess for the same test.
    decision = ledger.check("wwan0", "upload", 10_000, first_test_estimate_bytes=1)
    assert decision.estimate_bytes == 900


def test_a_byte_cap_is_the_estimate_of_a_new_test(tmp_path: Path) -> None:
    decision = ByteBudget(tmp_path).check(
        "wwan0", "download", 10_000, cap_bytes=20_000, first_test_estimate_bytes=1
    )
    assert not decision.allowed and decision.estimate_bytes == 20_000


@pytest.mark.skipif(shutil.which("iperf3") is None, reason="iperf3 is not installed")
def test_a_real_test_is_charged_and_the_next_one_skipped(tmp_path: Path) -> None:
    ledger = ByteBudget(tmp_path)
    with iperf3_server() as port:
        ctx = MeasurementContext(
            server_host="127.0.0.1",
            iperf3_ports=(port,),
            interface="lo",
            throughput_duration_s=2,
            throughput_streams=1,
            timeout_s=30.0,
            daily_budget_bytes=10**15,
            budget_first_test_estimate_bytes=1_000_000,
        )
        (first,) = run_within_budget(ledger, "download", ctx)
        assert first.status is not Status.SKIPPED, first.status_reason
        # The ledger has what the interface carried (loopback counts each byte
        # as sent and as received): at least what iperf3 moved.
        used = ledger.used_bytes("lo")
        assert used >= (getattr(first, "bytes_transferred", 0) or 0) > 0
        # A budget with room for half of such a test more.
        tight = replace(ctx, daily_budget_bytes=used + used // 2)
        (second,) = run_within_budget(ledger, "download", tight)
    assert second.status is Status.SKIPPED
    assert second.status_reason_kind is ReasonKind.OVER_BUDGET
    assert second.status_reason.startswith(SKIPPED_PREFIX + f" of {used + used // 2:,} B on lo")
    assert ledger.used_bytes("lo") == used  # a skipped test moves nothing


@pytest.mark.parametrize("name", [n for n, m in MEASUREMENTS.items() if m.budgeted])
def test_every_budgeted_test_is_skipped_by_its_own_builder(tmp_path: Path, name: str) -> None:
    # No test may run on a budget already spent: the skipped result is the
    # measurement's own (its direction, its tool), without moving a byte.
    ctx = MeasurementContext(
        server_host="198.18.0.1",  # never reached
        interface="lo",
        daily_budget_bytes=0,
        budget_first_test_estimate_bytes=1,
    )
    (result,) = run_within_budget(ByteBudget(tmp_path), name, ctx)
    assert (result.status, result.status_reason_kind) == (Status.SKIPPED, ReasonKind.OVER_BUDGET)
    assert isinstance(result, ThroughputResult)
    params = MEASUREMENTS[name].params_from(ctx)
    assert result.direction is params.direction
    assert result.method.tool == ("speedtest-cli" if name.startswith("speedtest") else "iperf3")


def test_tests_without_budget_or_outside_it_just_run(tmp_path: Path) -> None:
    ctx = MeasurementContext(server_host="127.0.0.1", latency_count=1, latency_interval_s=0.0)
    (result,) = run_within_budget(ByteBudget(tmp_path), "latency_icmp", ctx)
    assert result.status is not Status.SKIPPED
    assert not (tmp_path / "byte_budget.json").exists()
