"""The yearly report of the synthetic city as the department gets it: the
PDF read back with a PDF reader (pypdf) and poppler's pdftotext, as someone
copying from it would: the targets, the values and the verdicts in
Vietnamese with their diacritics, A4 pages numbered, fonts embedded, the
ward tables' headers on every page they run to; and the figures are
compute_indicators' own."""

from __future__ import annotations

import io
import shutil
import subprocess
import unicodedata
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pypdf import PdfReader

from analysis import labels
from analysis.indicators import compute_indicators, parse_period
from analysis.report import ReportContent, gather, html_to_pdf, plan_targets, render_html

A4 = (595.28, 841.89)  # points
PDFTOTEXT = shutil.which("pdftotext")


@pytest.fixture(scope="module")
def content(city_con: duckdb.DuckDBPyConnection) -> ReportContent:
    return gather(city_con, 2026, "vi", synthetic=True)


@pytest.fixture(scope="module")
def pdf(content: ReportContent, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report_pdf") / "bao-cao-2026.pdf"
    path.write_bytes(html_to_pdf(render_html(content)))
    return path


@pytest.fixture(scope="module")
def pages(pdf: Path) -> list[str]:
    """Each page's text as pypdf extracts it, in NFC."""
    return [unicodedata.normalize("NFC", p.extract_text()) for p in PdfReader(pdf).pages]


def test_the_summary_shows_compute_indicators_figures(
    content: ReportContent, city_con: duckdb.DuckDBPyConnection
) -> None:
    report = compute_indicators(city_con, parse_period("2026"), synthetic=True)
    city = {(f.indicator, f.group): f for f in report.figures if f.scope == "city"}
    lines = iter(content.summary)
    for indicator, group, targets in plan_targets():
        f = city.get((indicator, group))
        for target in targets:
            line = next(lines)
            assert line.indicator == indicator
            if f is None or f.value is None:
                assert line.verdict == "insufficient"
                continue
            assert line.value == labels.quantity(f.value, f.unit, "vi")
            assert (line.probes, line.tests) == (
                labels.count(f.probes, "vi"),
                labels.count(f.tests, "vi"),
            )
            met = next(t.met for t in f.targets if (t.value, t.due) == (target.value, target.due))
            assert line.verdict == ("met" if met else "not met")
    # the city's 2024 baseline as the figure lists it: the synthetic 2024 results
    ratio = city[("mobile_download_ratio", None)]
    used = next(b for b in ratio.baselines if b.used)
    assert used.baseline == "probes"
    assert content.baseline[0].startswith("Kết quả đo năm 2024 của chính hệ thống")
    assert content.baseline[0].endswith("được dùng cho chỉ tiêu.")
    assert labels.count(used.baseline_probes or 0, "vi") + " đầu đo" in content.baseline[0]
    verdicts = {line.verdict for line in content.summary}
    assert {"met", "not met"} <= verdicts


def test_vietnamese_text_comes_out_of_the_pdf(content: ReportContent, pages: list[str]) -> None:
    text = "\n".join(pages)
    assert "Báo cáo đo kiểm chất lượng Internet thành phố Cần Thơ năm 2026" in " ".join(
        pages[0].split()
    )
    assert "DỮ LIỆU GIẢ LẬP" in pages[0]
    summary = " ".join((pages[1] + pages[2]).split())
    assert "1. Tóm tắt kết quả so với mục tiêu" in summary
    for line in content.summary:
        # the figure, its target and verdict as a reader copies them (a wrapped
        # cell may split a phrase; each is looked for on its own)
        assert line.value in summary, line
        assert line.target in summary, line
    for words in ("Đạt", "Không đạt", "Chưa đủ dữ liệu"):
        assert words in summary
    # a source wraps in its narrow column: compared without the line breaks' spaces
    packed = summary.replace(" ", "")
    for line in content.summary:
        assert line.source.replace(" ", "") in packed, line.source
    for words in (
        "Đối chiếu quy chuẩn kỹ thuật quốc gia",
        "Nơi cần thêm đầu đo để kết luận",
        "Phụ lục A. Phương pháp",
        "đồng hồ của đầu đo chưa được đồng bộ",
        "Phường Ninh Kiều",
        "Xã Thạnh Phú",
    ):
        assert words in text, words


@pytest.mark.skipif(PDFTOTEXT is None, reason="poppler-utils (pdftotext) not installed")
def test_pdftotext_reads_the_same_words(pdf: Path, content: ReportContent) -> None:
    out = subprocess.run(
        [str(PDFTOTEXT), "-enc", "UTF-8", str(pdf), "-"], capture_output=True, check=True
    ).stdout.decode("utf-8")
    text = " ".join(unicodedata.normalize("NFC", out).split())
    assert "Báo cáo đo kiểm chất lượng Internet thành phố Cần Thơ năm 2026" in text
    assert "Tỷ lệ đường truyền cố định đạt tốc độ gigabit" in text
    assert "Không đạt" in text and "Chưa đủ dữ liệu" in text
    gigabit = next(t for t in content.summary if t.indicator == "gigabit_capable_share")
    assert gigabit.value in text


def test_a4_pages_numbered_with_the_maps_on_landscape_pages(
    pdf: Path, pages: list[str], content: ReportContent
) -> None:
    reader = PdfReader(pdf)
    sizes = [(float(p.mediabox.width), float(p.mediabox.height)) for p in reader.pages]
    portrait = [s for s in sizes if s == pytest.approx(A4, abs=0.5)]
    landscape = [s for s in sizes if s == pytest.approx(A4[::-1], abs=0.5)]
    assert len(portrait) + len(landscape) == len(sizes)
    # a landscape page per map: every section but the services' (a table, no map)
    assert (len(landscape), len(content.sections)) == (12, 13)
    total = len(sizes)
    for n, page in enumerate(pages[1:], start=2):
        assert f"Trang {n} / {total}" in page


def _fonts(obj: Any, seen: set[int]) -> list[Any]:
    """Every font dictionary under a page's resources (and its form XObjects)."""
    out: list[Any] = []
    resources = obj.get("/Resources")
    if resources is None:
        return out
    resources = resources.get_object()
    for font in (resources.get("/Font") or {}).values():
        out.append(font.get_object())
    for xobject in (resources.get("/XObject") or {}).values():
        x = xobject.get_object()
        if id(x) not in seen and x.get("/Subtype") == "/Form":
            seen.add(id(x))
            out += _fonts(x, seen)
    return out


def test_every_font_is_embedded(pdf: Path) -> None:
    reader = PdfReader(pdf)
    fonts = [f for page in reader.pages for f in _fonts(page, set())]
    assert fonts
    for font in fonts:
        descendants = [d.get_object() for d in font.get("/DescendantFonts", [])] or [font]
        for d in descendants:
            descriptor = d["/FontDescriptor"].get_object()
            assert {"/FontFile", "/FontFile2", "/FontFile3"} & set(descriptor), d["/BaseFont"]
    names = {str(f.get("/BaseFont")) for f in fonts}
    assert any("DejaVu" in n for n in names), names


def test_ward_table_headers_repeat_on_every_page(pages: list[str], content: ReportContent) -> None:
    # every ward table of the synthetic city runs over more than a page
    head = "Đầu đo bị giới hạn"
    with_table = [s for s in content.sections if len(s.wards) > 60]
    assert with_table
    assert sum(head in " ".join(p.split()) for p in pages) >= 2 * len(with_table)


def test_the_pdf_is_one_file_with_its_maps(pdf: Path) -> None:
    reader = PdfReader(io.BytesIO(pdf.read_bytes()))
    # WeasyPrint shares one resource dictionary among pages: the image
    # objects are counted (not decoded), each once
    images: set[int] = set()
    for page in reader.pages:
        resources: Any = page["/Resources"].get_object()
        xobjects: Any = resources.get("/XObject") or {}
        for ref in xobjects.values():
            if ref.get_object().get("/Subtype") == "/Image":
                images.add(ref.idnum)
    assert len(images) == 12
