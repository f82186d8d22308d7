"""`wardprobe-aggregator migrate`: an embedded store moved into a lake."""

from __future__ import annotations

from typing import Annotated

import typer

from wardprobe.cli_errors import fail, usage_error


def migrate_command(
    source: Annotated[
        str,
        typer.Option("--from", help="The embedded store to read: duckdb:FILE."),
    ],
    target: Annotated[
        str,
        typer.Option(
            "--to",
            help="The lake to fill: ducklake:postgres://USER@HOST/DB?data_path=DIR (made if new).",
        ),
    ],
) -> None:
    """Copy every table of an embedded store into a lake, in one lake
    transaction: results the lake holds already (by result id), probes it
    has (by probe id) and equal baseline rows are skipped, so a rerun adds
    nothing. Prints, per table, the source's rows, those copied and those
    the lake had; exits 1 unless every source row is in the lake once.

    Stop the aggregator that writes the file first (its later results would
    not be copied). Exits 2 when either store cannot be used as given."""
    import duckdb

    from aggregator.cli.support import store_failure
    from aggregator.ingest.lake import LakeStore, LakeUnavailable, migrate_embedded
    from aggregator.ingest.store import Store
    from aggregator.ingest.stores import (
        EmbeddedSpec,
        LakeSpec,
        StoreSpecError,
        parse_store_spec,
    )

    try:
        embedded, lake = parse_store_spec(source), parse_store_spec(target)
    except StoreSpecError as err:
        raise usage_error(str(err)) from None
    if not isinstance(embedded, EmbeddedSpec):
        raise usage_error(f"--from must be duckdb:FILE, not {embedded}")
    if not isinstance(lake, LakeSpec):
        raise usage_error(f"--to must be a lake (ducklake:postgres://...), not {lake}")
    if not embedded.path.is_file():
        raise usage_error(f"no store at {embedded.path}")
    try:
        # Opened once for writing: an older store gains this release's
        # columns, and a running aggregator's lock says it is not stopped.
        Store(embedded.path).close()
    except duckdb.Error as err:
        raise store_failure(embedded.path, err, writing=True) from None
    try:
        store = LakeStore(lake)
    except (duckdb.Error, LakeUnavailable) as err:
        raise fail(f"cannot use the lake {lake}: {_first_line(err)}", code=2) from None
    try:
        moved = migrate_embedded(store, embedded.path)
    except duckdb.Error as err:
        raise fail(f"the migration failed, nothing was copied: {_first_line(err)}") from None
    finally:
        store.close()
    columns = ("source", "copied", "already", "lake", "missing", "doubled")
    typer.echo(f"{'table':<12}" + "".join(f" {c:>10}" for c in columns))
    for table in moved:
        figures = (
            table.source_rows,
            table.copied,
            table.already,
            table.lake_rows,
            table.missing,
            table.doubled,
        )
        typer.echo(f"{table.table:<12}" + "".join(f" {n:>10}" for n in figures))
    incomplete = [t.table for t in moved if not t.complete]
    if incomplete:
        raise fail(f"rows missing or doubled in the lake: {', '.join(incomplete)}")


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
