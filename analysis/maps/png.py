"""A printable PNG of a map layer: A4 landscape at 300 dpi.

Title (indicator, group, period, data source), the city's figure and each
target against it, the wards coloured by class (analysis/maps/classes.py)
with "insufficient data" hatched grey and "no probe" white, every ward
numbered with a key beside the map, an enlarged inset of the central wards
(too small to read at the city's scale), the city outline, a scale bar and a
north arrow. Text is DejaVu Sans, which ships with matplotlib and has every
Vietnamese letter (tests/analysis/maps check each glyph). Drawn with
matplotlib's object interface (no pyplot state), so the HTTP API can call it
from several threads.
"""

from __future__ import annotations

import io
import math
from functools import cache
from typing import Final

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrow, PathPatch, Rectangle
from matplotlib.path import Path as MplPath
from matplotlib_scalebar.scalebar import ScaleBar
from numpy.typing import NDArray
from shapely import ops, transform
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from analysis import constants as k
from analysis import labels
from analysis.labels import Lang
from analysis.maps import classes
from analysis.maps.boundaries import city_outline, ward_boundaries
from analysis.maps.layers import INSUFFICIENT, NO_PROBE, WardLayer
from analysis.maps.text import baseline_text, city_line, period_text, target_lines, title

A4_LANDSCAPE_IN: Final = (297 / 25.4, 210 / 25.4)
DPI: Final = 300
FONT: Final = "DejaVu Sans"
# The wards of the city centre, drawn again enlarged: at the city's scale
# they are a few millimetres across (Ninh Kiều, Cái Khế, Tân An, An Bình,
# Bình Thủy, Long Tuyền, Cái Răng, Hưng Phú).
INSET_WARDS: Final = (31120, 31135, 31147, 31150, 31168, 31183, 31186, 31201)
HATCH: Final = "////"
HATCH_COLOUR: Final = "#6b6b6b"
# km per degree (WGS 84, at the equator for longitude, mean for latitude)
_KM_PER_DEG_LON: Final = 111.320
_KM_PER_DEG_LAT: Final = 110.574


class _Projection:
    """Longitude/latitude to km east and north of the city's centre
    (equirectangular at the centre's latitude: over the city's 120 km the
    scale varies by less than 0.2 %, below what a printed scale bar shows)."""

    def __init__(self, outline: BaseGeometry) -> None:
        lon0, lat0, lon1, lat1 = outline.bounds
        self.lon0 = (lon0 + lon1) / 2
        self.lat0 = (lat0 + lat1) / 2
        self.kx = _KM_PER_DEG_LON * math.cos(math.radians(self.lat0))

    def __call__(self, geometry: BaseGeometry) -> BaseGeometry:
        def to_km(coords: NDArray[np.float64]) -> NDArray[np.float64]:
            return (coords - (self.lon0, self.lat0)) * (self.kx, _KM_PER_DEG_LAT)

        return transform(geometry, to_km)


def _path(geometry: BaseGeometry) -> MplPath:
    """A matplotlib path of a polygon or multipolygon, holes included."""
    polygons = geometry.geoms if isinstance(geometry, MultiPolygon) else [geometry]
    paths = []
    for polygon in polygons:
        assert isinstance(polygon, Polygon)
        for ring in (polygon.exterior, *polygon.interiors):
            coords = list(ring.coords)
            codes = [MplPath.MOVETO] + [MplPath.LINETO] * (len(coords) - 2) + [MplPath.CLOSEPOLY]
            paths.append(MplPath(coords, codes))
    return MplPath.make_compound_path(*paths)


def _fill(layer: WardLayer, status: str, value: float | None) -> tuple[str, str | None]:
    """Face colour and hatch of a ward."""
    if status == NO_PROBE:
        return classes.NO_PROBE_COLOUR, None
    if value is None:
        return classes.INSUFFICIENT_COLOUR, HATCH
    return layer.scale.colour(value), None


@cache
def _projected() -> tuple[
    _Projection, Polygon | MultiPolygon, dict[int, tuple[MplPath, float, float]]
]:
    """The projection, the projected city outline, and each ward's path and
    number position (the point inside it farthest from its edge), made once
    per process: the same for every map."""
    outline = city_outline()
    project = _Projection(outline)
    wards = {}
    for b in ward_boundaries():
        geometry = project(b.geometry)
        largest = max(getattr(geometry, "geoms", [geometry]), key=lambda g: g.area)
        assert isinstance(largest, Polygon)
        point = ops.polylabel(largest, tolerance=0.05)
        wards[b.ward_code] = (_path(geometry), point.x, point.y)
    city = project(outline)
    assert isinstance(city, Polygon | MultiPolygon)
    return project, city, wards


