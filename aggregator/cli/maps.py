"""`wardprobe-aggregator map`: one indicator's ward map for a period, as
GeoJSON, CSV, PNG or HTML (docs/maps.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from aggregator.cli.indicators import StoreOption
from aggregator.cli.support import ConfigOption, config_or_exit, existing_store, store_failure
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
    import duckdb

    from analysis.indicators import StoreTooOld, compute_indicators, open_store, parse_period
    from analysis.maps import (
        MAP_INDICATORS,
        MapRequestError,
        check_by,
        groups,
        layer_from_report,
        map_format,
        write_map,
    )
    from analysis.maps.layers import report_grouping

    try:
        check_by(by)
        if indicator not in MAP_INDICATORS:
            raise MapRequestError("indicator", indicator, MAP_INDICATORS)
        fmt = map_format(out)
        parsed = parse_period(period)
    except MapRequestError as err:
        raise usage_error(str(err)) from None
    except ValueError as err:
        raise usage_error(str(err)) from None
    if lang not in ("vi", "en"):
        raise usage_error(f"unknown language {lang!r}; accepted: vi, en")
    language: Literal["vi", "en"] = "vi" if lang == "vi" else "en"
    if store is None:
        cfg = config_or_exit(config)
        path = existing_store(cfg.snapshot_path or cfg.store_path)
    else:
        path = existing_store(store)
    try:
        con = open_store(path)
    except duckdb.Error as err:
        raise store_failure(path, err) from None
    try:
        report = compute_indicators(
            con, parsed, by=report_grouping(indicator, check_by(by)), synthetic=synthetic
        )
    except StoreTooOld as err:
        raise usage_error(f"{path}: {err}") from None
    except duckdb.Error as err:
        raise store_failure(path, err) from None
    finally:
        con.close()
    try:
        if fmt == "html" and group is None:
            layers = [layer_from_report(report, indicator, g) for g in groups(report, indicator)]
        else:
            layers = [layer_from_report(report, indicator, group)]
    except MapRequestError as err:
        raise usage_error(str(err)) from None
    try:
        written = write_map(layers, out, language)
    except OSError as err:
        raise usage_error(f"cannot write {out}: {err.strerror or err}") from None
    typer.echo(f"{written}: {', '.join(x.key for x in layers)}, {parsed.label}")
