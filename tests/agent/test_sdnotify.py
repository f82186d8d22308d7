"""The daemon talks to systemd (agent/sdnotify.py): READY=1 once it runs, and
WATCHDOG=1 from its main loop only, so that systemd restarts a hung daemon.
And at start it waits for a synchronised clock, at most as long as agent.toml
says, before its first test.

Every exchange is a real AF_UNIX datagram socket, as systemd's; the daemon
runs as a process of its own with a stand-in worker (the real one needs an
enrolled box: tests/integration/test_processes.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.sdnotify import Notifier

# How long a test waits for a message it expects: a guard against a hang,
# not a claim about this machine's speed.
GUARD_S = 60.0


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, str]]:
    """An abstract datagram socket, as systemd's $NOTIFY_SOCKET, and its '@name'."""
    name = f"wardprobe-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    yield sock, "@" + name
    sock.close()


def _receive_until(sock: socket.socket, wanted: str) -> list[str]:
    """Messages (one datagram each) up to and including the first that has the line `wanted`."""
    messages: list[str] = []
    deadline = time.monotonic() + GUARD_S
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no {wanted} within the guard; got {messages}"
        sock.settimeout(left)
        messages.append(sock.recv(4096).decode())
        if wanted in messages[-1].splitlines():
            return messages


def _drain(sock: socket.socket) -> list[str]:
    sock.setblocking(False)
    messages = []
    try:
        while True:
            messages.append(sock.recv(4096).decode())
    except BlockingIOError:
        return messages
    finally:
        sock.setblocking(True)


