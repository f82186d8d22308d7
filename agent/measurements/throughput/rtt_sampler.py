"""Round trips to the server during a throughput test: idle just before it,
and loaded while the transfer runs (bufferbloat)."""

from __future__ import annotations

import statistics
import threading
import time

from agent.measurements import latency
from agent.measurements.base import Status
from agent.measurements.throughput.model import ThroughputParams


class RttSampler:
    """Round trips to the server, one at a time: idle before a test, or in a
    thread while it runs (loaded latency). ICMP echo first; when the probe
    may not send ICMP, a TCP connect to `rtt_tcp_port`."""

    def __init__(self, params: ThroughputParams) -> None:
        self._params = params
        self._protocol = latency.LatencyProtocol.ICMP
        self.rtts_ms: list[float] = []
        self._stop = threading.Event()

    def _one(self) -> float | None:
        port = None if self._protocol is latency.LatencyProtocol.ICMP else self._params.rtt_tcp_port
        try:
            probe = latency.LatencyParams(
                protocol=self._protocol,
                target=self._params.server_host,
                port=port,
                count=1,
                interval_s=0.0,
                timeout_s=1.0,
                interface=self._params.interface,
            )
        except ValueError:
            return None
        result = latency.run(probe)
        if result.status is Status.FAILED and result.packets_sent == 0:
            # No ICMP socket (no permission): the TCP connect time instead, if we have a port.
            if self._protocol is latency.LatencyProtocol.ICMP and self._params.rtt_tcp_port:
                self._protocol = latency.LatencyProtocol.TCP
            return None
        return result.rtt_median_ms

    def sample(self, count: int) -> None:
        """`count` samples, `rtt_interval_s` apart (idle latency)."""
        for index in range(count):
            if index:
                time.sleep(self._params.rtt_interval_s)
            rtt = self._one()
            if rtt is not None:
                self.rtts_ms.append(rtt)

    def _loop(self, skip_until: float) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            rtt = self._one()
            if rtt is not None and started >= skip_until:
                self.rtts_ms.append(rtt)
            self._stop.wait(max(0.0, self._params.rtt_interval_s - (time.monotonic() - started)))

    def running(self, skip_first_s: float) -> _SamplerRun:
        """A context in which a thread samples; samples from the first `skip_first_s`
        seconds (the warm-up) are dropped."""
        return _SamplerRun(self, skip_first_s)

    def median_ms(self) -> float | None:
        """Median of the samples (None without any)."""
        return statistics.median(self.rtts_ms) if self.rtts_ms else None

    def p95_ms(self) -> float | None:
        """95th percentile of the samples, as latency.summarise_rtts computes it."""
        return latency.summarise_rtts(self.rtts_ms).rtt_p95_ms


class _SamplerRun:
    def __init__(self, sampler: RttSampler, skip_first_s: float) -> None:
        self._sampler = sampler
        self._skip_first_s = skip_first_s
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RttSampler:
        skip_until = time.monotonic() + self._skip_first_s
        self._thread = threading.Thread(
            target=self._sampler._loop, args=(skip_until,), name="loaded-rtt", daemon=True
        )
        self._thread.start()
        return self._sampler

    def __exit__(self, *exc: object) -> None:
        self._sampler._stop.set()
        if self._thread is not None:
            self._thread.join()
