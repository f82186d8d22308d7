"""What bounds the aggregator's memory in a burst: the bytes of received
batches in flight over all streams, and the store's DuckDB settings."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.config import load_config
from aggregator.enrolment.registry import ProbeIdentity, SiteClass
from aggregator.ingest.batch_reader import IngestLimits, read_batch
from aggregator.ingest.commit import EMBEDDED_GROUP_ROWS, BatchConverter, GroupCommitter, ReadBatch
from aggregator.ingest.events import GroupCommitted, NoObserver
from aggregator.ingest.service import _InFlight
from aggregator.ingest.store import Store, StoreSettings
from aggregator.ingest.tables import RESULT_TABLES
from analysis.wards import can_tho_wards
from tests.integration.conftest import NINH_KIEU, throughput_result
from wardprobe.v1 import ingest_pb2


async def test_a_batch_over_the_in_flight_limit_waits_until_one_is_answered() -> None:
    in_flight = _InFlight(limit=16)
    await in_flight.take(10)

    second = asyncio.create_task(in_flight.take(10))
    await asyncio.sleep(0)
    waited = not second.done()
    in_flight.give(10)
    await asyncio.wait_for(second, timeout=5)

    assert waited


async def test_a_batch_larger_than_the_limit_goes_alone() -> None:
    in_flight = _InFlight(limit=16)

    await asyncio.wait_for(in_flight.take(100), timeout=5)  # nothing else in flight
    after = asyncio.create_task(in_flight.take(1))
    await asyncio.sleep(0)
    waited = not after.done()
    in_flight.give(100)
    await asyncio.wait_for(after, timeout=5)

    assert waited


def test_the_store_takes_its_memory_limit_and_checkpoint_threshold(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.duckdb")

    store.configure(StoreSettings(memory_limit_mib=96, checkpoint_threshold_mib=8))

    settings = dict(
        store.query(
            "select name, value from duckdb_settings()"
            " where name in ('memory_limit', 'checkpoint_threshold')"
        )
    )
    assert settings == {"memory_limit": "96.0 MiB", "checkpoint_threshold": "8.0 MiB"}
    store.close()


class _GroupSizes(NoObserver):
    def __init__(self) -> None:
        self.rows: list[int] = []

    def group_committed(self, group: GroupCommitted) -> None:
        self.rows.append(sum(group.stored.values()))


def _batches(count: int, size: int) -> list[ReadBatch]:
    """`count` read batches of `size` download results, each id a UUIDv7 of
    its own measurement time (uuid6.uuid7() made this often runs ahead of
    the clock, into ids the aggregator refuses as from the future)."""
    rng = random.Random(7)
    limits = IngestLimits()
    probe = ProbeIdentity("wp-1", NINH_KIEU, SiteClass.HOUSEHOLD)
    at = datetime.now(UTC) - timedelta(hours=1)
    batches = []
    for sequence in range(1, count + 1):
        results = []
        for _ in range(size):
            at += timedelta(milliseconds=10)
            value = (int(at.timestamp() * 1000) << 80) | (0x7 << 76) | (0b10 << 62)
            value |= rng.getrandbits(12) << 64 | rng.getrandbits(62)
            results.append(throughput_result(measured_at=at, result_id=str(uuid.UUID(int=value))))
        raw = ingest_pb2.ResultBatch(sequence=sequence, results=results).SerializeToString()
        batches.append(ReadBatch.from_outcome(read_batch(raw, limits), probe, datetime.now(UTC)))
    return batches


async def test_a_burst_commits_in_groups_of_at_most_the_embedded_group_rows(
    tmp_path: Path,
) -> None:
    # The group's size is most of the peak memory in a burst: a burst of 21
    # batches queued at once is two groups, none over the bound, all stored.
    store = Store(tmp_path / "store.duckdb")
    converter = BatchConverter(
        {t: store.arrow_schema(t) for t in RESULT_TABLES},
        frozenset(can_tho_wards()),
        IngestLimits(),
    )
    groups = _GroupSizes()
    committer = GroupCommitter(store, converter, observer=groups)
    committer.start()

    done = [committer.submit(batch) for batch in _batches(21, 1000)]
    outcomes = await asyncio.wait_for(asyncio.gather(*done), timeout=60)
    await committer.stop()

    assert groups.rows == [EMBEDDED_GROUP_ROWS, 1_000]
    assert sum(o.stored for o in outcomes) == store.count("throughput") == 21_000
    store.close()


def test_the_serving_process_hands_freed_blocks_back_to_the_system() -> None:
    # Half of 64 blocks of 1 MiB freed, the other half still live between
    # them: glibc's default (its threshold raised by the first block freed)
    # keeps the freed half resident in its heap; serve's setting returns it.
    script = textwrap.dedent(
        """
        import psutil, pyarrow as pa
        from aggregator.central import hand_back_freed_memory
        hand_back_freed_memory()
        first = b"x" * 2**20
        del first
        process = psutil.Process()
        blocks = [b"x" * 2**20 for _ in range(64)]
        peak = process.memory_info().rss
        del blocks[::2]
        print(pa.default_memory_pool().backend_name, (peak - process.memory_info().rss) >> 20)
        """
    )
    pool, returned_mib = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()

    assert pool == "system"
    assert int(returned_mib) >= 28  # of the 32 MiB freed


def test_the_store_is_limited_to_64_mib_by_default(tmp_path: Path) -> None:
    # Rows appended and not yet checkpointed stay in DuckDB's memory up to
    # its limit (beyond it they wait in its temporary file): with 128 MiB
    # that was most of the aggregator's memory after a burst.
    config = load_config(None)
    store = Store(tmp_path / "store.duckdb")

    store.configure(StoreSettings(memory_limit_mib=config.store_memory_limit_mib))

    assert store.query("select current_setting('memory_limit')") == [("64.0 MiB",)]
    store.close()
