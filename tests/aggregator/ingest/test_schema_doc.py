"""docs/schema.md says what the store holds: every table and column it lists
must be what DuckDB's DESCRIBE returns, and every example query must run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aggregator.ingest.store import Store
from aggregator.ingest.tables import RESULT_TABLES

DOC = Path(__file__).resolve().parents[3] / "docs" / "schema.md"


def _sections() -> dict[str, str]:
    text = DOC.read_text("utf-8")
    parts = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    return {part.splitlines()[0].strip(): part for part in parts}


def _documented_columns(section: str) -> list[tuple[str, str]]:
    # A type is upper case words, or a LIST of STRUCT: "STRUCT(hop INTEGER, ...)[]".
    rows = re.findall(
        r"^\| ([a-z0-9_]+) \| ([A-Z ]+|STRUCT\([^|]*\)\[\]) \|", section, flags=re.MULTILINE
    )
    return [(name, type_.strip()) for name, type_ in rows]


def _examples() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", DOC.read_text("utf-8"), flags=re.DOTALL)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store.duckdb")


@pytest.mark.parametrize("table", ["probes", *RESULT_TABLES])
def test_documented_columns_match_describe(store: Store, table: str) -> None:
    sections = _sections()
    documented = _documented_columns(sections[table])
    if table in RESULT_TABLES:
        documented = (
            _documented_columns(sections["Common columns of every result table"]) + documented
        )
    described = [(str(r[0]), str(r[1])) for r in store.query(f"describe {table}")]
    assert documented == described


def test_every_table_in_the_store_is_documented(store: Store) -> None:
    tables = {str(r[0]) for r in store.query("select table_name from information_schema.tables")}
    assert tables <= set(_sections())


@pytest.mark.parametrize("query", _examples(), ids=lambda q: q.split("\n")[0][:40])
def test_example_queries_run(store: Store, query: str) -> None:
    store.query(query)
