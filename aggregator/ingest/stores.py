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
from typing import TYPE_CHECKING, Any, Protocol

# The specs are the config's (it parses `store`); named here too for the callers.
from aggregator.config import (
    EMBEDDED_PREFIX,
    LAKE_PREFIX,
    EmbeddedSpec,
    LakeSpec,
    StoreSpec,
    StoreSpecError,
    parse_store_spec,
)

__all__ = [
    "EMBEDDED_PREFIX",
    "LAKE_PREFIX",
    "EmbeddedSpec",
    "LakeSpec",
    "ResultStore",
    "StoreSpec",
    "StoreSpecError",
    "open_store",
    "parse_store_spec",
]

if TYPE_CHECKING:  # for the types only: the store modules import them when opened
    import duckdb
    import numpy as np
    import pyarrow as pa

    from aggregator.ingest.store import ProbeRow


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
