"""Where the API reads its figures, and the answers it keeps.

The API reads the analysts' snapshot (snapshot_path), never the store the
aggregator writes: the aggregator republishes the snapshot by renaming a new
file over it, so a reader holds whichever file it opened, and ingest never
waits on a reader. With no snapshot configured (an API host of its own with
a copy of the store, or a stopped aggregator) it reads store_path
read-only.

Each computation opens the file afresh, read-only, ATTACHed to an in-memory
DuckDB database: `duckdb.connect(path)` would hand back a database this
process already has open on that path (DuckDB keeps one instance per path
while any connection to it lives), which after a rename is the old file.

A file is known by its `Identity` (device, inode, size, modification time):
a new snapshot is a new identity. `Answers` keeps computed answers per
identity, drops those of an older one, and computes each one once even when
several requests ask for it at the same moment.

On a lake (`store = "ducklake:..."`, no snapshot file) the API reads the
lake itself, read-only, as an analyst attaches it (`LakeSource`). Its
identity is one committed lake snapshot (`LakeVersion`), pinned for
`refresh_s` (snapshot_interval_s: as fresh as a snapshot file would be, and
the lake's commits, a few a second, do not recompute every answer), then
moved to the newest. Each computation attaches the lake as of the pinned
snapshot (DuckLake's snapshot_version) on a cursor of one in-memory DuckDB
per API process, so an answer kept under a version is exactly that
version's data however much was committed meanwhile.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar

import duckdb

if TYPE_CHECKING:
    from aggregator.config import LakeSpec

log = logging.getLogger(__name__)

T = TypeVar("T")
SourceKind = Literal["snapshot", "store", "lake"]
# The catalog name the file is attached under (USE makes it the default).
_ALIAS = "wardprobe_data"


class NoData(Exception):
    """The file to read is not there (no snapshot published yet) or cannot be read."""


@dataclass(frozen=True)
class Identity:
    """One version of the file the API reads."""

    device: int
    inode: int
    size: int
    mtime_ns: int

    @property
    def modified(self) -> datetime:
        """When this version was written (published, for a snapshot)."""
        return datetime.fromtimestamp(self.mtime_ns / 1e9, UTC)


@dataclass(frozen=True)
class LakeVersion:
    """One committed snapshot of the lake the API reads."""

    snapshot_id: int
    committed_ns: int  # its commit time, ns since the epoch

    @property
    def modified(self) -> datetime:
        """When this snapshot was committed."""
        return datetime.fromtimestamp(self.committed_ns / 1e9, UTC)


# What answers are kept under: a version of the file, or a lake snapshot.
Version = Identity | LakeVersion


class DataSource:
    """The snapshot (or, without one, the store) the API reads, read-only."""

    def __init__(self, path: Path, kind: SourceKind) -> None:
        self.path = path
        self.kind = kind

    def identity(self) -> Identity:
        """The version of the file there now; NoData when there is none."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise NoData(
                "no snapshot has been published yet"
                if self.kind == "snapshot"
                else "the store is not there"
            ) from None
        return Identity(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    @contextlib.contextmanager
    def connect(
        self, version: Version | None = None
    ) -> Iterator[tuple[duckdb.DuckDBPyConnection, Identity]]:
        """A read-only connection to the file as it is now, and its identity.
        (Stat before and after the attach agree, or it is tried again: the
        identity is that of the file attached; `version` is not used: a
        file's older versions are gone once replaced.)"""
        for _ in range(3):
            before = self.identity()
            con = duckdb.connect(":memory:")
            try:
                quoted = str(self.path).replace("'", "''")
                con.execute(f"attach '{quoted}' as {_ALIAS} (read_only)")
                con.execute(f"use {_ALIAS}")
            except duckdb.Error as err:
                con.close()
                raise NoData(self._unreadable(err)) from None
            if self.identity() == before:
                try:
                    yield con, before
                finally:
                    con.close()
                return
            con.close()  # replaced while being opened: open the new one
        raise NoData("the snapshot is being replaced too often to be read")

    def _unreadable(self, err: duckdb.Error) -> str:
        # DuckDB's text names the file and the lock holder's pid: kept in the
        # log, not sent to a client.
        log.warning("cannot read %s: %s", self.path, err)
        if "lock" in str(err).lower():
            return (
                "the store is held by the running aggregator; "
                "the API reads the snapshot (set snapshot_path)"
            )
        return f"the {self.kind} cannot be read (details in the API's log)"


class LakeSource:
    """The lake the API reads (read-only), as of a snapshot pinned for `refresh_s`."""

    kind: SourceKind = "lake"

    def __init__(self, spec: LakeSpec, refresh_s: float) -> None:
        self.path = spec  # shown in the log as the file is (no password)
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self._home: duckdb.DuckDBPyConnection | None = None
        self._pinned: tuple[LakeVersion, float] | None = None  # and when (monotonic)
        self._names = itertools.count()

    def _connection(self) -> duckdb.DuckDBPyConnection:
        """This process's DuckDB with the extensions loaded and the lake
        attached as it is now (for the newest snapshot); made on first use
        and again after a failure. Under self._lock."""
        if self._home is None:
            from aggregator.ingest.lake import connect_lake

            self._home = connect_lake(self.path, read_only=True)
        return self._home

    def _forget(self) -> None:
        """After a failure: the connection made anew, the newest snapshot
        looked up again (the pinned one may have been expired). Under self._lock."""
        if self._home is not None:
            self._home.close()
            self._home = None
        self._pinned = None

    def identity(self) -> LakeVersion:
        """The pinned snapshot, or the lake's newest committed one when the
        pinned is older than refresh_s; NoData when the lake cannot be read."""
        from aggregator.ingest.lake import LAKE, LakeUnavailable

        with self._lock:
            now = time.monotonic()
            if self._pinned is not None and now - self._pinned[1] < self.refresh_s:
                return self._pinned[0]
            try:
                row = (
                    self._connection()
                    .execute(
                        f"select snapshot_id, epoch_ns(snapshot_time) from {LAKE}.snapshots() "
                        f"where snapshot_id = (select id from {LAKE}.current_snapshot())"
                    )
                    .fetchone()
                )
            except (duckdb.Error, LakeUnavailable) as err:
                self._forget()
                raise NoData(self._unreadable(err)) from None
            if row is None:
                raise NoData("the lake has no snapshot yet")
            version = LakeVersion(int(row[0]), int(row[1]))
            self._pinned = (version, now)
            return version

    @contextlib.contextmanager
    def connect(
        self, version: Version | None = None
    ) -> Iterator[tuple[duckdb.DuckDBPyConnection, LakeVersion]]:
        """A read-only connection to the lake as of `version` (default: the
        identity now), attached under a name of its own and USE'd, so the
        same SQL runs as on a file; detached after."""
        from aggregator.ingest.lake import LakeUnavailable, attach_lake

        pinned = version if isinstance(version, LakeVersion) else self.identity()
        with self._lock:
            try:
                con = self._connection().cursor()
            except (duckdb.Error, LakeUnavailable) as err:
                self._forget()
                raise NoData(self._unreadable(err)) from None
        name = f"lake_at_{next(self._names)}"
        try:
            attach_lake(con, self.path, read_only=True, name=name, snapshot_id=pinned.snapshot_id)
            con.execute(f"use {name}")
        except (duckdb.Error, LakeUnavailable) as err:
            con.close()
            with self._lock:  # e.g. the pinned snapshot expired: look up the newest next time
                if self._pinned is not None and self._pinned[0] == pinned:
                    self._pinned = None
            raise NoData(self._unreadable(err)) from None
        try:
            yield con, pinned
        finally:
            try:
                con.execute("use memory")  # DuckDB detaches no database in use
                con.execute(f"detach {name}")
            except duckdb.Error:
                log.warning("detaching the lake's snapshot %s failed", pinned, exc_info=True)
            con.close()

    def _unreadable(self, err: Exception) -> str:
        # DuckDB's text may name the catalogue's host and the data path: kept
        # in the log, not sent to a client.
        log.warning("cannot read the lake %s: %s", self.path, err)
        return "the lake cannot be read (details in the API's log)"


class Answers:
    """Computed answers by key, the newest `entries` kept (least recently
    used dropped first); each computed once however many ask at once."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._lock = threading.Lock()
        self._done: OrderedDict[Hashable, object] = OrderedDict()
        self._running: dict[Hashable, Future[object]] = {}
        self.computed = 0  # how many answers were computed (not found kept)

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The answer under `key`, computing it with `compute` when not kept."""
        with self._lock:
            if key in self._done:
                self._done.move_to_end(key)
                return self._done[key]  # type: ignore[return-value]
            running = self._running.get(key)
            mine = running is None
            if running is None:
                running = self._running[key] = Future()
        if not mine:
            return running.result()  # type: ignore[return-value]
        try:
            value = compute()
        except BaseException as err:
            with self._lock:
                del self._running[key]
            running.set_exception(err)
            raise
        with self._lock:
            del self._running[key]
            self.computed += 1
            self._done[key] = value
            while len(self._done) > self.entries:
                self._done.popitem(last=False)
        running.set_result(value)
        return value

    def has(self, key: Hashable) -> bool:
        """Whether the answer under `key` is kept."""
        with self._lock:
            return key in self._done

    def keep_only(self, identity: Version) -> None:
        """Drop the answers of every other version of the file (keys begin
        with the identity they were computed on)."""
        with self._lock:
            for key in [k for k in self._done if not _of(k, identity)]:
                del self._done[key]


def _of(key: Hashable, identity: Version) -> bool:
    return isinstance(key, tuple) and bool(key) and key[0] == identity
