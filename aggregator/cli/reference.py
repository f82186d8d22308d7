"""`wardprobe-aggregator reference-server`: run the reference measurement server.

Also runnable alone: `python -m aggregator.reference serve --help`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from aggregator.reference.server import ReferenceServerError, ReferenceServiceConfig, serve
from wardprobe.cli_errors import PlainErrors, fail, usage_error
from wardprobe.config_errors import describe_config_error, describe_validation_error

reference_app = typer.Typer(
    help=(
        "The reference measurement server the probes test against: a pool of iperf3 "
        "servers, a TCP echo service and DNS names for the IPv6 check."
    ),
    no_args_is_help=True,
    cls=PlainErrors,
)


@reference_app.callback()
def _reference_server() -> None:
    """The reference measurement server (iperf3 pool, TCP echo, DNS)."""


def parse_ports(text: str) -> tuple[int, ...]:
    """Ports from "5201-5204", "5201,5203" or a mix ("5201-5202,5210")."""
    ports: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        first, sep, last = part.partition("-")
        try:
            low = int(first)
            high = int(last) if sep else low
        except ValueError:
            raise typer.BadParameter(f"not a port or range: {part!r}") from None
        if high < low:
            raise typer.BadParameter(f"empty range: {part!r}")
        ports.extend(range(low, high + 1))
    if not ports:
        raise typer.BadParameter("no ports given")
    return tuple(ports)


def build_config(
    config_file: Path | None = None,
    *,
    listen: list[str] | None = None,
    iperf3_ports: str | None = None,
    iperf3_bind: str | None = None,
    echo_port: int | None = None,
    dns_port: int | None = None,
    ipv6_only_name: str | None = None,
    dual_stack_name: str | None = None,
    answer_ipv4: list[str] | None = None,
    answer_ipv6: list[str] | None = None,
) -> ReferenceServiceConfig:
    """The config from the TOML file (if any) with the command-line options
    laid over it; raises ValueError (pydantic's ValidationError) or typer.BadParameter
    on bad values.

    The DNS names answer with `answer_ipv4` / `answer_ipv6`, or by default
    with the specific (non-wildcard) listen addresses of each family.
    """
    fields: dict[str, Any] = {}
    if config_file is not None:
        with config_file.open("rb") as handle:
            fields = tomllib.load(handle)
    if listen:
        fields["listen_addresses"] = listen
    if iperf3_ports is not None:
        fields["iperf3_ports"] = parse_ports(iperf3_ports)
    if iperf3_bind is not None:
        fields["iperf3_bind_address"] = iperf3_bind
    if echo_port is not None:
        fields["tcp_echo_port"] = echo_port
    if dns_port is not None:
        fields["dns_port"] = dns_port
    if ipv6_only_name is not None or dual_stack_name is not None:
        listen_addresses = [
            ipaddress.ip_address(str(a))
            for a in fields.get("listen_addresses", ReferenceServiceConfig().listen_addresses)
        ]
        specific = [a for a in listen_addresses if not a.is_unspecified]
        v4 = answer_ipv4 or [str(a) for a in specific if a.version == 4]
        v6 = answer_ipv6 or [str(a) for a in specific if a.version == 6]
        names = list(fields.get("dns_names", []))
        if ipv6_only_name is not None:
            if not v6:
                raise typer.BadParameter("--ipv6-only-name needs an IPv6 address to answer with")
            names.append({"name": ipv6_only_name, "ipv6": v6})
        if dual_stack_name is not None:
            if not v4 or not v6:
                raise typer.BadParameter(
                    "--dual-stack-name needs an IPv4 and an IPv6 address to answer with"
                )
            names.append({"name": dual_stack_name, "ipv4": v4, "ipv6": v6})
        fields["dns_names"] = names
    return ReferenceServiceConfig.model_validate(fields)


@reference_app.command("serve")
def serve_command(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            exists=True,
            dir_okay=False,
            help="TOML file whose keys are ReferenceServiceConfig's fields; options override it.",
        ),
    ] = None,
    listen: Annotated[
        list[str] | None,
        typer.Option(
            metavar="ADDRESS",
            help="Address the echo and DNS services listen on; repeat for more "
            "(default: 0.0.0.0 and ::, every address).",
        ),
    ] = None,
    iperf3_ports: Annotated[
        str | None,
        typer.Option(
            metavar="PORTS", help='iperf3 pool ports, e.g. "5201-5204" (default 5201-5204).'
        ),
    ] = None,
    iperf3_bind: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS",
            help="Address iperf3 binds to (default: every address, IPv4 and IPv6).",
        ),
    ] = None,
    echo_port: Annotated[
        int | None, typer.Option(help="TCP echo port (default 7007; 0 picks a free one).")
    ] = None,
    dns_port: Annotated[
        int | None, typer.Option(help="DNS (UDP) port (default 53; 0 picks a free one).")
    ] = None,
    ipv6_only_name: Annotated[
        str | None,
        typer.Option(
            metavar="NAME", help="Name answered with AAAA records only (the IPv6-only target)."
        ),
    ] = None,
    dual_stack_name: Annotated[
        str | None, typer.Option(metavar="NAME", help="Name answered with A and AAAA records.")
    ] = None,
    answer_ipv4: Annotated[
        list[str] | None,
        typer.Option(
            metavar="ADDRESS",
            help="IPv4 address the names resolve to; repeat for more "
            "(default: the specific IPv4 --listen addresses).",
        ),
    ] = None,
    answer_ipv6: Annotated[
        list[str] | None,
        typer.Option(
            metavar="ADDRESS",
            help="IPv6 address the names resolve to; repeat for more "
            "(default: the specific IPv6 --listen addresses).",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log at debug level (iperf3's output too).")
    ] = False,
) -> None:
    """Run the iperf3 pool, TCP echo and DNS until SIGTERM or Ctrl-C. Exits 2 on a
    bad option or config file, 1 when a port cannot be listened on."""
    try:
        service_config = build_config(
            config, listen=listen, iperf3_ports=iperf3_ports, iperf3_bind=iperf3_bind,
            echo_port=echo_port, dns_port=dns_port, ipv6_only_name=ipv6_only_name,
            dual_stack_name=dual_stack_name, answer_ipv4=answer_ipv4, answer_ipv6=answer_ipv6,
        )  # fmt: skip
    except ValidationError as exc:  # from the file or the options laid over it
        raise usage_error(f"{config or 'the options'}: {describe_validation_error(exc)}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        assert config is not None  # only the file is read
        raise usage_error(describe_config_error(config, exc)) from None
    except ValueError as exc:  # --answer-ipv4/--answer-ipv6 or --listen not an address
        raise usage_error(str(exc)) from None
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Ctrl-C cancels serve(), which stops the iperf3 children on its way out.
    try:
        asyncio.run(serve(service_config))
    except ReferenceServerError as exc:  # a port taken, iperf3 missing or not starting
        raise fail(str(exc)) from None