def test_messages_reach_a_path_socket(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        notifier = Notifier(str(path))
        notifier.ready("2 tests scheduled")
        notifier.status("measuring download")
        notifier.close()
        sock.settimeout(GUARD_S)
        assert sock.recv(4096).decode() == "READY=1\nSTATUS=2 tests scheduled"
        assert sock.recv(4096).decode() == "STATUS=measuring download"


def test_the_watchdog_is_pinged_at_half_its_timeout(
    listener: tuple[socket.socket, str],
) -> None:
    sock, name = listener
    now = [100.0]
    notifier = Notifier(name, watchdog_usec=30_000_000, monotonic=lambda: now[0])
    assert notifier.watchdog_interval_s == 15.0
    notifier.keepalive()  # due at once
    assert notifier.seconds_to_ping() == 15.0
    now[0] += 14.9
    notifier.keepalive()  # not yet
    now[0] += 0.1
    notifier.keepalive()
    assert _drain(sock) == ["WATCHDOG=1", "WATCHDOG=1"]


def test_the_environment_is_read_and_not_passed_on(listener: tuple[socket.socket, str]) -> None:
    _, name = listener
    env = {"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "20000000", "PATH": "/usr/bin"}
    notifier = Notifier.from_environment(env)
    assert notifier.enabled and notifier.watchdog_interval_s == 10.0
    assert env == {"PATH": "/usr/bin"}  # the workers must not ping for the daemon
    other = Notifier.from_environment(
        {"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}
    )
    assert other.watchdog_interval_s is None  # the watchdog is another process's
    outside = Notifier.from_environment({})
    assert not outside.enabled and outside.seconds_to_ping() is None
    outside.ready("no systemd")  # a no-op, not an error


def test_a_socket_nobody_listens_on_does_not_stop_the_daemon(tmp_path: Path) -> None:
    notifier = Notifier(str(tmp_path / "gone"))
    notifier.ready("x")  # logged once; measuring matters more
    notifier.send("WATCHDOG=1")


PLAN = {
    "probe_id": "0190f0c0-0000-7000-8000-000000000001",
    "ward_code": 31135,
    "source": "agent.toml",
    "schedule": [
        {
            "measurement": "latency_tcp",
            "interval_s": 3600,
            "jitter_s": 0,
            "network_kind": "fixed",
            "needs_slot": False,
        }
    ],
    "lines": {
        "fixed": {"timeout_s": 30, "slot_period_s": 0, "slot_offset_s": 0, "slot_length_s": 0}
    },
    "deferred_retry_after_s": 300,
    "upload_backoff": {"base_s": 1.0, "cap_s": 300.0},
}

# A stand-in for agent/worker.py: `plan` prints the plan, `measure` writes
# what it saw to measured.log and prints its summary, `upload` succeeds.
WORKER = """
import json, os, sys
here = os.path.dirname(os.path.abspath(sys.argv[0]))
job = sys.argv[1]
if job == "plan":
    print(open(os.path.join(here, "plan.json")).read())
elif job == "measure":
    sys.stdin.read()
    seen = {"notify_socket": os.environ.get("NOTIFY_SOCKET"),
            "clock_calls": open(os.path.join(here, "clock_calls")).read()
            if os.path.exists(os.path.join(here, "clock_calls")) else ""}
    with open(os.path.join(here, "measured.log"), "a") as log:
        log.write(json.dumps(seen) + "\\n")
    print(json.dumps({"result_id": "r", "status_reason": "", "deferred": False}))
"""

# The daemon as `python -m agent.daemon` runs it, with the stand-in worker and
# a clock that is unsynchronised for its first CLOCK_UNSYNCED_CALLS answers
# (each answer is counted in clock_calls, where the worker can read it). With
# CLOCK_HANG_FIFO, its second answer hangs the daemon's loop until the test
# writes to that FIFO.
DAEMON = """
import logging, os, sys
from agent.clock import ClockState
from agent.daemon import Daemon
from agent.sdnotify import Notifier
here = sys.argv[1]
unsynced = int(os.environ.get("CLOCK_UNSYNCED_CALLS", "0"))
hang = os.environ.get("CLOCK_HANG_FIFO")
calls = 0
def clock():
    global calls
    calls += 1
    with open(os.path.join(here, "clock_calls"), "w") as out:
        out.write(str(calls))
    if hang and calls == 2:
        with open(hang) as fifo:
            fifo.read()
    return ClockState.UNSYNCHRONISED if calls <= unsynced else ClockState.SYNCHRONISED
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
worker = [sys.executable, os.path.join(here, "worker.py")]
sys.exit(Daemon(worker, notifier=Notifier.from_environment(), clock=clock,
                clock_poll_s=0.05).run())
"""


def _start_daemon(
    tmp_path: Path, env: dict[str, str], clock_wait_s: float
) -> subprocess.Popen[str]:
    (tmp_path / "plan.json").write_text(json.dumps({**PLAN, "clock_wait_s": clock_wait_s}))
    (tmp_path / "worker.py").write_text(textwrap.dedent(WORKER))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(DAEMON), str(tmp_path)],
        env={**os.environ, **env},
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_file(path: Path, text: str) -> None:
    deadline = time.monotonic() + GUARD_S
    while not path.exists() or path.read_text() != text:
        assert time.monotonic() < deadline, f"{path} never said {text!r}"
        time.sleep(0.01)


def _measured(tmp_path: Path) -> list[dict[str, str | None]]:
    log = tmp_path / "measured.log"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_the_daemon_says_ready_and_pings_from_its_loop_until_it_hangs(
    tmp_path: Path, listener: tuple[socket.socket, str]
) -> None:
    sock, name = listener
    fifo = tmp_path / "hang"
    os.mkfifo(fifo)
    # WatchdogSec=0.2 s: a ping every 0.1 s while the loop runs. The clock is
    # unsynchronised at first, and its second answer hangs the loop.
    env = {
        "NOTIFY_SOCKET": name,
        "WATCHDOG_USEC": "200000",
        "CLOCK_UNSYNCED_CALLS": "1",
        "CLOCK_HANG_FIFO": str(fifo),
    }
    daemon = _start_daemon(tmp_path, env, 600)
    try:
        before_ready = _receive_until(sock, "READY=1")
        assert "STATUS=probe 0190f0c0-0000-7000-8000-000000000001: 1 tests scheduled" in (
            before_ready[-1].splitlines()
        )
        _receive_until(sock, "WATCHDOG=1")  # while it waits for the clock

        # The loop hangs in its call to the clock: the process lives, but no
        # ping comes (a pinging thread would go on and hide the hang)...
        _wait_for_file(tmp_path / "clock_calls", "2")
        _drain(sock)  # what it sent before it hung
        sock.settimeout(1.0)  # ten intervals of watching
        with pytest.raises(TimeoutError):
            sock.recv(4096)
        assert daemon.poll() is None
        # ...and pings come again once the loop runs again.
        with fifo.open("w") as release:
            release.write("go")
        _receive_until(sock, "WATCHDOG=1")
        # It keeps pinging while it runs a test and while it is idle.
        _receive_until(sock, "STATUS=measuring latency_tcp on the fixed line")
        _receive_until(sock, "STATUS=idle; next: latency_tcp in 3600 s")
        _receive_until(sock, "WATCHDOG=1")
        _receive_until(sock, "WATCHDOG=1")

        daemon.terminate()
        _receive_until(sock, "STOPPING=1")
        assert daemon.wait(GUARD_S) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
        daemon.wait()
    # The worker ran without the daemon's $NOTIFY_SOCKET: only the daemon speaks for the unit.
    assert [m["notify_socket"] for m in _measured(tmp_path)] == [None]


def test_the_first_test_waits_for_the_clock_to_be_synchronised(
    tmp_path: Path, listener: tuple[socket.socket, str]
) -> None:
    sock, name = listener
    daemon = _start_daemon(tmp_path, {"NOTIFY_SOCKET": name, "CLOCK_UNSYNCED_CALLS": "3"}, 600)
    try:
        messages = _receive_until(sock, "STATUS=measuring latency_tcp on the fixed line")
        assert "STATUS=waiting up to 600 s for the clock to be synchronised" in messages
        _receive_until(sock, "STATUS=idle; next: latency_tcp in 3600 s")
        daemon.terminate()
        _, log = daemon.communicate(timeout=GUARD_S)
    finally:
        if daemon.poll() is None:
            daemon.kill()
        daemon.wait()
    # The test ran after the fourth answer, the first synchronised one.
    assert [m["clock_calls"] for m in _measured(tmp_path)] == ["4"]
    assert "waiting up to 600 s before the first test" in log
    assert "the clock is synchronised (after" in log


def test_after_the_bound_it_measures_anyway_and_says_so(
    tmp_path: Path, listener: tuple[socket.socket, str]
) -> None:
    sock, name = listener
    # Never synchronised; a bound of 0.3 s.
    daemon = _start_daemon(
        tmp_path, {"NOTIFY_SOCKET": name, "CLOCK_UNSYNCED_CALLS": "1000000"}, 0.3
    )
    try:
        _receive_until(sock, "STATUS=idle; next: latency_tcp in 3600 s")
        daemon.terminate()
        _, log = daemon.communicate(timeout=GUARD_S)
    finally:
        if daemon.poll() is None:
            daemon.kill()
        daemon.wait()
    assert len(_measured(tmp_path)) == 1
    assert "still not synchronised after 0.3 s: measuring anyway" in log
    assert "the indicators will not count them" in log


def test_a_synchronised_clock_is_not_waited_for(
    tmp_path: Path, listener: tuple[socket.socket, str]
) -> None:
    sock, name = listener
    daemon = _start_daemon(tmp_path, {"NOTIFY_SOCKET": name}, 600)
    try:
        messages = _receive_until(sock, "STATUS=idle; next: latency_tcp in 3600 s")
        daemon.terminate()
        daemon.communicate(timeout=GUARD_S)
    finally:
        if daemon.poll() is None:
            daemon.kill()
        daemon.wait()
    assert not any("waiting up to" in m for m in messages)
    assert [m["clock_calls"] for m in _measured(tmp_path)] == ["1"]
