"""The API's data source and kept answers: a snapshot replaced by a rename
is read anew at once (DuckDB's per-path instance would keep the old file),
answers are computed once however many ask together, kept per snapshot,
the least recently used dropped first."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest

from aggregator.api.source import Answers, DataSource, Identity, NoData


def _file(path: Path, value: int) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("create table t as select ? as v", [value])


def test_a_renamed_snapshot_is_read_anew_while_the_old_one_is_open(tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot.duckdb"
    _file(snapshot, 1)
    source = DataSource(snapshot, "snapshot")
    with source.connect() as (old, first):
        assert old.execute("select v from t").fetchone() == (1,)
        _file(tmp_path / "next.duckdb", 2)
        os.replace(tmp_path / "next.duckdb", snapshot)  # as publish_snapshot does
        with source.connect() as (new, second):
            assert new.execute("select v from t").fetchone() == (2,)
            assert second != first
        assert old.execute("select v from t").fetchone() == (1,)  # the reader keeps its file


def test_no_snapshot_yet(tmp_path: Path) -> None:
    with (
        pytest.raises(NoData, match="no snapshot has been published yet"),
        DataSource(tmp_path / "none.duckdb", "snapshot").connect(),
    ):
        pass


def test_a_store_held_by_a_writer_says_to_read_the_snapshot(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    _file(store, 1)
    # another process holds the store for writing, as the aggregator does
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import duckdb,sys; c=duckdb.connect({str(store)!r}); print('held', flush=True); "
         "sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(NoData, match="set snapshot_path"),
            DataSource(store, "store").connect(),
        ):
            pass
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)


def _identity(n: int) -> Identity:
    return Identity(1, n, 100, n)


def test_answers_are_computed_once_for_all_who_ask_together() -> None:
    answers = Answers(8)
    release = threading.Event()
    calls: list[int] = []
    results: list[str] = []

    def slow() -> str:
        calls.append(1)
        release.wait()
        return "figures"

    askers = [
        threading.Thread(target=lambda: results.append(answers.get(("k",), slow)))
        for _ in range(4)
    ]
    for t in askers:
        t.start()
    # every asker is waiting on the one computation before it is let go
    while len(calls) < 1:
        threading.Event().wait(0.01)
    release.set()
    for t in askers:
        t.join()
    assert calls == [1] and results == ["figures"] * 4
    assert answers.computed == 1


def test_a_failed_computation_is_not_kept() -> None:
    answers = Answers(8)

    def broken() -> str:
        raise RuntimeError("snapshot unreadable")

    with pytest.raises(RuntimeError):
        answers.get(("k",), broken)
    assert answers.get(("k",), lambda: "now") == "now"


def test_answers_of_an_older_snapshot_are_dropped_and_lru_is_bounded() -> None:
    answers = Answers(2)
    old, new = _identity(1), _identity(2)
    answers.get((old, "a"), lambda: 1)
    answers.get((new, "a"), lambda: 2)
    answers.keep_only(new)
    assert not answers.has((old, "a")) and answers.has((new, "a"))
    answers.get((new, "b"), lambda: 3)
    answers.get((new, "a"), lambda: 0)  # used: now the most recent
    answers.get((new, "c"), lambda: 4)
    assert answers.has((new, "a")) and answers.has((new, "c")) and not answers.has((new, "b"))
