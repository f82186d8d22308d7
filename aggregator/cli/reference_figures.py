"""`wardprobe-aggregator reference-figures import-apnic` and `import-vnnic`:
published IPv6 figures (APNIC's per economy and per network, the provinces'
from VNNIC) that ipv6_leading_provinces sets beside the probes' own."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from aggregator.cli.support import ConfigOption, config_or_exit, store_failure, using_store
from wardprobe.cli_errors import PlainErrors, fail, usage_error

if TYPE_CHECKING:
    from analysis.reference_figures import FiguresRefused

reference_figures_app = typer.Typer(
    help=(
        "Published IPv6 figures (APNIC's per economy and per network, VNNIC's per province) "
        "for ipv6_leading_provinces."
    ),
    no_args_is_help=True,
    cls=PlainErrors,
)

StoreOption = Annotated[
    Path | None,
    typer.Option(help="DuckDB store to write (default: the config's store_path)."),
]
FileArgument = Annotated[Path, typer.Argument(exists=True, dir_okay=False)]


def _refused(file: Path, err: FiguresRefused) -> typer.Exit:
    """Every bad line on stderr, then the one-line refusal (exit 1)."""
    for line, message in err.problems:
        typer.echo(f"{file}:{line}: {message}" if line else message, err=True)
    bad = len(err.problems)
    return fail(f"nothing imported: {bad} problem{'s' if bad > 1 else ''} in {file}")


def _open_for_writing(path: Path) -> None:
    """Create the store's tables (the reference tables among them) if new."""
    import duckdb

    from aggregator.ingest.store import Store

    try:
        Store(path).close()
    except duckdb.Error as err:
        raise store_failure(path, err, writing=True) from None


@reference_figures_app.command("import-apnic")
def import_apnic(
    file: FileArgument,
    published_on: Annotated[
        str,
        typer.Option(
            "--date",
            metavar="YYYY-MM-DD",
            help="The day APNIC's page showed the figures (the table does not say it).",
        ),
    ],
    economy: Annotated[
        str,
        typer.Option(help="The economy of a per-network table without a CC column."),
    ] = "VN",
    source: Annotated[
        str | None,
        typer.Option(help="Who published the figures and where (default: APNIC Labs' page)."),
    ] = None,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Check and import APNIC Labs' IPv6 table saved as CSV: per economy (CC, Country,
    IPv6 Capable, IPv6 Preferred, Samples) or per network (ASN, AS Name, IPv6 Capable,
    IPv6 Preferred, Samples). A figure imported again for the same day replaces the
    one stored. The store must not be open in a running aggregator. Exits 1 naming
    every bad line (nothing is imported), 2 when the file or the store cannot be used."""
    from analysis.reference_figures import (
        APNIC_SOURCE,
        FiguresRefused,
        read_apnic,
        store_apnic,
    )

    try:
        day = date.fromisoformat(published_on)
    except ValueError:
        raise typer.BadParameter("expected a day as YYYY-MM-DD", param_hint="--date") from None
    try:
        rows = read_apnic(file, day, economy=economy.upper(), source=source or APNIC_SOURCE)
    except FiguresRefused as err:
        raise _refused(file, err) from None
    except UnicodeDecodeError:
        raise usage_error(f"{file} is not UTF-8 text", "save it as CSV UTF-8") from None
    except OSError as err:
        raise usage_error(f"cannot read {file}: {err.strerror or err}") from None
    path = store or config_or_exit(config).store_path
    _open_for_writing(path)
    with using_store(path, writing=True) as con:
        count = store_apnic(con, rows)
    scope = "economies" if rows[0].scope == "economy" else f"networks of {rows[0].economy}"
    typer.echo(f"imported APNIC's figures of {count} {scope} for {day} into {path}")


@reference_figures_app.command("import-vnnic")
def import_vnnic(
    file: FileArgument,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Check and import provincial IPv6 figures: province (GSO code or name of one of
    the 34 provinces), metric (information_portal or public_service_portal),
    value_pct, date (YYYY-MM-DD), source. A figure imported again for the same
    province, metric and day replaces the one stored. Exits 1 naming every bad line
    (nothing is imported), 2 when the file or the store cannot be used."""
    from analysis.reference_figures import FiguresRefused, read_vnnic, store_vnnic

    try:
        rows = read_vnnic(file)
    except FiguresRefused as err:
        raise _refused(file, err) from None
    except UnicodeDecodeError:
        raise usage_error(f"{file} is not UTF-8 text", "save it as CSV UTF-8") from None
    except OSError as err:
        raise usage_error(f"cannot read {file}: {err.strerror or err}") from None
    path = store or config_or_exit(config).store_path
    _open_for_writing(path)
    with using_store(path, writing=True) as con:
        count = store_vnnic(con, rows)
    provinces = len({r.province_code for r in rows})
    typer.echo(f"imported {count} provincial figures ({provinces} provinces) into {path}")
