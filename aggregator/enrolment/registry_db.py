"""Where the probe registry's tables live: a SQLite file, or PostgreSQL.

One aggregator (or replicas on one host) keeps the registry in
`registry.sqlite` in its state directory. Replicas on several hosts share
one registry in PostgreSQL (aggregator.toml's `registry`, a libpq URI; the
lake's catalogue server serves well): every replica identifies each probe's
certificate there on every batch, so a revocation or a move made through any
of them, or the admin CLI, applies everywhere at the probe's next batch.

registry.py writes its SQL once, in the dialect both engines share, with `?`
for parameters; what differs is here: how a connection is opened, how a
write transaction takes the registry's one write lock (SQLite's BEGIN
IMMEDIATE; a PostgreSQL advisory lock, held to the transaction's end), and
how a column added by a later release is added to a registry made before it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

# The registry's tables in a PostgreSQL database, apart from anything else
# there (the lake's catalogue tables).
PG_SCHEMA = "wardprobe_registry"
# The advisory lock every write transaction holds: registry writes are few
# (enrolments, revocations, moves) and each is small, so one lock orders them
# all, as SQLite's write lock does. Any 64-bit number; this one spells "wardprob".
_PG_WRITE_LOCK = 0x7761726470726F62


class Cursor(Protocol):
    """What registry.py uses of a DB-API cursor (sqlite3's and psycopg's)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """A connection running registry.py's SQL (`?` parameters)."""

    def execute(self, sql: str, parameters: Sequence[object] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> object: ...


class RegistryDatabase(Protocol):
    """The engine under the registry."""

    def describe(self) -> str:
        """Where the registry is, for messages (no password)."""
        ...

    def connect(self) -> AbstractContextManager[Connection]:
        """A connection for reads, each statement on its own."""
        ...

    def write_transaction(self) -> AbstractContextManager[Connection]:
        """One transaction holding the registry's write lock: commits when
        the block ends, rolls back when it raises."""
        ...

    def reader(self) -> Connection:
        """This thread's connection, kept open, for the lookup of every batch."""
        ...

    def create_schema(self, schema: str) -> None:
        """Run `schema` (CREATE ... IF NOT EXISTS statements)."""
        ...

    def columns(self, conn: Connection, table: str) -> set[str]:
        """The columns `table` has now."""
        ...


def is_postgres_uri(location: str | Path) -> bool:
    """Whether a registry location names PostgreSQL (else it is a SQLite file)."""
    # The scheme, as aggregator/config.py checks the `registry` key: a URI it
    # takes must not be read here as a file's path.
    return isinstance(location, str) and urlsplit(location).scheme in ("postgres", "postgresql")


def described_uri(uri: str) -> str:
    """A libpq URI for messages: user, host and database, no password."""
    parts = urlsplit(uri)
    # libpq takes the host from the query too (a Unix socket's directory).
    host = parts.hostname or dict(parse_qsl(parts.query)).get("host") or "localhost"
    user = f"{parts.username}@" if parts.username else ""
    return f"postgres://{user}{host}{parts.path}"


def open_database(location: str | Path) -> RegistryDatabase:
    """The registry's engine at `location`: a libpq URI, else a SQLite file's path."""
    if is_postgres_uri(location):
        return PostgresDatabase(str(location))
    return SqliteDatabase(Path(location))


class SqliteDatabase:
    """The registry in one SQLite file (WAL mode: readers never wait for the writer)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._readers = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)

    def describe(self) -> str:
        return str(self.path)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        # isolation_level=None: transactions are begun explicitly below, so
        # BEGIN IMMEDIATE takes the write lock before anything is read.
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=10000")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def write_transaction(self) -> Iterator[sqlite3.Connection]:
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def reader(self) -> Connection:
        # Kept open: a fresh connection costs several times the lookup (SQLite
        # reads the schema anew). Autocommit, each statement fetched to the
        # end, so it holds no transaction and sees every commit at once.
        conn: sqlite3.Connection | None = getattr(self._readers, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=10000")
            self._readers.conn = conn
        return conn

    def create_schema(self, schema: str) -> None:
        with self.connect() as conn:
            # WAL is a property of the file; setting it once is enough.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(schema)

    def columns(self, conn: Connection, table: str) -> set[str]:
        return {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})").fetchall()}


class PostgresDatabase:
    """The registry in a PostgreSQL database, in the schema `PG_SCHEMA`."""

    def __init__(self, uri: str) -> None:
        import psycopg  # only a registry in PostgreSQL needs it

        self._psycopg = psycopg
        self.uri = uri
        self._readers = threading.local()

    def describe(self) -> str:
        return described_uri(self.uri)

    def _open(self) -> _PostgresConnection:
        conn = self._psycopg.connect(
            self.uri, autocommit=True, options=f"-c search_path={PG_SCHEMA}"
        )
        return _PostgresConnection(conn)

    @contextmanager
    def connect(self) -> Iterator[_PostgresConnection]:
        conn = self._open()
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def write_transaction(self) -> Iterator[_PostgresConnection]:
        with self.connect() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(?)", (_PG_WRITE_LOCK,))
            yield conn

    def reader(self) -> Connection:
        conn: _PostgresConnection | None = getattr(self._readers, "conn", None)
        if conn is None or conn.closed:
            conn = self._open()
            self._readers.conn = conn
        return conn

    def create_schema(self, schema: str) -> None:
        # Under the write lock: replicas starting at once would otherwise race
        # to create the same tables (CREATE ... IF NOT EXISTS is not atomic
        # in PostgreSQL).
        with self.write_transaction() as conn:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}")
            for statement in _statements(schema):
                conn.execute(statement)

    def columns(self, conn: Connection, table: str) -> set[str]:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = ? AND table_name = ?",
            (PG_SCHEMA, table),
        ).fetchall()
        return {str(row[0]) for row in rows}


class _PostgresConnection:
    """A psycopg connection taking registry.py's `?` parameters."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    @property
    def closed(self) -> bool:
        return bool(self._conn.closed)

    def execute(self, sql: str, parameters: Sequence[object] = ()) -> Cursor:
        # registry.py's SQL holds no literal "?" or "%": only its parameters.
        return self._conn.execute(sql.replace("?", "%s"), tuple(parameters))  # type: ignore[no-any-return]

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> object:
        with self._conn.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), rows)
        return None

    def transaction(self) -> Any:
        return self._conn.transaction()

    def close(self) -> None:
        self._conn.close()


def _statements(script: str) -> list[str]:
    """The statements of a script of DDL (no ";" inside a statement), comments dropped."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
