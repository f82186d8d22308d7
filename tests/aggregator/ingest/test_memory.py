"""What bounds the aggregator's memory in a burst: the bytes of received
batches in flight over all streams, and the store's DuckDB settings."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aggregator.ingest.service import _InFlight
from aggregator.ingest.store import Store, StoreSettings


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
