"""The lake store (DuckLake, PostgreSQL catalogue): exactly-once across
replicas, the analysts' read-only attach, compaction, and its spec."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa
import pytest

from aggregator.ingest import lake as lake_module
from aggregator.ingest.lake import LakeStore, connect_lake, extension_files
from aggregator.ingest.store import ProbeRow
from aggregator.ingest.stores import EmbeddedSpec, LakeSpec, StoreSpecError, parse_store_spec
from emulation.postgres import PostgresCluster

SCALING_MD = Path(__file__).resolve().parents[3] / "docs" / "scaling.md"


def _lake(spec: str) -> LakeSpec:
    parsed = parse_store_spec(spec)
    assert isinstance(parsed, LakeSpec)
    return parsed


def _ids(n: int, start: datetime) -> list[str]:
    """n UUIDv7 ids whose time prefix is `start` (ms) plus their position."""
    ms = int(start.timestamp() * 1000)
    stamps = [f"{ms + i:012x}" for i in range(n)]
    return [f"{h[:8]}-{h[8:]}-7000-8000-{i:012x}" for i, h in enumerate(stamps)]


def _latency(ids: list[str], when: datetime) -> pa.Table:
    n = len(ids)
    return pa.table(
        {
            "result_id": ids,
            "probe_id": ["wp-1"] * n,
            "ward_code": [31135] * n,
            "measured_at": [when] * n,
            "received_at": [when] * n,
            "network_kind": ["fixed"] * n,
            "clock_sync": ["synchronised"] * n,
            "status": ["ok"] * n,
            "protocol": ["icmp"] * n,
        }
    )


NOW = datetime(2026, 5, 1, 3, 0, tzinfo=UTC)


def test_a_resent_result_is_stored_once_after_a_day_a_week_and_a_month(lake_spec: str) -> None:
    store = LakeStore(_lake(lake_spec))
    ids = _ids(50, NOW)
    first = store.insert_new_results({"latency": _latency(ids, NOW)})
    later = [
        store.insert_new_results({"latency": _latency(ids[:10] + _ids(1, NOW + gap), NOW + gap)})
        for gap in (timedelta(days=1), timedelta(days=7), timedelta(days=30))
    ]

    assert first["latency"].all()
    for stored in later:  # the ten re-sent are duplicates, the one new id is stored
        assert stored["latency"].tolist() == [False] * 10 + [True]
    assert store.count("latency") == 53
    assert store.count("result_ids") == 53
    store.close()


def test_the_lookup_reads_only_the_files_of_the_batchs_window(lake_spec: str) -> None:
    store = LakeStore(_lake(lake_spec))
    for day in range(4):  # four commits, four days: four result_ids files
        when = NOW + timedelta(days=day)
        store.insert_new_results({"latency": _latency(_ids(200, when), when)})
    window = _ids(5, NOW + timedelta(days=2))

    plan = store.query(
        "explain analyze select count(*) from result_ids "
        "where result_id between ?::uuid and ?::uuid",
        [window[0], window[-1]],
    )[0][1]

    assert store.data_files() >= 8  # result_ids and latency, a file each per commit
    assert re.search(r"Total Files Read: 1\b", plan), plan
    store.close()


def test_an_id_is_one_result_whatever_table_it_names(lake_spec: str) -> None:
    store = LakeStore(_lake(lake_spec))
    ids = _ids(2, NOW)
    throughput = (
        _latency(ids, NOW)
        .drop_columns(["protocol"])
        .append_column("direction", pa.array(["download"] * 2))
    )
    stored = store.insert_new_results({"throughput": throughput, "latency": _latency(ids[:1], NOW)})
    assert {t: m.tolist() for t, m in stored.items()} == {
        "throughput": [True, True],
        "latency": [False],
    }
    assert (store.count("throughput"), store.count("latency")) == (2, 0)
    store.close()


class _LosesTheRace(LakeStore):
    """A replica whose commit comes just after another replica committed the
    same batch (an agent failed over mid-stream and re-sent it there)."""

    other: LakeStore
    batch: dict[str, pa.Table]
    attempts = 0

    def _commit_transaction(self) -> None:
        self.attempts += 1
        if self.attempts == 1:
            self.other.insert_new_results(self.batch)
        super()._commit_transaction()


def test_a_batch_sent_to_two_replicas_at_once_is_stored_once(lake_spec: str) -> None:
    spec = _lake(lake_spec)
    batch = {"latency": _latency(_ids(200, NOW), NOW)}
    winner = LakeStore(spec)
    loser = _LosesTheRace(spec)
    loser.other, loser.batch = winner, batch

    stored = loser.insert_new_results(batch)

    # its first commit lost to the winner's, and the retry found every id stored
    assert loser.attempts == 2
    assert not stored["latency"].any()
    assert winner.count("latency") == 200
    assert winner.query("select count(distinct result_id) from latency") == [(200,)]
    winner.close()
    loser.close()


def test_replicas_racing_on_the_same_batches_store_each_result_once(lake_spec: str) -> None:
    spec = _lake(lake_spec)
    batches = [{"latency": _latency(_ids(100, NOW + timedelta(minutes=n)), NOW)} for n in range(6)]
    replicas = [LakeStore(spec), LakeStore(spec)]
    stored = [0, 0]

    def send(replica: int) -> None:
        # each replica gets every batch, in its own order: they overlap however the threads run
        order = batches if replica == 0 else batches[::-1]
        for batch in order:
            stored[replica] += int(replicas[replica].insert_new_results(batch)["latency"].sum())

    threads = [threading.Thread(target=send, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(stored) == 600
    assert replicas[0].query("select count(*), count(distinct result_id) from latency") == [
        (600, 600)
    ]
    assert replicas[1].count("result_ids") == 600
    for replica in replicas:
        replica.close()


def test_the_parquet_files_are_on_disk_before_the_commit_names_them(
    lake_spec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _lake(lake_spec)
    store = LakeStore(spec)
    analyst = connect_lake(spec, read_only=True)
    seen: list[tuple[int, int]] = []
    sync = lake_module.sync_file_system

    def observed(directory: Path) -> None:
        files = list(Path(spec.data_path).rglob("latency/*.parquet"))
        committed = analyst.execute("select count(*) from latency").fetchone()
        assert committed is not None
        seen.append((len(files), committed[0]))
        sync(directory)

    monkeypatch.setattr(lake_module, "sync_file_system", observed)
    store.insert_new_results({"latency": _latency(_ids(500, NOW), NOW)})

    # synced once, when the file was written and nothing was committed yet
    assert seen == [(1, 0)]
    assert analyst.execute("select count(*) from latency").fetchone() == (500,)
    analyst.close()
    store.close()


def test_analysts_attach_read_only_and_see_what_was_acked(lake_spec: str) -> None:
    spec = _lake(lake_spec)
    store = LakeStore(spec)
    analyst = connect_lake(spec, read_only=True)
    assert analyst.execute("select count(*) from latency").fetchone() == (0,)

    store.insert_new_results({"latency": _latency(_ids(5, NOW), NOW)})

    # a new query is a new snapshot: what insert_new_results returned from is there
    assert analyst.execute("select count(*) from latency").fetchone() == (5,)
    with pytest.raises(duckdb.Error, match=r"read-only|read only"):
        analyst.execute("delete from latency")
    analyst.close()
    store.close()


def test_compaction_folds_small_commits_into_fewer_files(lake_spec: str) -> None:
    store = LakeStore(_lake(lake_spec))
    for day in range(6):  # six groups of 300: each its own Parquet file
        when = NOW + timedelta(days=day)
        store.insert_new_results({"latency": _latency(_ids(300, when), when)})
    before = store.data_files()

    stats = store.compact(keep_snapshots_s=0)

    assert stats.files_before == before
    assert stats.files_after < before
    assert store.count("latency") == 1800
    assert store.query("select count(distinct result_id) from latency") == [(1800,)]
    store.close()


@pytest.mark.timeout(120)
def test_compaction_succeeds_while_the_same_replica_keeps_committing(lake_spec: str) -> None:
    """Compaction runs in a thread of the replica beside ingest. Flushing every
    table's inlined rows at once rewrote the fence's, which each commit
    changes: any commit made during the flush made it fail (PostgreSQL's
    "could not serialize access"), so under steady ingest it never succeeded.
    The registry's mirror (probes, rewritten whole) likewise."""
    store = LakeStore(_lake(lake_spec))
    probe = ProbeRow("wp-1", 31135, None, "household", None, None, NOW, None, None, "active", None)
    for minute in range(30):
        when = NOW + timedelta(minutes=minute)
        store.insert_new_results({"latency": _latency(_ids(20, when), when)})
    stop = threading.Event()
    committed: list[int] = []
    failures: list[BaseException] = []

    def ingest() -> None:
        minute = 1000
        while not stop.is_set():
            when = NOW + timedelta(minutes=minute)
            try:
                store.insert_new_results({"latency": _latency(_ids(20, when), when)})
                store.replace_probes([probe])
            except BaseException as err:  # reported by the test, not lost in the thread
                failures.append(err)
                return
            committed.append(minute)
            minute += 1

    thread = threading.Thread(target=ingest)
    thread.start()
    try:
        runs = []
        for _ in range(3):
            seen = len(committed)
            runs.append(store.compact(keep_snapshots_s=0))
            # Wait for a commit between runs, so each run overlaps ingest.
            while len(committed) == seen and thread.is_alive():
                time.sleep(0.01)
    finally:
        stop.set()
        thread.join()
    assert failures == []
    assert runs[0].files_after < runs[0].files_before
    rows = 20 * (30 + len(committed))
    assert store.query("select count(*), count(distinct result_id) from latency") == [(rows, rows)]
    assert store.query(f"select commits from {lake_module.FENCE}") == [(30 + 2 * len(committed),)]
    assert store.query("select probe_id from probes") == [("wp-1",)]
    store.close()


