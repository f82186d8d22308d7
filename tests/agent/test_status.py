"""`wardprobe-agent status` answers a technician in plain words: first line
`healthy` or `not healthy: <why>`, then one line per fact, exit 0 when
healthy and 1 when not. And `wardprobe-agent --version`.

The box's state directory is written as the agent writes it (enrolment.json,
the spool's state rows); the CLI runs in-process (typer's runner) where the
kernel's clock state must be set for the test, as a process otherwise."""

from __future__ import annotations

import json
import os
import pwd
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

import agent.health
from agent import AGENT_VERSION
from agent.cli import app
from agent.clock import ClockState
from agent.identity import ENROLMENT_FILE, EnrolmentRecord
from agent.runtime import SPOOL_FILE
from agent.spool import Spool

NOW = datetime.now(UTC)
CLOCK_REASON = "the clock is not synchronised (results measured now will not count)"


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="seconds")


def _box(
    tmp_path: Path,
    *,
    last_test: tuple[str, str, str, datetime] | None = ("download", "ok", "", NOW),
    uploaded: datetime | None = NOW,
    upload_error: tuple[datetime, str] | None = None,
    waiting: int = 0,
    modem: dict[str, str] | None = None,
) -> Path:
    """An enrolled box's state directory as the agent leaves it."""
    state = tmp_path / "box"
    state.mkdir()
    record = EnrolmentRecord(
        probe_id="0190f0c0-0000-7000-8000-000000000001",
        ward_code=31135,
        ward_name="Phường Ninh Kiều",
        site_class="school",
        ingest_address="probes.example.vn:7443",
        enrolled_at=NOW - timedelta(days=30),
        certificate_not_after=NOW + timedelta(days=300),
    )
    (state / ENROLMENT_FILE).write_text(record.to_json(), "utf-8")
    spool = Spool(state / SPOOL_FILE, 200_000)
    try:
        if last_test is not None:
            name, status, reason, when = last_test
            spool.set_state(
                f"last_result:{name}",
                json.dumps(
                    {"measured_at": _iso(when), "status": status, "reason": reason, "took_s": 10.2}
                ),
            )
        if uploaded is not None:
            spool.set_state("last_upload_at", _iso(uploaded))
        if upload_error is not None:
            spool.set_state("last_upload_error", f"{_iso(upload_error[0])} {upload_error[1]}")
        for number in range(waiting):
            spool.add(f"r{number}", "download", b"x")
        if modem is not None:
            spool.set_state("modem", json.dumps(modem))
    finally:
        spool.close()
    return state


def _status(
    monkeypatch: pytest.MonkeyPatch,
    state: Path,
    clock: ClockState = ClockState.SYNCHRONISED,
    *extra: str,
) -> tuple[int, list[str]]:
    monkeypatch.setattr(agent.health, "clock_state", lambda: clock)
    done = CliRunner().invoke(app, ["status", "--state-dir", str(state), *extra])
    assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
    return done.exit_code, done.output.splitlines()


def test_a_working_box_is_healthy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, lines = _status(monkeypatch, _box(tmp_path))
    assert (code, lines[0]) == (0, "healthy")
    text = "\n".join(lines)
    assert "enrolled:     ward Phường Ninh Kiều (31135), school" in text
    assert "clock:        synchronised" in text
    # NOW is taken when the module is collected, minutes before this test may
    # run in a full suite: the age is "N s ago" or "N min ago", not a fixed one.
    assert re.search(
        r"^last test:    download ok, \d{4}-\d\d-\d\d \d\d:\d\d UTC, \d+ (s|min) ago",
        text,
        re.MULTILINE,
    ), text
    assert "last upload:  " in text
    assert "spool:        0 results waiting to be uploaded" in text
    assert "dropped:      none" in text
    assert "modem:        mobile line disabled" in text


def test_an_unsynchronised_clock_is_not_healthy_and_says_results_will_not_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, lines = _status(monkeypatch, _box(tmp_path), ClockState.UNSYNCHRONISED)
    assert (code, lines[0]) == (1, f"not healthy: {CLOCK_REASON}")
    assert any(
        line.startswith("clock:        NOT synchronised: results measured now are kept but do "
                        "not count in the indicators") for line in lines
    )  # fmt: skip


