"""compute_indicators' report as JSON: the one serialisation that
`wardprobe-aggregator indicators --format json` prints and the HTTP API's
/api/v1/indicators answers, so that both give the same text."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from analysis.indicators.compute import IndicatorReport


def jsonable(value: Any) -> Any:
    """`value` (dataclasses.asdict's output) with tuples as lists and dates
    and times as ISO 8601 text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def report_json(report: IndicatorReport, *, city_only: bool = False) -> str:
    """The report as indented JSON text (with `city_only`, only the city's
    figures), without a final newline."""
    if city_only:
        report = dataclasses.replace(
            report, figures=[f for f in report.figures if f.scope == "city"]
        )
    return json.dumps(jsonable(report), indent=1)


def rounded_floats(value: Any) -> Any:
    """A parsed JSON report with every float to 12 significant digits, to
    compare two computations of it: DuckDB's threads may add a mean's terms
    in another order, which moves a float's last bits."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {k: rounded_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded_floats(v) for v in value]
    return value
