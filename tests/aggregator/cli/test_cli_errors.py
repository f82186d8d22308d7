"""Every `wardprobe-aggregator` command given wrong input says what is wrong
in one or two plain lines, with the exit code README.md documents (1 refused
or failed, 2 an option, aggregator.toml or store that cannot be used), never a
traceback or a library's own text. Driven through the real app (typer's
CliRunner on aggregator.cli.app) and, where a process matters, `python -m
aggregator` itself."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner, Result

from aggregator.cli import app
from aggregator.enrolment.ca import init_ca
from aggregator.ingest.store import Store

runner = CliRunner()
NINH_KIEU = 31135


def assert_plain_error(output: str, code: int, exit_code: int, *words: str) -> list[str]:
    """The error is one or two plain lines, the first `error: ...`, carrying `words`."""
    lines = [line for line in output.splitlines() if line.strip()]
    assert exit_code == code, output
    assert 1 <= len(lines) <= 2, output
    assert lines[0].startswith("error: "), output
    for banned in ("Traceback", "╭", "│", "http://", "https://", "pydantic", "[type="):
        assert banned not in output, output
    for word in words:
        assert word in output, output
    return lines


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args), prog_name="wardprobe-aggregator")


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "wardprobe.duckdb"
    Store(path).close()
    return path


@pytest.fixture
def junk(tmp_path: Path) -> Path:
    path = tmp_path / "junk.duckdb"
    path.write_text("not a database\n")
    return path


# --- summary ---------------------------------------------------------------


def test_summary_of_a_missing_store(tmp_path: Path) -> None:
    missing = tmp_path / "MISSING.duckdb"
    done = run_module("summary", "--store", str(missing))
    assert_plain_error(done.stderr, 2, done.returncode, f"no store at {missing}")
    assert done.stdout == ""
    assert not missing.exists()  # reading must not create an empty store


def test_summary_of_a_file_that_is_not_a_store(junk: Path, tmp_path: Path) -> None:
    result = invoke("summary", "--store", str(junk))
    assert_plain_error(result.output, 2, result.exit_code, str(junk), "not a valid DuckDB")
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    result = invoke("summary", "--store", str(empty))
    assert_plain_error(result.output, 2, result.exit_code, "is not a wardprobe store")


def test_a_store_held_by_a_writer_points_to_the_snapshot(tmp_path: Path) -> None:
    held = tmp_path / "live.duckdb"
    live = Store(held)  # this process holds it, as the running aggregator would
    try:
        for args in (["summary"], ["indicators", "--period", "2026"]):
            done = run_module(*args, "--store", str(held))
            assert_plain_error(done.stderr, 2, done.returncode, "holds it", "snapshot")
        csv_file = tmp_path / "baseline.csv"
        csv_file.write_text(BASELINE, "utf-8")
        done = run_module("baseline", "import", str(csv_file), "--store", str(held))
        assert_plain_error(done.stderr, 2, done.returncode, "for writing", "stop the aggregator")
    finally:
        live.close()


# --- aggregator.toml -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("store_path = ]\n", ["is not valid TOML", "line 1"]),
        ("store_path = 5\n", ["store_path", "(got 5)"]),
        ("snapshot_interval_s = 1\nstorepath = 'x'\n", ["snapshot_interval_s", "storepath"]),
    ],
)
@pytest.mark.parametrize(
    "command", [["summary"], ["indicators", "--period", "2026"], ["serve"], ["baseline", "import"]]
)
def test_a_bad_aggregator_toml_names_the_key(
    tmp_path: Path, text: str, words: list[str], command: list[str]
) -> None:
    config = tmp_path / "aggregator.toml"
    config.write_text(text)
    if command == ["baseline", "import"]:
        csv_file = tmp_path / "baseline.csv"
        csv_file.write_text(BASELINE, "utf-8")
        command = [*command, str(csv_file)]
    result = invoke(*command, "--config", str(config))
    assert_plain_error(result.output, 2, result.exit_code, str(config), *words)


# --- indicators ------------------------------------------------------------


def test_indicators_refuse_a_ward_that_does_not_exist(store: Path) -> None:
    done = run_module("indicators", "--period", "2026", "--ward", "99999", "--store", str(store))
    assert_plain_error(done.stderr, 1, done.returncode, "99999 is not a ward code of the city")
    assert done.stdout == ""  # no table of "insufficient data" for it


def test_indicators_of_a_real_ward_without_data_still_print(store: Path) -> None:
    result = runner.invoke(
        app,
        ["indicators", "--period", "2026", "--ward", str(NINH_KIEU), "--store", str(store)],
    )
    assert result.exit_code == 0, result.output
    assert "insufficient data" in result.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--period", "2026Q5"], ["--period", "YYYYQn"]),
        (["--period", "2026", "--by", "isp"], ["--by", "operator"]),
        (["--period", "2026", "--format", "xml"], ["--format", "json"]),
        (["--period", "2026", "--ward", "Ninh Kieu"], ["--ward", "integer"]),
        ([], ["--period"]),
    ],
)
def test_indicators_usage_errors_are_plain(store: Path, args: list[str], words: list[str]) -> None:
    result = invoke("indicators", *args, "--store", str(store))
    lines = assert_plain_error(result.output, 2, result.exit_code, *words)
    assert "wardprobe-aggregator indicators --help" in lines[-1]


def test_indicators_on_a_store_from_an_older_release(tmp_path: Path) -> None:
    old = tmp_path / "old.duckdb"
    Store(old).close()
    with duckdb.connect(str(old)) as con:
        con.execute("alter table probes drop column plan_up_mbps")
    result = invoke("indicators", "--period", "2026", "--store", str(old))
    assert_plain_error(result.output, 2, result.exit_code, "plan_up_mbps", "older release")


def test_indicators_on_files_that_are_not_stores(junk: Path, tmp_path: Path) -> None:
    result = invoke("indicators", "--period", "2026", "--store", str(junk))
    assert_plain_error(result.output, 2, result.exit_code, "not a valid DuckDB")
    result = invoke("indicators", "--period", "2026", "--store", str(tmp_path / "none.duckdb"))
    assert_plain_error(result.output, 2, result.exit_code, "no store at")


# --- baseline import, synthetic --------------------------------------------

BASELINE = (
    "scope,ward_code,year,network_kind,access_tech,statistic,value_mbps,sample_size,source\n"
    "city,,2024,mobile,,median,45.2,120000,VNNIC i-Speed 2024 (12-month median)\n"
)


def test_baseline_import_of_a_file_not_utf8(tmp_path: Path) -> None:
    csv_file = tmp_path / "baseline.csv"
    csv_file.write_bytes(BASELINE.replace("VNNIC", "Sở KH&CN").encode("utf-16"))
    result = invoke("baseline", "import", str(csv_file), "--store", str(tmp_path / "s.duckdb"))
    assert_plain_error(result.output, 2, result.exit_code, "is not UTF-8")


def test_baseline_import_of_a_missing_file(tmp_path: Path) -> None:
    result = invoke("baseline", "import", str(tmp_path / "nope.csv"))
    assert_plain_error(result.output, 2, result.exit_code, "nope.csv", "does not exist")


def test_baseline_import_with_a_bad_header_names_it_and_imports_nothing(tmp_path: Path) -> None:
    csv_file = tmp_path / "baseline.csv"
    csv_file.write_text("year,value\n2024,45\n", "utf-8")
    result = invoke("baseline", "import", str(csv_file), "--store", str(tmp_path / "s.duckdb"))
    assert result.exit_code == 1
    assert "baseline.csv:1: header lacks the columns scope" in result.output
    assert "error: nothing imported: 1 bad line in" in result.output
    assert "Traceback" not in result.output


def test_synthetic_into_a_file_that_is_not_a_store(junk: Path) -> None:
    result = invoke("synthetic", "--store", str(junk), "--rows", "1000")
    assert_plain_error(result.output, 2, result.exit_code, "not a valid DuckDB")
    assert junk.read_text() == "not a database\n"


# --- serve -----------------------------------------------------------------


def _serve_config(tmp_path: Path, state: Path, ingest: str, enrol: str = "127.0.0.1:0") -> Path:
    config = tmp_path / "aggregator.toml"
    config.write_text(
        f'state_dir = "{state}"\nstore_path = "{tmp_path / "store.duckdb"}"\n'
        f'ingest_listen = "{ingest}"\nenrol_listen = "{enrol}"\n'
    )
    return config


def test_serve_without_a_ca_says_to_make_one(tmp_path: Path) -> None:
    done = run_module("serve", "--config", str(_serve_config(tmp_path, tmp_path / "x", "[::1]:0")))
    assert_plain_error(done.stderr, 1, done.returncode, "no CA in", "ca init")


def test_serve_on_a_port_already_taken(tmp_path: Path) -> None:
    state = tmp_path / "state"
    init_ca(state, ["localhost"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        done = run_module("serve", "--config", str(_serve_config(tmp_path, state, address)))
    # grpc's own log line about the bind may come before ours.
    ours = done.stderr[done.stderr.index("error: ") :]
    assert_plain_error(ours, 1, done.returncode, f"cannot listen on {address}", "ingest_listen")
    assert "Traceback" not in done.stderr and "GRPC_VERBOSITY" not in done.stderr


# --- ca, token, probe ------------------------------------------------------


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    state = tmp_path / "aggregator"
    result = invoke("ca", "init", "--state-dir", str(state), "--server-name", "localhost")
    assert result.exit_code == 0, result.output
    return state


@pytest.mark.parametrize("name", ["bad name!", "under_score.example", "-lead.example", "a..b", ""])
def test_ca_init_refuses_a_server_name_no_certificate_can_carry(tmp_path: Path, name: str) -> None:
    state = tmp_path / "aggregator"
    result = invoke("ca", "init", "--state-dir", str(state), "--server-name", name)
    assert_plain_error(result.output, 2, result.exit_code, f"--server-name {name!r}", "DNS name")
    assert not state.exists()  # nothing written


def test_ca_server_cert_refuses_a_bad_server_name_and_keeps_the_certificate(
    state_dir: Path,
) -> None:
    before = (state_dir / "server.crt").read_bytes()
    result = invoke(
        "ca", "server-cert", "--state-dir", str(state_dir),
        "--server-name", "aggregator.cantho.internal", "--server-name", "bad name!",
    )  # fmt: skip
    assert_plain_error(result.output, 2, result.exit_code, "'bad name!'")
    assert (state_dir / "server.crt").read_bytes() == before


def _token(state_dir: Path, *extra: str) -> Result:
    return invoke(
        "token", "create", "--state-dir", str(state_dir), "--site-class", "school", *extra
    )


def test_token_refusals(state_dir: Path) -> None:
    result = _token(state_dir, "--ward", "99999")
    assert_plain_error(result.output, 1, result.exit_code, "99999 is not a ward code of the city")
    result = _token(state_dir, "--ward", str(NINH_KIEU), "--ttl", "3y")
    assert_plain_error(result.output, 2, result.exit_code, "--ttl", "'3y'")
    result = _token(state_dir, "--ward", str(NINH_KIEU), "--isp", "Nobody Telecom")
    assert_plain_error(result.output, 1, result.exit_code, "Nobody Telecom", "VNPT")
    result = invoke("token", "create", "--state-dir", str(state_dir), "--ward", str(NINH_KIEU))
    # typer lists the choices one per line; the error stays on one.
    lines = assert_plain_error(result.output, 2, result.exit_code, "--site-class", "school,")
    assert "household" in lines[0]
    result = _token(state_dir, "--ward", str(NINH_KIEU), "--site-class", "mall")
    assert_plain_error(result.output, 2, result.exit_code, "'mall' is not one of")
    assert "Value error" not in result.output


def test_probe_commands_on_an_unknown_probe(state_dir: Path) -> None:
    assert _token(state_dir, "--ward", str(NINH_KIEU)).exit_code == 0  # makes the registry
    state = ["--state-dir", str(state_dir)]
    for args in (
        ["revoke", "wp-0000000000"],
        ["move", "wp-0000000000", "--ward", str(NINH_KIEU)],
        ["set-isp", "wp-0000000000", "VNPT"],
        ["set-plan", "wp-0000000000", "300/100"],
    ):
        result = invoke("probe", *args, *state)
        assert_plain_error(result.output, 1, result.exit_code, "no probe 'wp-0000000000'")
    result = invoke("probe", "move", "wp-0000000000", "--ward", "99999", *state)
    assert_plain_error(result.output, 1, result.exit_code, "99999 is not a ward code")


def test_a_damaged_registry_or_ca_is_named(state_dir: Path) -> None:
    assert _token(state_dir, "--ward", str(NINH_KIEU)).exit_code == 0
    (state_dir / "registry.sqlite").write_bytes(b"x" * 4096)
    for args in (["probe", "list"], ["probe", "revoke", "wp-0000000000"]):
        result = invoke(*args, "--state-dir", str(state_dir))
        assert_plain_error(result.output, 1, result.exit_code, "registry.sqlite", "not a database")
    (state_dir / "ca.key").write_text("-----BEGIN PRIVATE KEY-----\nbroken\n")
    for args in (["ca", "show"], ["token", "create", "--site-class", "school", "--ward", "31135"]):
        result = invoke(*args, "--state-dir", str(state_dir))
        assert_plain_error(result.output, 1, result.exit_code, "ca.key or ca.crt")


def test_ca_init_where_no_directory_can_be_made(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = invoke("ca", "init", "--state-dir", str(blocker / "ca"), "--server-name", "x")
    assert_plain_error(result.output, 1, result.exit_code, str(blocker))


# --- the command line itself -----------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["nosuch"], ["No such command 'nosuch'"]),
        (["summary", "--stor", "x"], ["--stor", "--store"]),
        (["probe", "list", "--state", "gone"], ["--state", "'gone'"]),
    ],
)
def test_usage_errors_are_two_plain_lines(args: list[str], words: list[str]) -> None:
    done = run_module(*args)
    lines = assert_plain_error(done.stderr, 2, done.returncode, *words)
    assert len(lines) == 2 and "--help" in lines[1]


# --- reference-server ------------------------------------------------------


def test_reference_server_with_a_bad_config_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "reference.toml"
    config.write_text('listen_addresses = ["nonsense"]\ntcp_echo_port = 0\n')
    result = invoke("reference-server", "serve", "--config", str(config))
    assert_plain_error(
        result.output, 2, result.exit_code, "listen_addresses[0]", "not a valid IPv4 address"
    )


def test_reference_server_on_a_port_already_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_module(
            "reference-server", "serve", "--listen", "127.0.0.1", "--iperf3-ports", "1",
            "--echo-port", str(port), "--dns-port", "0",
        )  # fmt: skip
    assert_plain_error(done.stderr, 1, done.returncode, "cannot listen", str(port))
