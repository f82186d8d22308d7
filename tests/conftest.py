"""Fixtures shared across the test folders: a PostgreSQL cluster for the lake.

`postgres` is one throwaway cluster for the whole session (emulation/
postgres.py; seconds to start). `lake_spec` gives each test a lake of its
own: a new database in that cluster (a DuckLake catalogue keeps one data
path) and a data directory in the test's tmp_path. Tests that need them skip,
saying why, only when Debian's PostgreSQL is not installed (`make setup`
installs it, so CI runs them).
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulation.postgres import PostgresCluster, PostgresMissing, throwaway_root

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A running PostgreSQL cluster on a Unix socket (fsync off: test data only)."""
    try:
        cluster = PostgresCluster(throwaway_root(), fsync=False)
    except PostgresMissing as err:
        pytest.skip(str(err))
    cluster.start()
    yield cluster
    cluster.stop(immediate=True)  # its files are deleted next
    shutil.rmtree(cluster.root, ignore_errors=True)


def new_lake(postgres: PostgresCluster, directory: Path) -> str:
    """The store spec of a new, empty lake (`ducklake:postgres://...&data_path=...`)
    with its files in `directory`."""
    database = f"lake_{next(_databases)}"
    postgres.create_database(database)
    return postgres.lake(directory / "lake-data", database).store_spec


@pytest.fixture
def lake_spec(postgres: PostgresCluster, tmp_path: Path) -> str:
    """A new, empty lake for one test."""
    return new_lake(postgres, tmp_path)


def lake_copy(postgres: PostgresCluster, store_path: Path, directory: Path) -> str:
    """The spec of a new lake holding what the embedded store at `store_path`
    holds (moved by `migrate`): one dataset for the tests that run on both."""
    from aggregator.ingest.lake import LakeStore, migrate_embedded
    from aggregator.ingest.stores import LakeSpec, parse_store_spec

    spec = new_lake(postgres, directory)
    lake = parse_store_spec(spec)
    assert isinstance(lake, LakeSpec)
    store = LakeStore(lake)
    try:
        moved = migrate_embedded(store, store_path)
    finally:
        store.close()
    assert all(table.complete for table in moved), moved
    return spec
