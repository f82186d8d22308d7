"""Test slots: at most a pool's worth of probes per slot, and when a probe may start."""

from __future__ import annotations

from collections import Counter

import pytest

from wardprobe.slots import assign_slot, seconds_until_slot

PORTS = (5201, 5202, 5203, 5204)


def test_no_slot_holds_more_probes_than_the_pool_has_ports() -> None:
    probes = [f"wp-{i:03d}" for i in range(10)]
    slots = {p: assign_slot(p, probes, PORTS, length_s=60) for p in probes}
    per_offset = Counter(s.offset_s for s in slots.values())
    assert max(per_offset.values()) <= len(PORTS)
    assert sorted(per_offset) == [0, 60, 120]  # ten probes, four at a time
    assert {s.period_s for s in slots.values()} == {180}
    # Within a slot each probe tries a different port first.
    for offset in per_offset:
        firsts = [s.port_order[0] for s in slots.values() if s.offset_s == offset]
        assert len(firsts) == len(set(firsts))
    assert all(sorted(s.port_order) == list(PORTS) for s in slots.values())


def test_a_configured_capacity_below_the_pool_size() -> None:
    probes = [f"wp-{i}" for i in range(4)]
    offsets = {assign_slot(p, probes, PORTS, length_s=30, capacity=1).offset_s for p in probes}
    assert offsets == {0, 30, 60, 90}


def test_a_new_probe_gets_a_slot_before_it_is_listed() -> None:
    slot = assign_slot("wp-new", [], PORTS, length_s=60)
    assert (slot.period_s, slot.offset_s) == (60, 0)


@pytest.mark.parametrize(
    ("now", "expected"),
    [(1000.0, 0.0), (1059.0, 0.0), (1060.0, 120.0), (1170.0, 10.0), (1180.0, 0.0)],
)
def test_waiting_for_the_slot(now: float, expected: float) -> None:
    # Period 180 s, the slot is [1000 mod 180 = 100, 160) of each period.
    assert seconds_until_slot(now, 180, 1000 % 180, 60) == pytest.approx(expected)
    assert seconds_until_slot(now, 0, 0, 0) == 0.0
