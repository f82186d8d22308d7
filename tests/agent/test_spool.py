"""The spool keeps every result until an ack covers it, survives a reopen,
stays within its bound and counts what it had to drop."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agent.spool import Spool, SpoolFull


def _fill(spool: Spool, count: int, start: int = 0) -> list[str]:
    ids = [f"id-{i:05d}" for i in range(start, start + count)]
    for result_id in ids:
        spool.add(result_id, "download", result_id.encode())
    return ids


def test_results_survive_a_reopen_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite")
    ids = _fill(spool, 5)
    spool.close()

    reopened = Spool(tmp_path / "spool.sqlite")
    pending = reopened.pending(after_seq=0, limit=10)

    assert [p.result_id for p in pending] == ids
    assert [p.payload for p in pending] == [i.encode() for i in ids]


def test_only_acknowledged_results_leave_and_refused_ones_are_kept_with_the_reason(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "spool.sqlite")
    _fill(spool, 4)
    first_two = spool.pending(after_seq=0, limit=2)

    spool.acknowledge(
        [p.seq for p in first_two], rejected=[(first_two[1].seq, "ward_code: unknown")]
    )

    assert spool.depth() == 2
    assert [p.result_id for p in spool.pending(0, 10)] == ["id-00002", "id-00003"]
    assert [(rid, why) for rid, why, _ in spool.rejected()] == [("id-00001", "ward_code: unknown")]


def test_pending_after_a_sequence_skips_what_is_in_flight(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite")
    _fill(spool, 6)
    in_flight = spool.pending(0, 4)

    rest = spool.pending(in_flight[-1].seq, 4)

    assert [p.result_id for p in rest] == ["id-00004", "id-00005"]


def test_a_full_spool_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite", max_rows=100)
    _fill(spool, 130)

    assert spool.depth() == 100
    assert spool.counter("dropped_results") == 30
    assert spool.pending(0, 1)[0].result_id == "id-00030"


def test_adding_the_same_result_twice_keeps_one(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite")
    spool.add("same", "download", b"a")
    spool.add("same", "download", b"a")
    assert spool.depth() == 1


def test_state_for_status(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.sqlite")
    assert spool.get_state("last_upload_at") is None
    spool.set_state("last_upload_at", "2026-11-23T10:00:00+00:00")
    spool.set_state("last_upload_at", "2026-11-23T11:00:00+00:00")
    assert spool.get_state("last_upload_at") == "2026-11-23T11:00:00+00:00"


def _can_mount() -> tuple[bool, str]:
    import os
    import shutil

    if os.geteuid() != 0:
        return False, "needs root to mount a small tmpfs"
    if shutil.which("mount") is None:
        return False, "`mount` is not installed"
    return True, ""


@pytest.mark.skipif(not _can_mount()[0], reason=_can_mount()[1])
def test_a_full_disk_is_a_clear_error_and_loses_nothing_already_spooled(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], check=True)
    try:
        spool = Spool(disk / "spool.sqlite")
        stored = 0
        with pytest.raises(SpoolFull, match="disk is full"):
            for i in range(100_000):
                spool.add(f"id-{i:06d}", "download", b"x" * 200)
                stored += 1
        assert stored > 0
        subprocess.run(["mount", "-o", "remount,size=4m", str(disk)], check=True)
        spool.add("after", "download", b"y")
        kept = spool.pending(0, stored + 10)
        assert [p.result_id for p in kept] == [f"id-{i:06d}" for i in range(stored)] + ["after"]
        spool.close()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
