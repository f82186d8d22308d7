"""The order views and rollups are created in follows from what each SQL
file reads (analysis/catalog.py), and a file that reads something nothing
defines, or files that read each other in a cycle, are reported by name."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from aggregator.ingest.store import Store
from analysis import catalog
from analysis.catalog import (
    ROLLUPS,
    VIEW_ORDER,
    SqlCatalogError,
    creation_order,
    install_views,
    reads,
    rollup_sql,
    view_sql,
)

VIEWS_DIR = Path(catalog.__file__).parent / "views"


def _before(order: tuple[str, ...], name: str) -> set[str]:
    return set(order[: order.index(name)])


def test_every_view_file_is_created_after_the_views_it_reads() -> None:
    assert set(VIEW_ORDER) == {p.stem for p in VIEWS_DIR.glob("*.sql")}
    for name in VIEW_ORDER:
        read_views = reads(view_sql(name)) & set(VIEW_ORDER)
        assert read_views <= _before(VIEW_ORDER, name), name
    # a chain of four: the zone sites read the gigabit lines, which read the
    # probes' downloads, which read the checked throughput tests
    assert {"gigabit_capable", "nr_availability"} <= _before(VIEW_ORDER, "zone_targets")
    assert "probe_download" in _before(VIEW_ORDER, "gigabit_capable")
    assert "throughput_checked" in _before(VIEW_ORDER, "probe_download")


def test_every_rollup_is_filled_after_the_rollups_it_reads() -> None:
    for name in ROLLUPS:
        assert reads(rollup_sql(name)) & set(ROLLUPS) <= _before(ROLLUPS, name), name
    # a rollup that reads another comes after it, whatever the alphabet says
    order = creation_order(
        {"rollup_a": "select * from rollup_b", "rollup_b": "select * from throughput_checked"},
        kind="rollup",
        available=frozenset({"throughput_checked"}),
    )
    assert order == ("rollup_b", "rollup_a")


def test_the_views_install_in_that_order_on_a_new_store(tmp_path: Path) -> None:
    Store(tmp_path / "store.duckdb").close()
    with duckdb.connect(str(tmp_path / "store.duckdb"), read_only=True) as con:
        install_views(con)
        made = {
            str(r[0])
            for r in con.execute(
                "select view_name from duckdb_views() where temporary and not internal"
            ).fetchall()
        }
    assert made == set(VIEW_ORDER)


def test_the_rollups_queries_read_only_rollups() -> None:
    """The units_* queries are the fast path: reading a view there would
    scan every result again."""
    for name in catalog.units_names():
        assert reads(rollup_sql(name)) <= {*ROLLUPS, "indicator_constants"}, name


def test_a_cycle_is_reported_with_its_path() -> None:
    sources = {
        "a": "select * from b",
        "b": "with x as (select 1 as one) select * from c join x on true",
        "c": "select * from a",
        "d": "select * from probes",
    }
    with pytest.raises(
        SqlCatalogError, match=r"views read each other in a cycle: a -> b -> c -> a"
    ):
        creation_order(sources, kind="view", available=frozenset({"probes"}))
    with pytest.raises(SqlCatalogError, match="view a reads from itself"):
        creation_order({"a": "select * from a"}, kind="view")


def test_an_unknown_reference_is_reported_with_the_file_and_the_name() -> None:
    sources = {"zone_sites": "select * from probes p left join gigabit_lines g using (probe_id)"}
    with pytest.raises(SqlCatalogError, match=r"view zone_sites reads from 'gigabit_lines'"):
        creation_order(sources, kind="view", available=frozenset({"probes"}))


def test_the_real_views_may_read_only_views_and_known_tables() -> None:
    """An unknown name in one of the real files fails the import of the catalog."""
    sources = {name: view_sql(name) for name in VIEW_ORDER}
    sources["probe_download"] += "\nunion all select * from throughput_checkd"
    with pytest.raises(SqlCatalogError, match="throughput_checkd"):
        creation_order(
            sources, kind="view", available=catalog.store_tables() | {"indicator_constants"}
        )


def test_what_a_file_reads() -> None:
    sql = """
    -- read from the comment's table: not a reference
    with days as (select * from rollup_download),
    ops as (select 'from nowhere' as text from generate_series(1, 3))
    select * from days
    semi join rollup_dirty d using (probe_id)
    left join main.probes p on true
    cross join ops
    where local_day in (select local_day from Rollup_Upload)
    """
    assert reads(sql) == {"rollup_download", "rollup_dirty", "probes", "rollup_upload"}
