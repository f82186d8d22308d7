"""The ward map puts each ward's figures on the right polygon, even where the
boundary file and the registry number or spell a unit differently."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from aggregator.store import ProbeRow, Store
from analysis.ward_map import boundaries, reconcile, write_ward_map
from analysis.wards import can_tho_wards

THOT_NOT = 31212  # registry code; the boundary file still has 31207 for it
THUAN_HUNG = 31207  # registry code; the boundary file has 31228 for it


def test_every_boundary_finds_its_registry_unit() -> None:
    result = reconcile(boundaries()["features"], can_tho_wards())

    assert result.unmatched_boundaries == []
    assert result.registry_without_boundary == []
    assert result.registry_code[31207] == THOT_NOT
    assert result.how[31207] == "name"
    assert result.registry_code[31228] == THUAN_HUNG
    # "Phường Bình Thuỷ" (file) is "Phường Bình Thủy" (registry): same code, tone placement.
    assert result.how[31168] == "code, name spelled differently"
    assert sorted(result.registry_code.values()) == sorted(can_tho_wards())


def _store_with_downloads(path: Path, by_ward: dict[int, float]) -> None:
    store = Store(path)
    now = datetime.now(UTC)
    store.replace_probes(
        ProbeRow(f"wp-{code}", code, None, "household", None, None, now, None, None, "active", None)
        for code in by_ward
    )
    schema = store.arrow_schema("throughput")
    rows = [
        {
            "result_id": f"01900000-0000-7000-8000-{i:012d}",
            "probe_id": f"wp-{code}",
            "ward_code": code,
            "measured_at": now,
            "received_at": now,
            "network_kind": "fixed",
            "clock_sync": "synchronised",
            "status": "ok",
            "direction": "download",
            "mbps": mbps,
            "synthetic": False,  # they stand for probe results here
        }
        for i, (code, mbps) in enumerate(by_ward.items())
    ]
    table = pa.Table.from_pylist(rows, schema=schema)
    store.insert_results("throughput", table)
    store.close()


def test_the_map_carries_each_wards_figures_on_its_polygon(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    _store_with_downloads(store, {THOT_NOT: 250.0, 31135: 900.0})

    geojson, svg, report = write_ward_map(store, tmp_path)

    collection = json.loads(geojson.read_text("utf-8"))
    assert len(collection["features"]) == 103
    props = {f["properties"]["ward_code"]: f["properties"] for f in collection["features"]}
    assert props[THOT_NOT]["mean_download_mbps"] == 250.0
    assert props[THOT_NOT]["boundary_code"] == 31207
    assert props[THOT_NOT]["name"] == "Phường Thốt Nốt"
    assert props[31135]["mean_download_mbps"] == 900.0
    assert props[THUAN_HUNG]["mean_download_mbps"] is None
    assert props[THUAN_HUNG]["probes"] == 0
    root = ET.fromstring(svg.read_text("utf-8"))  # well-formed SVG
    assert len(root.findall("{http://www.w3.org/2000/svg}path")) == 103
    assert "boundary 31207: matched by name to registry 31212" in report.read_text("utf-8")