def _draw_wards(
    ax: Axes, layer: WardLayer, *, font_pt: float, only: tuple[int, ...] | None = None
) -> None:
    """Every ward filled by its class or status, with its number (only
    the numbers of `only` when given: an inset numbers what it is of)."""
    _, _, shapes = _projected()
    for ward in layer.wards:
        if ward.ward_code not in shapes:
            continue
        path, x, y = shapes[ward.ward_code]
        face, hatch = _fill(layer, ward.status, ward.value)
        # add_artist, not add_patch: the axes' limits are set from the city, so
        # the patch need not update them (a third of the drawing time)
        ax.add_artist(
            PathPatch(
                path,
                facecolor=face,
                edgecolor=classes.EDGE_COLOUR,
                linewidth=0.3,
                hatch=hatch,
                hatchcolor=HATCH_COLOUR,
            )
        )
        if only is not None and ward.ward_code not in only:
            continue
        dark = ward.value is not None and _is_dark(layer.scale.colour(ward.value))
        ax.text(
            x,
            y,
            str(ward.number),
            ha="center",
            va="center",
            fontsize=font_pt,
            color="white" if dark else "black",
            fontfamily=FONT,
            clip_on=True,
        )


def _is_dark(colour: str) -> bool:
    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.45


def _north_arrow(ax: Axes, lang: Lang) -> None:
    ax.add_patch(
        FancyArrow(
            0.05,
            0.87,
            0,
            0.07,
            width=0.012,
            head_width=0.035,
            head_length=0.035,
            length_includes_head=True,
            transform=ax.transAxes,
            color="black",
        )
    )
    ax.text(
        0.05,
        0.845,
        labels.word("north", lang),
        transform=ax.transAxes,
        ha="center",
        va="top",
        fontsize=9,
        fontweight="bold",
        fontfamily=FONT,
    )


def _legend(ax: Axes, layer: WardLayer, lang: Lang) -> None:
    """Classes top (highest values) to bottom, each target as a bold line at
    its break with its name and source, then the two statuses without a value."""
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    scale = layer.scale
    ax.text(
        0,
        1,
        f"{labels.word('legend', lang)} ({labels.unit_label(layer.unit, lang)})",
        fontsize=8,
        fontweight="bold",
        va="top",
        fontfamily=FONT,
    )
    rows: list[tuple[str, object]] = []
    for i in reversed(range(len(scale.classes))):
        rows.append(("class", i))
        low = scale.classes[i].low
        for t in scale.targets:
            if low is not None and t.value == low.value:
                rows.append(("target", t))
    rows += [("gap", None), ("status", INSUFFICIENT), ("status", NO_PROBE), ("gap", None)]
    step = min(0.07, 0.86 / (len(rows) + 3))
    y = 0.9
    for kind, item in rows:
        if kind == "target":
            assert isinstance(item, k.Target)
            y -= step * 0.3
            ax.plot([0, 0.12], [y, y], color="black", linewidth=1.8)
            due = labels.DUE[item.due][lang] if item.due in labels.DUE else item.due
            ax.text(
                0.15,
                y,
                f"{labels.word('target', lang)} {labels.COMPARATORS[item.comparator]} "
                f"{labels.round_quantity(item.value, layer.unit, lang)} "
                f"({labels.SHORT_SOURCES[item.source][lang]}, {due})",
                fontsize=5.5,
                va="center",
                fontweight="bold",
                fontfamily=FONT,
            )
            y -= step * 0.3
            continue
        if kind == "gap":
            y -= step * 0.4
            continue
        if kind == "class":
            assert isinstance(item, int)
            face, hatch, text = scale.classes[item].colour, None, scale.label(item, lang)
        else:
            assert isinstance(item, str)
            face, hatch = _fill(layer, item, None)
            text = labels.text(labels.STATUSES, item, lang)
        y -= step
        ax.add_patch(
            Rectangle(
                (0, y),
                0.12,
                step * 0.85,
                facecolor=face,
                edgecolor=classes.EDGE_COLOUR,
                linewidth=0.4,
                hatch=hatch,
                hatchcolor=HATCH_COLOUR,
            )
        )
        ax.text(0.15, y + step * 0.42, text, fontsize=6.5, va="center", fontfamily=FONT)
    notes = [labels.word("floor", lang)]
    if not scale.targets:
        notes.append(labels.word("no target", lang).capitalize())
    ax.text(0, y, "\n".join(notes), fontsize=5.5, va="top", fontfamily=FONT, linespacing=1.5)


