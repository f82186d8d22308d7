"""Every `wardprobe-agent` command given wrong input, or run while the
aggregator is down, says what is wrong in one or two plain lines with the
exit code its help and README.md document (1 refused or failed, 2 an option
or agent.toml that cannot be used, or the aggregator could not take the
upload), never a traceback or pydantic's text. Run as `python -m agent`, the
real entry point."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from agent.enrolment import enrol
from aggregator.central import Aggregator
from aggregator.config import AggregatorConfig
from aggregator.enrolment.ca import init_ca
from aggregator.enrolment.registry import SiteClass
from emulation.deployment import free_tcp_port
from tests.aggregator.cli.test_cli_errors import assert_plain_error
from tests.integration.conftest import NINH_KIEU

# A well-formed token whose aggregator is nowhere (the pin is checked only
# against a server that answers).
UNUSABLE_TOKEN = "wpt1.0123456789ab.0123456789abcdef0123456789abcdef.0123456789abcdef"


def agent(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
async def enrolled_box(tmp_path: Path) -> Path:
    """A box enrolled with a real aggregator, which is then stopped: its
    address (in enrolment.json) has nothing listening any more."""
    state = tmp_path / "aggregator"
    init_ca(state, ["localhost", "127.0.0.1"])
    ingest, enrolment = free_tcp_port(), free_tcp_port()
    config = AggregatorConfig(
        state_dir=state,
        store_path=state / "wardprobe.duckdb",
        ingest_listen=f"127.0.0.1:{ingest}",
        enrol_listen=f"127.0.0.1:{enrolment}",
        ingest_public_address=f"127.0.0.1:{ingest}",
    )
    box = tmp_path / "box"
    async with Aggregator(config) as aggregator:
        token = aggregator.registry.create_token(
            NINH_KIEU, SiteClass.HOUSEHOLD, timedelta(hours=1), aggregator.ca.pin
        )
        await asyncio.to_thread(enrol, f"127.0.0.1:{enrolment}", token, box, "test-box", "0.1.0")
    return box


def test_upload_with_an_empty_spool_and_the_aggregator_down(enrolled_box: Path) -> None:
    done = agent("upload", "--state-dir", str(enrolled_box))
    assert_plain_error(
        done.stderr,
        2,  # as `upload --help` says: the aggregator could not take it
        done.returncode,
        "upload failed: cannot reach the aggregator at 127.0.0.1:",
        "0 results stay in the spool",
    )


def test_once_with_no_schedule_and_the_aggregator_down(enrolled_box: Path) -> None:
    done = agent("once", "--no-upload", "--state-dir", str(enrolled_box))
    ours = done.stderr[done.stderr.index("error: ") :]  # after the runtime's warning
    assert_plain_error(ours, 2, done.returncode, "nothing to run", "agent.toml has none")
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_enrolling_a_box_enrolled_already_names_force(enrolled_box: Path) -> None:
    done = agent(
        "enroll", "--aggregator", "127.0.0.1:1", "--token", UNUSABLE_TOKEN,
        "--state-dir", str(enrolled_box),
    )  # fmt: skip
    assert_plain_error(done.stderr, 1, done.returncode, "enrolled already, as probe wp-", "--force")


def test_a_damaged_enrolment_or_spool_is_named(enrolled_box: Path) -> None:
    spool = enrolled_box / "spool.sqlite"
    spool.write_bytes(b"x" * 4096)
    for command in ("upload", "status"):
        done = agent(command, "--state-dir", str(enrolled_box))
        assert_plain_error(done.stderr, 1, done.returncode, str(spool), "move it aside")
    (enrolled_box / "enrolment.json").write_text("{")
    for command in ("upload", "once", "status", "run"):
        done = agent(command, "--state-dir", str(enrolled_box))
        assert_plain_error(done.stderr, 1, done.returncode, "enrolment.json", "enroll --force")


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--aggregator", "probes.example.vn"], 2, ["--aggregator", "expected host:port"]),
        (["--aggregator", "localhost:70000"], 2, ["--aggregator", "port out of range"]),
        (["--token", "hello"], 2, ["--token", "not a wardprobe bootstrap token"]),
        (["--aggregator", "127.0.0.1:1"], 1, ["enrolment failed", "127.0.0.1:1"]),
    ],
)
def test_enroll_refusals(tmp_path: Path, args: list[str], code: int, words: list[str]) -> None:
    given = {"--aggregator": "127.0.0.1:1", "--token": UNUSABLE_TOKEN}
    given.update(zip(args[::2], args[1::2], strict=True))
    argv = [part for option in given.items() for part in option]
    done = agent("enroll", *argv, "--state-dir", str(tmp_path / "box"))
    assert_plain_error(done.stderr, code, done.returncode, *words)
    assert not (tmp_path / "box" / "enrolment.json").exists()


def test_enroll_where_no_state_directory_can_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = agent(
        "enroll", "--aggregator", "127.0.0.1:1", "--token", UNUSABLE_TOKEN,
        "--state-dir", str(blocker / "box"),
    )  # fmt: skip
    assert_plain_error(done.stderr, 1, done.returncode, "cannot make the state directory")


@pytest.mark.parametrize("command", ["upload", "once", "run"])
def test_commands_on_a_box_not_enrolled(tmp_path: Path, command: str) -> None:
    done = agent(command, "--state-dir", str(tmp_path))
    assert_plain_error(done.stderr, 1, done.returncode, "wardprobe-agent enroll")


def test_status_of_a_box_not_enrolled_exits_1(tmp_path: Path) -> None:
    done = agent("status", "--state-dir", str(tmp_path))
    assert done.returncode == 1
    assert done.stdout.startswith("not healthy: not enrolled") and done.stderr == ""


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[upload\n", ["is not valid TOML", "line 1"]),
        (
            "[fixed]\ndaily_budget_bytes = 0\nspeed = 1\n",
            ["fixed.daily_budget_bytes: should be greater than or equal to 1 (got 0)",
             "fixed.speed: unknown key"],
        ),
        ("[[schedule]]\nmeasurement = 'download'\n", ["schedule[0].interval_s: missing"]),
    ],
)  # fmt: skip
@pytest.mark.parametrize("command", ["status", "upload", "once", "run", "enroll"])
def test_a_bad_agent_toml_names_the_key_in_one_line(
    tmp_path: Path, text: str, words: list[str], command: str
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(text)
    extra = []
    if command == "enroll":
        extra = ["--aggregator", "127.0.0.1:1", "--token", UNUSABLE_TOKEN]
    done = agent(command, "--config", str(config), "--state-dir", str(tmp_path), *extra)
    lines = assert_plain_error(done.stderr, 2, done.returncode, str(config), *words)
    assert len(lines) == 1


def test_usage_errors_are_two_plain_lines(tmp_path: Path) -> None:
    done = agent("upload", "--state-dir", str(tmp_path), "--bogus")
    lines = assert_plain_error(done.stderr, 2, done.returncode, "No such option: --bogus")
    assert lines[1] == "(`wardprobe-agent upload --help` lists what it takes)"
    done = agent("status", "--config", str(tmp_path / "missing.toml"))
    assert_plain_error(done.stderr, 2, done.returncode, "missing.toml", "does not exist")
