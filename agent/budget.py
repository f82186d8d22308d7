"""A daily byte budget per interface: mobile data costs money.

The agent counts what each test moved on each interface (the interface's
own byte counters over the test, both directions, so protocol overhead and
retransmissions count as the operator bills them) and, before a test, skips
it when the bytes it is expected to move would take the day's total past
the interface's budget. The skipped result says so (kind OVER_BUDGET, and
in words "skipped: daily byte budget ..."). Which tests a budget applies
to is the measurement table's `budgeted` (agent/measurements/__init__.py).

What a test is expected to move: what the same test moved last time on
that interface, else its byte cap, else `first_test_estimate_bytes` from
the line's configuration (a test we know nothing about yet). A day is the
probe's local calendar day, as a prepaid data pack is. The ledger is a
small JSON file in the state directory, so a restart does not reset it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from agent import netif
from agent.measurements.base import MeasurementContext, MeasurementResult, ReasonKind

# Start of the text of an OVER_BUDGET reason, for people reading it.
SKIPPED_PREFIX = "skipped: daily byte budget"
LEDGER_FILE = "byte_budget.json"


@dataclass(frozen=True)
class BudgetDecision:
    """Whether a test may run; `reason` is set when it may not."""

    allowed: bool
    estimate_bytes: int
    used_bytes: int
    reason: str = ""


def _today() -> date:
    return datetime.now().astimezone().date()


class ByteBudget:
    """The ledger of bytes moved per interface today, and the check against a budget."""

    def __init__(self, state_dir: Path, today: Callable[[], date] = _today) -> None:
        self._path = state_dir / LEDGER_FILE
        self._today = today

    def _load(self) -> dict[str, object]:
        try:
            data = json.loads(self._path.read_text("utf-8"))
        except (OSError, ValueError):
            data = {}
        if not isinstance(data, dict) or data.get("day") != self._today().isoformat():
            # A new day (or no ledger yet): today's use starts at zero; the last
            # sizes of each test are kept, they are still the best estimates.
            last = data.get("last_bytes", {}) if isinstance(data, dict) else {}
            data = {"day": self._today().isoformat(), "used": {}, "last_bytes": last}
        return data

    def _save(self, data: dict[str, object]) -> None:
        temporary = self._path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data), "utf-8")
        os.replace(temporary, self._path)  # never a half-written ledger

    def used_bytes(self, interface: str) -> int:
        """Bytes counted on `interface` today."""
        used = self._load()["used"]
        assert isinstance(used, dict)
        return int(used.get(interface, 0))

    def check(
        self,
        interface: str,
        measurement: str,
        budget_bytes: int,
        *,
        cap_bytes: int | None = None,
        first_test_estimate_bytes: int,
    ) -> BudgetDecision:
        """May `measurement` run on `interface` without passing `budget_bytes` today?"""
        data = self._load()
        used_map, last_map = data["used"], data["last_bytes"]
        assert isinstance(used_map, dict) and isinstance(last_map, dict)
        used = int(used_map.get(interface, 0))
        last = last_map.get(f"{interface}:{measurement}")
        estimate = int(last) if last is not None else (cap_bytes or first_test_estimate_bytes)
        if used + estimate <= budget_bytes:
            return BudgetDecision(True, estimate, used)
        return BudgetDecision(
            False,
            estimate,
            used,
            f"{SKIPPED_PREFIX} of {budget_bytes:,} B on {interface} would be passed: "
            f"{used:,} B used today, this test moves about {estimate:,} B",
        )

    def charge(self, interface: str, measurement: str, moved_bytes: int) -> None:
        """Add what a test moved to today's total and remember it as its next estimate."""
        data = self._load()
        used_map, last_map = data["used"], data["last_bytes"]
        assert isinstance(used_map, dict) and isinstance(last_map, dict)
        used_map[interface] = int(used_map.get(interface, 0)) + max(0, moved_bytes)
        last_map[f"{interface}:{measurement}"] = max(0, moved_bytes)
        self._save(data)


def run_within_budget(
    ledger: ByteBudget, name: str, ctx: MeasurementContext
) -> tuple[MeasurementResult, ...]:
    """Run measurement `name`, unless the line's daily budget would be passed
    (then a SKIPPED result saying so); charge what it moved to the ledger.
    Its results: one, or several for a traceroute or DNS test (never budgeted)."""
    from agent.measurements import (  # the table imports the tests
        MEASUREMENTS,
        results_of,
        run_measurements,
    )

    measurement = MEASUREMENTS.get(name)
    if ctx.daily_budget_bytes is None or measurement is None or not measurement.budgeted:
        return run_measurements(name, ctx)  # an unknown name: its KeyError comes from there
    interface = ctx.interface or "(default route)"
    params = measurement.params_from(ctx)
    decision = ledger.check(
        interface,
        name,
        ctx.daily_budget_bytes,
        cap_bytes=ctx.throughput_bytes_cap,
        first_test_estimate_bytes=ctx.budget_first_test_estimate_bytes,
    )
    if not decision.allowed:
        assert measurement.skipped is not None  # Measurement refuses budgeted without it
        return (measurement.skipped(params, decision.reason, ReasonKind.OVER_BUDGET),)
    before = netif.byte_counters(ctx.interface) if ctx.interface else None
    results = results_of(measurement.run(params))
    after = netif.byte_counters(ctx.interface) if ctx.interface else None
    if before is not None and after is not None:
        moved = sum(after) - sum(before)  # what the operator bills: both ways, all overhead
    else:
        moved = sum(int(getattr(r, "bytes_transferred", None) or 0) for r in results)
    ledger.charge(interface, name, moved)
    return results