def test_store_specs_name_the_file_or_the_lake_and_its_data_path() -> None:
    assert parse_store_spec("duckdb:/srv/w.duckdb") == EmbeddedSpec(
        __import__("pathlib").Path("/srv/w.duckdb")
    )
    lake = _lake(
        "ducklake:postgres://ward:secret@db.example:5433/lake?sslmode=require&data_path=/srv/lake"
    )
    assert lake == LakeSpec(
        "postgres://ward:secret@db.example:5433/lake?sslmode=require", "/srv/lake"
    )
    assert "secret" not in str(lake)
    for bad in (
        "sqlite:x",
        "ducklake:postgres://h/db",
        "ducklake:mysql://h/db?data_path=/x",
        "duckdb:",
    ):
        with pytest.raises(StoreSpecError):
            parse_store_spec(bad)


def test_the_analysts_sql_in_the_docs_reads_the_lake_as_a_reading_role(
    lake_spec: str, postgres: PostgresCluster
) -> None:
    spec = _lake(lake_spec)
    database = urlsplit(spec.catalogue_uri).path.lstrip("/")
    store = LakeStore(spec)
    # What docs/scaling.md tells the operator to grant (tables made later too).
    postgres.execute(
        database,
        "do $$ begin if not exists (select from pg_roles where rolname = 'analyst') "
        "then create role analyst login; end if; end $$; "
        "grant select on all tables in schema public to analyst; "
        "alter default privileges in schema public grant select on tables to analyst;",
    )
    when = NOW
    store.insert_new_results({"throughput": _downloads(_ids(3, when), when, [10.0, 20.0, 40.0])})
    text = SCALING_MD.read_text("utf-8")
    block = re.search(r"<!-- analyst-sql[^>]*-->\n```sql\n(.*?)```", text, re.S)
    assert block is not None
    ducklake, postgres_scanner = extension_files()
    analyst_uri = spec.catalogue_uri.replace("postgres@", "analyst@", 1)
    sql = (
        block[1]
        .replace("/opt/duckdb-ext/ducklake.duckdb_extension", str(ducklake))
        .replace("/opt/duckdb-ext/postgres_scanner.duckdb_extension", str(postgres_scanner))
        .replace("postgres://analyst@db.example/wardprobe_lake?sslmode=require", analyst_uri)
    )
    analyst = duckdb.connect(
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    )
    *setup, query = [part for part in sql.split(";") if part.strip()]
    for statement in setup:
        analyst.execute(statement)

    assert analyst.execute(query).fetchall() == [(31135, 3, 20.0)]
    store.insert_new_results(
        {"throughput": _downloads(_ids(1, NOW + timedelta(hours=1)), when, [30.0])}
    )
    # the next query reads the newest snapshot: the new result is there
    assert analyst.execute(query).fetchall() == [(31135, 4, 25.0)]
    analyst.close()
    store.close()


def _downloads(ids: list[str], when: datetime, mbps: list[float]) -> pa.Table:
    rows = _latency(ids, when).drop_columns(["protocol"])
    return rows.append_column("direction", pa.array(["download"] * len(ids))).append_column(
        "mbps", pa.array(mbps)
    )


def test_a_lake_made_by_an_older_release_gains_the_new_columns(lake_spec: str) -> None:
    spec = _lake(lake_spec)
    older = LakeStore(spec)
    older.insert_new_results({"latency": _latency(_ids(3, NOW), NOW)})
    older.query("alter table latency drop column access_tech")  # as an older release made it
    older.close()

    store = LakeStore(spec)

    columns = [row[0] for row in store.query("describe latency")]
    assert "access_tech" in columns
    assert store.query("select count(*), count(access_tech) from latency") == [(3, 0)]
    store.close()
