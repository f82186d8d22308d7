"""`wardprobe-agent`: the probe box's command line."""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agent import AGENT_VERSION
from agent.config import DEFAULT_CONFIG_PATH, AgentSettings, ConfigError, load_settings
from wardprobe.cli_errors import EXIT_FAILED, EXIT_USAGE, PlainErrors, fail

if TYPE_CHECKING:
    from agent.identity import EnrolmentRecord
    from agent.runtime import AgentRuntime

app = typer.Typer(
    help=(
        "wardprobe agent: measures the ward's Internet access (speed, latency, IPv6) and "
        "sends the results to the city's aggregator. Enrol once, then run it as a service. "
        "Exit codes: 0 done (status: healthy); 1 refused or failed (not enrolled, enrolment "
        "refused; status: not healthy); 2 an option or agent.toml that cannot be used, or "
        "(upload, once) the aggregator could not take the results, which stay in the spool."
    ),
    no_args_is_help=True,
    cls=PlainErrors,
)


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"wardprobe-agent {AGENT_VERSION}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the agent's version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """Options before the command (only --version)."""


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help=f"agent.toml (default {DEFAULT_CONFIG_PATH} if it exists; see "
        "packaging/agent.example.toml).",
        exists=True,
        dir_okay=False,
    ),
]
StateDirOption = Annotated[
    Path | None,
    typer.Option(help="State directory (keys, certificate, spool); overrides agent.toml."),
]


def _settings(config: Path | None, state_dir: Path | None) -> AgentSettings:
    try:
        settings = load_settings(config, state_dir)
    except ConfigError as err:
        raise fail(str(err), code=EXIT_USAGE) from None
    if os.geteuid() == 0:
        atexit.register(hand_back_state, settings.state_dir)
    return settings


def hand_back_state(state_dir: Path) -> None:
    """Give what a command run as root (sudo) wrote in the state directory to
    the directory's owner: the package makes it the service's user, which
    could not read a root-owned key or write a root-owned spool."""
    try:
        owner = state_dir.stat()
    except OSError:
        return  # nothing was made
    if owner.st_uid == 0:
        return
    for path in (state_dir, *state_dir.rglob("*")):
        try:
            if path.lstat().st_uid != owner.st_uid:
                os.chown(path, owner.st_uid, owner.st_gid, follow_symlinks=False)
        except OSError:
            continue  # gone meanwhile (SQLite's -wal, -shm on close)


def _enrolment(settings: AgentSettings) -> EnrolmentRecord | None:
    """The box's enrolment (None: not enrolled); a damaged enrolment.json ends
    the command with what to do instead of a traceback."""
    from agent.identity import ENROLMENT_FILE, load_enrolment

    try:
        return load_enrolment(settings.state_dir)
    except (ValueError, KeyError, TypeError, OSError) as err:
        raise fail(
            f"cannot read {settings.state_dir / ENROLMENT_FILE} ({type(err).__name__}: {err})",
            "enrol the box again: wardprobe-agent enroll --force ...",
        ) from None


def _runtime(config: Path | None, state_dir: Path | None) -> AgentRuntime:
    """The agent for the enrolled box, or a clear exit when it is not enrolled."""
    from agent.runtime import AgentRuntime, NotEnrolled

    settings = _settings(config, state_dir)
    _enrolment(settings)  # a damaged one is reported here
    try:
        return AgentRuntime(settings)
    except NotEnrolled as err:
        raise fail(str(err)) from None
    except sqlite3.Error as err:
        raise _spool_failure(settings, err) from None


def _spool_failure(settings: AgentSettings, err: sqlite3.Error) -> typer.Exit:
    from agent.runtime import SPOOL_FILE

    return fail(
        f"cannot use the spool {settings.state_dir / SPOOL_FILE}: {err}",
        "move it aside (the results in it are lost) and the agent starts a new one",
    )


def _upload_failure(err: Exception, runtime: AgentRuntime) -> str:
    """What went wrong, then how many results wait. gRPC's text for an
    aggregator it cannot reach is a chain of layers; its last says why."""
    text = str(err)
    if "UNAVAILABLE" in text:
        text = f"cannot reach the aggregator at {runtime.target}: {text.rsplit(': ', 1)[-1]}"
    return f"upload failed: {text}; {runtime.spool.depth()} results stay in the spool"


def _logging(verbose: bool) -> None:
    from agent.process import log_to_stderr

    log_to_stderr(verbose)


@app.command()
def enroll(
    aggregator: Annotated[
        str, typer.Option(help="host:port of the aggregator's enrolment port (TLS).")
    ],
    token: Annotated[str, typer.Option(help="The one-time bootstrap token the operator gave you.")],
    config: ConfigOption = None,
    state_dir: StateDirOption = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Enrol a box that is enrolled already: its old identity is replaced (ask "
            "the operator to revoke the old probe).",
        ),
    ] = False,
) -> None:
    """Enrol this box with the aggregator: trade the token for a certificate.

    The token binds the box to a ward and a site class; both are printed so you
    can check them. If they are wrong, ask the operator to move or revoke the probe.
    Exits 1 when the aggregator cannot be reached or refuses the token, 2 on an
    address or token that is not written as it should be.
    """
    from agent.config import split_host_port
    from agent.enrolment import (
        AlreadyEnrolled,
        TokenMalformed,
        enrol,
        hostname_of_this_box,
        token_pin_prefix,
    )
    from agent.identity import EnrolmentError

    settings = _settings(config, state_dir)
    # Checked before the box reaches out, and the state directory made: a
    # failure after the aggregator said yes would use the one-time token up.
    try:
        split_host_port(aggregator)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--aggregator") from None
    try:
        token_pin_prefix(token)
    except TokenMalformed as err:
        raise typer.BadParameter(str(err), param_hint="--token") from None
    try:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise fail(
            f"cannot make the state directory {settings.state_dir}: {err.strerror}"
        ) from None
    try:
        record = enrol(
            aggregator,
            token,
            settings.state_dir,
            hostname_of_this_box(),
            AGENT_VERSION,
            force=force,
        )
    except AlreadyEnrolled:
        enrolled = _enrolment(settings)
        raise fail(
            "this box is enrolled already"
            + (f", as probe {enrolled.probe_id}" if enrolled else "")
            + f" ({settings.state_dir})",
            "to replace its identity, run again with --force (and ask the operator to revoke "
            "the old probe)",
        ) from None
    except EnrolmentError as err:
        raise fail(f"enrolment failed: {err}") from None
    except OSError as err:
        raise fail(
            f"enrolled, but the identity cannot be written to {settings.state_dir}: "
            f"{err.strerror or err}",
            "the token is used up: ask the operator to revoke the probe and give a new one",
        ) from None
    typer.echo(f"enrolled as probe {record.probe_id}")
    typer.echo(f"  ward:       {record.ward_name} ({record.ward_code})")
    typer.echo(f"  site class: {record.site_class}")
    typer.echo(f"  results go to {record.ingest_address}")
    typer.echo(f"  certificate valid until {record.certificate_not_after:%Y-%m-%d}")
    typer.echo("Check the ward and site class above; if either is wrong, tell the operator.")


@app.command()
def run(
    config: ConfigOption = None,
    state_dir: StateDirOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at debug level.")] = False,
) -> None:
    """Run as a daemon: measure on the schedule, upload, until SIGTERM.

    The resident process is a small scheduler (agent/daemon.py); each test and
    each upload runs in a worker process that exits when it is done.
    """
    from agent.process import module_argv

    settings = _settings(config, state_dir)  # a bad agent.toml stops here, clearly
    if _enrolment(settings) is None:
        raise fail(f"no enrolment in {settings.state_dir}: run `wardprobe-agent enroll` first")
    daemon_argv = module_argv("agent.daemon", config, state_dir, verbose)
    sys.stdout.flush()
    sys.stderr.flush()
    # exec: the same process (systemd's main PID), without this CLI's imports.
    os.execv(sys.executable, daemon_argv)


@app.command()
def once(
    config: ConfigOption = None,
    state_dir: StateDirOption = None,
    upload: Annotated[
        bool,
        typer.Option(help="Upload the spool after the cycle (results stay spooled if it fails)."),
    ] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at debug level.")] = False,
) -> None:
    """Run every scheduled test once now; print each result as a JSON line on stdout.

    Exits 2 when there is nothing to run (the aggregator cannot be reached and
    agent.toml has no schedule) or the upload fails (the results stay in the spool)."""
    from agent.uploader import UploadError

    _logging(verbose)
    runtime = _runtime(config, state_dir)

    def emit(result: dict[str, object]) -> None:
        print(json.dumps(result, ensure_ascii=False), flush=True)

    async def main() -> int:
        try:
            effective = runtime.effective_config(await runtime.fetch_config())
        except RuntimeError as err:  # no schedule or no server: neither fetched nor configured
            raise fail(f"nothing to run: {err}", code=EXIT_USAGE) from None
        await runtime.run_cycle(effective, emit)
        if not upload:
            return 0
        try:
            report = await runtime.uploader.drain()
        except UploadError as err:
            fail(_upload_failure(err, runtime))
            return EXIT_USAGE
        typer.echo(
            f"uploaded: {report.stored} stored, {report.duplicates} already stored, "
            f"{report.rejected} refused",
            err=True,
        )
        return 0

    try:
        code = asyncio.run(main())
    finally:
        runtime.close()
    raise typer.Exit(code=code)


@app.command()
def upload(
    config: ConfigOption = None,
    state_dir: StateDirOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at debug level.")] = False,
) -> None:
    """Deliver everything waiting in the spool now (exit 2 if the aggregator can't take it)."""
    from agent.uploader import UploadError

    _logging(verbose)
    runtime = _runtime(config, state_dir)
    try:
        report = asyncio.run(runtime.uploader.drain())
    except UploadError as err:
        raise fail(_upload_failure(err, runtime), code=EXIT_USAGE) from None
    finally:
        runtime.close()
    typer.echo(
        f"uploaded: {report.stored} stored, {report.duplicates} already stored, "
        f"{report.rejected} refused"
    )


@app.command()
def status(
    config: ConfigOption = None,
    state_dir: StateDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Say whether the box is healthy, and why not: enrolment, clock, last test,
    last upload, spool, dropped results, modem. Exits 0 when healthy, 1 when not.

    The first line is `healthy` or `not healthy: <reasons>`; a script (or a
    phone over SSH) needs only the exit code."""
    from agent.health import check
    from agent.measurements import MEASUREMENTS
    from agent.runtime import SPOOL_FILE
    from agent.spool import Spool

    settings = _settings(config, state_dir)
    enrolment = _enrolment(settings)
    spool = None
    if enrolment is not None:
        try:
            spool = Spool(settings.state_dir / SPOOL_FILE, settings.spool.max_rows)
        except sqlite3.Error as err:
            raise _spool_failure(settings, err) from None
    try:
        health = check(settings, enrolment, spool, list(MEASUREMENTS), AGENT_VERSION)
    except sqlite3.Error as err:
        raise _spool_failure(settings, err) from None
    finally:
        if spool is not None:
            spool.close()
    if as_json:
        report = {"healthy": health.healthy, "reasons": health.reasons, **health.report}
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        typer.echo(health.text())
    if not health.healthy:
        raise typer.Exit(code=EXIT_FAILED)
