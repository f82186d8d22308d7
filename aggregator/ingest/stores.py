"""The store interface and how a store is named.

Two implementations of one interface (`ResultStore`):
- `duckdb:FILE`: the embedded DuckDB file (aggregator/ingest/store.py), the
  default for one city and one aggregator process;
- `ducklake:postgres://USER@HOST[:PORT]/DB?PARAMS&data_path=DIR`: a DuckLake
  whose catalogue is a PostgreSQL database and whose Parquet files are in
  DIR (aggregator/ingest/lake.py), for several aggregator replicas.

The lake's spec is a libpq URI (what `psql` takes) with one more query
parameter, `data_path`, which is taken out before the URI reaches libpq;
every other parameter (host=/socket/dir, sslmode, ...) is libpq's.
docs/scaling.md shows both forms.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:  # the config parses specs: it must not pull DuckDB and Arrow in
    import duckdb
    import numpy as np
    import pyarrow as pa

    from aggregator.ingest.store import ProbeRow

EMBEDDED_PREFIX = "duckdb:"
LAKE_PREFIX = "ducklake:"


class StoreSpecError(ValueError):
    """A store spec that names no store this release knows, or lacks a part."""


@dataclass(frozen=True)
class EmbeddedSpec:
    """`duckdb:FILE`: one DuckDB file."""

    path: Path

    def __str__(self) -> str:
        return f"{EMBEDDED_PREFIX}{self.path}"


@dataclass(frozen=True)
class LakeSpec:
    """`ducklake:<libpq URI>&data_path=DIR`: a DuckLake with a PostgreSQL catalogue."""

    catalogue_uri: str  # libpq's URI, without data_path
    data_path: str  # where the Parquet files go (a directory; DuckLake takes it as given)

    def __str__(self) -> str:
        """The spec without any password (for logs and messages)."""
        parts = urlsplit(self.catalogue_uri)
        netloc = parts.netloc
        if "@" in netloc:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.split(':', 1)[0]}@{host}"
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "password"]
        shown = urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="/")))
        return f"{LAKE_PREFIX}{shown} (data_path {self.data_path})"


StoreSpec = EmbeddedSpec | LakeSpec


def parse_store_spec(text: str) -> StoreSpec:
    """The store a spec names; StoreSpecError saying which form is expected."""
    if text.startswith(EMBEDDED_PREFIX):
        path = text.removeprefix(EMBEDDED_PREFIX)
        if not path:
            raise StoreSpecError("duckdb: names no file (e.g. duckdb:/var/lib/x/wardprobe.duckdb)")
        return EmbeddedSpec(Path(path))
    if text.startswith(LAKE_PREFIX):
        uri = text.removeprefix(LAKE_PREFIX)
        parts = urlsplit(uri)
        if parts.scheme not in ("postgres", "postgresql"):
            raise StoreSpecError(
                "a lake's catalogue is a PostgreSQL URI: "
                "ducklake:postgres://USER@HOST/DB?data_path=DIR"
            )
        query = parse_qsl(parts.query, keep_blank_values=True)
        data = [v for k, v in query if k == "data_path"]
        if len(data) != 1 or not data[0]:
            raise StoreSpecError(
                "a lake spec needs one data_path (where its Parquet files go): "
                "ducklake:postgres://USER@HOST/DB?data_path=DIR"
            )
        rest = urlencode([(k, v) for k, v in query if k != "data_path"], safe="/")
        return LakeSpec(urlunsplit(parts._replace(query=rest)), data[0])
    raise StoreSpecError(
        f"unknown store {text[:40]!r}: expected duckdb:FILE or "
        "ducklake:postgres://USER@HOST/DB?data_path=DIR"
    )


class ResultStore(Protocol):
    """What the aggregator needs of a store; aggregator/ingest/store.py
    (embedded) and aggregator/ingest/lake.py (DuckLake) provide it."""

    def insert_new_results(self, tables: Mapping[str, pa.Table]) -> dict[str, np.ndarray]:
        """Insert the rows of several result tables at once, each result id
        once in the whole store; per table, which rows were stored."""
        ...

    def arrow_schema(self, table: str) -> pa.Schema:
        """The Arrow schema of a table's columns (result ids as text)."""
        ...

    def replace_probes(self, probes: Iterable[ProbeRow]) -> None:
        """Replace the `probes` table with the registry's probes."""
        ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read query; its rows."""
        ...

    def count(self, table: str) -> int:
        """Rows in one table."""
        ...

    def checkpoint(self) -> None:
        """Make what is committed compact on disk (a clean stop)."""
        ...

    def reader(self) -> duckdb.DuckDBPyConnection:
        """A connection for long reads that do not hold up ingest."""
        ...

    def close(self) -> None:
        """Release the store."""
        ...


def open_store(spec: StoreSpec) -> ResultStore:
    """Open (and, the first time, create) the store a spec names."""
    if isinstance(spec, EmbeddedSpec):
        from aggregator.ingest.store import Store

        return Store(spec.path)
    from aggregator.ingest.lake import LakeStore

    return LakeStore(spec)