@pytest.mark.parametrize(
    ("box", "reason"),
    [
        ({"last_test": None}, "no test has run yet"),
        (
            {"last_test": ("upload", "failed", "connection refused by 198.18.0.1", NOW)},
            "the last test failed (upload: connection refused by 198.18.0.1)",
        ),
        (
            {"last_test": ("download", "ok", "", NOW - timedelta(days=3))},
            "no test for 3 days (is the service running? systemctl status wardprobe-agent)",
        ),
        (
            {
                "uploaded": NOW - timedelta(hours=5),
                "upload_error": (NOW, "UNAVAILABLE: failed to connect to all addresses"),
                "waiting": 3,
            },
            "uploads fail (UNAVAILABLE: failed to connect to all addresses); 3 results wait",
        ),
    ],
)
def test_each_problem_is_named_on_the_first_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, box: dict[str, object], reason: str
) -> None:
    code, lines = _status(monkeypatch, _box(tmp_path, **box))  # type: ignore[arg-type]
    assert (code, lines[0]) == (1, f"not healthy: {reason}")


def test_an_upload_that_failed_before_the_last_success_is_forgotten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = _box(tmp_path, upload_error=(NOW - timedelta(hours=1), "UNAVAILABLE: down"), waiting=2)
    code, lines = _status(monkeypatch, state)
    assert (code, lines[0]) == (0, "healthy")
    assert "spool:        2 results waiting to be uploaded" in lines


def test_a_modem_without_service_is_not_healthy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = _box(
        tmp_path,
        modem={
            "observed_at": _iso(NOW),
            "state": "failed: sim-missing: no SIM in the modem",
            "model": "EC25",
            "5g_capable": "no (4G-only modem: probe-limited for 5G)",
            "backend": "at",
        },
    )
    config = tmp_path / "agent.toml"
    config.write_text('[mobile]\nenabled = true\ninterface = "wwan0"\n')
    code, lines = _status(monkeypatch, state, ClockState.SYNCHRONISED, "--config", str(config))
    assert (code, lines[0]) == (1, "not healthy: modem: failed: sim-missing: no SIM in the modem")
    assert any(line.startswith("modem:        failed: sim-missing") for line in lines)


def test_a_full_spool_and_every_reason_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = _box(tmp_path, last_test=None, uploaded=None)
    spool = Spool(state / SPOOL_FILE, 200_000)
    for number in range(95):
        spool.add(f"r{number}", "download", b"x")
    spool.close()
    config = tmp_path / "agent.toml"
    config.write_text("[spool]\nmax_rows = 100\n")
    code, lines = _status(monkeypatch, state, ClockState.UNSYNCHRONISED, "--config", str(config))
    assert code == 1
    assert lines[0] == (
        f"not healthy: {CLOCK_REASON}; no test has run yet; the spool is nearly full "
        "(95 of 100): the oldest results will be dropped"
    )


def test_json_carries_the_verdict(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, lines = _status(monkeypatch, _box(tmp_path), ClockState.UNSYNCHRONISED, "--json")
    report = json.loads("\n".join(lines))
    assert code == 1
    assert (report["healthy"], report["reasons"]) == (False, [CLOCK_REASON])
    assert (report["clock"], report["spool_depth"], report["enrolled"]) == (
        "unsynchronised",
        0,
        True,
    )
    assert report["last_results"]["download"]["status"] == "ok"


def _agent(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *argv], capture_output=True, text=True, timeout=120
    )


def test_status_of_a_box_not_enrolled_says_so_first_and_exits_1(tmp_path: Path) -> None:
    done = _agent("status", "--state-dir", str(tmp_path))
    assert done.returncode == 1 and done.stderr == ""
    assert done.stdout.startswith("not healthy: not enrolled (run `wardprobe-agent enroll`)")
    assert f"enrolled:     no (nothing in {tmp_path})" in done.stdout


def test_version() -> None:
    done = _agent("--version")
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"wardprobe-agent {AGENT_VERSION}\n",
        "",
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: files are handed to another user")
def test_a_command_run_as_root_leaves_the_state_to_the_service_user(tmp_path: Path) -> None:
    # The package's postinst makes /var/lib/wardprobe the service user's; a
    # technician runs the commands with sudo. Here: the user `nobody`.
    state = _box(tmp_path)
    (state / SPOOL_FILE).unlink()
    nobody = pwd.getpwnam("nobody")
    os.chown(state, nobody.pw_uid, nobody.pw_gid)
    done = _agent("status", "--state-dir", str(state))
    assert done.returncode in (0, 1), done.stderr  # healthy or not: the clock decides
    made = [p for p in state.iterdir() if p.name.startswith("spool")]
    assert made and all(p.stat().st_uid == nobody.pw_uid for p in [state, *made])
    assert (state / ENROLMENT_FILE).stat().st_uid == nobody.pw_uid
