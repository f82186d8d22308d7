"""The yearly report on a hand-made store: every figure worked out by hand.

Five fixed lines: in Phường Ninh Kiều four (three at 250 Mb/s, one at
150 Mb/s, ten downloads each), in Phường Cái Khế one (twelve at 250 Mb/s,
and one download whose clock was not synchronised). So for 2026, over the
city: 5 lines, 52 valid tests; at 200 Mb/s 4 of 5 = 80 %, Wilson 95 %
[37.6 %, 96.4 %], target ≥ 90 % (235/KH-UBND): not met, and the interval
contains 90 %, so n = 1.96² × 0.8 × 0.2 / 0.1² = 61.5 -> 62 probes, 57
more; gigabit-capable 0 of 5, Wilson [0 %, 43.4 %]: not met against all three
targets, settled. Mobile: no probe, insufficient data.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from html import unescape
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from aggregator.cli import app
from analysis import constants as k
from analysis.indicators import TZ
from analysis.maps.boundaries import display_name
from analysis.report import ReportContent, gather, plan_targets, render_html
from analysis.report.content import TargetLine
from analysis.sampling import Z
from analysis.wards import can_tho_wards
from tests.analysis.report.conftest import FOUR_LINES, ONE_LINE

MADE = datetime(2027, 1, 15, 9, tzinfo=TZ)


@pytest.fixture(scope="module")
def vi(handmade_con: duckdb.DuckDBPyConnection) -> ReportContent:
    return gather(handmade_con, 2026, "vi", generated=MADE)


@pytest.fixture(scope="module")
def vi_html(vi: ReportContent) -> str:
    return render_html(vi)


def _text(html: str) -> str:
    """The page's text as a reader sees it (tags out, one space between words)."""
    body = re.sub(r"<style>.*?</style>", " ", html, flags=re.DOTALL)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", body)))


def _line(content: ReportContent, title_start: str, target: str) -> TargetLine:
    found = [t for t in content.summary if t.title.startswith(title_start) and t.target == target]
    assert len(found) == 1, [(t.title, t.target) for t in content.summary]
    return found[0]


