"""A ward map of the summary: GeoJSON for GIS tools and an SVG to look at.

Boundaries come from analysis/data/can_tho_wards.geojson (a copy of the
shared reference map, licence beside it). Its codes and names do not always
agree with the `vietnam-provinces` registry that the store's ward codes come
from (units renumbered since, "Hoà"/"Hòa" tone-mark spelling, stray spaces),
so each boundary is matched to a registry unit by code and name, then by
name alone; `reconcile` says how each was matched and what was not.
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from analysis.summary import WardSummary, ward_summary
from analysis.wards import WardInfo, can_tho_wards

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


_TONE_MARKS = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}  # huyền sắc ngã hỏi nặng


def _spelling(name: str) -> str:
    """A name with spacing and case folded (NFC)."""
    return " ".join(unicodedata.normalize("NFC", name).split()).casefold()


def _toneless(name: str) -> str:
    """A name without its tone marks, so "Hoà" (old placement) equals "Hòa"."""
    decomposed = unicodedata.normalize("NFD", _spelling(name))
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in _TONE_MARKS))


@dataclass(frozen=True)
class Reconciliation:
    """How the boundary file's units map onto the registry's codes."""

    registry_code: dict[int, int]  # boundary code -> registry code
    how: dict[
        int, str
    ]  # boundary code -> "code and name", "code, name spelled differently", "name"
    unmatched_boundaries: list[tuple[int, str]]  # (code, name) in the file, no registry unit
    registry_without_boundary: list[tuple[int, str]]


def reconcile(features: list[dict[str, Any]], registry: dict[int, WardInfo]) -> Reconciliation:
    """Match boundaries to registry units: by code when the names agree
    (exactly, then ignoring tone-mark placement), else by a name that only one
    registry unit has."""
    by_spelling: dict[str, list[int]] = {}
    by_toneless: dict[str, list[int]] = {}
    for code, info in registry.items():
        by_spelling.setdefault(_spelling(info.name), []).append(code)
        by_toneless.setdefault(_toneless(info.name), []).append(code)
    mapping: dict[int, int] = {}
    how: dict[int, str] = {}
    unmatched = []
    for feature in features:
        code = int(feature["properties"]["ward_code"])
        name = str(feature["properties"].get("name") or "")
        same_code = registry.get(code)
        if same_code is not None and _spelling(same_code.name) == _spelling(name):
            mapping[code], how[code] = code, "code and name"
        elif same_code is not None and _toneless(same_code.name) == _toneless(name):
            mapping[code], how[code] = code, "code, name spelled differently"
        elif len(by_spelling.get(_spelling(name), [])) == 1:
            mapping[code], how[code] = by_spelling[_spelling(name)][0], "name"
        elif len(by_toneless.get(_toneless(name), [])) == 1:
            mapping[code], how[code] = by_toneless[_toneless(name)][0], "name"
        else:
            unmatched.append((code, name))
    matched = set(mapping.values())
    missing = [(c, i.name) for c, i in sorted(registry.items()) if c not in matched]
    return Reconciliation(mapping, how, unmatched, missing)


def reconciliation_report(result: Reconciliation) -> str:
    """Plain text for the operator: what was matched other than by code and name."""
    lines = []
    for code, how in sorted(result.how.items()):
        if how != "code and name":
            lines.append(
                f"boundary {code}: matched by {how} to registry {result.registry_code[code]}"
            )
    for code, name in result.unmatched_boundaries:
        lines.append(f"boundary {code} {name}: no registry unit; drawn without data")
    for code, name in result.registry_without_boundary:
        lines.append(f"registry {code} {name}: no boundary; its data is not on the map")
    return "\n".join(lines) + ("\n" if lines else "")


def ward_map_geojson(rows: list[WardSummary]) -> dict[str, Any]:
    """Boundaries with the summary figures as properties (null where no data).
    `ward_code` is the registry's (the store's) code; `boundary_code` the file's."""
    by_code = {r.ward_code: r for r in rows}
    registry = can_tho_wards()
    collection = boundaries()
    matches = reconcile(collection["features"], registry)
    features = []
    for feature in collection["features"]:
        boundary_code = int(feature["properties"]["ward_code"])
        code = matches.registry_code.get(boundary_code)
        summary = by_code.get(code) if code is not None else None
        props = {
            "ward_code": code,
            "boundary_code": boundary_code,
            "name": registry[code].name if code is not None else feature["properties"].get("name"),
            "matched_by": matches.how.get(boundary_code),
            "probes": 0,
            "tests": 0,
            "mean_download_mbps": None,
            "median_latency_ms": None,
            "ipv6_share": None,
        }
        if summary is not None:
            props.update(
                {k: v for k, v in asdict(summary).items() if k not in ("ward_name", "ward_code")}
            )
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
        label = f"{props['name']} ({props['ward_code'] or props['boundary_code']}): " + (
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
        text = f"{low} – {high}" if high else f"≥ {low}"
        yy = y + 10 + 22 * i
        parts.append(f'<rect x="10" y="{yy}" width="18" height="16" fill="{fill}" stroke="#555"/>')
        parts.append(f'<text x="34" y="{yy + 13}">{_escape(text)}</text>')
    yy = y + 10 + 22 * len(_DOWNLOAD_CLASSES)
    parts.append(f'<rect x="10" y="{yy}" width="18" height="16" fill="{_NO_DATA}" stroke="#555"/>')
    parts.append(f'<text x="34" y="{yy + 13}">chưa có dữ liệu / no data</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_ward_map(store_path: Path, out_dir: Path) -> tuple[Path, Path, Path]:
    """Write ward_map.geojson, ward_map.svg and ward_map_reconciliation.txt."""
    collection = ward_map_geojson(ward_summary(store_path))
    geojson_path = out_dir / "ward_map.geojson"
    svg_path = out_dir / "ward_map.svg"
    report_path = out_dir / "ward_map_reconciliation.txt"
    geojson_path.write_text(json.dumps(collection, ensure_ascii=False), "utf-8")
    svg_path.write_text(ward_map_svg(collection), "utf-8")
    report_path.write_text(
        reconciliation_report(reconcile(boundaries()["features"], can_tho_wards())), "utf-8"
    )
    return geojson_path, svg_path, report_path
