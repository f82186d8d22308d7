"""A ward map of the summary: GeoJSON for GIS tools and an SVG to look at.

Boundaries come from analysis/data/can_tho_wards.geojson (a copy of the
shared reference map, licence beside it). Its codes are reconciled with the
`vietnam-provinces` registry by code; boundaries whose code the registry
does not know are kept, flagged `in_registry: false`, and counted.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

from aggregator.wards import can_tho_wards
from analysis.summary import WardSummary, ward_summary

# Download colour classes, Mb/s (lower bound inclusive), light to dark.
_DOWNLOAD_CLASSES = (
    (0, "#fee5d9"),
    (25, "#fcae91"),
    (100, "#fb6a4a"),
    (300, "#de2d26"),
    (900, "#a50f15"),
)
_NO_DATA = "#e0e0e0"


def boundaries() -> dict[str, Any]:
    """The ward boundaries shipped with the project (GeoJSON FeatureCollection)."""
    text = resources.files("analysis").joinpath("data/can_tho_wards.geojson").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def ward_map_geojson(rows: list[WardSummary]) -> dict[str, Any]:
    """Boundaries with the summary figures as properties (null where no data)."""
    by_code = {r.ward_code: r for r in rows}
    registry = can_tho_wards()
    collection = boundaries()
    features = []
    for feature in collection["features"]:
        code = int(feature["properties"]["ward_code"])
        summary = by_code.get(code)
        props = {
            "ward_code": code,
            "name": feature["properties"].get("name"),
            "registry_name": registry[code].name if code in registry else None,
            "in_registry": code in registry,
            "probes": 0,
            "tests": 0,
            "mean_download_mbps": None,
            "median_latency_ms": None,
            "ipv6_share": None,
        }
        if summary is not None:
            props.update({k: v for k, v in asdict(summary).items() if k != "ward_name"})
        features.append({"type": "Feature", "properties": props, "geometry": feature["geometry"]})
    return {"type": "FeatureCollection", "features": features}


def _rings(geometry: dict[str, Any]) -> list[list[list[float]]]:
    if geometry["type"] == "Polygon":
        return list(geometry["coordinates"])
    return [ring for polygon in geometry["coordinates"] for ring in polygon]


def _colour(mbps: float | None) -> str:
    if mbps is None:
        return _NO_DATA
    colour = _DOWNLOAD_CLASSES[0][1]
    for low, fill in _DOWNLOAD_CLASSES:
        if mbps >= low:
            colour = fill
    return colour


def ward_map_svg(collection: dict[str, Any], width_px: int = 900) -> str:
    """A choropleth of mean download per ward (equirectangular, scaled by cos(latitude))."""
    points = [pt for f in collection["features"] for ring in _rings(f["geometry"]) for pt in ring]
    lon_min = min(p[0] for p in points)
    lon_max = max(p[0] for p in points)
    lat_min = min(p[1] for p in points)
    lat_max = max(p[1] for p in points)
    x_scale = math.cos(math.radians((lat_min + lat_max) / 2))
    scale = width_px / ((lon_max - lon_min) * x_scale)
    height_px = int((lat_max - lat_min) * scale) + 1
    legend_h = 30 + 22 * (len(_DOWNLOAD_CLASSES) + 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width_px}" '
        f'height="{height_px + legend_h}" font-family="sans-serif" font-size="13">',
        "<title>Tốc độ tải xuống trung bình theo phường/xã (Mb/s)</title>",
    ]
    for feature in collection["features"]:
        props = feature["properties"]
        paths = []
        for ring in _rings(feature["geometry"]):
            coords = " ".join(
                f"{(lon - lon_min) * x_scale * scale:.1f},{(lat_max - lat) * scale:.1f}"
                for lon, lat in ring
            )
            paths.append(f"M{coords}Z")
        mbps = props["mean_download_mbps"]
        label = f"{props['name']} ({props['ward_code']}): " + (
            "chưa có dữ liệu / no data"
            if mbps is None
            else f"{mbps:.1f} Mb/s, {props['probes']} probes"
        )
        parts.append(
            f'<path d="{" ".join(paths)}" fill="{_colour(mbps)}" stroke="#555" '
            f'stroke-width="0.5"><title>{_escape(label)}</title></path>'
        )
    y = height_px + 20
    parts.append(f'<text x="10" y="{y}">Tải xuống trung bình / mean download (Mb/s)</text>')
    for i, (low, fill) in enumerate(_DOWNLOAD_CLASSES):
        high = _DOWNLOAD_CLASSES[i + 1][0] if i + 1 < len(_DOWNLOAD_CLASSES) else None
        text = f"≥ {low}" + (f" – < {high}" if high else "")
        yy = y + 10 + 22 * i
        parts.append(f'<rect x="10" y="{yy}" width="18" height="16" fill="{fill}" stroke="#555"/>')
        parts.append(f'<text x="34" y="{yy + 13}">{text}</text>')
    yy = y + 10 + 22 * len(_DOWNLOAD_CLASSES)
    parts.append(f'<rect x="10" y="{yy}" width="18" height="16" fill="{_NO_DATA}" stroke="#555"/>')
    parts.append(f'<text x="34" y="{yy + 13}">chưa có dữ liệu / no data</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_ward_map(store_path: Path, out_dir: Path) -> tuple[Path, Path]:
    """Write ward_map.geojson and ward_map.svg for the store's summary."""
    collection = ward_map_geojson(ward_summary(store_path))
    geojson_path = out_dir / "ward_map.geojson"
    svg_path = out_dir / "ward_map.svg"
    geojson_path.write_text(json.dumps(collection, ensure_ascii=False), "utf-8")
    svg_path.write_text(ward_map_svg(collection), "utf-8")
    return geojson_path, svg_path
