"""What the ingest path tells whoever watches it: the operator's health and
metrics (aggregator/monitoring.py) implement `IngestObserver`, and ingest
imports nothing of them.

Every call comes from the event loop's thread, after the fact it reports;
an observer must not block (it counts, or schedules its work).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

# A refusal's field path without the result's position: "results[7].throughput.mbps".
_INDEX = re.compile(r"^results\[\d+\]\.?")

# The table of a result refused before it had one (no envelope, no body).
NO_TABLE = "none"


@dataclass(frozen=True)
class Refusal:
    """One result refused at commit, as the metrics count it."""

    table: str  # its result table, or NO_TABLE
    field: str  # the field the ack names, without the result's index ("throughput.mbps")
    code: int  # google.rpc.Code: 3 INVALID_ARGUMENT, 7 PERMISSION_DENIED


def refused_field(path: str) -> str:
    """The field of an ack's field path, without the result's position."""
    return _INDEX.sub("", path) or path


@dataclass(frozen=True)
class GroupCommitted:
    """One commit group, after its transaction committed."""

    batches: int
    stored: Mapping[str, int] = field(default_factory=dict)  # new rows, per result table
    duplicates: Mapping[str, int] = field(default_factory=dict)  # ids stored already, per table
    refused: Sequence[Refusal] = ()


@dataclass(frozen=True)
class BatchAnswered:
    """One received batch, once its stream answered it."""

    probe_id: str
    # "acked"; "refused": the batch as a whole (unreadable, too large, a
    # revoked probe); "failed": the aggregator could not read or commit it.
    outcome: str
    seconds: float  # from its arrival to its answer


@dataclass(frozen=True)
class SpoolReport:
    """What a probe said of its spool with a batch (agents older than the
    fields say nothing: no report)."""

    probe_id: str
    ward_code: int  # the registry's ward for the probe when the batch came
    depth: int | None  # results waiting in its spool, the batch's included
    dropped: int | None  # results its full spool dropped, since it was made


class IngestObserver(Protocol):
    """Told of commits, store writes, answered batches and probes' calls."""

    def group_committed(self, group: GroupCommitted) -> None:
        """A commit group's transaction committed."""

    def store_write(self, error: BaseException | None) -> None:
        """A write to the store succeeded (None) or failed (the error)."""

    def batch_answered(self, answer: BatchAnswered) -> None:
        """A stream answered one of its batches (an ack, or the status that ended it)."""

    def probe_seen(self, probe_id: str) -> None:
        """An identified probe called (an upload, or its configuration)."""

    def spool_reported(self, report: SpoolReport) -> None:
        """A batch carried its probe's spool depth or dropped count."""


class NoObserver:
    """Nobody watching (tests, tools that run the committer alone)."""

    def group_committed(self, group: GroupCommitted) -> None:
        """Nothing to record."""

    def store_write(self, error: BaseException | None) -> None:
        """Nothing to record."""

    def batch_answered(self, answer: BatchAnswered) -> None:
        """Nothing to record."""

    def probe_seen(self, probe_id: str) -> None:
        """Nothing to record."""

    def spool_reported(self, report: SpoolReport) -> None:
        """Nothing to record."""
