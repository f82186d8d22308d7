"""Delays between upload attempts, shared by the uploader and the daemon.

Kept apart from agent/uploader.py so the daemon can pace upload workers
without importing gRPC.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delays between reconnects: min(cap, base * 2^attempt), fully jittered
    (so a city of probes does not reconnect in step after an outage)."""

    base_s: float = 1.0
    cap_s: float = 300.0

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        """The wait before attempt number `attempt` (0 = the first retry)."""
        return rng.uniform(0.0, min(self.cap_s, self.base_s * 2 ** min(attempt, 30)))
