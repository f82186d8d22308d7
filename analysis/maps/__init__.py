"""Ward maps of the indicators: boundaries (repaired, matched to the
registry), layers built from compute_indicators' ward figures only, and the
four formats: GeoJSON and CSV for GIS users, an A4 PNG for print and a
self-contained interactive HTML page. docs/maps.md is the reader's guide.

The CLI (`wardprobe-aggregator map`), the demo, the report and the HTTP API
call `ward_layer` / `ward_layers` for the layers and `write_map` or
`map_bytes` for the files."""

from __future__ import annotations

import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Final

from analysis.indicators import IndicatorReport
from analysis.labels import Lang
from analysis.maps.boundaries import (
    CODE_CORRECTIONS,
    Reconciliation,
    WardBoundary,
    boundary_reconciliation,
    city_outline,
    reconcile,
    reconciliation_report,
    repair,
    shipped_boundaries,
    ward_boundaries,
)
from analysis.maps.classes import ColourScale, colour_scale
from analysis.maps.html import html_text
from analysis.maps.layers import (
    MAP_BY,
    MAP_INDICATORS,
    NO_PROBE,
    MapBy,
    MapRequestError,
    WardLayer,
    WardValue,
    check_by,
    check_indicator,
    groups,
    layer_from_report,
    ward_layer,
    ward_layers,
)
from analysis.maps.png import png_bytes
from analysis.maps.vector import csv_text, geojson_text, layer_geojson

# Format -> media type, in the order the CLI lists them.
FORMATS: Final[dict[str, str]] = {
    "geojson": "application/geo+json",
    "csv": "text/csv; charset=utf-8",
    "png": "image/png",
    "html": "text/html; charset=utf-8",
}


def map_format(out: Path) -> str:
    """The format a file name asks for (its suffix); MapRequestError otherwise."""
    suffix = out.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise MapRequestError("map format", out.suffix or out.name, [f".{f}" for f in FORMATS])
    return suffix


def map_bytes(layers: list[WardLayer], fmt: str, lang: Lang = "vi") -> bytes:
    """A map in `fmt` (geojson, csv, png, html). The HTML page takes every
    layer (a menu switches between them); the other formats one."""
    if fmt not in FORMATS:
        raise MapRequestError("map format", fmt, FORMATS)
    if not layers:
        raise ValueError("no layer to draw")
    if fmt == "html":
        return html_text(layers, lang).encode("utf-8")
    if len(layers) != 1:
        raise ValueError(f"a {fmt} map holds one layer; {len(layers)} given")
    if fmt == "png":
        return png_bytes(layers[0], lang)
    if fmt == "csv":
        return csv_text(layers[0], lang).encode("utf-8")
    return geojson_text(layers[0], lang).encode("utf-8")


def request_layers(
    report: IndicatorReport, indicator: str, group: str | None, fmt: str
) -> list[WardLayer]:
    """The layers one map request draws from `report`: an HTML page asked
    for without a group holds every group of the indicator (its menu
    switches between them); anything else is one layer, and an indicator
    that comes in groups needs its group (MapRequestError otherwise). The
    `map` command and the HTTP API both ask through this."""
    if fmt == "html" and group is None:
        return [layer_from_report(report, indicator, g) for g in groups(report, indicator)]
    return [layer_from_report(report, indicator, group)]


def write_map(layers: list[WardLayer], out: Path, lang: Lang = "vi") -> Path:
    """Write the map in the format `out`'s suffix names (.geojson, .csv, .png, .html)."""
    data = map_bytes(layers, map_format(out), lang)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return out


def layer_file_name(layer: WardLayer) -> str:
    """A file name for a layer: "gigabit_capable_share", "mobile_download_by_tech_lte",
    "qcvn126_download_mean_operator-Viettel"."""
    if not layer.group:
        return layer.indicator
    group = layer.group.removeprefix("access_tech=")
    return layer.indicator + "_" + re.sub(r"[^A-Za-z0-9_.-]+", "-", group).strip("-")


def write_all_maps(
    layers: list[WardLayer],
    out_dir: Path,
    *,
    lang: Lang = "vi",
    formats: tuple[str, ...] = ("html", "png", "geojson"),
    workers: int = min(2, os.cpu_count() or 1),
) -> list[Path]:
    """Every layer's map into `out_dir`: one HTML page switching between them
    all (index.html), and a file per layer in each other format (PNGs drawn
    by `workers` processes)."""
    written = []
    for fmt in formats:
        if fmt == "html":
            written.append(write_map(layers, out_dir / "index.html", lang))
        elif fmt == "png" and len(layers) > 1 and workers > 1:
            # PNGs are most of the time (0.6 s of CPU each): drawn by two
            # processes (spawned: the caller may hold DuckDB's threads)
            paths = [out_dir / f"{layer_file_name(x)}.png" for x in layers]
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                written += pool.map(write_map, [[x] for x in layers], paths, [lang] * len(layers))
        else:
            for layer in layers:
                name = out_dir / f"{layer_file_name(layer)}.{fmt}"
                written.append(write_map([layer], name, lang))
    return written


__all__ = [
    "CODE_CORRECTIONS",
    "FORMATS",
    "MAP_BY",
    "MAP_INDICATORS",
    "NO_PROBE",
    "ColourScale",
    "MapBy",
    "MapRequestError",
    "Reconciliation",
    "WardBoundary",
    "WardLayer",
    "WardValue",
    "boundary_reconciliation",
    "check_by",
    "check_indicator",
    "city_outline",
    "colour_scale",
    "csv_text",
    "geojson_text",
    "groups",
    "html_text",
    "layer_file_name",
    "layer_from_report",
    "layer_geojson",
    "map_bytes",
    "map_format",
    "png_bytes",
    "reconcile",
    "reconciliation_report",
    "repair",
    "request_layers",
    "shipped_boundaries",
    "ward_boundaries",
    "ward_layer",
    "ward_layers",
    "write_all_maps",
    "write_map",
]
