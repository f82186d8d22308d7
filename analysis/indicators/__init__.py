"""The plan's indicators, one module per family; `compute_indicators` (in
compute.py) is the one entry point that the CLI (`wardprobe-aggregator
indicators`), the HTTP API and the report call.

How a figure is made:
- analysis/catalog.py installs the views (analysis/views/*.sql); the
  *_checked views decide which results count, and one view per family
  states each probe's figure for an analyst;
- analysis/rollups.py keeps the daily rollups (analysis/rollups/rollup_*.sql),
  built from those views; the units_*.sql queries sum a period's days into
  one row per probe, the same per-probe figures the views give, fast;
- the modules here turn those rows into figures: figures.py (the scopes,
  the floor, the targets; `Figure`) with intervals.py (Wilson, bootstrap);
  context.py reads each probe's site, ISP and operator and the groups.

One module per family, each saying in its docstring which file defines
what: mobile.py (mobile download, the 2024 ratio, per technology),
fixed.py (gigabit, 200 Mb/s, mean), nr.py (5G availability), ipv6.py,
latency.py, zones.py (zone targets), cell_proxy.py (NR/LTE cells) and
qcvn.py (the national references). Periods and the time zone are
analysis/periods.py, which the rollups share. docs/indicators.md,
"Where the definitions live", has the same map.
"""

from analysis.catalog import (
    VIEW_FRAGMENTS,
    VIEW_ORDER,
    StoreTooOld,
    install_views,
    rollup_sql,
    view_sql,
)
from analysis.indicators.compute import IndicatorReport, compute_indicators, open_store, prepare
from analysis.indicators.context import (
    FIXED_ISP_GROUP,
    FIXED_ISP_UNKNOWN,
    fixed_line_group,
)
from analysis.indicators.export import jsonable, report_json
from analysis.indicators.figures import (
    GROUPINGS,
    BaselineComparison,
    Figure,
    Grouping,
    ProbeValues,
    TargetResult,
)
from analysis.indicators.fixed import gigabit_capable
from analysis.indicators.intervals import bootstrap_interval, sample_mean_interval, wilson
from analysis.indicators.mobile import BY_TECH_NOTE
from analysis.indicators.qcvn import QCVN34_NOTE, QCVN126_NOTE
from analysis.indicators.zones import ZoneSite
from analysis.periods import TZ, Period, parse_period, set_days, set_period

__all__ = [
    "BY_TECH_NOTE",
    "FIXED_ISP_GROUP",
    "FIXED_ISP_UNKNOWN",
    "GROUPINGS",
    "QCVN34_NOTE",
    "QCVN126_NOTE",
    "TZ",
    "VIEW_FRAGMENTS",
    "VIEW_ORDER",
    "BaselineComparison",
    "Figure",
    "Grouping",
    "IndicatorReport",
    "Period",
    "ProbeValues",
    "StoreTooOld",
    "TargetResult",
    "ZoneSite",
    "bootstrap_interval",
    "compute_indicators",
    "fixed_line_group",
    "gigabit_capable",
    "install_views",
    "jsonable",
    "open_store",
    "parse_period",
    "prepare",
    "report_json",
    "rollup_sql",
    "sample_mean_interval",
    "set_days",
    "set_period",
    "view_sql",
    "wilson",
]
