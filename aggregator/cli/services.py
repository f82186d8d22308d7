"""`wardprobe-aggregator services check`: the city's services' IPv6 readiness,
checked now from where the command runs (the central site), with the same
code the probes' `ipv6_services` test runs (wardprobe/ipv6_readiness.py).

It reads the list and CA certificates aggregator.toml names and prints each
service's checks; it stores nothing (the stored central-site checks come from
a wardprobe agent at the central site, docs/operations.md). Exit 0 when
every service is fully ready, 1 when one is not or could not be decided, 2
for a list or aggregator.toml that cannot be used.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from aggregator.cli.support import ConfigOption, config_or_exit
from wardprobe.cli_errors import EXIT_FAILED, PlainErrors, usage_error

services_app = typer.Typer(
    help="The city's own services (aggregator.toml's services_list) and their IPv6 readiness.",
    no_args_is_help=True,
    cls=PlainErrors,
)


@services_app.callback()
def _services() -> None:
    """The city's services and their IPv6 readiness."""


def _mark(value: bool | None) -> str:
    return "–" if value is None else "yes" if value else "NO"


@services_app.command("check")
def check_command(
    config: ConfigOption = None,
    resolver: Annotated[
        str,
        typer.Option(help="Resolver address to ask the names of (default: /etc/resolv.conf's)."),
    ] = "",
    resolver_port: Annotated[int, typer.Option(min=1, max=65535)] = 53,
    timeout_s: Annotated[
        float, typer.Option(help="Each query's, connect's and handshake's wait, seconds.", min=0.1)
    ] = 3.0,
    output: Annotated[
        Literal["table", "json"], typer.Option("--format", help="table or json.")
    ] = "table",
) -> None:
    """Check every service of the list now: AAAA, the web service over IPv6 with
    a verified TLS handshake, the name servers over IPv6, the mail exchangers'
    AAAA. Exit 0 when all are fully ready, 1 otherwise."""
    from wardprobe.ipv6_readiness import check_services, system_resolver

    settings = config_or_exit(config)
    if not settings.services:
        raise usage_error(
            "no services to check", "set services_list in aggregator.toml (docs/operations.md)"
        )
    if resolver:
        try:
            ipaddress.ip_address(resolver)
        except ValueError:
            raise usage_error(f"--resolver must be an address, got {resolver!r}") from None
        asked = (resolver, resolver_port)
    else:
        found = system_resolver()
        if found is None:
            raise usage_error("no resolver in /etc/resolv.conf", "give --resolver ADDRESS")
        asked = found
    checks = check_services(
        settings.services, resolver=asked[0], resolver_port=asked[1],
        ca_pem=settings.services_ca_pem, timeout_s=timeout_s,
    )  # fmt: skip
    ready = sum(1 for c in checks if c.ready)
    if output == "json":
        typer.echo(json.dumps([dataclasses.asdict(c) for c in checks], indent=1))
    else:
        table = Table(title=f"IPv6 readiness of {len(checks)} services, names asked of {asked[0]}")
        for column in ("department", "service", "kind", "AAAA", "web", "NS", "MX", "ready", "why"):
            table.add_column(column)
        for c in checks:
            # a name without AAAA fails the web check for the same reason: said once
            reasons = (c.aaaa_reason, c.web_reason, c.ns_reason, c.mx_reason)
            why = ", ".join(dict.fromkeys(r for r in reasons if r))
            table.add_row(
                c.department, c.hostname, c.kind, _mark(c.aaaa_ok), _mark(c.web_ok),
                _mark(c.ns_ok), _mark(c.mx_ok), _mark(c.ready), why,
            )  # fmt: skip
        Console(width=160).print(table)
        typer.echo(f"{ready} of {len(checks)} fully IPv6-ready")
    if ready != len(checks):
        raise typer.Exit(EXIT_FAILED)
