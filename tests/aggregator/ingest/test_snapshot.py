"""The analysts' read path: a snapshot published while the store stays open
for writing, with the views and rollups in it, kept up to date incrementally."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from aggregator.ingest.snapshot import publish_snapshot
from aggregator.ingest.store import Store
from analysis.indicators import VIEW_ORDER, compute_indicators, parse_period
from analysis.rollups import ROLLUPS
from analysis.synthetic import SyntheticSpec, WardSpec, generate

DOC = Path(__file__).resolve().parents[3] / "docs" / "schema.md"
WARDS = (
    WardSpec(31117, site_class="it_park"),
    WardSpec(31120, slow_port_share=0.5),
    WardSpec(31123, lte_only_modem_share=0.5),
)


def _spec(month: int, seed: int) -> SyntheticSpec:
    return SyntheticSpec(
        wards=WARDS,
        start=datetime(2026, month, 1, tzinfo=UTC),
        end=datetime(2026, month + 1, 1, tzinfo=UTC),
        throughput_rows=1500,
        latency_rows=1500,
        cellular_rows=1500,
        ipv6_rows=300,
        seed=seed,
    )


def _figures(path: Path) -> list[tuple[str, str, float | None]]:
    with duckdb.connect(str(path), read_only=True) as con:
        report = compute_indicators(con, parse_period("2026"), synthetic=True)
    return [(f.indicator, f.scope, f.value) for f in report.figures]


def test_snapshot_while_writing_and_incremental_rollups(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.duckdb")
    generate(store._con, _spec(3, 1))
    snap = tmp_path / "published" / "snapshot.duckdb"
    first = publish_snapshot(store, snap)
    assert first.stale_probe_days > 0
    # the store is still open for writing: more results arrive, then republish
    generate(store._con, _spec(4, 2))
    second = publish_snapshot(store, snap)
    assert 0 < second.stale_probe_days < first.stale_probe_days + 1000
    store.close()

    # incremental rollups give what a rebuild from the store gives
    rebuilt = _figures(tmp_path / "store.duckdb")
    published = _figures(snap)
    assert [f[:2] for f in published] == [f[:2] for f in rebuilt]
    for (_, _, a), (_, _, b) in zip(published, rebuilt, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            assert a == pytest.approx(b, rel=1e-9)

    with duckdb.connect(str(snap), read_only=True) as con:
        names = {str(r[0]) for r in con.execute("select view_name from duckdb_views()").fetchall()}
        assert set(VIEW_ORDER) <= names
        info = con.execute("select results from snapshot_info").fetchone()
        assert info is not None and info[0] == 2 * (1500 + 1500 + 1500 + 300)
        assert not list(snap.parent.glob("*.publishing*"))


def _snapshot_examples() -> list[str]:
    return re.findall(r"```sql snapshot\n(.*?)```", DOC.read_text("utf-8"), flags=re.DOTALL)


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("snapshot")
    store = Store(root / "store.duckdb")
    spec = SyntheticSpec(
        wards=(*WARDS, WardSpec(31126), WardSpec(31129, site_class="high_tech_park")),
        start=datetime(2026, 1, 1, tzinfo=UTC),
        end=datetime(2026, 12, 1, tzinfo=UTC),
        throughput_rows=6000,
        latency_rows=4000,
        cellular_rows=4000,
        ipv6_rows=800,
        seed=5,
    )
    generate(store._con, spec)
    path = root / "snapshot.duckdb"
    publish_snapshot(store, path)
    store.close()
    return path


def test_there_are_ten_examples() -> None:
    assert len(_snapshot_examples()) >= 10


@pytest.mark.parametrize("query", _snapshot_examples(), ids=lambda q: q.split("\n")[0][:50])
def test_every_analyst_example_answers(snapshot: Path, query: str) -> None:
    with duckdb.connect(str(snapshot), read_only=True) as con:
        # the synthetic rows stand in for real ones here
        con.execute("set variable synthetic = true")
        for statement in [s for s in query.split(";") if s.strip()]:
            rows = con.execute(statement).fetchall()
        assert rows, query


def _documented_views() -> dict[str, list[tuple[str, str]]]:
    text = DOC.read_text("utf-8")
    out = {}
    for part in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        title = part.splitlines()[0].strip()
        if m := re.fullmatch(r"([a-z0-9_]+) \((view|snapshot table)\)", title):
            out[m[1]] = [
                (name, type_.strip())
                for name, type_ in re.findall(
                    r"^\| ([a-z0-9_]+) \| ([A-Z ]+) \|", part, flags=re.MULTILINE
                )
            ]
    return out


def test_every_view_is_documented_as_described(snapshot: Path) -> None:
    documented = _documented_views()
    with duckdb.connect(str(snapshot), read_only=True) as con:
        snapshot_tables = (
            "indicator_constants",
            "snapshot_info",
            "snapshot_watermarks",
            "snapshot_stale",
            "rollup_keys",
            *ROLLUPS,
        )
        for view in (*VIEW_ORDER, *snapshot_tables):
            described = [(str(r[0]), str(r[1])) for r in con.execute(f"describe {view}").fetchall()]
            assert documented.get(view) == described, view


async def test_the_running_aggregator_publishes_a_snapshot_analysts_can_open(
    tmp_path: Path,
) -> None:
    import asyncio

    from aggregator.central import Aggregator
    from aggregator.config import AggregatorConfig
    from aggregator.enrolment.ca import init_ca
    from emulation.deployment import free_tcp_port

    state = tmp_path / "aggregator"
    init_ca(state, ["localhost", "127.0.0.1"])
    ingest, enrol = free_tcp_port(), free_tcp_port()
    snap = tmp_path / "published" / "snapshot.duckdb"
    config = AggregatorConfig(
        state_dir=state,
        store_path=state / "wardprobe.duckdb",
        ingest_listen=f"127.0.0.1:{ingest}",
        enrol_listen=f"127.0.0.1:{enrol}",
        ingest_public_address=f"127.0.0.1:{ingest}",
        snapshot_path=snap,
        snapshot_interval_s=10,
        grace_period_s=0.5,
    )
    async with Aggregator(config):
        # The first publication starts at once; the limit is only a guard
        # against a hang, not a claim about how fast it is made.
        async with asyncio.timeout(240):
            while not snap.exists():
                await asyncio.sleep(0.05)
        # the aggregator holds the store; the snapshot opens read-only beside it
        with duckdb.connect(str(snap), read_only=True) as con:
            assert con.execute("select count(*) from gigabit_capable").fetchone() == (0,)
            report = compute_indicators(con, parse_period("2026"))
        assert all(f.status == "insufficient data" for f in report.figures)
