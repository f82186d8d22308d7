"""The yearly report as one HTML file (Jinja2, analysis/report/templates/)
and as PDF (WeasyPrint: A4, page numbers, table headers repeated on each
page, DejaVu fonts embedded so that Vietnamese text can be copied out)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from pathlib import Path

import duckdb
import jinja2
import markupsafe

from analysis.constants import BASELINE_PREFERENCE
from analysis.labels import Lang
from analysis.maps.png import png_bytes
from analysis.report.content import MapPng, ReportContent, gather

TEMPLATES = Path(__file__).parent / "templates"
SUFFIXES = (".html", ".pdf")


def css_string(text: str) -> markupsafe.Markup:
    """`text` as a CSS string literal (the page header and footer's words)."""
    quoted = text.replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\3c ")
    return markupsafe.Markup(f'"{quoted}"')


_NUMBER = re.compile(r"[≥≤<>]?\s?[\d.,]+")


def nbsp(text: str) -> markupsafe.Markup:
    """A short quantity ("≥ 100 %", "41,6 Mb/s") kept on one line; an interval
    may break at its dash, words ("insufficient data") wherever they like."""
    parts = []
    for part in text.split(" – "):
        escaped = markupsafe.escape(part)
        parts.append(
            markupsafe.Markup('<span class="q">{}</span>').format(escaped)
            if _NUMBER.match(part) and len(part) <= 14
            else escaped
        )
    return markupsafe.Markup(" – ").join(parts)


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["css_string"] = css_string
    env.filters["nbsp"] = nbsp
    return env


def render_html(content: ReportContent) -> str:
    """The report's HTML, its style sheet and maps inside (no other file, no network)."""
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    return _environment().get_template("report.html").render(r=content, css=css)


def build_report_html(
    con: duckdb.DuckDBPyConnection,
    year: int,
    lang: Lang = "vi",
    synthetic: bool = False,
    *,
    generated: datetime | None = None,
    map_png: MapPng = png_bytes,
    baselines: Sequence[str] = BASELINE_PREFERENCE,
) -> str:
    """The yearly report for `year` in `lang` (Vietnamese by default) as one
    self-contained HTML page, from the store or snapshot on `con`; `baselines`
    orders the doubling ratio's 2024 baselines (compute_indicators')."""
    return render_html(
        gather(
            con, year, lang, synthetic, generated=generated, map_png=map_png, baselines=baselines
        )
    )


def html_to_pdf(html: str) -> bytes:
    """The report's HTML printed to PDF by WeasyPrint."""
    from weasyprint import HTML

    pdf = HTML(string=html, base_url=str(TEMPLATES)).write_pdf()
    assert isinstance(pdf, bytes)
    return pdf


def check_suffix(out: Path) -> str:
    """The output's format from its suffix (.html or .pdf); ValueError otherwise."""
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{out}: the report is written as {' or '.join(SUFFIXES)}")
    return suffix


def write_report(
    con: duckdb.DuckDBPyConnection,
    year: int,
    out: Path,
    lang: Lang = "vi",
    synthetic: bool = False,
    *,
    baselines: Sequence[str] = BASELINE_PREFERENCE,
) -> Path:
    """Write the yearly report to `out`, HTML or PDF by its suffix."""
    return write_reports(con, year, [out], lang, synthetic, baselines=baselines)[0]


def write_reports(
    con: duckdb.DuckDBPyConnection,
    year: int,
    outs: Sequence[Path],
    lang: Lang = "vi",
    synthetic: bool = False,
    *,
    map_png: MapPng = png_bytes,
    baselines: Sequence[str] = BASELINE_PREFERENCE,
) -> list[Path]:
    """The same report written to several files (HTML and PDF), gathered once."""
    suffixes = [check_suffix(out) for out in outs]
    html = build_report_html(con, year, lang, synthetic, map_png=map_png, baselines=baselines)
    for out, suffix in zip(outs, suffixes, strict=True):
        if suffix == ".pdf":
            out.write_bytes(html_to_pdf(html))
        else:
            out.write_text(html, encoding="utf-8")
    return list(outs)
