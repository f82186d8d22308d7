"""`wardprobe-aggregator`: the central site's command line.

One typer app (the `wardprobe-aggregator` entry point is `aggregator.cli:app`)
for all three deployables; each command group is a module of this package:
serve.py (`serve`), migrate.py (`migrate`), admin.py (`ca`, `token`, `probe`), api.py (`api serve`,
`api-token`), backup.py (`backup`, `restore`), indicators.py
(`indicators`, `baseline`), reference_figures.py (`reference-figures`), maps.py
(`map`), report.py (`report`), reference.py (`reference-server`),
population.py (`population import`), services.py (`services check`), and
support.py what they share
(aggregator.toml and the store, refused in one line). The commands import
DuckDB and pyarrow only when they run, so the reference host's
`reference-server serve` loads neither.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from aggregator.cli.admin import ca_app, probe_app, registry_app, token_app
from aggregator.cli.api import api_app, api_token_app
from aggregator.cli.backup import backup_command, restore_command
from aggregator.cli.indicators import StoreOption, baseline_app, indicators
from aggregator.cli.maps import map_command
from aggregator.cli.migrate import migrate_command
from aggregator.cli.population import population_app
from aggregator.cli.reference import reference_app
from aggregator.cli.reference_figures import reference_figures_app
from aggregator.cli.report import report_command
from aggregator.cli.serve import serve
from aggregator.cli.services import services_app
from aggregator.cli.support import (
    ConfigOption,
    config_or_exit,
    reading,
    store_failure,
)
from wardprobe.cli_errors import PlainErrors, fail

app = typer.Typer(
    help=(
        "wardprobe aggregator: enrols probes (private CA, bootstrap tokens), takes their "
        "results over mTLS gRPC into DuckDB, and runs the reference measurement server. "
        "Exit codes: 0 done; 1 refused or failed (unknown ward or probe, no CA, ...); "
        "2 an option, argument, aggregator.toml or store that cannot be used as given."
    ),
    no_args_is_help=True,
    cls=PlainErrors,
)
app.add_typer(ca_app, name="ca")
app.add_typer(token_app, name="token")
app.add_typer(probe_app, name="probe")
app.add_typer(registry_app, name="registry")
app.add_typer(reference_app, name="reference-server")
app.add_typer(baseline_app, name="baseline")
app.add_typer(population_app, name="population")
app.add_typer(reference_figures_app, name="reference-figures")
app.add_typer(api_app, name="api")
app.add_typer(api_token_app, name="api-token")
app.add_typer(services_app, name="services")
app.command("indicators")(indicators)
app.command("map")(map_command)
app.command("report")(report_command)
app.command("serve")(serve)
app.command("backup")(backup_command)
app.command("restore")(restore_command)
app.command("migrate")(migrate_command)


@app.command()
def synthetic(
    store: Annotated[
        Path,
        typer.Option(help="A DuckDB file of its own for the synthetic city (created if missing)."),
    ],
    rows: Annotated[int, typer.Option(help="Results for the year.", min=1000)] = 200_000,
    year: Annotated[int, typer.Option(help="The local year they fall in.")] = 2026,
    seed: Annotated[int, typer.Option(help="Same seed, same rows.")] = 2026,
    baseline: Annotated[
        bool,
        typer.Option(
            help="Also results in the baseline year 2024 (a quarter as many, mobile at half the "
            "speed), so the doubling target has a baseline measured the same way."
        ),
    ] = True,
) -> None:
    """Generate a synthetic Cần Thơ (every ward, known distributions, made-up 2025
    ward populations, source "synthetic (wardprobe demo)") to try the indicators on.
    Rows are marked synthetic: `indicators --synthetic` reads them, real figures never
    do, and a store holding real results is refused (exit 1)."""
    import duckdb

    from aggregator.ingest.store import Store
    from analysis.constants import BASELINE_YEAR
    from analysis.synthetic import MixingRefused, city_spec, generate

    try:
        target = Store(store)
    except duckdb.Error as err:
        raise store_failure(store, err, writing=True) from None
    try:
        generate(target._con, city_spec(rows, year, seed))
        if baseline and year != BASELINE_YEAR:
            generate(
                target._con,
                city_spec(rows // 4, BASELINE_YEAR, seed + 1, mobile_speed_factor=0.5),
            )
        target.checkpoint()
    except MixingRefused as err:
        raise fail(str(err)) from None
    except duckdb.Error as err:
        raise store_failure(store, err, writing=True) from None
    finally:
        target.close()
    typer.echo(f"synthetic city for {year} written to {store}")


@app.command()
def summary(
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Print the per-ward summary (probes, tests, mean download, median latency, IPv6 share).

    Reads read-only what indicators read (--store, the snapshot, the store file
    or the lake); a store file only when the aggregator is stopped, or a copy.
    Exits 2 when the store is not there or cannot be read.
    """
    from analysis.summary import summary_table, ward_summary_of

    with reading(config_or_exit(config), store) as (con, source):
        rows = ward_summary_of(con)
    Console().print(summary_table(rows, f"Per-ward summary of {source}"))
