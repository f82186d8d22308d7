"""The durable spool: every result is written here before anything is sent.

SQLite in WAL mode, so a killed agent loses nothing that `add` returned
from, and `status` can read while the daemon writes. A row leaves the spool
only when the aggregator's ack names its batch as committed (stored, already
stored, or refused; refused results move to `rejected` with the reason).

The spool is bounded: past `max_rows` the oldest results are dropped and
counted, so a probe cut off for months does not fill its SD card. At the
default (200,000 rows, a few hundred bytes each) a probe holds months of
results.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
create table if not exists results (
    seq         integer primary key autoincrement,
    result_id   text not null unique,
    kind        text not null,
    payload     blob not null,          -- a serialized wardprobe.v1.Result
    spooled_at  real not null           -- unix seconds
);
create table if not exists rejected (
    result_id   text primary key,
    reason      text not null,
    payload     blob not null,
    rejected_at real not null
);
create table if not exists counters (
    name  text primary key,
    value integer not null
);
create table if not exists state (
    name  text primary key,
    value text not null
);
"""

# How many refused results are kept for a technician to look at.
_MAX_REJECTED_KEPT = 1000


@dataclass(frozen=True)
class SpooledResult:
    seq: int
    result_id: str
    payload: bytes


class SpoolFull(Exception):
    """The spool could not be written (disk full, read-only file system)."""


class Spool:
    """A result queue on disk, shared by the scheduler and the uploader."""

    def __init__(self, path: Path, max_rows: int = 200_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_rows = max_rows
        # check_same_thread=False: measurements finish in worker threads; every
        # call below is one short transaction and SQLite serialises them.
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("pragma journal_mode=wal")
        # FULL: an ack deletes rows only after the result reached the
        # aggregator, and a power cut must not lose a result already spooled.
        self._db.execute("pragma synchronous=full")
        self._db.executescript(_SCHEMA)

    def add(self, result_id: str, kind: str, payload: bytes) -> None:
        """Store one result durably. Raises SpoolFull when the disk refuses it."""
        try:
            with self._db:
                self._db.execute("begin immediate")
                self._db.execute(
                    "insert or ignore into results (result_id, kind, payload, spooled_at) "
                    "values (?, ?, ?, ?)",
                    (result_id, kind, payload, time.time()),
                )
                self._enforce_bound()
        except sqlite3.OperationalError as err:
            raise SpoolFull(f"cannot write the spool {self.path}: {err}") from err

    def _enforce_bound(self) -> None:
        (depth,) = self._db.execute("select count(*) from results").fetchone()
        excess = depth - self.max_rows
        if excess > 0:
            self._db.execute(
                "delete from results where seq in (select seq from results order by seq limit ?)",
                (excess,),
            )
            self._bump("dropped_results", excess)

    def _bump(self, name: str, by: int) -> None:
        self._db.execute(
            "insert into counters (name, value) values (?, ?) "
            "on conflict (name) do update set value = value + excluded.value",
            (name, by),
        )

    def pending(self, after_seq: int, limit: int) -> list[SpooledResult]:
        """Up to `limit` spooled results with seq > after_seq, oldest first."""
        rows = self._db.execute(
            "select seq, result_id, payload from results where seq > ? order by seq limit ?",
            (after_seq, limit),
        ).fetchall()
        return [SpooledResult(seq, result_id, bytes(payload)) for seq, result_id, payload in rows]

    def acknowledge(self, seqs: Sequence[int], rejected: Iterable[tuple[int, str]] = ()) -> None:
        """Remove acked results; keep refused ones (seq, reason) in `rejected`."""
        with self._db:
            self._db.execute("begin immediate")
            now = time.time()
            for seq, reason in rejected:
                self._db.execute(
                    "insert or replace into rejected (result_id, reason, payload, rejected_at) "
                    "select result_id, ?, payload, ? from results where seq = ?",
                    (reason, now, seq),
                )
            self._db.executemany("delete from results where seq = ?", [(s,) for s in seqs])
            self._db.execute(
                "delete from rejected where result_id not in "
                "(select result_id from rejected order by rejected_at desc limit ?)",
                (_MAX_REJECTED_KEPT,),
            )

    def depth(self) -> int:
        """Results waiting to be delivered."""
        return int(self._db.execute("select count(*) from results").fetchone()[0])

    def counter(self, name: str) -> int:
        row = self._db.execute("select value from counters where name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def rejected(self, limit: int = 20) -> list[tuple[str, str, float]]:
        """The most recently refused results: (result_id, reason, unix time)."""
        return [
            (str(r), str(why), float(at))
            for r, why, at in self._db.execute(
                "select result_id, reason, rejected_at from rejected "
                "order by rejected_at desc limit ?",
                (limit,),
            )
        ]

    def set_state(self, name: str, value: str) -> None:
        """Remember a small fact for `status` (last upload, last error)."""
        with self._db:
            self._db.execute(
                "insert into state (name, value) values (?, ?) "
                "on conflict (name) do update set value = excluded.value",
                (name, value),
            )

    def get_state(self, name: str) -> str | None:
        row = self._db.execute("select value from state where name = ?", (name,)).fetchone()
        return str(row[0]) if row else None

    def close(self) -> None:
        self._db.close()
