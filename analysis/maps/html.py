"""An interactive map in one self-contained HTML file: plotly with plotly.js
inlined, no CDN, no map tiles, no fonts from elsewhere, so it opens with no
network at all.

The wards are a plotly Choropleth over their own GeoJSON (no base map:
`geo.visible` off, the view fitted to the wards). The colour of a ward is its
class (analysis/maps/classes.py), "insufficient data" grey and "no probe"
white, drawn as a stepped colour bar that names every class. Hovering (or
tapping) a ward shows its name and every field of the layer. With several
layers, a menu switches between them: each layer's colours, hover texts,
legend and title are in the file, and the switch restyles the one trace.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any, Final

import plotly.graph_objects as go
import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping
from shapely.geometry.polygon import orient

from analysis import labels
from analysis.labels import Lang
from analysis.maps import classes
from analysis.maps.boundaries import city_outline, ward_boundaries
from analysis.maps.layers import NO_PROBE, WardLayer
from analysis.maps.text import (
    baseline_text,
    city_line,
    period_text,
    target_lines,
    title,
    ward_html,
)

DIV_ID: Final = "wardprobe-map"
# plotly.js draws a geo subplot over a world topojson it fetches from its CDN
# unless window.PlotlyGeoAssets already holds it (how plotly serves offline
# pages). The map shows no base layer (geo.visible off), so an empty world
# is handed over: nothing is fetched.
_EMPTY_WORLD: Final = json.dumps(
    {
        "type": "Topology",
        "arcs": [],
        "objects": {
            name: {"type": "GeometryCollection", "geometries": []}
            for name in ("coastlines", "land", "ocean", "lakes", "rivers", "countries", "subunits")
        },
    }
)
_OFFLINE_ASSETS: Final = (
    "<script>window.PlotlyGeoAssets = {topojson: {world_110m: " + _EMPTY_WORLD + "}};</script>"
)


def _clockwise(geometry: Polygon | MultiPolygon) -> dict[str, Any]:
    """The shape with exterior rings clockwise, as d3-geo (plotly.js) reads
    spherical polygons: counter-clockwise (RFC 7946) would be the whole
    globe but the ward. Coordinates to 5 decimals (about 1 m), as shipped."""
    parts = geometry.geoms if isinstance(geometry, MultiPolygon) else [geometry]
    turned = [orient(p, sign=-1.0) for p in parts]
    shape = turned[0] if len(turned) == 1 else MultiPolygon(turned)
    out: dict[str, Any] = mapping(shapely.set_precision(shape, 1e-5, mode="pointwise"))
    return out


def _geojson() -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": b.ward_code,
                "properties": {},
                "geometry": _clockwise(b.geometry),
            }
            for b in ward_boundaries()
        ],
    }


def _codes(layer: WardLayer) -> list[int]:
    drawn = {b.ward_code for b in ward_boundaries()}
    return [w.ward_code for w in layer.wards if w.ward_code in drawn]


def _categories(layer: WardLayer, lang: Lang) -> tuple[list[str], list[str]]:
    """Colours and names of the layer's categories: no probe, insufficient data, the classes."""
    colours = [classes.NO_PROBE_COLOUR, classes.INSUFFICIENT_COLOUR]
    names = [labels.text(labels.STATUSES, s, lang) for s in (NO_PROBE, "insufficient data")]
    targets = {t.value for t in layer.scale.targets}
    for i, c in enumerate(layer.scale.classes):
        colours.append(c.colour)
        name = layer.scale.label(i, lang)
        if c.low is not None and c.low.value in targets:
            name += f"  ◄ {labels.word('target', lang).lower()}"
        names.append(name)
    return colours, names


def _category(layer: WardLayer, value: float | None, status: str) -> int:
    if status == NO_PROBE:
        return 0
    if value is None:
        return 1
    return 2 + layer.scale.index(value)


def _stepped(colours: list[str]) -> list[list[Any]]:
    """A plotly colour scale with one flat step per category."""
    n = len(colours)
    scale: list[list[Any]] = []
    for i, colour in enumerate(colours):
        scale += [[i / n, colour], [(i + 1) / n, colour]]
    return scale


def _header(layer: WardLayer, lang: Lang) -> str:
    lines = [period_text(layer, lang), city_line(layer, lang), *target_lines(layer, lang)]
    return "<br>".join(escape(line) for line in lines)


