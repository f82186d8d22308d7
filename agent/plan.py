"""The plan the `plan` worker hands to the resident daemon, and the bound on
results held in memory that both keep.

Plain standard-library types, so that the daemon (agent/daemon.py), which
must not import gRPC, pydantic or the measurement code, can read what the
worker (agent/worker.py) made with them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from agent.backoff import Backoff

# Results kept in memory while the spool cannot be written (a full SD card),
# by the daemon between workers and by a worker (agent.runtime) during its job.
MAX_HELD_RESULTS = 1000


@dataclass(frozen=True)
class PlannedTest:
    """One entry of the schedule."""

    measurement: str
    interval_s: float
    jitter_s: float
    network_kind: str  # "fixed" | "mobile"
    needs_slot: bool  # waits for the probe's slot at the server (the measurement table's)


@dataclass(frozen=True)
class PlannedLine:
    """Per line (fixed, mobile): its tests' time limit and the server slot."""

    timeout_s: float
    slot_period_s: int
    slot_offset_s: int
    slot_length_s: int


@dataclass(frozen=True)
class Plan:
    """What the daemon schedules: made by the `plan` worker from the effective
    config, passed as one JSON object (`to_json` / `from_json`)."""

    probe_id: str
    ward_code: int
    source: str  # where the config came from: aggregator, cache, agent.toml
    schedule: tuple[PlannedTest, ...]
    lines: dict[str, PlannedLine]
    deferred_retry_after_s: float
    upload_backoff: Backoff
    # At start, how long to wait for a synchronised clock before the first test.
    clock_wait_s: float

    def to_json(self) -> str:
        """One line of JSON."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Plan:
        """The plan from the worker's JSON object (TypeError/KeyError if it is not one)."""
        return cls(
            probe_id=str(document["probe_id"]),
            ward_code=int(document["ward_code"]),
            source=str(document["source"]),
            schedule=tuple(PlannedTest(**entry) for entry in document["schedule"]),
            lines={kind: PlannedLine(**line) for kind, line in document["lines"].items()},
            deferred_retry_after_s=float(document["deferred_retry_after_s"]),
            upload_backoff=Backoff(**document["upload_backoff"]),
            clock_wait_s=float(document["clock_wait_s"]),
        )
