"""The shipped boundaries as the maps use them: every geometry valid after the
documented repair, a GIS union of all 103 wards that succeeds, and each
boundary on its registry ward, the two stale codes of the file corrected."""

from __future__ import annotations

import shapely
from shapely.geometry import Polygon, shape
from shapely.geometry.base import BaseGeometry

from analysis.maps import (
    CODE_CORRECTIONS,
    boundary_reconciliation,
    city_outline,
    reconcile,
    reconciliation_report,
    shipped_boundaries,
    ward_boundaries,
)
from analysis.wards import can_tho_wards

THANH_PHU = 31249  # the self-intersecting polygon of the shipped file
THOT_NOT = 31212  # registry code; the file has 31207 for it
THUAN_HUNG = 31207  # registry code; the file has 31228 for it


def _raw() -> dict[int, BaseGeometry]:
    return {
        int(f["properties"]["ward_code"]): shape(f["geometry"])
        for f in shipped_boundaries()["features"]
    }


def test_the_shipped_file_needs_the_repair() -> None:
    raw = {
        f["properties"]["ward_code"]: shape(f["geometry"]) for f in shipped_boundaries()["features"]
    }
    assert [code for code, g in raw.items() if not g.is_valid] == [THANH_PHU]


def test_every_repaired_boundary_is_valid_and_the_union_succeeds() -> None:
    boundaries = ward_boundaries()
    assert len(boundaries) == 103
    assert all(b.geometry.is_valid for b in boundaries)
    assert all(b.geometry.geom_type in ("Polygon", "MultiPolygon") for b in boundaries)
    union = shapely.unary_union([b.geometry for b in boundaries])
    assert union.is_valid and not union.is_empty
    assert city_outline().is_valid


def test_the_repair_changes_nothing_but_the_broken_ring() -> None:
    raw = {
        f["properties"]["ward_code"]: shape(f["geometry"]) for f in shipped_boundaries()["features"]
    }
    repaired = {b.boundary_code: b for b in ward_boundaries()}
    assert [b.ward_code for b in repaired.values() if b.repaired] == [THANH_PHU]
    broken, fixed = raw[THANH_PHU], repaired[THANH_PHU].geometry
    assert isinstance(broken, Polygon) and isinstance(fixed, Polygon)
    # the degenerate hole ring (about 0.6 m²) is gone; the ward's area is kept
    assert len(fixed.interiors) == 0
    assert abs(fixed.area - shapely.Polygon(broken.exterior).area) < 1e-9
    for code, geometry in raw.items():
        if code != THANH_PHU:
            assert repaired[code].geometry.equals(geometry)


def test_each_boundary_is_on_its_registry_ward() -> None:
    result = boundary_reconciliation()
    assert result.unmatched_boundaries == []
    assert result.registry_without_boundary == []
    assert sorted(result.registry_code.values()) == sorted(can_tho_wards())
    assert result.registry_code[31207] == THOT_NOT
    assert result.registry_code[31228] == THUAN_HUNG
    assert result.how[31207] == result.how[31228] == "corrected code"
    # "Phường Bình Thuỷ" (file) is "Phường Bình Thủy" (registry): tone-mark placement
    assert result.how[31168] == "code, name spelled differently"
    by_code = {b.ward_code: b for b in ward_boundaries()}
    assert by_code[THOT_NOT].name == "Phường Thốt Nốt"
    assert by_code[THOT_NOT].boundary_code == 31207
    assert by_code[THUAN_HUNG].name == "Phường Thuận Hưng"
    report = reconciliation_report(result)
    assert "boundary 31207: matched by corrected code to registry 31212" in report


def test_a_correction_applies_only_while_the_names_agree() -> None:
    # a file that already carries the registry's code for Thuận Hưng keeps it
    feature = {"properties": {"ward_code": 31207, "name": "Phường Thuận Hưng"}}
    result = reconcile([feature], can_tho_wards())
    assert 31207 in CODE_CORRECTIONS
    assert result.registry_code[31207] == THUAN_HUNG
    assert result.how[31207] == "code and name"
