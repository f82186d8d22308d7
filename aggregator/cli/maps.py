"""`wardprobe-aggregator map`: one indicator's ward map for a period, as
GeoJSON, CSV, PNG or HTML (docs/maps.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aggregator.cli.indicators import StoreOption
from aggregator.cli.support import (
    ConfigOption,
    config_or_exit,
    reading,
)
from wardprobe.cli_errors import usage_error


def map_command(
    indicator: Annotated[
        str,
        typer.Option(help="An indicator with a ward figure, e.g. gigabit_capable_share."),
    ],
    period: Annotated[
        str, typer.Option(help="2026, 2026Q3 or 2026-01-01..2026-04-01 (Asia/Ho_Chi_Minh time).")
    ],
    out: Annotated[
        Path,
        typer.Option(
            help="The file to write; its suffix is the format: .geojson, .csv, .png, .html."
        ),
    ],
    by: Annotated[
        str | None,
        typer.Option(
            help="operator (mobile lines by operator, fixed lines by their site's ISP) or "
            "access_tech; --group then picks the one to draw."
        ),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(
            help="The group of an indicator that comes in groups: access_tech=lte or lte, "
            "Viettel, fixed, ... (an HTML page without it holds every group)."
        ),
    ] = None,
    lang: Annotated[str, typer.Option(help="vi (default) or en.")] = "vi",
    synthetic: Annotated[
        bool,
        typer.Option(help="Use the synthetic generator's rows instead of the probes' results."),
    ] = False,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Draw one indicator's figure in every ward of the city (the figures of
    `indicators`): value, 95 % interval, probes, tests, status, targets met or not.
    Exits 2 naming what is accepted when the indicator, group, grouping, period,
    language or format is unknown, or when the store cannot be read."""
    from analysis.indicators import compute_indicators
    from analysis.maps import check_by, check_indicator, map_format, request_layers, write_map
    from analysis.maps.layers import report_grouping
    from analysis.requests import RequestRefused, check_lang, check_period

    # The HTTP API refuses the same things in the same words (analysis/requests.py).
    try:
        check_by(by)
        check_indicator(indicator)
        fmt = map_format(out)
        parsed = check_period(period)
        language = check_lang(lang)
    except RequestRefused as err:
        raise usage_error(str(err)) from None
    # read with --store too: its baseline_order orders the doubling ratio's baselines
    cfg = config_or_exit(config)
    with reading(cfg, store) as (con, _):
        report = compute_indicators(
            con,
            parsed,
            by=report_grouping(indicator, check_by(by)),
            synthetic=synthetic,
            baselines=cfg.baseline_order,
        )
    try:
        layers = request_layers(report, indicator, group, fmt)
    except RequestRefused as err:
        raise usage_error(str(err)) from None
    try:
        written = write_map(layers, out, language)
    except OSError as err:
        raise usage_error(f"cannot write {out}: {err.strerror or err}") from None
    typer.echo(f"{written}: {', '.join(x.key for x in layers)}, {parsed.label}")
