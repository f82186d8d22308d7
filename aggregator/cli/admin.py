"""Admin commands for the enrolment CA, bootstrap tokens and probes.

Three typer sub-apps that the aggregator's main CLI mounts:

    ca     init | show | server-cert
    token  create
    probe  list | revoke | move | set-isp | set-plan

Ward names come from `analysis.wards.ward_name` unless the caller puts an
`AdminContext` with its own lookup in typer's context object (tests do).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import psycopg
import typer
from cryptography import x509
from rich.console import Console
from rich.table import Table

from aggregator.enrolment.ca import (
    DEFAULT_CA_VALID_DAYS,
    DEFAULT_SERVER_VALID_DAYS,
    CaError,
    CertificateAuthority,
    init_ca,
    is_server_name,
    server_names_of,
)
from aggregator.enrolment.registry import (
    REGISTRY_FILE,
    ProbeRegistry,
    ProbeState,
    RegistryError,
    SiteClass,
    WardLookup,
    known_isps,
    parse_plan_mbps,
)
from aggregator.enrolment.registry_db import described_uri, is_postgres_uri
from wardprobe.cli_errors import PlainErrors, fail, usage_error

DEFAULT_STATE_DIR = Path("/var/lib/wardprobe-aggregator")  # as AggregatorConfig.state_dir
DEFAULT_TOKEN_TTL = "7d"

_TTL_RE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_TTL_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class AdminContext:
    """What the main CLI (or a test) may hand these commands via ctx.obj."""

    ward_lookup: WardLookup


StateDirOption = Annotated[
    Path,
    typer.Option(
        "--state-dir",
        envvar="WARDPROBE_STATE_DIR",
        help="Aggregator state directory (CA, server certificate, registry.sqlite).",
    ),
]


RegistryOption = Annotated[
    str | None,
    typer.Option(
        "--registry",
        envvar="WARDPROBE_REGISTRY",
        help=(
            "The probe registry in PostgreSQL (postgres://USER@HOST/DB), as aggregator.toml's "
            "registry; leave out for registry.sqlite in --state-dir."
        ),
    ),
]


def parse_ttl(text: str) -> timedelta:
    """Parse a lifetime such as "30m", "12h", "7d" or "2w"."""
    match = _TTL_RE.match(text)
    if match is None or int(match[1]) == 0:
        raise typer.BadParameter(
            f"{text!r}: give a positive number and a unit m, h, d or w (e.g. 7d)",
            param_hint="--ttl",
        )
    return timedelta(**{_TTL_UNITS[match[2]]: int(match[1])})


def _ward_lookup(ctx: typer.Context) -> WardLookup:
    if isinstance(ctx.obj, AdminContext):
        return ctx.obj.ward_lookup
    # Imported when a command needs ward names, so the CA commands do not
    # load the administrative-units data.
    from analysis.wards import ward_name

    return ward_name


def _no_wards(ward_code: int) -> str | None:
    """For commands that only read the registry and need no ward names."""
    return None


def _existing_registry(
    state_dir: Path, registry: str | None, ward_lookup: WardLookup
) -> ProbeRegistry:
    """The registry, refusing to create an empty one in a mistyped directory."""
    if registry is None and not (state_dir / REGISTRY_FILE).exists():
        raise _fail(f"no probe registry in {state_dir} (no token has been created there yet)")
    return _registry(state_dir, registry, ward_lookup)


def _registry(state_dir: Path, registry: str | None, ward_lookup: WardLookup) -> ProbeRegistry:
    """The registry at --registry, else in --state-dir; a bad URI or a
    database that cannot be reached ends the command with one line."""
    if registry is not None and not is_postgres_uri(registry):
        raise usage_error(f"--registry {registry!r} is not a postgres:// URI")
    try:
        return ProbeRegistry.at(registry, state_dir, ward_lookup)
    except _STATE_ERRORS as exc:
        raise _state_failure(exc, state_dir, registry) from exc


def _fail(message: str) -> typer.Exit:
    return fail(message)


def _check_server_names(names: list[str]) -> None:
    """End the command (exit 2) at a --server-name that no certificate could
    carry: neither a DNS name nor an IP address (a probe could not match it)."""
    for name in names:
        if not is_server_name(name.strip()):
            raise usage_error(f"--server-name {name!r} is not a DNS name or an IP address")


# What the CA and the registry raise when the state directory cannot be used
# as asked (a refusal, a damaged or unwritable file): one line each.
_STATE_ERRORS = (CaError, RegistryError, sqlite3.Error, psycopg.Error, OSError)


def _state_failure(exc: Exception, state_dir: Path, registry: str | None = None) -> typer.Exit:
    if isinstance(exc, psycopg.Error):
        where = described_uri(registry) if registry else "in PostgreSQL"
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return _fail(f"cannot use the probe registry {where}: {first_line}")
    if isinstance(exc, sqlite3.Error):
        return _fail(f"cannot use the probe registry {state_dir / REGISTRY_FILE}: {exc}")
    if isinstance(exc, OSError):
        return _fail(f"cannot use {exc.filename or state_dir}: {exc.strerror or exc}")
    return _fail(str(exc))


def _load_ca(state_dir: Path) -> CertificateAuthority:
    """The CA, with a damaged key or certificate reported as a CaError (the
    cryptography package's own message points at its FAQ)."""
    try:
        return CertificateAuthority.load(state_dir)
    except ValueError as exc:
        raise CaError(
            f"the CA in {state_dir} cannot be read: ca.key or ca.crt is not a PEM key "
            "and certificate (damaged, or not the files `ca init` wrote)"
        ) from exc


ca_app = typer.Typer(
    help="The private CA that signs probe certificates.", no_args_is_help=True, cls=PlainErrors
)
token_app = typer.Typer(
    help="One-time bootstrap tokens for enrolling probes.", no_args_is_help=True, cls=PlainErrors
)
registry_app = typer.Typer(
    help="The probe registry itself: move it into PostgreSQL for replicas on several hosts.",
    no_args_is_help=True,
    cls=PlainErrors,
)
probe_app = typer.Typer(
    help="Enrolled probes: list, revoke, move, set-isp, set-plan.",
    no_args_is_help=True,
    cls=PlainErrors,
)
_PLAN_HELP = (
    "Advertised speeds of the fixed line's plan in Mb/s, DOWN/UP (e.g. 300/100; one number"
    " for both), for QCVN 34:2022 (mean download >= 0.8 x DOWN, upload >= 0.8 x UP)."
)


def _isp_help(what: str) -> str:
    return f"{what} One of: {', '.join(known_isps())} (any case)."


@token_app.callback()
def token_group() -> None:
    """One-time bootstrap tokens for enrolling probes."""
    # A callback keeps `token` a group of commands even while it has only
    # one, so `token create` is spelt the same however the app is mounted.


@ca_app.command("init")
def ca_init(
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    server_name: Annotated[
        list[str],
        typer.Option(
            "--server-name",
            help="DNS name or IP address probes use to reach the aggregator; repeat for "
            "several. Goes into the server certificate's SAN.",
        ),
    ] = [],  # noqa: B006 - typer reads the default, it is never mutated
    valid_days: Annotated[
        int, typer.Option(help="How long the CA certificate is valid, in days.", min=1)
    ] = DEFAULT_CA_VALID_DAYS,
    server_valid_days: Annotated[
        int, typer.Option(help="How long the server certificate is valid, in days.", min=1)
    ] = DEFAULT_SERVER_VALID_DAYS,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace an existing CA. Every enrolled probe and unused token stops working.",
        ),
    ] = False,
) -> None:
    """Create the CA and the server certificate; print the CA pin."""
    if not server_name:
        raise _fail("give at least one --server-name")
    _check_server_names(server_name)
    try:
        authority = init_ca(
            state_dir,
            server_name,
            valid_days=valid_days,
            server_valid_days=server_valid_days,
            force=force,
        )
    except ValueError as exc:  # a server name that is empty
        raise _fail(str(exc)) from exc
    except _STATE_ERRORS as exc:
        raise _state_failure(exc, state_dir) from exc
    typer.echo(f"CA created in {state_dir}")
    typer.echo(f"server names: {', '.join(server_name)}")
    typer.echo(f"CA pin (sha256): {authority.pin}")