def _wilson(yes: int, n: int) -> tuple[float, float]:
    p = yes / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / (1 + Z * Z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def test_every_plan_target_is_in_the_summary(vi: ReportContent) -> None:
    plan = [t for t in k.TARGETS if t.source not in ("QCVN 126:2021", "QCVN 34:2022")]
    assert len(vi.summary) == len(plan) == 16
    assert [s.indicator for s in vi.summary] == [t.indicator for t in plan]
    assert len(vi.sections) == len(plan_targets()) == 13


def test_the_200_mbps_share_by_hand(vi: ReportContent) -> None:
    low, high = _wilson(4, 5)
    assert (round(100 * low, 1), round(100 * high, 1)) == (37.6, 96.4)
    line = _line(vi, "Tỷ lệ đường truyền cố định đạt từ 200 Mb/s", "≥ 90 %")
    assert (line.value, line.interval) == ("80,0 %", "37,6 – 96,4 %")
    assert (line.probes, line.tests) == ("5", "52")
    assert (line.verdict, line.verdict_text) == ("not met", "Không đạt")
    assert line.unsettled
    assert line.source == "Kế hoạch 235/KH-UBND của UBND thành phố Cần Thơ"
    assert line.due == "2030"


def test_the_gigabit_share_by_hand(vi: ReportContent) -> None:
    low, high = _wilson(0, 5)
    assert (low, round(100 * high, 1)) == (0.0, 43.4)
    for target in ("≥ 50 %", "> 80 %", "≥ 100 %"):
        line = _line(vi, "Tỷ lệ đường truyền cố định đạt tốc độ gigabit", target)
        assert (line.value, line.interval, line.verdict_text) == (
            "0,0 %",
            "0,0 – 43,4 %",
            "Không đạt",
        )
        assert not line.unsettled


def test_no_mobile_probe_is_insufficient_data(vi: ReportContent) -> None:
    line = _line(vi, "Tốc độ tải xuống di động so với năm 2024", "≥ 2 lần")
    assert (line.value, line.probes, line.verdict_text) == (
        "Chưa đủ dữ liệu",
        "0",
        "Chưa đủ dữ liệu",
    )


def test_the_ward_table_and_the_wards_without_a_probe(vi: ReportContent) -> None:
    section = next(s for s in vi.sections if s.anchor == "fixed_200_share")
    rows = {r.code: r for r in section.wards}
    assert set(rows) == {FOUR_LINES, ONE_LINE}
    assert (rows[FOUR_LINES].value, rows[FOUR_LINES].probes, rows[FOUR_LINES].tests) == (
        "75,0 %",
        "4",
        "40",
    )
    # 3 of 4 against 90 %: the interval contains it (marked), not met
    assert rows[FOUR_LINES].verdicts == (("not met", "Không đạt*"),)
    # one line: below the floor
    assert rows[ONE_LINE].value == "chưa đủ dữ liệu"
    assert rows[ONE_LINE].verdicts == (("insufficient", "–"),)
    # named as the maps name them (analysis/maps/boundaries.py, display_name)
    others = [display_name(w.name) for c, w in sorted(can_tho_wards().items()) if c not in rows]
    assert section.no_probe.startswith("Phường, xã chưa có đầu đo cho chỉ tiêu này (101): ")
    assert section.no_probe.endswith(", ".join(others) + ".")
    assert section.map_uri.startswith("data:image/png;base64,")


def test_where_more_probes_would_settle_it(vi: ReportContent) -> None:
    assert math.ceil(Z * Z * 0.8 * 0.2 / 0.1**2) == 62
    assert math.ceil(Z * Z * 0.75 * 0.25 / 0.15**2) == 33
    group = next(g for g in vi.unsettled if g.title.startswith("Tỷ lệ đường truyền cố định đạt từ"))
    assert group.target.startswith("≥ 90 %")
    got = [(r.scope, r.value, r.probes, r.needed, r.more) for r in group.rows]
    assert got == [
        ("Toàn thành phố", "80,0 %", "5", "62", "57"),
        ("Phường Ninh Kiều", "75,0 %", "4", "33", "29"),
    ]
    # Cái Khế: 1 line, 12 tests: 2 more lines at 12 tests each reach 3 and 36
    below = [b for b in vi.below_floor if b.title.startswith("Tỷ lệ đường truyền cố định đạt từ")]
    by_answer = {b.answer: b.wards for b in below}
    assert by_answer["2"].startswith("Phường Cái Khế")
    # a ward without a line: 3 probes at the city's 10.4 tests each
    assert "Phường Tân An" in by_answer["3"]


def test_the_annex_counts_probes_and_exclusions(vi: ReportContent) -> None:
    residential = next(c for c in vi.site_counts if c.label == "khu dân cư")
    assert (residential.fixed, residential.mobile, residential.total) == (5, 0, 5)
    assert [(x.table, x.reason, x.results) for x in vi.exclusions] == [
        ("đo tốc độ", "đồng hồ của đầu đo chưa được đồng bộ", "1")
    ]
    # no 2024 result and nothing imported: the ratio has no baseline, and says so
    assert vi.baseline[0].startswith("Chưa có số liệu gốc năm 2024 cho toàn thành phố")
    validity = " ".join(vi.validity)
    assert "8.192 byte" in validity and "1,8 s" in validity and "130 s" in validity
    assert f"{k.FLOOR_PROBES} đầu đo và {k.FLOOR_TESTS} phép đo hợp lệ" in " ".join(
        p for _, paragraphs in vi.method for p in paragraphs
    )


def test_the_page_a_reader_gets(vi_html: str) -> None:
    text = _text(vi_html)
    assert "Báo cáo đo kiểm chất lượng Internet thành phố Cần Thơ năm 2026" in text
    assert "Ngày lập báo cáo 15/01/2027" in text
    assert "từ 01/01/2026 đến hết 31/12/2026" in text
    assert "DỮ LIỆU GIẢ LẬP" not in text
    # no target is met here (so no "Đạt"); the synthetic city's tests find it
    for words in ("Không đạt", "Chưa đủ dữ liệu", "QCVN 126:2021", "QCVN 34:2022"):
        assert words in text
    # one file: nothing is fetched from elsewhere
    assert not re.search(r"""(src|href)=["'](?!data:|#)""", vi_html)
    assert vi_html.count("data:image/png;base64,") == 12


def test_english_on_request(handmade_con: duckdb.DuckDBPyConnection) -> None:
    en = gather(handmade_con, 2026, "en", generated=MADE)
    line = _line(en, "Share of fixed lines at 200 Mb/s or more", "≥ 90 %")
    assert (line.value, line.interval, line.verdict_text) == ("80.0 %", "37.6 – 96.4 %", "Not met")
    assert en.title == "Internet quality measurement report, Cần Thơ city, 2026"


def test_an_unknown_language_is_refused(handmade_con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ValueError, match="accepted: vi, en"):
        gather(handmade_con, 2026, "fr")  # type: ignore[arg-type]


def test_the_command_writes_html_and_refuses_other_formats(
    handmade_store: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    out = tmp_path / "bao-cao.html"
    result = runner.invoke(
        app, ["report", "--year", "2026", "--store", str(handmade_store), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "Không đạt" in _text(out.read_text("utf-8"))
    docx = tmp_path / "r.docx"
    refused = runner.invoke(
        app, ["report", "--year", "2026", "--store", str(handmade_store), "--out", str(docx)]
    )
    assert refused.exit_code == 2
    assert "the report is written as .html or .pdf" in refused.output
    assert not docx.exists()
