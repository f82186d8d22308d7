"""Measurement cycles of many probe boxes side by side, as many at once as
the reference server's pool takes (the demo's, `make demo`).

A cycle is `wardprobe-agent once` on one box: every scheduled test once,
one after the other. In a deployment the aggregator hands each probe a test
slot (wardprobe/slots.py) so that no more throughput tests reach the server
at once than it has iperf3 ports; `once` runs its tests now, whatever its
slot, so the demo keeps to the same bound itself. A cycle holds one of the
pool's seats from its start until its last throughput test has reported
(its upload: the result is on `once`'s standard output at once); it starts
only on a free seat, and a box runs one cycle at a time. What a box measures
after its upload (the IPv6 check, traceroute, path MTU, DNS) moves a few
packets and needs no seat.

Each box is on its own shaped line in its own namespaces, so side by side
the boxes share no bandwidth; what they share is the machine's CPU (the
shapers, the routers' forwarding, the delay lines and iperf3 itself). On
the 2-core machine the demo is made for, with two busy loops of other work
(vmstat: 0 % idle), four lines of 100 to 400 Mb/s measured side by side
each read 0.956 × its rate (the TCP payload of a full line, as alone), but
with the 1 Gb/s line among them every line read 4 to 10 % low (the 1 Gb/s
line 904 Mb/s, alone 956). A line of a gigabit or more therefore measures
alone (`ALONE_FROM_MBPS`): it starts only when no seat is held, and no other
cycle starts while it holds its own. Nothing else of the demo's runs
meanwhile (emulation/demo.py, _outputs, says what that did to the figures).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulation.deployment import Deployment, ProbeBox
from emulation.shaping import LinkProfile

# A line this fast loads the CPU enough to lower its neighbours' figures
# (module docstring): it measures alone.
ALONE_FROM_MBPS = 1000.0


@dataclass(frozen=True)
class Cycle:
    """One box's cycle number `number` (from 1), and whether it must measure alone."""

    box: ProbeBox
    number: int
    alone: bool


@dataclass
class CycleRun:
    """How one cycle went: the agent's exit code and JSON results, its log,
    and when it started and ended (seconds from the first cycle's start)."""

    cycle: Cycle
    log: Path
    started_s: float
    code: int | None = None  # None: killed at the time limit
    results: list[dict[str, Any]] = field(default_factory=list)
    seat_released_s: float | None = None
    ended_s: float | None = None

    @property
    def took_s(self) -> float:
        """Seconds from its start to its end."""
        return (self.ended_s or self.started_s) - self.started_s


def measures_alone(profile: LinkProfile | None) -> bool:
    """Whether a box on this line measures alone (None: loopback, never)."""
    return profile is not None and max(profile.down_mbps, profile.up_mbps) >= ALONE_FROM_MBPS


def planned(boxes: Sequence[ProbeBox], cycles: int) -> list[Cycle]:
    """Every box's cycles, cycle by cycle, in the boxes' order."""
    return [
        Cycle(box, number, measures_alone(box.profile))
        for number in range(1, cycles + 1)
        for box in boxes
    ]


def startable(
    pending: Sequence[Cycle],
    *,
    busy_boxes: Set[str],
    seats_held: int,
    alone_holds: bool,
    capacity: int,
) -> list[Cycle]:
    """The pending cycles that start now, in their order: each on a free seat
    (at most `capacity` held at once), one at a time per box, none while a
    cycle that measures alone holds its seat, and one that measures alone
    only when no seat is held."""
    if alone_holds:
        return []
    seats = seats_held
    busy = set(busy_boxes)
    started: list[Cycle] = []
    for cycle in pending:
        if seats >= capacity:
            break
        if cycle.box.name in busy:
            continue  # the box's previous cycle is still running
        if cycle.alone:
            if seats == 0:
                started.append(cycle)
                break
            continue
        started.append(cycle)
        seats += 1
        busy.add(cycle.box.name)
    return started


def _is_upload(result: dict[str, Any]) -> bool:
    body = result.get("throughput")
    return isinstance(body, dict) and str(body.get("direction", "")).endswith("UPLOAD")


def run_cycles(
    deployment: Deployment,
    boxes: Sequence[ProbeBox],
    cycles: int,
    *,
    logs: Path,
    on_end: Callable[[CycleRun], None] = lambda run: None,
    capacity: int | None = None,
    timeout_s: float = 300.0,
) -> list[CycleRun]:
    """Run `cycles` cycles of `wardprobe-agent once` on every box, side by
    side as the seats allow (`capacity`: the reference server's iperf3
    ports unless given). `on_end` is called, in this thread, as each cycle
    ends; its agent's stderr is in `logs`. A cycle still running after
    `timeout_s` is killed (its code is then None). The runs in start order."""
    seats = capacity or len(deployment.ports.iperf3)
    if seats < 1:
        raise ValueError("no seat at the reference server: it has no iperf3 port")
    logs.mkdir(parents=True, exist_ok=True)
    pending = planned(boxes, cycles)
    events: queue.Queue[tuple[str, CycleRun]] = queue.Queue()
    running: dict[str, tuple[CycleRun, subprocess.Popen[str]]] = {}
    holding: set[str] = set()  # boxes whose cycle holds a seat
    runs: list[CycleRun] = []
    t0 = time.monotonic()

    def read(run: CycleRun, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if not line.startswith("{"):
                continue
            result = json.loads(line)
            run.results.append(result)
            if _is_upload(result):
                events.put(("seat", run))
        process.wait()
        events.put(("end", run))

    while pending or running:
        alone = any(running[name][0].cycle.alone for name in holding)
        for cycle in startable(
            pending,
            busy_boxes=set(running),
            seats_held=len(holding),
            alone_holds=alone,
            capacity=seats,
        ):
            pending.remove(cycle)
            log = logs / f"agent-{cycle.box.name}-cycle{cycle.number}.log"
            run = CycleRun(cycle, log, started_s=time.monotonic() - t0)
            process = deployment.start_once(cycle.box, log)
            running[cycle.box.name] = (run, process)
            holding.add(cycle.box.name)
            runs.append(run)
            threading.Thread(target=read, args=(run, process), daemon=True).start()
        try:
            kind, run = events.get(timeout=1.0)
        except queue.Empty:
            _kill_overdue(running, t0, timeout_s)
            continue
        name = run.cycle.box.name
        now = time.monotonic() - t0
        if kind == "seat" or name in holding:
            # the upload has reported; a cycle that ends without one frees its seat at its end
            holding.discard(name)
            run.seat_released_s = now
        if kind == "end":
            _, process = running.pop(name)
            run.code = None if process.returncode == -signal.SIGKILL else process.returncode
            run.ended_s = now
            on_end(run)
    return runs


def _kill_overdue(
    running: dict[str, tuple[CycleRun, subprocess.Popen[str]]], t0: float, timeout_s: float
) -> None:
    """SIGKILL the process group of every cycle running for longer than timeout_s."""
    now = time.monotonic() - t0
    for run, process in running.values():
        if now - run.started_s > timeout_s and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
