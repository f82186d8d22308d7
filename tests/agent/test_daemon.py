"""The resident scheduler (agent/daemon.py): small, and faithful to its workers.

The whole daemon with the real workers, an aggregator outage and a killed
worker runs in tests/integration/test_processes.py; here the parts a stand-in
worker can show: what the daemon imports, the plan's JSON, results held
through a full disk, a new plan keeping the due times.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

from agent.backoff import Backoff
from agent.daemon import Daemon
from agent.plan import Plan, PlannedLine, PlannedTest

PLAN = Plan(
    probe_id="0190f0c0-0000-7000-8000-000000000001",
    ward_code=31135,
    source="aggregator",
    schedule=(
        PlannedTest("latency_icmp", 300, 30, "fixed", needs_slot=False),
        PlannedTest("download", 3600, 600, "fixed", needs_slot=True),
    ),
    lines={
        "fixed": PlannedLine(timeout_s=50, slot_period_s=600, slot_offset_s=60, slot_length_s=60)
    },
    deferred_retry_after_s=300,
    upload_backoff=Backoff(1.0, 300.0),
    clock_wait_s=600,
)


def test_the_daemon_imports_no_grpc_pydantic_or_measurement_code() -> None:
    heavy = (
        "grpc",
        "pydantic",
        "google.protobuf",
        "asyncio",
        "ssl",
        "agent.runtime",
        "agent.measurements",
    )
    loaded = subprocess.run(
        [sys.executable, "-c",
         f"import sys, agent.daemon; print([m for m in {heavy!r} if m in sys.modules])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert loaded == "[]"


def test_the_plan_survives_its_json() -> None:
    assert Plan.from_json(json.loads(PLAN.to_json())) == PLAN


def _stand_in_worker(tmp_path: Path, body: str) -> list[str]:
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(body))
    return [sys.executable, str(script)]


def test_results_the_disk_refused_go_to_the_next_test(tmp_path: Path) -> None:
    # The stand-in counts the held results it is given and gives one back
    # (the disk is still full) beside its own summary.
    argv = _stand_in_worker(
        tmp_path,
        """
        import json, sys
        given = [json.loads(line) for line in sys.stdin if line.strip()]
        with open(sys.argv[0] + ".log", "a") as log:
            log.write(json.dumps(given) + "\\n")
        print(json.dumps({"held": {"result_id": f"r{len(given)}", "measurement": "x",
                                   "payload": ""}}))
        print(json.dumps({"result_id": "new", "status_reason": "", "deferred": False}))
        """,
    )
    daemon = Daemon(argv, random.Random(1))
    test = PLAN.schedule[0]
    assert daemon.measure(test, timeout_s=30) == {
        "result_id": "new", "status_reason": "", "deferred": False
    }  # fmt: skip
    daemon.measure(test, timeout_s=30)
    given = [json.loads(line) for line in Path(argv[1] + ".log").read_text().splitlines()]
    assert given == [[], [{"result_id": "r0", "measurement": "x", "payload": ""}]]


def test_a_worker_that_overruns_is_killed_and_reported(tmp_path: Path) -> None:
    argv = _stand_in_worker(tmp_path, "import time\ntime.sleep(60)\n")
    daemon = Daemon(argv, random.Random(1))
    assert daemon.measure(PLAN.schedule[0], timeout_s=0.5) is None


def test_a_new_plan_keeps_the_due_times_of_the_tests_it_keeps(tmp_path: Path) -> None:
    fresh = Plan(
        **{
            **PLAN.__dict__,
            "schedule": (PLAN.schedule[1], PlannedTest("ipv6", 3600, 0, "fixed", False)),
        }
    )
    argv = _stand_in_worker(tmp_path, f"print({fresh.to_json()!r})\n")
    daemon = Daemon(argv, random.Random(1))
    plan, schedule, due = daemon._replan(PLAN, [100.0, 200.0], now=150.0)
    assert plan == fresh and schedule == fresh.schedule
    assert due == [200.0, 150.0]  # download as it was; ipv6 new, jitter 0: now


def test_a_plan_that_cannot_be_made_keeps_the_old_one(tmp_path: Path) -> None:
    argv = _stand_in_worker(tmp_path, "import sys\nsys.exit(3)\n")
    daemon = Daemon(argv, random.Random(1))
    assert daemon._replan(PLAN, [100.0, 200.0], now=150.0) == (PLAN, PLAN.schedule, [100.0, 200.0])


def _agent(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *argv], capture_output=True, text=True, timeout=60
    )


def test_run_on_a_box_not_enrolled_says_what_to_do(tmp_path: Path) -> None:
    done = _agent("run", "--state-dir", str(tmp_path))
    assert done.returncode == 1
    assert "wardprobe-agent enroll" in done.stderr


def test_run_with_a_bad_agent_toml_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text("[upload]\nbackoff_base_s = -1\n")
    done = _agent("run", "--config", str(config), "--state-dir", str(tmp_path))
    assert done.returncode == 2
    assert "backoff_base_s" in done.stderr and "Traceback" not in done.stderr


def test_a_worker_that_cannot_start_says_why_with_its_exit_code(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent.worker", "--state-dir", str(tmp_path), "plan"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 3  # agent.worker.EXIT_CANNOT_START: the daemon exits 1 on it
    assert "no enrolment" in done.stderr and done.stdout == ""
