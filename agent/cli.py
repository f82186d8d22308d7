"""`wardprobe-agent`: the probe box's command line."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agent import AGENT_VERSION
from agent.config import DEFAULT_CONFIG_PATH, AgentSettings, ConfigError, load_settings

if TYPE_CHECKING:
    from agent.runtime import AgentRuntime

app = typer.Typer(
    help=(
        "wardprobe agent: measures the ward's Internet access (speed, latency, IPv6) and "
        "sends the results to the city's aggregator. Enrol once, then run it as a service."
    ),
    no_args_is_help=True,
)

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
        return load_settings(config, state_dir)
    except ConfigError as err:
        typer.secho(str(err), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from err


def _runtime(config: Path | None, state_dir: Path | None) -> AgentRuntime:
    """The agent for the enrolled box, or a clear exit when it is not enrolled."""
    from agent.runtime import AgentRuntime, NotEnrolled

    try:
        return AgentRuntime(_settings(config, state_dir))
    except NotEnrolled as err:
        typer.secho(str(err), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from err


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
) -> None:
    """Enrol this box with the aggregator: trade the token for a certificate.

    The token binds the box to a ward and a site class; both are printed so you
    can check them. If they are wrong, ask the operator to move or revoke the probe.
    """
    from agent.enrolment import enrol, hostname_of_this_box
    from agent.identity import EnrolmentError

    settings = _settings(config, state_dir)
    try:
        record = enrol(aggregator, token, settings.state_dir, hostname_of_this_box(), AGENT_VERSION)
    except EnrolmentError as err:
        typer.secho(f"enrolment failed: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from err
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
    from agent.identity import load_enrolment

    settings = _settings(config, state_dir)  # a bad agent.toml stops here, clearly
    if load_enrolment(settings.state_dir) is None:
        typer.secho(
            f"no enrolment in {settings.state_dir}: run `wardprobe-agent enroll` first",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(code=1)
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
    """Run every scheduled test once now; print each result as a JSON line on stdout."""
    from agent.uploader import UploadError

    _logging(verbose)
    runtime = _runtime(config, state_dir)

    def emit(result: dict[str, object]) -> None:
        print(json.dumps(result, ensure_ascii=False), flush=True)

    async def main() -> int:
        effective = runtime.effective_config(await runtime.fetch_config())
        await runtime.run_cycle(effective, emit)
        if not upload:
            return 0
        try:
            report = await runtime.uploader.drain()
        except UploadError as err:
            typer.secho(
                f"upload failed: {err}; {runtime.spool.depth()} results stay in the spool",
                fg=typer.colors.YELLOW,
                err=True,
            )
            return 2
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
        typer.secho(
            f"upload failed: {err}; {runtime.spool.depth()} results stay in the spool",
            fg=typer.colors.YELLOW,
            err=True,
        )
        raise typer.Exit(code=2) from err
    finally:
        runtime.close()
    typer.echo(
        f"uploaded: {report.stored} stored, {report.duplicates} already stored, "
        f"{report.rejected} refused"
    )


def _modem_report(saved: str | None, settings: AgentSettings) -> dict[str, object] | str:
    """The last observation of the modem in words (agent.runtime.modem_status)."""
    if saved:
        report: dict[str, object] = json.loads(saved)
        return report
    return "not observed yet" if settings.mobile.enabled else "mobile line disabled"


@app.command()
def status(
    config: ConfigOption = None,
    state_dir: StateDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show enrolment, the last result of each test, the modem's state, spool depth
    and the last upload."""
    from agent.identity import load_enrolment
    from agent.runtime import SPOOL_FILE
    from agent.spool import Spool

    settings = _settings(config, state_dir)
    enrolment = load_enrolment(settings.state_dir)
    report: dict[str, object] = {
        "agent_version": AGENT_VERSION,
        "state_dir": str(settings.state_dir),
    }
    if enrolment is None:
        report["enrolled"] = False
    else:
        report.update(
            enrolled=True,
            probe_id=enrolment.probe_id,
            ward=f"{enrolment.ward_name} ({enrolment.ward_code})",
            site_class=enrolment.site_class,
            aggregator=settings.aggregator or enrolment.ingest_address,
            certificate_valid_until=enrolment.certificate_not_after.isoformat(),
        )
        spool = Spool(settings.state_dir / SPOOL_FILE, settings.spool.max_rows)
        try:
            from agent.measurements import MEASUREMENTS

            last = {}
            for name in MEASUREMENTS:
                text = spool.get_state(f"last_result:{name}")
                if text:
                    last[name] = json.loads(text)
            report.update(
                spool_depth=spool.depth(),
                dropped_results=spool.counter("dropped_results"),
                last_upload_at=spool.get_state("last_upload_at"),
                last_upload_error=spool.get_state("last_upload_error"),
                last_results=last,
                modem=_modem_report(spool.get_state("modem"), settings),
                recently_refused=[
                    {"result_id": rid, "reason": why} for rid, why, _ in spool.rejected(5)
                ],
            )
        finally:
            spool.close()
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return
    for key, value in report.items():
        if isinstance(value, dict):
            typer.echo(f"{key}:")
            for name, item in value.items():
                typer.echo(f"  {name}: {item}")
        else:
            typer.echo(f"{key}: {value}")
    if not report.get("enrolled"):
        raise typer.Exit(code=1)
