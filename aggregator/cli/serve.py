"""`wardprobe-aggregator serve`: the central process (aggregator/central.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer

from aggregator.cli.support import ConfigOption, config_or_exit, store_failure, with_store_or_exit
from wardprobe.cli_errors import fail, usage_error


def serve(
    config: ConfigOption = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="The store, over aggregator.toml's: duckdb:FILE, or "
            "ducklake:postgres://USER@HOST/DB?data_path=DIR for a lake several replicas "
            "share (docs/scaling.md).",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at debug level.")] = False,
) -> None:
    """Run the ingest (mTLS) and enrolment (TLS) gRPC services until SIGTERM,
    and the read-only HTTP API (TLS) in a child process when api_listen is set.

    Exits 1 when it cannot start (no CA in state_dir, an address it cannot
    listen on), 2 when aggregator.toml or the store cannot be used."""
    import duckdb

    from aggregator.central import ListenFailed
    from aggregator.central import serve as serve_forever
    from aggregator.config import LakeSpec
    from aggregator.enrolment.ca import CaError
    from aggregator.ingest.lake import LakeUnavailable

    settings = with_store_or_exit(config_or_exit(config), store)
    # The API reads the snapshot; the embedded store is this process's
    # (DuckDB's one writer), so an API without a snapshot would answer
    # nothing. A lake it reads itself, read-only (docs/api.md).
    lake = isinstance(settings.store_spec, LakeSpec)
    if settings.api_listen is not None and settings.snapshot_path is None and not lake:
        raise usage_error(
            "api_listen is set but snapshot_path is not: the API reads the snapshot",
            "set snapshot_path in aggregator.toml",
        )
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # A process of its own: a map or a PDF being drawn never holds up ingest.
    api = None
    if settings.api_listen is not None and config is not None:
        # Imported only here: aggregator.api.server brings FastAPI and the
        # analysis code (scipy) with it, about 70 MiB this process never uses.
        from aggregator.api.server import ApiProcess

        api = ApiProcess(config, store)
        api.start()
    try:
        asyncio.run(serve_forever(settings))
    except CaError as err:
        raise fail(str(err)) from None
    except LakeUnavailable as err:
        raise fail(f"cannot use the lake {settings.store_spec}: {err}") from None
    except duckdb.Error as err:
        if settings.store is not None:  # a lake: its catalogue or its files
            raise fail(f"cannot use the lake {settings.store_spec}: {_first_line(err)}") from None
        raise store_failure(settings.store_path, err, writing=True) from None
    except ListenFailed as err:
        raise fail(
            f"cannot listen on {err.address} ({err.key}): the port is taken, or it is not "
            "host:port",
            f"check {err.key} in aggregator.toml",
        ) from None
    finally:
        if api is not None:
            api.stop()


def _first_line(err: Exception) -> str:
    """DuckDB's message without its kind and the lines after the first."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
