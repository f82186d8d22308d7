"""Unknown wards, indicators, periods, groupings, groups, languages, years
and formats are refused by the API (404 in the path, 422 in the query) in
the same words as the command line refuses them, with the accepted list."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from aggregator.cli import app
from tests.aggregator.api.conftest import RunningApi

MAP = ["map", "--period", "2026"]


@pytest.mark.parametrize(
    ("path", "params", "status", "cli", "accepted"),
    [
        ("/indicators", {"period": "2026Q5"}, 422,
         ["indicators", "--period", "2026Q5"], "YYYYQn"),
        ("/indicators", {"period": "2026-05-01..2026-04-01"}, 422,
         ["indicators", "--period", "2026-05-01..2026-04-01"], "YYYY-MM-DD..YYYY-MM-DD"),
        ("/indicators", {"period": "2026", "by": "isp"}, 422,
         ["indicators", "--period", "2026", "--by", "isp"], "site_class"),
        ("/indicators", {"period": "2026", "baseline": "vnnic"}, 422,
         ["indicators", "--period", "2026", "--baseline", "vnnic"], "ookla_tiles"),
        ("/indicators", {"period": "2026", "ward": "99999"}, 422,
         ["indicators", "--period", "2026", "--ward", "99999"], "31135"),
        ("/maps/no_such_indicator.png", {"period": "2026"}, 404,
         [*MAP, "--indicator", "no_such_indicator", "--out", "m.png"], "gigabit_capable_share"),
        ("/maps/fixed_200_share.svg", {"period": "2026"}, 404,
         [*MAP, "--indicator", "fixed_200_share", "--out", "m.svg"], ".geojson"),
        ("/maps/fixed_200_share.png", {"period": "2026", "by": "site_class"}, 422,
         [*MAP, "--indicator", "fixed_200_share", "--by", "site_class", "--out", "m.png"],
         "access_tech"),
        ("/maps/fixed_200_share.png", {"period": "2026", "lang": "fr"}, 422,
         [*MAP, "--indicator", "fixed_200_share", "--lang", "fr", "--out", "m.png"], "vi"),
        ("/maps/fixed_200_share.png", {"period": "2026Q9"}, 422,
         ["map", "--period", "2026Q9", "--indicator", "fixed_200_share", "--out", "m.png"],
         "YYYYQn"),
        ("/maps/mobile_download_by_tech.png", {"period": "2026", "group": "wifi"}, 422,
         [*MAP, "--indicator", "mobile_download_by_tech", "--group", "wifi", "--out", "m.png"],
         "access_tech=lte"),
        ("/maps/mobile_download_by_tech.png", {"period": "2026"}, 422,
         [*MAP, "--indicator", "mobile_download_by_tech", "--out", "m.png"], "access_tech=lte"),
        ("/report/2026.docx", {}, 404,
         ["report", "--year", "2026", "--out", "2026.docx"], ".pdf"),
        ("/report/2026.html", {"lang": "fr"}, 422,
         ["report", "--year", "2026", "--lang", "fr", "--out", "r.html"], "en"),
    ],
)  # fmt: skip
def test_refused_as_the_cli_refuses(
    api: RunningApi,
    path: str,
    params: dict[str, str],
    status: int,
    cli: list[str],
    accepted: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with api.client() as client:
        answer = client.get(path, params=params)
    assert answer.status_code == status
    body = answer.json()
    assert accepted in body["accepted"]
    # the text names what is accepted (the 103 wards by their range)
    assert all(a in body["detail"] for a in body["accepted"]) or "103 ward codes" in body["detail"]
    monkeypatch.chdir(tmp_path)  # the CLI's output files, which it must not write
    result = CliRunner().invoke(app, [*cli, "--store", str(api.data.snapshot)])
    assert result.exit_code != 0
    assert body["detail"] in " ".join(result.output.split()), result.output
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["1999.html", "20x6.pdf", "2026", "report.pdf"])
def test_unknown_years_and_reports(api: RunningApi, name: str) -> None:
    with api.client() as client:
        answer = client.get(f"/report/{name}")
    assert answer.status_code == 404
    assert answer.json()["accepted"] in (["2000 to 9999"], [".html", ".pdf"])


def test_a_map_without_a_format_names_the_formats(api: RunningApi) -> None:
    with api.client() as client:
        answer = client.get("/maps/fixed_200_share")
    assert answer.status_code == 404
    assert answer.json()["accepted"] == [".geojson", ".csv", ".png", ".html"]


def test_a_grouped_indicator_asks_for_its_group_in_the_apis_words(api: RunningApi) -> None:
    with api.client() as client:
        answer = client.get("/maps/mobile_download_by_tech.png", params={"period": "2026"})
    assert answer.status_code == 422
    assert "group= in the API" in answer.json()["detail"]
