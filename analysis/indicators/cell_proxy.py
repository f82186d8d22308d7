"""The NR/LTE cell proxy: nr_lte_cell_ratio, a PROXY for "5G stations >=
50 % of 4G stations", which probes cannot count.

Where each part is defined:
- which observations count, and an NR cell's key (an SA cell's id; an NSA
  connection's 5G leg by ward, NR-ARFCN and physical cell id): the view
  cellular_checked;
- the distinct NR and LTE cells per ward and operator: the view
  nr_lte_cell_proxy. The indicators count the same cells from the daily
  rollup (rollup_cells, the cells seen each day, counted distinct over the
  period's days by units_cells, for the city as well), only for speed;
  tests/analysis/test_views_agree.py holds them to the view;
- the ratio's floor (probes that observed, observations), groups and
  target: here and only here. It has no interval: the cells are a count,
  not a sample.
"""

from __future__ import annotations

from collections import defaultdict

from analysis.indicators.context import Context
from analysis.indicators.figures import Figure, enough, status, targets


def figures(ctx: Context) -> list[Figure]:
    """Distinct NR vs LTE cells, per scope (and operator with --by operator)."""
    calc = ctx.calc
    by_operator = calc.by == "operator"
    probes: dict[tuple[str, str | None], set[str]] = defaultdict(set)
    for r in ctx.cellular:
        for scope in ("city", str(r["ward_code"])):
            probes[(scope, r["operator_name"] if by_operator else None)].add(r["probe_id"])
    rows = sorted(
        ctx.rows("units_cells"),
        key=lambda r: (not r["all_wards"], r["ward_code"] or 0, r["operator_name"] or ""),
    )
    out = []
    for r in rows:
        if bool(r["all_operators"]) == by_operator or r["observations"] is None:
            continue  # the other grouping; or the empty grand total of no rows
        scope = "city" if r["all_wards"] else str(r["ward_code"])
        if calc.ward is not None and scope != str(calc.ward):
            continue
        grp = r["operator_name"] if by_operator else None
        n_probes = len(probes[(scope, grp)])
        ratio = r["nr_cells"] / r["lte_cells"] if r["lte_cells"] else None
        cleared = enough(n_probes, r["observations"])
        shown = ratio if cleared else None
        out.append(
            Figure(
                indicator="nr_lte_cell_ratio",
                scope=scope,
                group=f"operator={grp}" if by_operator else None,
                unit="ratio (proxy)",
                value=shown,
                ci_low=None,
                ci_high=None,
                interval="none",
                mean=None,
                median=None,
                probes=n_probes,
                tests=int(r["observations"]),
                probe_limited=0,
                status=status(cleared),
                targets=targets("nr_lte_cell_ratio", shown),
                note=f"PROXY for 5G stations >= 50 % of 4G stations: {int(r['nr_cells'])} NR vs "
                f"{int(r['lte_cells'])} LTE distinct cells observed, not base stations",
            )
        )
    return out