@ca_app.command("show")
def ca_show(state_dir: StateDirOption = DEFAULT_STATE_DIR) -> None:
    """Show the CA pin, validity and the server certificate's names."""
    try:
        authority = _load_ca(state_dir)
    except _STATE_ERRORS as exc:
        raise _state_failure(exc, state_dir) from exc
    cert = authority.certificate
    typer.echo(f"CA subject:      {cert.subject.rfc4514_string()}")
    typer.echo(f"CA valid until:  {cert.not_valid_after_utc.isoformat()}")
    typer.echo(f"CA pin (sha256): {authority.pin}")
    server_cert_path = state_dir / "server.crt"
    if server_cert_path.exists():
        try:
            server_cert = x509.load_pem_x509_certificate(server_cert_path.read_bytes())
        except ValueError as exc:
            raise _fail(
                f"{server_cert_path} is not a PEM certificate; reissue it with `ca server-cert`"
            ) from exc
        typer.echo(f"server names:    {', '.join(server_names_of(server_cert))}")
        typer.echo(f"server valid until: {server_cert.not_valid_after_utc.isoformat()}")


@ca_app.command("server-cert")
def ca_server_cert(
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    server_name: Annotated[
        list[str],
        typer.Option(
            "--server-name",
            help="DNS name or IP address for the new server certificate; repeat for several.",
        ),
    ] = [],  # noqa: B006 - typer reads the default, it is never mutated
    valid_days: Annotated[
        int, typer.Option(help="How long the server certificate is valid, in days.", min=1)
    ] = DEFAULT_SERVER_VALID_DAYS,
) -> None:
    """Reissue the server certificate (new names or expiry); probes need nothing."""
    if not server_name:
        raise _fail("give at least one --server-name")
    _check_server_names(server_name)
    try:
        authority = _load_ca(state_dir)
        cert = authority.issue_server_certificate(state_dir, server_name, valid_days)
    except ValueError as exc:  # a server name that is empty
        raise _fail(str(exc)) from exc
    except _STATE_ERRORS as exc:
        raise _state_failure(exc, state_dir) from exc
    typer.echo(f"server certificate for {', '.join(server_names_of(cert))} written")
    typer.echo("restart the aggregator to serve it")


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    ward: Annotated[
        int, typer.Option("--ward", help="Official code of the ward the probe stands in.")
    ],
    site_class: Annotated[
        SiteClass, typer.Option("--site-class", help="Kind of site the probe stands at.")
    ],
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    registry_uri: RegistryOption = None,
    ttl: Annotated[
        str, typer.Option("--ttl", help="How long the token stays usable: 30m, 12h, 7d, 2w.")
    ] = DEFAULT_TOKEN_TTL,
    note: Annotated[
        str, typer.Option("--note", help="Free text kept with the token, e.g. the address.")
    ] = "",
    isp: Annotated[
        str | None,
        typer.Option(
            "--isp",
            help=_isp_help(
                "ISP of the site's fixed broadband line, for the indicators per ISP"
                " (leave out if the site has none or it is not known)."
            ),
        ),
    ] = None,
    plan_mbps: Annotated[
        str | None,
        typer.Option(
            "--plan-mbps",
            help=_PLAN_HELP + " Leave out if the site has no fixed line or it is not known.",
        ),
    ] = None,
) -> None:
    """Create a one-time bootstrap token and print it with the ward's name."""
    lifetime = parse_ttl(ttl)
    try:
        plan = None if plan_mbps is None else parse_plan_mbps(plan_mbps)
    except _STATE_ERRORS as exc:
        raise _state_failure(exc, state_dir, registry_uri) from exc
    try:
        authority = _load_ca(state_dir)
        registry = _registry(state_dir, registry_uri, _ward_lookup(ctx))
        token = registry.create_token(
            ward, site_class, lifetime, authority.pin, note, isp, plan_mbps=plan
        )
        ward_name = registry.ward_name(ward)
        grant = registry.check_token(token)
    except _STATE_ERRORS as exc:
        raise _state_failure(exc, state_dir, registry_uri) from exc
    typer.echo(f"ward:       {ward} {ward_name}")
    typer.echo(f"site class: {site_class.value}")
    typer.echo(f"fixed ISP:  {grant.isp or 'not recorded'}")
    typer.echo(f"fixed plan: {_plan_text(grant.plan_down_mbps, grant.plan_up_mbps)}")
    typer.echo(f"valid for:  {ttl} (one enrolment)")
    typer.echo(f"token:      {token}")


