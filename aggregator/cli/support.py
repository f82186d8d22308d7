"""What the aggregator's commands share: aggregator.toml and the store, each
refused in one line with exit code 2 when it cannot be used as given
(wardprobe/cli_errors.py has the wording and the codes)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from aggregator.config import AggregatorConfig, LakeSpec, load_config
from wardprobe.cli_errors import usage_error
from wardprobe.config_errors import describe_config_error

if TYPE_CHECKING:
    import duckdb

SNAPSHOT_HINT = "while the aggregator runs, read its snapshot (snapshot_path in aggregator.toml)"
# duckdb: 'IO Error: Could not set lock on file "...": Conflicting lock is held
# in /usr/bin/python3 (PID 4242). See also https://duckdb.org/...'
_LOCK = re.compile(r"Could not set lock on file(?:.*?\(PID (\d+)\))?", re.DOTALL)
_KIND = re.compile(r"^[A-Za-z ]*Error: ")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="aggregator.toml (see packaging/aggregator.example.toml); defaults apply without it.",
        exists=True,
        dir_okay=False,
    ),
]


def config_or_exit(path: Path | None) -> AggregatorConfig:
    """aggregator.toml (all defaults without one); a file that cannot be read
    or breaks a rule ends the command, naming the key."""
    try:
        return load_config(path)
    except (tomllib.TOMLDecodeError, ValidationError, UnicodeDecodeError, OSError) as err:
        raise usage_error(describe_config_error(path or Path("aggregator.toml"), err)) from None


def with_store_or_exit(cfg: AggregatorConfig, store: str | None) -> AggregatorConfig:
    """`cfg` with the command line's --store (a spec), which wins over the
    file's store or store_path; a spec that cannot be used ends the command."""
    if store is None:
        return cfg
    try:
        return cfg.with_store(store)
    except ValidationError as err:
        raise usage_error(
            f"--store: {err.errors()[0]['msg'].removeprefix('Value error, ')}"
        ) from None


def existing_store(path: Path) -> Path:
    """`path`, or the end of the command when no store is there (opening it
    would create an empty one, or fail in the library's words)."""
    if not path.is_file():
        raise usage_error(
            f"no store at {path}",
            "give --store, or check store_path (and snapshot_path) in aggregator.toml",
        )
    return path


def read_source(cfg: AggregatorConfig, store: Path | None = None) -> Path | LakeSpec:
    """What a reading command (indicators, map, report, summary) and the HTTP
    API read: `store` when given (a DuckDB file), else the config's
    snapshot_path, else its store: the file at store_path, or its lake
    (read-only, as an analyst attaches it; docs/scaling.md)."""
    if store is not None:
        return store
    if cfg.snapshot_path is not None:
        return cfg.snapshot_path
    spec = cfg.store_spec
    return spec if isinstance(spec, LakeSpec) else spec.path


@contextmanager
def reading(
    cfg: AggregatorConfig, store: Path | None = None
) -> Iterator[tuple[duckdb.DuckDBPyConnection, Path | LakeSpec]]:
    """A read-only connection to what `read_source` names (a file must be
    there: see existing_store), and that source, for the `with` body; the
    same SQL runs on either (a lake is attached and USE'd)."""
    source = read_source(cfg, store)
    with using_store(source if isinstance(source, LakeSpec) else existing_store(source)) as con:
        yield con, source


@contextmanager
def using_store(
    source: Path | LakeSpec, *, writing: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The store at `source`, open for the `with` body and closed after it:
    a DuckDB file (see existing_store), read-only unless `writing`, or a lake,
    always read-only. A store too old, or that DuckDB cannot open, read or
    write, ends the command in one line naming it."""
    import duckdb  # imported here, as by each command: `--help` stays quick

    from analysis.indicators import StoreTooOld, open_store

    if isinstance(source, LakeSpec):
        if writing:
            raise usage_error(
                f"{source} is a lake: this command writes a DuckDB file",
                "write a file and `migrate` it into the lake (docs/scaling.md)",
            )
        with _using_lake(source) as con:
            try:
                yield con
            except StoreTooOld as err:
                raise usage_error(f"{source}: {err}") from None
        return
    try:
        con = duckdb.connect(str(source)) if writing else open_store(source)
    except duckdb.Error as err:
        raise store_failure(source, err, writing=writing) from None
    try:
        yield con
    except StoreTooOld as err:
        raise usage_error(f"{source}: {err}") from None
    except duckdb.Error as err:
        raise store_failure(source, err, writing=writing) from None
    finally:
        con.close()


@contextmanager
def _using_lake(spec: LakeSpec) -> Iterator[duckdb.DuckDBPyConnection]:
    """The lake read-only, as an analyst attaches it (docs/scaling.md), open
    for the `with` body and closed after it. A lake that cannot be reached
    or read ends the command in one line (exit 2)."""
    import duckdb

    from aggregator.ingest.lake import LakeUnavailable, connect_lake

    def failure(err: Exception) -> typer.Exit:
        text = str(err).strip()
        first = _KIND.sub("", text.splitlines()[0] if text else type(err).__name__)
        return usage_error(f"cannot read the lake {spec}: {first}")

    try:
        con = connect_lake(spec, read_only=True)
    except (duckdb.Error, LakeUnavailable) as err:
        raise failure(err) from None
    try:
        yield con
    except duckdb.Error as err:
        raise failure(err) from None
    finally:
        con.close()


def store_failure(path: Path, err: Exception, *, writing: bool = False) -> typer.Exit:
    """A store DuckDB could not open or read, in one line (its own message
    spans lines and points at its documentation)."""
    text = str(err).strip()
    lock = _LOCK.search(text)
    if lock:
        holder = f"process {lock[1]}" if lock[1] else "another process"
        if writing:
            return usage_error(
                f"cannot open {path} for writing: {holder} holds it",
                "stop the aggregator first (DuckDB allows one writer)",
            )
        return usage_error(f"cannot read {path}: {holder} holds it for writing", SNAPSHOT_HINT)
    first = _KIND.sub("", text.splitlines()[0] if text else type(err).__name__)
    if text.startswith("Catalog Error"):
        return usage_error(f"{path} is not a wardprobe store ({first.rstrip('!')})")
    return usage_error(f"cannot {'write' if writing else 'read'} {path}: {first}")
