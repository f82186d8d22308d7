"""`wardprobe-aggregator map` as a user runs it: the file in the format its
suffix names, with compute_indicators' figures, and one-line refusals (exit
2) that say what is accepted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aggregator.cli import app
from analysis.maps import WardLayer
from tests.analysis.maps.conftest import layer

runner = CliRunner()


def _map(store: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        app, ["map", "--period", "2026", "--store", str(store), "--synthetic", *args]
    )
    return result.exit_code, result.output


def test_map_writes_the_layer_in_the_format_asked(
    city_store: Path, city_layers: list[WardLayer], tmp_path: Path
) -> None:
    out = tmp_path / "lte.geojson"
    code, output = _map(
        city_store, "--indicator", "mobile_download_by_tech", "--group", "lte", "--out", str(out)
    )
    assert code == 0, output
    features = json.loads(out.read_text("utf-8"))["features"]
    assert len(features) == 103
    expected = {
        w.ward_code: w for w in layer(city_layers, "mobile_download_by_tech:access_tech=lte").wards
    }
    for f in features:
        ward = expected[f["properties"]["ward_code"]]
        assert f["properties"]["status"] == ward.status
        assert f["properties"]["value_mbps"] == pytest.approx(ward.value)


def test_an_html_map_without_a_group_holds_every_group(city_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "v6.html"
    code, output = _map(city_store, "--indicator", "ipv6_capable_share", "--out", str(out),
                        "--lang", "en")  # fmt: skip
    assert code == 0, output
    assert "ipv6_capable_share:access_tech=fixed" in output
    assert "ipv6_capable_share:access_tech=mobile" in output
    assert '<html lang="en">' in out.read_text("utf-8")


@pytest.mark.parametrize(
    ("args", "accepted"),
    [
        (["--indicator", "mean_download", "--out", "m.png"], "gigabit_capable_share"),
        (["--indicator", "fixed_200_share", "--out", "m.svg"], ".geojson, .csv, .png, .html"),
        (["--indicator", "mobile_download_by_tech", "--out", "m.png"], "access_tech=lte"),
        (["--indicator", "mobile_download_by_tech", "--group", "wifi", "--out", "m.png"],
         "access_tech=nr5g_sa"),
        (["--indicator", "fixed_200_share", "--by", "site_class", "--out", "m.png"],
         "operator, access_tech"),
        (["--indicator", "fixed_200_share", "--lang", "fr", "--out", "m.png"], "vi, en"),
    ],
)  # fmt: skip
def test_unknown_requests_are_refused_in_one_line(
    city_store: Path, tmp_path: Path, args: list[str], accepted: str
) -> None:
    args = [str(tmp_path / a) if a.startswith("m.") else a for a in args]
    code, output = _map(city_store, *args)
    assert code == 2
    assert len(output.strip().splitlines()) == 1
    assert "accepted" in output and accepted in output
    assert not any(tmp_path.iterdir())


def test_an_unknown_period_is_refused(city_store: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "m.png")
    args = ["map", "--indicator", "fixed_200_share", "--period", "2026Q5"]
    result = runner.invoke(app, [*args, "--store", str(city_store), "--out", out])
    assert result.exit_code == 2
    assert "expected YYYY, YYYYQn or YYYY-MM-DD..YYYY-MM-DD" in result.output
