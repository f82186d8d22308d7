"""The yearly report for the city's Department of Science and Technology:
`build_report_html` and `write_report` (HTML or PDF), Vietnamese by default.

content.py gathers what the report says (compute_indicators, the maps of
analysis/maps, analysis/sampling.py, the words of analysis/labels.py);
render.py writes it with the Jinja2 templates in templates/ and prints the
PDF with WeasyPrint. docs/report.md describes the report section by section.
"""

from analysis.report.content import ReportContent, gather, plan_targets
from analysis.report.render import (
    SUFFIXES,
    build_report_html,
    check_suffix,
    html_to_pdf,
    render_html,
    write_report,
    write_reports,
)

__all__ = [
    "SUFFIXES",
    "ReportContent",
    "build_report_html",
    "check_suffix",
    "gather",
    "html_to_pdf",
    "plan_targets",
    "render_html",
    "write_report",
    "write_reports",
]
