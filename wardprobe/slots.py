"""Test slots: no more than a pool's worth of throughput tests at one server at once.

The aggregator assigns them (`assign_slot`, in its config RPC); the agent
waits for its slot (`seconds_until_slot`) before a throughput test.

An iperf3 server takes one test per port, and tests that run at the same
time share the server's uplink, so a probe measuring beside nine others
would report a tenth of the line. The aggregator therefore gives each probe
a slot through the config RPC: the active probes, in a stable order (their
ids), are cut into groups of `capacity` (the pool's size unless configured
lower); group g starts its throughput tests in [g·length, (g+1)·length) of
every period of groups × length seconds, UTC. Within a group each probe
tries its own port first. Probes that ignore their slot are still safe:
the pool answers "busy", and the agent backs off (agent/measurements/
throughput/run.py), so a busy server never yields a wrong number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Slot:
    """One probe's slot and the order it tries the ports in."""

    period_s: int
    offset_s: int
    length_s: int
    port_order: tuple[int, ...]


def assign_slot(
    probe_id: str,
    active_probe_ids: Sequence[str],
    ports: Sequence[int],
    *,
    length_s: int,
    capacity: int | None = None,
) -> Slot:
    """The slot of `probe_id` among `active_probe_ids` (it is added if missing)."""
    if not ports:
        raise ValueError("no iperf3 ports to hand out")
    if length_s < 1:
        raise ValueError(f"length_s must be positive, got {length_s}")
    size = min(capacity or len(ports), len(ports))
    ordered = sorted(set(active_probe_ids) | {probe_id})
    rank = ordered.index(probe_id)
    groups = -(-len(ordered) // size)
    first = rank % size
    return Slot(
        period_s=groups * length_s,
        offset_s=(rank // size) * length_s,
        length_s=length_s,
        port_order=tuple(ports[first:]) + tuple(ports[:first]),
    )


def seconds_until_slot(now_s: float, period_s: int, offset_s: int, length_s: int) -> float:
    """How long a probe waits at UTC time `now_s` until it is inside its slot (0: it is)."""
    if period_s <= 0:
        return 0.0
    into = (now_s - offset_s) % period_s
    return 0.0 if into < length_s else period_s - into
