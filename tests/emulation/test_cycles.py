"""Which of the demo's measurement cycles start side by side (emulation/cycles.py):
no more seats at the reference server than it has iperf3 ports, one cycle at a
time per box, a gigabit line alone."""

from __future__ import annotations

from pathlib import Path

from emulation.cycles import Cycle, measures_alone, planned, startable
from emulation.deployment import ProbeBox
from emulation.shaping import FIBRE_1G, FIBRE_300, LTE, NR5G, LinkProfile


def _box(name: str, profile: LinkProfile | None) -> ProbeBox:
    return ProbeBox(
        name=name,
        netns=None,
        state_dir=Path(name),
        config_path=Path(name) / "agent.toml",
        probe_id=f"wp-{name}",
        ward_code=31135,
        site_class="household",
        profile=profile,
    )


HOME_1G = _box("home", FIBRE_1G)
OTHERS = [_box(f"b{i}", p) for i, p in enumerate((FIBRE_300, LTE, NR5G, FIBRE_300, LTE))]


def _names(cycles: list[Cycle]) -> list[str]:
    return [f"{c.box.name}/{c.number}" for c in cycles]


def test_only_a_gigabit_line_measures_alone() -> None:
    assert measures_alone(FIBRE_1G)
    assert not any(measures_alone(p) for p in (FIBRE_300, LTE, NR5G, None))
    assert [c.alone for c in planned([HOME_1G, *OTHERS[:1]], 1)] == [True, False]


def test_cycle_by_cycle_in_the_boxes_order() -> None:
    assert _names(planned([OTHERS[0], OTHERS[1]], 2)) == ["b0/1", "b1/1", "b0/2", "b1/2"]


def test_no_more_at_once_than_the_pool_has_ports() -> None:
    pending = planned(OTHERS, 2)
    first = startable(pending, busy_boxes=set(), seats_held=0, alone_holds=False, capacity=4)
    assert _names(first) == ["b0/1", "b1/1", "b2/1", "b3/1"]
    # one seat freed, b0 still running its last tests: b4 takes the seat, not b0's next cycle
    rest = [c for c in pending if c not in first]
    busy = {"b0", "b1", "b2", "b3"}
    assert _names(
        startable(rest, busy_boxes=busy, seats_held=3, alone_holds=False, capacity=4)
    ) == ["b4/1"]
    assert startable(rest, busy_boxes=busy, seats_held=4, alone_holds=False, capacity=4) == []


def test_a_box_runs_one_cycle_at_a_time() -> None:
    pending = planned(OTHERS[:2], 2)[2:]  # both boxes' second cycles
    assert (
        startable(pending, busy_boxes={"b0", "b1"}, seats_held=0, alone_holds=False, capacity=4)
        == []
    )


def test_the_gigabit_line_waits_for_every_seat_and_holds_the_server_alone() -> None:
    pending = planned([HOME_1G, *OTHERS], 1)
    # first in line and nothing held: it starts, and nothing beside it
    assert _names(
        startable(pending, busy_boxes=set(), seats_held=0, alone_holds=False, capacity=4)
    ) == ["home/1"]
    # while it holds its seat, nothing else starts
    assert (
        startable(pending[1:], busy_boxes={"home"}, seats_held=1, alone_holds=True, capacity=4)
        == []
    )
    # behind others it waits until no seat is held; the others go on meanwhile
    later = [*OTHERS[:2], HOME_1G]
    pending = planned(later, 1)
    assert _names(
        startable(pending, busy_boxes=set(), seats_held=0, alone_holds=False, capacity=4)
    ) == ["b0/1", "b1/1"]
    assert _names(
        startable(pending[2:], busy_boxes={"b0", "b1"}, seats_held=0, alone_holds=False,
                  capacity=4)
    ) == ["home/1"]  # fmt: skip