@probe_app.command("list")
def probe_list(
    ctx: typer.Context,
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    registry_uri: RegistryOption = None,
    state: Annotated[
        ProbeState | None,
        typer.Option("--state", help="Only probes in this state (default: all)."),
    ] = None,
) -> None:
    """List enrolled probes."""
    lookup = ctx.obj.ward_lookup if isinstance(ctx.obj, AdminContext) else _no_wards
    registry = _existing_registry(state_dir, registry_uri, lookup)
    try:
        probes = registry.list_probes(state)
    except _STATE_ERRORS as exc:
        raise _state_failure(exc, state_dir, registry_uri) from exc
    table = Table(
        "probe id",
        "ward",
        "site class",
        "fixed ISP",
        "plan Mb/s",
        "hostname",
        "enrolled",
        "cert until",
        "state",
    )
    for probe in probes:
        table.add_row(
            probe.probe_id,
            str(probe.ward_code),
            probe.site_class.value,
            probe.isp or "-",
            "-"
            if probe.plan_down_mbps is None
            else _plan_text(probe.plan_down_mbps, probe.plan_up_mbps),
            probe.hostname,
            probe.enrolled_at.strftime("%Y-%m-%d %H:%M"),
            probe.cert_not_after.strftime("%Y-%m-%d"),
            probe.state.value,
        )
    Console(width=160).print(table)


