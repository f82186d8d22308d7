"""The ward boundaries the maps draw: the shipped file, repaired and matched
to the ward registry.

analysis/data/can_tho_wards.geojson is a copy of a public reference map
(licence beside it) and is kept as it was published; every change the maps
need is made here, in code, and written down in docs/maps.md and
analysis/data/can_tho_wards.NOTES.txt:

- geometry: one polygon (Xã Thạnh Phú, 31249) has a degenerate hole ring of
  about 0.6 m² that crosses its outer ring (a self-intersection), so a GIS
  union of the wards fails. `repair` rebuilds every invalid geometry with
  shapely's make_valid ("structure" method: the rings are re-assembled as
  areas, collapsed parts dropped) and keeps its polygons; valid geometries
  are left as they are. Rings are then oriented as RFC 7946 asks
  (exterior counter-clockwise).
- codes: the registry (analysis/wards.py, from vietnam-provinces) is the
  authority for codes, since the store files results under its codes. Two
  boundaries carry another unit's code: the file's 31207 is drawn and named
  "Phường Thốt Nốt" (registry code 31212) and its 31228 "Phường Thuận Hưng"
  (registry code 31207; 31228 is no unit of the 2025 register). Their
  names, English names, areas and positions (Thốt Nốt on the Hậu river to
  the north, Thuận Hưng south of it) agree with each other, so the name is
  right and the code is stale. CODE_CORRECTIONS states both, and
  `reconcile` applies them only while the registry still names the
  corrected code as the file does.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final

import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from analysis.wards import WardInfo, can_tho_wards

BOUNDARY_FILE: Final = "data/can_tho_wards.geojson"

# Boundary code in the shipped file -> the registry's code for the same unit
# (the module docstring and docs/maps.md, "Boundaries", say why).
CODE_CORRECTIONS: Final[dict[int, int]] = {
    31207: 31212,  # Phường Thốt Nốt
    31228: 31207,  # Phường Thuận Hưng
}

_TONE_MARKS = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}  # huyền sắc ngã hỏi nặng


def shipped_boundaries() -> dict[str, Any]:
    """The boundary file as shipped (a GeoJSON FeatureCollection), unrepaired."""
    text = resources.files("analysis").joinpath(BOUNDARY_FILE).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _spelling(name: str) -> str:
    """A name with spacing and case folded (NFC)."""
    return " ".join(unicodedata.normalize("NFC", name).split()).casefold()


def _toneless(name: str) -> str:
    """A name without its tone marks, so "Thuỷ" (old placement) equals "Thủy"."""
    decomposed = unicodedata.normalize("NFD", _spelling(name))
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in _TONE_MARKS))


def display_name(name: str) -> str:
    """A registry name as printed: NFC, single spaces (the registry has "Xã  Phú Hữu")."""
    return " ".join(unicodedata.normalize("NFC", name).split())


def same_name(a: str, b: str) -> bool:
    """Whether two spellings name the same unit (case, spacing and tone-mark placement aside)."""
    return _toneless(a) == _toneless(b)


def repair(geometry: BaseGeometry) -> Polygon | MultiPolygon:
    """A valid polygonal geometry for `geometry`: unchanged when valid, else
    rebuilt by make_valid ("structure") with only its polygons kept;
    rings oriented exterior counter-clockwise (RFC 7946)."""
    fixed = geometry
    if not geometry.is_valid:
        fixed = shapely.make_valid(geometry, method="structure", keep_collapsed=False)
    polygons = [
        g for g in getattr(fixed, "geoms", [fixed]) if isinstance(g, Polygon | MultiPolygon)
    ]
    parts = [p for g in polygons for p in getattr(g, "geoms", [g])]
    if not parts:
        raise ValueError("the boundary has no area left after repair")
    oriented = [orient(p, sign=1.0) for p in parts]
    return oriented[0] if len(oriented) == 1 else MultiPolygon(oriented)


@dataclass(frozen=True)
class Reconciliation:
    """How the boundary file's units map onto the registry's codes."""

    registry_code: dict[int, int]  # boundary code -> registry code
    # boundary code -> "code and name", "code, name spelled differently",
    # "corrected code" (CODE_CORRECTIONS) or "name"
    how: dict[int, str]
    unmatched_boundaries: list[tuple[int, str]]  # (code, name) in the file, no registry unit
    registry_without_boundary: list[tuple[int, str]]


def reconcile(features: list[dict[str, Any]], registry: dict[int, WardInfo]) -> Reconciliation:
    """Match boundaries to registry units: the stated corrections first, then
    by code when the names agree (exactly, then ignoring tone-mark
    placement), else by a name that only one registry unit has (a newer
    file's renumbering shows up in the report rather than as a blank ward)."""
    by_spelling: dict[str, list[int]] = {}
    by_toneless: dict[str, list[int]] = {}
    for code, info in registry.items():
        by_spelling.setdefault(_spelling(info.name), []).append(code)
        by_toneless.setdefault(_toneless(info.name), []).append(code)
    mapping_: dict[int, int] = {}
    how: dict[int, str] = {}
    unmatched = []
    for feature in features:
        code = int(feature["properties"]["ward_code"])
        name = str(feature["properties"].get("name") or "")
        corrected = registry.get(CODE_CORRECTIONS.get(code, -1))
        same_code = registry.get(code)
        if corrected is not None and same_name(corrected.name, name):
            mapping_[code], how[code] = corrected.ward_code, "corrected code"
        elif same_code is not None and _spelling(same_code.name) == _spelling(name):
            mapping_[code], how[code] = code, "code and name"
        elif same_code is not None and same_name(same_code.name, name):
            mapping_[code], how[code] = code, "code, name spelled differently"
        elif len(by_spelling.get(_spelling(name), [])) == 1:
            mapping_[code], how[code] = by_spelling[_spelling(name)][0], "name"
        elif len(by_toneless.get(_toneless(name), [])) == 1:
            mapping_[code], how[code] = by_toneless[_toneless(name)][0], "name"
        else:
            unmatched.append((code, name))
    matched = set(mapping_.values())
    missing = [(c, i.name) for c, i in sorted(registry.items()) if c not in matched]
    return Reconciliation(mapping_, how, unmatched, missing)


def reconciliation_report(result: Reconciliation) -> str:
    """Plain text for the operator: what was matched other than by code and name."""
    lines = []
    for code, how in sorted(result.how.items()):
        if how != "code and name":
            lines.append(
                f"boundary {code}: matched by {how} to registry {result.registry_code[code]}"
            )
    for code, name in result.unmatched_boundaries:
        lines.append(f"boundary {code} {name}: no registry unit; not drawn")
    for code, name in result.registry_without_boundary:
        lines.append(f"registry {code} {name}: no boundary; listed without a shape")
    return "\n".join(lines) + ("\n" if lines else "")


@dataclass(frozen=True)
class WardBoundary:
    """One registry ward and its (repaired) shape."""

    ward_code: int  # the registry's
    name: str  # the registry's, Vietnamese
    boundary_code: int  # the shipped file's
    matched_by: str
    repaired: bool  # whether the shipped geometry was invalid and rebuilt
    geometry: Polygon | MultiPolygon

    def geojson_geometry(self) -> dict[str, Any]:
        """The shape as a GeoJSON geometry object."""
        out: dict[str, Any] = mapping(self.geometry)
        return out


@cache
def ward_boundaries() -> tuple[WardBoundary, ...]:
    """Every registry ward that has a boundary, in registry-code order,
    repaired and matched (read once per process)."""
    registry = can_tho_wards()
    features = shipped_boundaries()["features"]
    matches = reconcile(features, registry)
    out = []
    for feature in features:
        boundary_code = int(feature["properties"]["ward_code"])
        code = matches.registry_code.get(boundary_code)
        if code is None:
            continue
        raw = shape(feature["geometry"])
        out.append(
            WardBoundary(
                ward_code=code,
                name=display_name(registry[code].name),
                boundary_code=boundary_code,
                matched_by=matches.how[boundary_code],
                repaired=not raw.is_valid,
                geometry=repair(raw),
            )
        )
    return tuple(sorted(out, key=lambda b: b.ward_code))


# Neighbouring wards of the shipped file were simplified one by one, so they
# leave slivers between them (2.7 km² in all, hundreds of them, many open to
# the outside). The outline closes gaps narrower than about 110 m: grown by
# this much (degrees) and shrunk back.
OUTLINE_CLOSING_DEG: Final = 0.0005


@cache
def city_outline() -> Polygon | MultiPolygon:
    """The city's outline: the union of every repaired ward, slivers between
    neighbours closed and no holes (the city has no enclaves)."""
    union = shapely.unary_union([b.geometry for b in ward_boundaries()])
    closed = union.buffer(OUTLINE_CLOSING_DEG, join_style="mitre").buffer(
        -OUTLINE_CLOSING_DEG, join_style="mitre"
    )
    parts = [Polygon(p.exterior) for p in getattr(closed, "geoms", [closed])]
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)


def boundary_reconciliation() -> Reconciliation:
    """How the shipped file matches the registry (for reports and tests)."""
    return reconcile(shipped_boundaries()["features"], can_tho_wards())
