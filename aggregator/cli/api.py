"""`wardprobe-aggregator api serve` and `wardprobe-aggregator api-token
create|list|revoke`: the read-only HTTP API and its tokens (docs/api.md)."""

from __future__ import annotations

import logging
import sqlite3
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from aggregator.cli.admin import DEFAULT_STATE_DIR, StateDirOption
from aggregator.cli.support import ConfigOption, config_or_exit, with_store_or_exit
from wardprobe.cli_errors import PlainErrors, fail, usage_error

api_app = typer.Typer(
    help="The read-only HTTP API for the city (docs/api.md).",
    no_args_is_help=True,
    cls=PlainErrors,
)
api_token_app = typer.Typer(
    help="Read tokens of the HTTP API: create, list, revoke.",
    no_args_is_help=True,
    cls=PlainErrors,
)


@api_app.callback()
def api_group() -> None:
    """The read-only HTTP API for the city (docs/api.md)."""
    # A callback keeps `api` a group while it has one command: `api serve`.


@api_app.command("serve")
def api_serve(
    config: ConfigOption = None,
    listen: Annotated[
        str | None,
        typer.Option(help="host:port to serve on (default: api_listen in aggregator.toml)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at debug level.")] = False,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            envvar="WARDPROBE_API_STORE",  # aggregator/api/server.py STORE_ENV: serve sets it
            help="The store, over aggregator.toml's, as serve's --store: duckdb:FILE or "
            "ducklake:postgres://USER@HOST/DB?data_path=DIR (read-only; docs/api.md).",
        ),
    ] = None,
) -> None:
    """Serve the API over TLS (the state directory's server certificate) until
    SIGTERM, reading the snapshot (snapshot_path; without one, the store
    read-only: store_path, or the lake). `serve` runs it itself when
    api_listen is set; this is for a host of its own. Exits 1 when it cannot
    start, 2 on a bad option or aggregator.toml."""
    from aggregator.api.server import ApiUnavailable, run_api
    from aggregator.config import split_listen

    settings = with_store_or_exit(config_or_exit(config), store)
    address = listen or settings.api_listen
    if address is None:
        raise usage_error("no address to serve on", "give --listen or set api_listen")
    try:
        split_listen(address)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--listen") from None
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        run_api(settings, address)
    except ApiUnavailable as err:
        raise fail(str(err)) from None


@api_token_app.command("create")
def api_token_create(
    name: Annotated[
        str, typer.Option(help="Who or what the token is for, e.g. 'Sở KH&CN, GIS team'.")
    ],
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
) -> None:
    """Create a read token and print it once (only its hash is kept)."""
    from aggregator.api.tokens import ApiTokenStore, TokenError

    try:
        token, text = ApiTokenStore.in_state_dir(state_dir).create(name)
    except TokenError as err:
        raise fail(str(err)) from None
    except (sqlite3.Error, OSError) as err:
        raise fail(f"cannot write the API tokens in {state_dir}: {err}") from None
    typer.echo(f"API token {token.token_id} ({token.name}) created; it is shown only now:")
    typer.echo(text)


@api_token_app.command("list")
def api_token_list(state_dir: StateDirOption = DEFAULT_STATE_DIR) -> None:
    """Every token: id, name, created, last used, revoked (never the secret)."""
    from aggregator.api.tokens import ApiTokenStore

    try:
        tokens = ApiTokenStore.in_state_dir(state_dir).list()
    except (sqlite3.Error, OSError) as err:
        raise fail(f"cannot read the API tokens in {state_dir}: {err}") from None
    if not tokens:
        typer.echo(f"no API token in {state_dir}")
        return
    table = Table(title=f"API tokens in {state_dir}")
    for column in ("id", "name", "created (UTC)", "last used (UTC)", "revoked (UTC)"):
        table.add_column(column)
    for t in tokens:
        table.add_row(
            t.token_id,
            t.name,
            f"{t.created_at:%Y-%m-%d %H:%M}",
            "never" if t.last_used_at is None else f"{t.last_used_at:%Y-%m-%d %H:%M}",
            "" if t.revoked_at is None else f"{t.revoked_at:%Y-%m-%d %H:%M}",
        )
    Console(width=140).print(table)


@api_token_app.command("revoke")
def api_token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (api-token list).")],
    state_dir: StateDirOption = DEFAULT_STATE_DIR,
) -> None:
    """Revoke a token: the API refuses it (401) from the next request on."""
    from aggregator.api.tokens import ApiTokenStore, TokenError

    try:
        token = ApiTokenStore.in_state_dir(state_dir).revoke(token_id)
    except TokenError as err:
        raise fail(str(err)) from None
    except (sqlite3.Error, OSError) as err:
        raise fail(f"cannot write the API tokens in {state_dir}: {err}") from None
    typer.echo(f"API token {token.token_id} ({token.name}) revoked")
