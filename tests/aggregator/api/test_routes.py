"""Each route of the API answers over TLS with what the department would
check: the wards, the indicators (the very JSON `indicators --format json`
prints), every map format (the CLI's map), the report in HTML and PDF, the
sampling table, the OpenAPI description; and nothing it answers writes."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyogrio
import pytest
import shapely
from PIL import Image
from pypdf import PdfReader
from typer.testing import CliRunner

from aggregator.api.app import PREFIX, ApiSettings, create_app
from aggregator.api.source import DataSource
from aggregator.api.tokens import ApiTokenStore
from aggregator.cli import app
from analysis.wards import can_tho_wards
from tests.aggregator.api.conftest import RunningApi
from tests.aggregator.conftest import assert_close

NINH_KIEU = 31135



def cli_json(snapshot: Path, *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "aggregator", "indicators", "--format", "json",
         "--store", str(snapshot), *args],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(done.stdout)


def test_health(api: RunningApi) -> None:
    with api.client() as client:
        answer = client.get("/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok"
    assert body["source"] == "snapshot"
    assert body["data_written_at"].startswith("20")


def test_wards_are_the_registrys_103_with_their_probes(api: RunningApi) -> None:
    with api.client() as client:
        synthetic = client.get("/wards", params={"synthetic": "true"}).json()
        real = client.get("/wards").json()
    assert synthetic["count"] == 103
    codes = [w["ward_code"] for w in synthetic["wards"]]
    assert codes == sorted(can_tho_wards())
    ninh_kieu = next(w for w in synthetic["wards"] if w["ward_code"] == NINH_KIEU)
    assert ninh_kieu["name"] == "Phường Ninh Kiều"
    assert ninh_kieu["division_type"] == "phường"
    assert all(w["has_probes"] and w["probes"] == 10 for w in synthetic["wards"])
    # the store holds only the synthetic city: no real probe anywhere
    assert not any(w["has_probes"] for w in real["wards"])


@pytest.mark.parametrize(
    "query",
    [
        {"period": "2026", "synthetic": "true"},
        {"period": "2026Q2", "synthetic": "true", "by": "operator"},
        {"period": "2026", "synthetic": "true", "ward": str(NINH_KIEU)},
        {"period": "2026", "synthetic": "true", "by": "site_class", "city_only": "true"},
        {"period": "2026", "synthetic": "true", "baseline": "imported", "city_only": "true"},
    ],
)
def test_indicators_are_the_clis_json(api: RunningApi, query: dict[str, str]) -> None:
    with api.client() as client:
        answer = client.get("/indicators", params=query)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    args = ["--period", query["period"], "--synthetic"]
    if "by" in query:
        args += ["--by", query["by"]]
    if "ward" in query:
        args += ["--ward", query["ward"]]
    if "city_only" in query:
        args += ["--city-only"]
    if "baseline" in query:
        args += ["--baseline", query["baseline"]]
    ours = answer.json()
    assert_close(ours, cli_json(api.data.snapshot, *args))
    assert ours["figures"], "a figure at least"
    # ipv6_leading_provinces, from the published figures the snapshot copied
    ranks = {p["metric"]: p["text"] for p in ours["ipv6_reference"]["provinces"]}
    assert ranks["information_portal"] == "rank 3 of 6 provinces with figures (tied with 1 other)"


def test_geojson_map_reads_back_in_a_gis_reader(api: RunningApi, tmp_path: Path) -> None:
    with api.client() as client:
        answer = client.get(
            "/maps/gigabit_capable_share.geojson", params={"period": "2026", "synthetic": "true"}
        )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/geo+json"
    path = tmp_path / "map.geojson"
    path.write_bytes(answer.content)
    meta, _, wkb, fields = pyogrio.raw.read(path)
    geometries = shapely.from_wkb(wkb)
    assert len(geometries) == 103 and all(shapely.is_valid(geometries))
    columns = dict(zip(meta["fields"], fields, strict=True))
    assert {"ward_code", "ward_name", "value_share", "ci_low_share", "status"} <= set(columns)
    # the CLI's map of the same request: the same wards, figures and statuses
    cli = tmp_path / "cli.geojson"
    result = CliRunner().invoke(
        app,
        ["map", "--indicator", "gigabit_capable_share", "--period", "2026", "--synthetic",
         "--store", str(api.data.snapshot), "--out", str(cli)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert_close(json.loads(answer.content), json.loads(cli.read_bytes()))


def test_csv_png_and_html_maps(api: RunningApi) -> None:
    query = {"period": "2026", "synthetic": "true"}
    with api.client() as client:
        table = client.get("/maps/nr_time_share.csv", params=query)
        png = client.get("/maps/nr_time_share.png", params={**query, "lang": "en"})
        page = client.get("/maps/mobile_download_by_tech.html", params=query)
        one = client.get(
            "/maps/mobile_download_by_tech.png", params={**query, "group": "lte"}
        )
    assert table.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert len(rows) == 103 and "value_share" in rows[0]
    assert png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size[0] >= 3507  # A4 at 300 dpi
    assert one.status_code == 200 and one.content.startswith(b"\x89PNG")
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "Plotly.newPlot" in page.text
    assert '"updatemenus"' in page.text  # every group in one page, a menu between them
    assert "<script src=" not in page.text  # nothing loaded from elsewhere


def test_report_html_and_pdf(api: RunningApi) -> None:
    with api.client() as client:
        html = client.get("/report/2026.html", params={"synthetic": "true"})
        pdf = client.get("/report/2026.pdf", params={"synthetic": "true"})
        english = client.get("/report/2026.html", params={"synthetic": "true", "lang": "en"})
    assert html.status_code == 200
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    assert '<html lang="vi"' in html.text
    assert "Kế hoạch 87/KH-UBND" in html.text
    assert '<html lang="en"' in english.text
    assert pdf.headers["content-type"] == "application/pdf"
    text = "".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "87/KH-UBND" in text and "Phường" in text


def test_sampling_table(api: RunningApi) -> None:
    with api.client() as client:
        answer = client.get("/sampling", params={"period": "2026", "synthetic": "true"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["period"]["label"] == "2026"
    assert body["floor"] == {"probes": 3, "tests": 30}
    assert {"below_floor", "unsettled", "z"} <= set(body)
    for gap in body["below_floor"]:
        assert gap["more_probes"] is None or gap["more_probes"] >= 0
    for row in body["unsettled"]:
        assert row["ci_low"] <= row["target_value"] <= row["ci_high"]


def test_more_probes_layer_reads_back_in_a_gis_reader(api: RunningApi, tmp_path: Path) -> None:
    query = {"period": "2026", "synthetic": "true"}
    with api.client() as client:
        answer = client.get("/sampling/mobile_download_by_tech.geojson",
                            params={**query, "group": "lte"})  # fmt: skip
        table = client.get("/sampling", params=query).json()
        unknown = client.get("/sampling/no_such_indicator.geojson", params=query)
        png = client.get("/sampling/fixed_200_share.png", params=query)
        groupless = client.get("/sampling/mobile_download_by_tech.geojson", params=query)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/geo+json"
    path = tmp_path / "needs.geojson"
    path.write_bytes(answer.content)
    meta, _, wkb, fields = pyogrio.raw.read(path)
    geometries = shapely.from_wkb(wkb)
    assert len(geometries) == 103 and all(shapely.is_valid(geometries))
    columns = dict(zip(meta["fields"], fields, strict=True))
    assert {"status", "more_probes_to_floor_count", "more_probes_to_settle_count"} <= set(columns)
    # the layer says what the table says, ward by ward
    by_code = {int(c): i for i, c in enumerate(columns["ward_code"])}
    for gap in table["below_floor"]:
        if (gap["indicator"], gap["group"]) == ("mobile_download_by_tech", "access_tech=lte") \
                and gap["scope"] != "city":  # fmt: skip
            i = by_code[int(gap["scope"])]
            assert columns["status"][i] == "below floor"
    assert unknown.status_code == 404 and "fixed_200_share" in unknown.json()["accepted"]
    assert png.status_code == 404 and png.json()["accepted"] == [".geojson"]
    assert groupless.status_code == 422 and "access_tech=lte" in groupless.json()["accepted"]


def test_openapi_describes_every_route_and_the_token(api: RunningApi) -> None:
    with api.client() as client:
        spec = client.get("/openapi.json").json()
        for page in ("/api/v1/docs", "/docs", "/redoc"):
            # no page that would load its scripts from a CDN
            assert client.get(page.replace("/api/v1", "")).status_code == 404
    assert set(spec["paths"]) == {
        f"{PREFIX}/health",
        f"{PREFIX}/wards",
        f"{PREFIX}/indicators",
        f"{PREFIX}/maps/{{name}}",
        f"{PREFIX}/report/{{name}}",
        f"{PREFIX}/sampling",
        f"{PREFIX}/sampling/{{name}}",
    }
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_only_get_is_routed(api: RunningApi, tmp_path: Path) -> None:
    routed = create_app(
        ApiSettings(
            DataSource(tmp_path / "none.duckdb", "snapshot"),
            ApiTokenStore(tmp_path / "tokens.sqlite"),
            poll_s=None,
        )
    )
    methods = {m for route in routed.routes for m in getattr(route, "methods", set())}
    assert methods <= {"GET", "HEAD"}
    with api.client() as client:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            assert client.request(method, "/indicators").status_code == 405


def _digest(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def test_no_route_writes_the_snapshot_or_the_store(api: RunningApi) -> None:
    before = {p: _digest(p) for p in (api.data.snapshot, api.data.store)}
    query = {"period": "2026Q1", "synthetic": "true"}
    with api.client() as client:
        for path in ("/health", "/wards", "/indicators", "/sampling",
                     "/maps/fixed_200_share.geojson", "/maps/fixed_200_share.csv"):  # fmt: skip
            assert client.get(path, params=query).status_code == 200, path
    assert {p: _digest(p) for p in before} == before
    assert not api.data.snapshot.with_name(api.data.snapshot.name + ".wal").exists()
