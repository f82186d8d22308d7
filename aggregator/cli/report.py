"""`wardprobe-aggregator report`: the yearly report for the city's Department
of Science and Technology, as one HTML file or a PDF (docs/report.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aggregator.cli.indicators import StoreOption
from aggregator.cli.support import ConfigOption, config_or_exit, reading
from wardprobe.cli_errors import usage_error


def report_command(
    year: Annotated[
        int,
        typer.Option(
            help="The year reported on (1 January to 31 December, Cần Thơ time).",
            min=2000,
            max=2999,
        ),
    ],
    out: Annotated[
        Path, typer.Option(help="The file to write; its suffix is the format: .html or .pdf.")
    ],
    lang: Annotated[str, typer.Option(help="vi (default) or en.")] = "vi",
    synthetic: Annotated[
        bool,
        typer.Option(help="Use the synthetic generator's rows instead of the probes' results."),
    ] = False,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Write the yearly report: each target of the city's plans against the
    measured figure (95 % interval, probes, tests, met / not met / insufficient
    data), each indicator's ward map and table, the national references, where
    more probes would settle the answer, and the method. Exits 2 naming what is
    accepted when the format or language is unknown, or when the store cannot
    be read."""
    from analysis.report import check_suffix, write_report
    from analysis.requests import RequestRefused, check_lang

    try:
        check_suffix(out)
    except ValueError as err:
        raise usage_error(str(err)) from None
    try:
        language = check_lang(lang)  # as the HTTP API refuses it (analysis/requests.py)
    except RequestRefused as err:
        raise usage_error(str(err)) from None
    # read with --store too: its baseline_order orders the doubling ratio's baselines
    cfg = config_or_exit(config)
    with reading(cfg, store) as (con, _):
        try:
            written = write_report(
                con, year, out, language, synthetic, baselines=cfg.baseline_order
            )
        except OSError as err:
            raise usage_error(f"cannot write {out}: {err.strerror or err}") from None
    typer.echo(f"{written}: report for {year}" + (" (synthetic data)" if synthetic else ""))