def _key(ax: Axes, layer: WardLayer, lang: Lang) -> None:
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.text(
        0, 1, labels.word("key", lang), fontsize=8, fontweight="bold", va="top", fontfamily=FONT
    )
    columns = 3
    per_column = math.ceil(len(layer.wards) / columns)
    # one text per column: a hundred text objects would take a third of the drawing
    for col in range(columns):
        chunk = layer.wards[col * per_column : (col + 1) * per_column]
        ax.text(
            col / columns,
            0.95,
            "\n".join(f"{w.number:>3}  {w.ward_name}" for w in chunk),
            fontsize=5.2,
            va="top",
            linespacing=1.32,
            fontfamily=FONT,
        )


def _frame(ax: Axes, geometry: BaseGeometry, pad_km: float) -> None:
    x0, y0, x1, y1 = geometry.bounds
    ax.set_xlim(x0 - pad_km, x1 + pad_km)
    ax.set_ylim(y0 - pad_km, y1 + pad_km)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def png_bytes(layer: WardLayer, lang: Lang = "vi") -> bytes:
    """The layer as an A4 landscape PNG at 300 dpi."""
    fig = Figure(figsize=A4_LANDSCAPE_IN, dpi=DPI)
    FigureCanvasAgg(fig)
    project, city, _ = _projected()

    fig.text(
        0.015, 0.975, title(layer, lang), fontsize=13, fontweight="bold", va="top", fontfamily=FONT
    )
    subtitle = [period_text(layer, lang), city_line(layer, lang), *target_lines(layer, lang)]
    fig.text(
        0.015, 0.935, "\n".join(subtitle), fontsize=7.5, va="top", linespacing=1.4, fontfamily=FONT
    )

    top = 0.935 - 0.028 * len(subtitle) - 0.01
    ax = fig.add_axes((0.015, 0.07, 0.56, top - 0.07))
    _draw_wards(ax, layer, font_pt=4.2)
    ax.add_patch(PathPatch(_path(city), facecolor="none", edgecolor="black", linewidth=1.2))
    _frame(ax, city, 2.0)
    for spine in ax.spines.values():
        spine.set_linewidth(0.5)
    ax.add_artist(
        ScaleBar(1, "km", location="lower left", frameon=False, font_properties={"size": 7})
    )
    _north_arrow(ax, lang)

    centre = ops.unary_union(
        [project(b.geometry) for b in ward_boundaries() if b.ward_code in INSET_WARDS]
    )
    inset = fig.add_axes((0.815, 0.52, 0.17, top - 0.52))
    _draw_wards(inset, layer, font_pt=7, only=INSET_WARDS)
    inset.add_patch(PathPatch(_path(city), facecolor="none", edgecolor="black", linewidth=1.2))
    _frame(inset, centre, 0.5)
    inset.set_title(labels.word("central wards", lang), fontsize=7, fontfamily=FONT)
    inset.add_artist(
        ScaleBar(1, "km", location="lower left", frameon=False, font_properties={"size": 6})
    )
    # where the inset is on the main map
    (x0, x1), (y0, y1) = inset.get_xlim(), inset.get_ylim()
    frame = Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="black", linewidth=0.8)
    frame.set_linestyle("--")
    ax.add_patch(frame)

    _legend(fig.add_axes((0.595, 0.50, 0.20, top - 0.49)), layer, lang)
    _key(fig.add_axes((0.595, 0.07, 0.39, 0.41)), layer, lang)

    footer = [labels.word("boundaries", lang)]
    if layer.note and lang == "en":
        footer.append(layer.note)  # compute_indicators' notes are in English
    if baseline := baseline_text(layer, lang):
        footer.append(baseline)
    fig.text(
        0.015, 0.012, "\n".join(footer), fontsize=5.5, va="bottom", fontfamily=FONT, color="#333333"
    )
    out = io.BytesIO()
    # zlib level 3: a fifth of the time of the default 6, files a tenth larger
    fig.savefig(out, format="png", dpi=DPI, pil_kwargs={"compress_level": 3})
    return out.getvalue()
