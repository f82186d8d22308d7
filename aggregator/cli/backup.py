"""`wardprobe-aggregator backup` and `restore` (aggregator/backup.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aggregator.cli.support import ConfigOption, config_or_exit
from wardprobe.cli_errors import fail

# A lake is not a file this command can copy (docs/scaling.md).
LAKE_BACKUP = (
    "the store is a lake: back it up where it lives, pg_dump of its catalogue, then "
    "a copy of its data path (docs/scaling.md); backup and restore copy a DuckDB file"
)


def backup_command(
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="A new (or empty) directory for the backup; made with mode 0700."
        ),
    ],
    config: ConfigOption = None,
) -> None:
    """Back up the store, the CA and the probe registry (and the API's tokens)
    into --out, with a manifest of checksums and counts. While the aggregator
    runs, it copies its store itself (a consistent cut; ingest goes on).

    Exits 1 when the copy fails, 2 when aggregator.toml, the state or --out
    cannot be used as given."""
    from aggregator.backup import BackupError, backup

    settings = config_or_exit(config)
    if settings.store is not None:
        raise fail(LAKE_BACKUP, code=2)
    try:
        manifest = backup(settings, out)
    except BackupError as err:
        raise fail(str(err), err.hint, code=2 if err.usage else 1) from None
    except OSError as err:
        raise fail(f"cannot write the backup in {out}: {err.strerror or err}") from None
    typer.echo(
        f"backed up {manifest.results} results ({manifest.store_taken}), "
        f"{manifest.probes} probes and the CA to {out}"
    )


def restore_command(
    source: Annotated[
        Path,
        typer.Option("--from", help="A directory `backup` made.", exists=True, file_okay=False),
    ],
    config: ConfigOption = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace the CA, registry and store already in place (they are moved aside "
            "to <state_dir>/before-restore-<time>/, not deleted).",
        ),
    ] = False,
) -> None:
    """Restore a backup into aggregator.toml's state_dir and store_path,
    once every file matches its checksum. Refuses while an aggregator runs
    on that state, and over a CA, registry or store already there unless
    --force.

    Exits 1 when refused, 2 when the backup (damaged, incomplete) or
    aggregator.toml cannot be used as given."""
    from aggregator.backup import BackupError, restore

    settings = config_or_exit(config)
    if settings.store is not None:
        raise fail(LAKE_BACKUP, code=2)
    try:
        done = restore(settings, source, force=force)
    except BackupError as err:
        raise fail(str(err), err.hint, code=2 if err.usage else 1) from None
    except OSError as err:
        raise fail(f"cannot restore into {settings.state_dir}: {err.strerror or err}") from None
    manifest = done.manifest
    typer.echo(
        f"restored {manifest.results} results, {manifest.probes} probes and the CA "
        f"(backup of {manifest.created_at}) into {settings.state_dir}"
    )
    if done.moved_aside is not None:
        typer.echo(f"what was there before is in {done.moved_aside}")