@probe_app.command("revoke")
def probe_revoke(
    probe_id: Annotated[str, typer.Argument(help="Id of the probe to revoke, e.g. wp-3f9a1c2e7b.")],
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    registry_uri: RegistryOption = None,
) -> None:
    """Revoke a probe: its certificate is refused from its next call on."""
    registry = _existing_registry(state_dir, registry_uri, _no_wards)
    try:
        record = registry.revoke(probe_id)
    except _STATE_ERRORS as exc:
        raise _state_failure(exc, state_dir, registry_uri) from exc
    assert record.revoked_at is not None
    typer.echo(f"probe {record.probe_id} revoked at {record.revoked_at.isoformat()}")


@probe_app.command("move")
def probe_move(
    ctx: typer.Context,
    probe_id: Annotated[str, typer.Argument(help="Id of the probe that was moved.")],
    ward: Annotated[int, typer.Option("--ward", help="Official code of its new ward.")],
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    registry_uri: RegistryOption = None,
) -> None:
    """Assign a probe to another ward; results from now on count there."""
    registry = _existing_registry(state_dir, registry_uri, _ward_lookup(ctx))
    try:
        record = registry.move_probe(probe_id, ward)
        ward_name = registry.ward_name(ward)
    except _STATE_ERRORS as exc:
        raise _state_failure(exc, state_dir, registry_uri) from exc
    typer.echo(f"probe {record.probe_id} now in ward {record.ward_code} {ward_name}")


@probe_app.command("set-isp")
def probe_set_isp(
    probe_id: Annotated[str, typer.Argument(help="Id of the probe, e.g. wp-3f9a1c2e7b.")],
    isp: Annotated[
        str,
        typer.Argument(
            help=_isp_help("ISP of the fixed broadband line at the probe's site."),
            show_default=False,
        ),
    ],
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    registry_uri: RegistryOption = None,
) -> None:
    """Record or correct the ISP of the fixed line at a probe's site. It holds
    for every result of the probe, past ones too; to keep the results from
    before a household's change of ISP apart, enrol the box anew with a token
    for the new ISP and revoke the old probe instead."""
    registry = _existing_registry(state_dir, registry_uri, _no_wards)
    try:
        record = registry.set_probe_isp(probe_id, isp)
    except _STATE_ERRORS as exc:
        raise _state_failure(exc, state_dir, registry_uri) from exc
    typer.echo(f"probe {record.probe_id} fixed ISP: {record.isp}")


def _plan_text(down_mbps: float | None, up_mbps: float | None) -> str:
    if down_mbps is None or up_mbps is None:
        return "not recorded"
    return f"{down_mbps:g}/{up_mbps:g} Mb/s (down/up)"


@probe_app.command("set-plan")
def probe_set_plan(
    probe_id: Annotated[str, typer.Argument(help="Id of the probe, e.g. wp-3f9a1c2e7b.")],
    plan_mbps: Annotated[
        str,
        typer.Argument(metavar="DOWN/UP", help=_PLAN_HELP, show_default=False),
    ],
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
    registry_uri: RegistryOption = None,
) -> None:
    """Record or correct the advertised plan speeds of the fixed line at a
    probe's site. Like the ISP, it holds for every result of the probe, past
    ones too; when a household changes plan and the results before should
    stay apart, enrol the box anew with a token for the new plan instead."""
    registry = _existing_registry(state_dir, registry_uri, _no_wards)
    try:
        record = registry.set_probe_plan(probe_id, parse_plan_mbps(plan_mbps))
    except _STATE_ERRORS as exc:
        raise _state_failure(exc, state_dir, registry_uri) from exc
    typer.echo(
        f"probe {record.probe_id} fixed plan: "
        f"{_plan_text(record.plan_down_mbps, record.plan_up_mbps)}"
    )


@registry_app.callback()
def registry_group() -> None:
    """The probe registry itself."""
    # A group even with one command, as `token` (above).


@registry_app.command("copy")
def registry_copy(
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="The PostgreSQL registry to fill (postgres://USER@HOST/DB); it must be empty.",
        ),
    ],
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
) -> None:
    """Copy registry.sqlite of --state-dir into an empty registry in PostgreSQL.

    Whole: tokens, probes, certificates, ward histories. Run it before the
    aggregator's replicas are pointed at it with aggregator.toml's `registry`."""
    source = _existing_registry(state_dir, None, _no_wards)
    target = _registry(state_dir, to, _no_wards)
    try:
        copied = source.copy_into(target)
    except _STATE_ERRORS as exc:
        raise _state_failure(exc, state_dir, to) from exc
    counts = ", ".join(f"{rows} {table}" for table, rows in copied.items())
    typer.echo(f"copied {source.location} into {target.location}: {counts}")
