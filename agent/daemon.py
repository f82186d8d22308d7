"""`wardprobe-agent run`: the scheduler that stays resident on the probe box.

A probe box is idle almost all the time: between tests it only waits. So
the resident process is kept small: it imports the standard library and
nothing else (no gRPC, no pydantic, no measurement code), and runs every
job in a worker process of its own (agent/worker.py) that exits when the
job is done, as RIPE Atlas' probes run each measurement as a child of the
scheduler. Jobs never overlap: a throughput test would disturb a latency
test on the same line, and an upload would disturb both.

- At start, a `plan` worker fetches the config (or reads its cache) and
  prints the schedule (agent/plan.py); an agent that cannot start (not enrolled, no
  schedule) exits with an error here, as before.
- Each test runs at its interval plus random jitter; a throughput test
  first waits for the probe's slot at the shared server; a test deferred
  by a busy line is tried again after `retry_after_s`.
- After each test an `upload` worker delivers the spool. When it fails the
  next attempt waits an exponential, fully jittered backoff (agent/backoff.py).
- A worker that crashes or overruns its time is logged and the schedule
  goes on; results the disk could not take come back here and are handed
  to the next test's worker (see agent/worker.py).
- At start, before its first test, the daemon waits (at most `[clock]
  wait_for_sync_s`) for the kernel to call the clock synchronised: a box
  without a real-time clock boots in the past until NTP has answered, and
  results it measures then do not count. After the bound it measures anyway;
  every result carries the clock's state (agent/clock.py).
- Under systemd (Type=notify, agent/sdnotify.py) it says READY=1 once the
  plan is made, STATUS= as it goes, and WATCHDOG=1 from its main loop, so
  that a hung daemon is restarted.
- SIGTERM or SIGINT: the running worker is asked to stop, then the daemon
  exits 0. Everything measured is in the spool (SQLite, committed per result).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import random
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.backoff import Backoff
from agent.clock import ClockState, clock_state
from agent.plan import MAX_HELD_RESULTS, Plan, PlannedTest
from agent.process import agent_parser, log_to_stderr, module_argv
from agent.sdnotify import Notifier
from wardprobe.slots import seconds_until_slot

log = logging.getLogger("agent.daemon")

# Longest an upload worker may run (a day's backlog takes seconds).
UPLOAD_TIMEOUT_S = 600.0
# Time a worker gets to stop after SIGTERM before it is killed.
STOP_GRACE_S = 10.0
# Beyond its tests' own timeouts, what a measure worker may spend starting
# and observing the modem before and after.
MEASURE_MARGIN_S = 120.0
# How often the plan is made again: the aggregator moves a probe's test slot
# as probes join, and may change the schedule.
PLAN_REFRESH_S = 3600.0
# How often the clock is asked while the daemon waits for it to be synchronised.
CLOCK_POLL_S = 5.0


@dataclass(frozen=True)
class WorkerOutcome:
    """How a worker ended: exit code (None: killed by us) and its JSON lines."""

    returncode: int | None
    lines: list[dict[str, Any]]


class Daemon:
    """The resident scheduler. `worker_argv` starts agent/worker.py; `notifier`
    talks to systemd; `clock` says whether the clock is synchronised (asked
    every `clock_poll_s` while the daemon waits for it at start)."""

    def __init__(
        self,
        worker_argv: list[str],
        rng: random.Random | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], ClockState] = clock_state,
        clock_poll_s: float = CLOCK_POLL_S,
    ) -> None:
        self._worker_argv = worker_argv
        self._rng = rng or random.Random()
        self._notifier = notifier or Notifier()
        self._clock = clock
        self._clock_poll_s = clock_poll_s
        self._stopping = False
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        self._held: collections.deque[str] = collections.deque(maxlen=MAX_HELD_RESULTS)
        self._upload_attempt = 0
        self._upload_not_before = 0.0
        self._upload_wanted = True  # deliver what an earlier run left in the spool

    # --- signals and waiting ----------------------------------------------

    def _install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: object) -> None:
            log.info("%s: stopping", signal.Signals(signum).name)
            self._stopping = True

        signal.set_wakeup_fd(self._wake_write, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wake_read, 512):
                pass
        except BlockingIOError:
            pass

    def _select(self, timeout_s: float) -> list[tuple[selectors.SelectorKey, int]]:
        """Every wait of the daemon goes through here: it wakes in time to
        ping systemd's watchdog, so pings stop only when the loop itself hangs."""
        self._notifier.keepalive()
        ping_in = self._notifier.seconds_to_ping()
        ready = self._selector.select(timeout_s if ping_in is None else min(timeout_s, ping_in))
        self._drain_wakeups()
        self._notifier.keepalive()
        return ready

    def _sleep(self, seconds: float) -> None:
        """Wait `seconds`, or less if a signal asks us to stop."""
        deadline = time.monotonic() + seconds
        while not self._stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._select(left)

    def wait_for_clock(self, bound_s: float) -> bool:
        """Wait until the clock is synchronised, at most `bound_s`; whether it is.
        An unknown state (adjtimex unreadable) is not waited for: it will not change."""
        state = self._clock()
        if state is not ClockState.UNSYNCHRONISED:
            if state is ClockState.UNKNOWN:
                log.warning("the clock's synchronisation cannot be read; results say 'unknown'")
            return state is ClockState.SYNCHRONISED
        if bound_s <= 0:
            log.warning("the clock is not synchronised; measuring anyway (wait_for_sync_s = 0)")
            return False
        log.info(
            "the clock is not synchronised: waiting up to %g s before the first test", bound_s
        )
        self._notifier.status(f"waiting up to {bound_s:g} s for the clock to be synchronised")
        started = time.monotonic()
        deadline = started + bound_s
        while not self._stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._sleep(min(self._clock_poll_s, left))
            if self._clock() is ClockState.SYNCHRONISED:
                log.info("the clock is synchronised (after %.0f s)", time.monotonic() - started)
                return True
        if not self._stopping:
            log.warning(
                "the clock is still not synchronised after %g s: measuring anyway; these "
                "results are marked unsynchronised and the indicators will not count them",
                bound_s,
            )
        return False

    # --- workers ---------------------------------------------------------

    def _run_worker(self, job: list[str], timeout_s: float, stdin_text: str = "") -> WorkerOutcome:
        """Run one worker to its end (or to our stop, or to its timeout),
        collecting the JSON lines it prints."""
        process = subprocess.Popen(
            [*self._worker_argv, *job],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(stdin_text.encode())
            process.stdin.close()
        except BrokenPipeError:
            pass  # it died before reading: its exit code says why
        stdout = process.stdout
        os.set_blocking(stdout.fileno(), False)
        self._selector.register(stdout, selectors.EVENT_READ)
        output = bytearray()
        deadline = time.monotonic() + timeout_s
        returncode: int | None = None
        try:
            while True:
                if self._stopping:
                    _stop_process(process, STOP_GRACE_S)
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    log.error("worker %s overran %.0f s: killed", " ".join(job), timeout_s)
                    _stop_process(process, STOP_GRACE_S)
                    break
                ready = self._select(min(left, 1.0))
                eof = False
                if any(key.fileobj is stdout for key, _ in ready):
                    chunk = stdout.read()
                    eof = chunk == b""
                    output += chunk or b""
                if process.poll() is not None and (eof or not ready):
                    # Exited; a grandchild may still hold the pipe open, so
                    # take what is there and do not wait for its EOF.
                    output += stdout.read() or b""
                    returncode = process.returncode
                    break
        finally:
            self._selector.unregister(stdout)
            stdout.close()
        lines = []
        for raw in output.decode(errors="replace").splitlines():
            try:
                lines.append(json.loads(raw))
            except json.JSONDecodeError:
                log.warning("worker %s printed a line that is not JSON: %r", job[0], raw[:200])
        return WorkerOutcome(returncode, lines)

    def plan(self) -> Plan | None:
        """The schedule from a `plan` worker; None if it could not make one."""
        outcome = self._run_worker(["plan"], timeout_s=MEASURE_MARGIN_S)
        if outcome.returncode != 0 or not outcome.lines:
            return None
        return Plan.from_json(outcome.lines[-1])

    def measure(self, test: PlannedTest, timeout_s: float) -> dict[str, Any] | None:
        """Run one test in a worker; its summary line, or None if it crashed."""
        job = ["measure", "--held-on-stdin", test.measurement, test.network_kind]
        held_text = "".join(line + "\n" for line in self._held)
        self._held.clear()
        outcome = self._run_worker(job, timeout_s, held_text)
        summary = None
        for line in outcome.lines:
            if "held" in line:
                self._held.append(json.dumps(line["held"]))
            else:
                summary = line
        if outcome.returncode != 0 or summary is None:
            if not self._stopping:
                log.error("%s worker failed (exit %s)", test.measurement, outcome.returncode)
            return None
        self._upload_wanted = True
        return summary

    def upload(self, backoff: Backoff) -> None:
        """Deliver the spool in a worker; after a failure, back off."""
        self._upload_wanted = False
        outcome = self._run_worker(["upload"], UPLOAD_TIMEOUT_S)
        if outcome.returncode == 0:
            self._upload_attempt = 0
            return
        if self._stopping:
            return
        delay_s = backoff.delay_s(self._upload_attempt, self._rng)
        self._upload_attempt += 1
        self._upload_wanted = True
        self._upload_not_before = time.monotonic() + delay_s
        log.warning("upload failed (exit %s); next attempt in %.1f s", outcome.returncode, delay_s)

    # --- the schedule ----------------------------------------------------

    def _replan(
        self, plan: Plan, due: list[float], now: float
    ) -> tuple[Plan, tuple[PlannedTest, ...], list[float]]:
        """A fresh plan; tests it keeps keep their due times. The old plan
        stays if the new one cannot be made or is empty."""
        fresh = self.plan()
        if fresh is None or not fresh.schedule:
            return plan, plan.schedule, due
        was_due = {
            (t.measurement, t.network_kind): at for t, at in zip(plan.schedule, due, strict=True)
        }
        fresh_due = [
            was_due.get((t.measurement, t.network_kind), now + self._rng.uniform(0, t.jitter_s))
            for t in fresh.schedule
        ]
        return fresh, fresh.schedule, fresh_due

    def run(self) -> int:
        """Schedule tests and uploads until SIGTERM; the process's exit code."""
        self._install_signal_handlers()
        plan = self.plan()
        if self._stopping:
            return 0
        if plan is None:
            log.error("the agent could not start (the worker's error is above)")
            return 1
        schedule = plan.schedule
        if not schedule:
            log.error("nothing to measure: the schedule is empty for the enabled lines")
            return 1
        self._notifier.ready(f"probe {plan.probe_id}: {len(schedule)} tests scheduled")
        log.info(
            "probe %s (ward %s): %d tests, config from %s",
            plan.probe_id,
            plan.ward_code,
            len(schedule),
            plan.source,
        )
        self.wait_for_clock(plan.clock_wait_s)
        now = time.monotonic()
        due = [now + self._rng.uniform(0, max(t.jitter_s, 1)) for t in schedule]
        replan_at = now + PLAN_REFRESH_S
        while not self._stopping:
            now = time.monotonic()
            if now >= replan_at:
                replan_at = now + PLAN_REFRESH_S
                plan, schedule, due = self._replan(plan, due, now)
            index = min(range(len(schedule)), key=due.__getitem__)
            if self._upload_wanted and self._upload_not_before <= min(now, due[index]):
                self._notifier.status("uploading the spool")
                self.upload(plan.upload_backoff)
                continue
            if due[index] > now:
                wake_at = min(due[index], replan_at)
                if self._upload_wanted:
                    wake_at = min(wake_at, self._upload_not_before)
                self._notifier.status(
                    f"idle; next: {schedule[index].measurement} in {due[index] - now:.0f} s"
                )
                self._sleep(wake_at - now)
                continue
            test = schedule[index]
            line = plan.lines[test.network_kind]
            wait_s = test.interval_s + self._rng.uniform(0, test.jitter_s)
            if test.needs_slot:
                self._sleep(
                    seconds_until_slot(
                        time.time(),
                        line.slot_period_s,
                        line.slot_offset_s,
                        line.slot_length_s,
                    )
                )
                if self._stopping:
                    break
            self._notifier.status(f"measuring {test.measurement} on the {test.network_kind} line")
            summary = self.measure(test, line.timeout_s + MEASURE_MARGIN_S)
            if summary is not None and summary.get("deferred"):
                wait_s = min(wait_s, plan.deferred_retry_after_s)  # a busy line: try again soon
            due[index] = time.monotonic() + wait_s
        self._notifier.stopping()
        if self._held:
            log.error("%d results could not be written to the spool (disk full)", len(self._held))
        log.info("stopped")
        return 0


def _stop_process(process: subprocess.Popen[bytes], grace_s: float) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> int:
    """`python -m agent.daemon`: what `wardprobe-agent run` becomes (exec)."""
    args = agent_parser("agent.daemon", __doc__).parse_args(argv)
    log_to_stderr(args.verbose)
    notifier = Notifier.from_environment()  # before the workers inherit the environment
    try:
        worker = module_argv("agent.worker", args.config, args.state_dir, args.verbose)
        return Daemon(worker, notifier=notifier).run()
    finally:
        notifier.close()


if __name__ == "__main__":
    sys.exit(main())
