"""GeoJSON and CSV of a map layer, for GIS users: one feature (row) per ward,
all of the registry's wards, with the registry code and Vietnamese name,
properties named with their units (value_mbps, ci_low_share, ...), and the
repaired boundaries (analysis/maps/boundaries.py) as geometry. Shares are
fractions (0.42, not 42 %), as in compute_indicators."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from analysis import labels
from analysis.labels import Lang
from analysis.maps.boundaries import ward_boundaries
from analysis.maps.layers import NO_PROBE, WardLayer, WardValue
from analysis.maps.text import baseline_text


def data_source(layer: WardLayer, lang: Lang) -> str:
    """Where the layer's figures come from, in words."""
    return labels.word("synthetic data" if layer.synthetic else "probe results", lang)


def class_text(layer: WardLayer, ward: WardValue, lang: Lang) -> str:
    """The ward's legend entry: its colour class, or its status when it has no value."""
    if ward.value is None:
        return labels.text(labels.STATUSES, ward.status, lang)
    return layer.scale.label(layer.scale.index(ward.value), lang)


def ward_properties(layer: WardLayer, ward: WardValue, lang: Lang) -> dict[str, Any]:
    """The properties of one ward's feature (and CSV row)."""
    u = layer.unit_suffix
    props: dict[str, Any] = {
        "ward_number": ward.number,
        "ward_code": ward.ward_code,
        "ward_name": ward.ward_name,
        "indicator": layer.indicator,
        "indicator_title": labels.text(labels.INDICATORS, layer.indicator, lang),
        "group": layer.group,
        "period": layer.period.label,
        "period_start": layer.period.start.isoformat(),
        "period_end": layer.period.end.isoformat(),
        "synthetic": layer.synthetic,
        "unit": layer.unit,
        f"value_{u}": ward.value,
        f"ci_low_{u}": ward.ci_low,
        f"ci_high_{u}": ward.ci_high,
        "probes": ward.probes,
        "tests": ward.tests,
        "probe_limited": ward.probe_limited,
        "status": ward.status,
        "class": class_text(layer, ward, lang),
    }
    if layer.indicator == "mobile_download_ratio":
        # which 2024 baseline the value is over, and the tiles' own ratio beside it
        props["baseline"] = ward.baseline
        props["baseline_like_with_like"] = ward.baseline_like_with_like
        props["ookla_tiles_ratio"] = ward.ookla_tiles_ratio
    if layer.indicator == "nr_population_share":
        # the people the city's figure weighs the ward by, and those with 5G
        props["population_people"] = ward.population_people
        props["covered_people"] = ward.covered_people
    for i, t in enumerate(ward.targets, start=1):
        props[f"target_{i}_{u}"] = t.value
        props[f"target_{i}_comparator"] = t.comparator
        props[f"target_{i}_source"] = t.source
        props[f"target_{i}_due"] = t.due
        props[f"target_{i}_met"] = t.met
    return props


def layer_geojson(layer: WardLayer, lang: Lang = "vi") -> dict[str, Any]:
    """The layer as a GeoJSON FeatureCollection (RFC 7946, WGS 84 longitude/latitude)."""
    shapes = {b.ward_code: b for b in ward_boundaries()}
    features = []
    for ward in layer.wards:
        boundary = shapes.get(ward.ward_code)
        props = ward_properties(layer, ward, lang)
        props["boundary_code"] = None if boundary is None else boundary.boundary_code
        features.append(
            {
                "type": "Feature",
                "id": ward.ward_code,
                "properties": props,
                "geometry": None if boundary is None else boundary.geojson_geometry(),
            }
        )
    return {
        "type": "FeatureCollection",
        "name": layer.key,
        "wardprobe": {
            "indicator": layer.indicator,
            "group": layer.group,
            "period": layer.period.label,
            "unit": layer.unit,
            "data_source": data_source(layer, lang),
            "city_value": None if layer.city is None else layer.city.value,
            "city_status": None if layer.city is None else layer.city.status,
            "note": layer.note,
            "baseline_text": baseline_text(layer, lang),
            "statuses": {"no_probe": NO_PROBE},
        },
        "features": features,
    }


def geojson_text(layer: WardLayer, lang: Lang = "vi") -> str:
    """The GeoJSON as UTF-8 text (Vietnamese names as they are, not escaped)."""
    return json.dumps(layer_geojson(layer, lang), ensure_ascii=False)


def csv_text(layer: WardLayer, lang: Lang = "vi") -> str:
    """One row per ward: the GeoJSON's properties and a point inside the ward
    (label_lon, label_lat) for tools that read points from CSV."""
    shapes = {b.ward_code: b for b in ward_boundaries()}
    rows = []
    for ward in layer.wards:
        props = ward_properties(layer, ward, lang)
        boundary = shapes.get(ward.ward_code)
        point = None if boundary is None else boundary.geometry.representative_point()
        props["label_lon"] = None if point is None else round(point.x, 6)
        props["label_lat"] = None if point is None else round(point.y, 6)
        rows.append(props)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()
