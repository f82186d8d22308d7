"""The four map formats as their users read them: GeoJSON through a GIS
reader (pyogrio/GDAL) with valid geometries, 103 features and properties
named with units; CSV one row per ward; the PNG an A4 page at 300 dpi with
every letter in the font; the HTML page loading nothing from outside."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from pathlib import Path

import pyogrio
import pytest
import shapely
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font
from PIL import Image

from analysis import labels
from analysis.maps import MapRequestError, WardLayer, map_bytes, write_all_maps, write_map
from analysis.maps.png import FONT
from analysis.wards import can_tho_wards
from tests.analysis.maps.conftest import layer
from tests.browser import CHROMIUM, in_netns, netns_missing, offline_netns


def test_geojson_reads_back_in_a_gis_reader(city_layers: list[WardLayer], tmp_path: Path) -> None:
    lte = layer(city_layers, "mobile_download_by_tech:access_tech=lte")
    out = write_map([lte], tmp_path / "lte.geojson")
    meta, _, wkb, fields = pyogrio.raw.read(out)
    geometries = shapely.from_wkb(wkb)
    assert len(geometries) == 103
    assert all(shapely.is_valid(geometries))
    assert shapely.unary_union(geometries).is_valid
    columns = dict(zip(meta["fields"], fields, strict=True))
    for name in ("ward_code", "ward_name", "value_mbps", "ci_low_mbps", "ci_high_mbps",
                 "probes", "tests", "probe_limited", "status", "target_1_mbps",
                 "target_1_met", "target_1_source"):  # fmt: skip
        assert name in columns, name
    assert sorted(int(c) for c in columns["ward_code"]) == sorted(can_tho_wards())
    assert "Phường Ninh Kiều" in list(columns["ward_name"])
    by_code = {int(c): i for i, c in enumerate(columns["ward_code"])}
    for w in lte.wards:
        i = by_code[w.ward_code]
        assert columns["status"][i] == w.status
        if w.value is not None:
            assert columns["value_mbps"][i] == pytest.approx(w.value)
            assert bool(columns["target_1_met"][i]) is bool(w.targets[0].met)


def test_shares_are_named_as_shares(city_layers: list[WardLayer]) -> None:
    data = json.loads(map_bytes([layer(city_layers, "gigabit_capable_share")], "geojson"))
    props = data["features"][0]["properties"]
    assert {"value_share", "ci_low_share", "target_1_share", "target_3_share"} <= set(props)
    assert 0.0 <= props["value_share"] <= 1.0


def test_csv_has_one_row_per_ward(city_layers: list[WardLayer]) -> None:
    text = map_bytes([layer(city_layers, "nr_time_share")], "csv").decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 103
    assert {r["ward_code"] for r in rows} == {str(c) for c in can_tho_wards()}
    assert all(r["label_lon"] and r["label_lat"] for r in rows)
    assert {r["status"] for r in rows} <= {"ok", "insufficient data", "no probe"}


def test_png_is_an_a4_page_at_300_dpi(city_layers: list[WardLayer]) -> None:
    image = Image.open(io.BytesIO(map_bytes([layer(city_layers, "fixed_200_share")], "png")))
    width, height = image.size
    assert abs(width - 3508) <= 1 and abs(height - 2480) <= 1  # 297 x 210 mm
    assert [round(d) for d in image.info["dpi"]] == [300, 300]


def test_the_font_has_every_letter_the_maps_print() -> None:
    font = FT2Font(font_manager.findfont(FONT, fallback_to_default=False))
    words = [w.name for w in can_tho_wards().values()]
    for table in (labels.INDICATORS, labels.UNITS, labels.STATUSES, labels.SOURCES,
                  labels.SHORT_SOURCES, labels.WORDS, labels.GROUP_VALUES):  # fmt: skip
        words += [entry[lang] for entry in table.values() for lang in labels.LANGS]
    missing = {c for text in words for c in text if c.strip() and font.get_char_index(ord(c)) == 0}
    assert missing == set()


def test_html_loads_nothing_from_outside(city_layers: list[WardLayer]) -> None:
    page = map_bytes(city_layers[:3], "html").decode("utf-8")
    tags = re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", page)
    assert tags and all("src=" not in t and "href=" not in t for t in tags)
    assert "window.PlotlyGeoAssets" in page  # no world map fetched from plotly's CDN
    assert "Plotly.newPlot" in page
    for w in city_layers[0].wards:  # in the hover texts, as plotly's JSON escapes them
        assert json.dumps(w.ward_name)[1:-1] in page


def test_unknown_format_is_refused(city_layers: list[WardLayer], tmp_path: Path) -> None:
    with pytest.raises(MapRequestError) as refused:
        write_map(city_layers[:1], tmp_path / "map.svg")
    assert ".png" in refused.value.accepted


@pytest.mark.netns
@pytest.mark.skipif(CHROMIUM is None, reason="chromium-headless-shell not installed")
def test_html_draws_every_ward_with_no_network(
    city_layers: list[WardLayer], tmp_path: Path
) -> None:
    missing = netns_missing()
    if missing:
        pytest.skip(missing)
    page = tmp_path / "map.html"
    write_map(city_layers, page)
    # only loopback, down: the page has nothing to reach
    with offline_netns("wpmap", loopback=False) as ns:
        dom = subprocess.run(
            in_netns(ns, [str(CHROMIUM), "--no-sandbox", "--headless", "--disable-gpu",
                          "--virtual-time-budget=20000", "--dump-dom", page.as_uri()]),
            check=True, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
    assert "fetching topojson" not in dom.stderr
    assert dom.stdout.count('class="choroplethlocation"') == 103


def test_write_all_maps_writes_one_page_and_a_file_per_layer(
    city_layers: list[WardLayer], tmp_path: Path
) -> None:
    chosen = [layer(city_layers, "gigabit_capable_share"), layer(city_layers, "nr_time_share")]
    written = write_all_maps(chosen, tmp_path, workers=2)
    assert sorted(p.name for p in written) == [
        "gigabit_capable_share.geojson",
        "gigabit_capable_share.png",
        "index.html",
        "nr_time_share.geojson",
        "nr_time_share.png",
    ]
    assert Image.open(tmp_path / "nr_time_share.png").size[0] >= 3507
