"""`wardprobe-aggregator population import FILE.csv`: the wards' populations
that nr_population_share weighs the 5G figures by (analysis/population.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aggregator.cli.support import ConfigOption, config_or_exit, store_failure, using_store
from wardprobe.cli_errors import PlainErrors, fail, usage_error

population_app = typer.Typer(
    help="Ward populations, which weigh the 5G figures into a share of the city's people.",
    no_args_is_help=True,
    cls=PlainErrors,
)


@population_app.command("import")
def population_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV file: ward_code,population,year,source (see analysis/population.py).",
            exists=True,
            dir_okay=False,
        ),
    ],
    config: ConfigOption = None,
    store: Annotated[
        Path | None,
        typer.Option(help="DuckDB store to write (default: the config's store_path)."),
    ] = None,
    require_all: Annotated[
        bool,
        typer.Option(
            "--require-all",
            help="Refuse the file (exit 1, nothing imported) unless it has every ward of the "
            "city for each of its years.",
        ),
    ] = False,
) -> None:
    """Check and import ward populations: ward_code, population, year, source. A
    year imported again replaces that year's rows. Wards of the city the file
    leaves out are listed on stderr and the rest imported (exit 0), unless
    --require-all. Exits 1 naming every bad line (an unknown ward code, a bad
    number, a ward given twice; nothing is imported), 2 when the file or the
    store cannot be used. The store must not be open in a running aggregator
    (DuckDB allows one writer)."""
    import duckdb

    from aggregator.ingest.store import Store
    from analysis.population import PopulationError, import_rows, missing_wards, read_csv

    try:
        rows = read_csv(file)
    except PopulationError as err:
        for line, message in err.problems:
            typer.echo(f"{file}:{line}: {message}", err=True)
        bad = len(err.problems)
        raise fail(f"nothing imported: {bad} bad line{'s' if bad > 1 else ''} in {file}") from None
    except UnicodeDecodeError:
        raise usage_error(f"{file} is not UTF-8 text", "save it as CSV UTF-8") from None
    except OSError as err:
        raise usage_error(f"cannot read {file}: {err.strerror or err}") from None
    missing = missing_wards(rows)
    for year, wards in missing.items():
        typer.echo(
            f"{file}: {len(wards)} ward{'s' if len(wards) > 1 else ''} of the city "
            f"without a population for {year}:",
            err=True,
        )
        for ward in wards:
            typer.echo(f"  {ward.ward_code} {ward.name}", err=True)
    if missing and require_all:
        raise fail(f"nothing imported: --require-all and {file} lacks wards (listed above)")
    path = store or config_or_exit(config).store_path
    try:
        Store(path).close()  # creates the tables, ward_population among them, if new
    except duckdb.Error as err:
        raise store_failure(path, err, writing=True) from None
    with using_store(path, writing=True) as con:
        count = import_rows(con, rows)
    years = ", ".join(str(y) for y in sorted({r.year for r in rows}))
    people = sum(r.population for r in rows)
    typer.echo(f"imported {count} ward populations for {years} ({people:,} people) into {path}")