def _restyle(layer: WardLayer, lang: Lang) -> dict[str, Any]:
    """The trace's attributes that change from one layer to another."""
    colours, names = _categories(layer, lang)
    drawn = set(_codes(layer))
    wards = [w for w in layer.wards if w.ward_code in drawn]
    n = len(colours)
    return {
        "z": [_category(layer, w.value, w.status) for w in wards],
        "text": [ward_html(layer, w, lang) for w in wards],
        "colorscale": _stepped(colours),
        "zmin": -0.5,
        "zmax": n - 0.5,
        "colorbar": {
            "tickvals": list(range(n)),
            "ticktext": names,
            "title": {"text": labels.unit_label(layer.unit, lang)},
            "len": 0.75,
            "thickness": 18,
            "outlinewidth": 1,
            "outlinecolor": classes.EDGE_COLOUR,
        },
    }


def _relayout(layer: WardLayer, lang: Lang) -> dict[str, Any]:
    return {
        "title.text": f"<b>{escape(title(layer, lang))}</b>",
        "annotations[0].text": _header(layer, lang),
    }


def html_text(layers: list[WardLayer], lang: Lang = "vi") -> str:
    """One HTML file showing `layers` (the first at start, a menu switching
    between them when there are several)."""
    if not layers:
        raise ValueError("no layer to draw")
    first = layers[0]
    codes = _codes(first)
    style = _restyle(first, lang)
    trace = go.Choropleth(
        geojson=_geojson(),
        locations=codes,
        featureidkey="id",
        marker={"line": {"color": classes.EDGE_COLOUR, "width": 0.5}},
        hovertemplate="%{text}<extra></extra>",
        hoverlabel={"align": "left"},
        **style,
    )
    lon0, lat0, lon1, lat1 = city_outline().bounds
    fig = go.Figure(trace)
    fig.update_geos(
        visible=False,
        projection_type="mercator",
        lonaxis_range=[lon0 - 0.02, lon1 + 0.02],
        lataxis_range=[lat0 - 0.02, lat1 + 0.02],
        bgcolor="rgba(0,0,0,0)",
    )
    fig.update_layout(
        title={
            "text": _relayout(first, lang)["title.text"],
            "x": 0.01,
            "y": 0.985,
            "yanchor": "top",
            "font": {"size": 18},
        },
        annotations=[
            {
                "text": _header(first, lang),
                "xref": "paper",
                "yref": "paper",
                "x": 0,
                "y": 1.0,
                "yanchor": "bottom",
                "align": "left",
                "showarrow": False,
                "font": {"size": 12},
            }
        ],
        margin={"l": 10, "r": 10, "t": 200 if len(layers) > 1 else 150, "b": 40},
        height=860,
        font={"family": "DejaVu Sans, Arial, sans-serif"},
        paper_bgcolor="white",
    )
    if len(layers) > 1:
        fig.update_layout(
            updatemenus=[
                {
                    "type": "dropdown",
                    "direction": "down",
                    "x": 0.0,
                    "xanchor": "left",
                    "y": 1.0,
                    "yanchor": "bottom",
                    "pad": {"b": 100},
                    "bgcolor": "#f7f7f7",
                    "showactive": True,
                    "buttons": [
                        {
                            "label": title(layer, lang),
                            "method": "update",
                            "args": [
                                {k: [v] for k, v in _restyle(layer, lang).items()},
                                _relayout(layer, lang),
                            ],
                        }
                        for layer in layers
                    ],
                }
            ]
        )
    page = fig.to_html(
        include_plotlyjs=True,
        include_mathjax=False,
        full_html=True,
        div_id=DIV_ID,
        config={"displaylogo": False, "responsive": True, "scrollZoom": True},
    )
    doc_title = escape(title(first, lang) if len(layers) == 1 else labels.word("switch", lang))
    # the doubling ratio's baseline, named with its map when the page holds several
    baselines = [
        (f"{title(x, lang)}: " if len(layers) > 1 else "") + baseline_text(x, lang)
        for x in layers
        if baseline_text(x, lang)
    ]
    footer = "<br>".join(escape(line) for line in (labels.word("boundaries", lang), *baselines))
    page = page.replace("<html>", f'<html lang="{lang}">', 1)
    page = page.replace("<head>", f"<head>\n<title>{doc_title}</title>\n{_OFFLINE_ASSETS}", 1)
    out: str = page.replace(
        "</body>", f'<p style="font:12px sans-serif;color:#444">{footer}</p>\n</body>', 1
    )
    return out
