"""What every indicator module reads: the report's request, what the store
says of each probe (site class, fixed-line ISP, the operator it used most),
the group a probe counts in, and the per-probe rows that several families
share (downloads and radio, from the units_* queries over the rollups)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from analysis.catalog import rollup_sql
from analysis.indicators.figures import Calc
from analysis.periods import Period

# With --by operator, a fixed line's group names its ISP (the probes table's
# `isp`, from the registry), kept apart from the mobile operators, some of
# which are ISPs too (Viettel, VNPT, MobiFone).
FIXED_ISP_GROUP = "fixed line: {isp}"
FIXED_ISP_UNKNOWN = "fixed line (ISP not recorded)"

Row = dict[str, Any]


def fixed_line_group(isp: str | None) -> str:
    """The operator group of a fixed line whose site's ISP is `isp` (None: not recorded)."""
    return FIXED_ISP_UNKNOWN if isp is None else FIXED_ISP_GROUP.format(isp=isp)


def query_rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[Row]:
    """A query's rows as column name -> value."""
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@dataclass(frozen=True)
class Context:
    """One report's connection (its days already set), request and probes."""

    con: duckdb.DuckDBPyConnection
    period: Period
    synthetic: bool
    calc: Calc
    site: dict[str, str]  # probe -> site class
    isp: dict[str, str | None]  # probe -> its site's fixed-line ISP, as the registry holds it now
    # (probe, ward) -> the operator its mobile tests (or, failing those, its modem) used most
    operator: dict[tuple[str, int], str | None]
    downloads: list[Row]  # units_download
    cellular: list[Row]  # units_cellular

    @classmethod
    def load(
        cls, con: duckdb.DuckDBPyConnection, period: Period, calc: Calc, *, synthetic: bool
    ) -> Context:
        """Read the probes and the shared rows (set_days must have set the period)."""
        probe_rows = con.execute("select probe_id, site_class, isp from probes").fetchall()
        downloads = query_rows(con, rollup_sql("units_download"))
        cellular = query_rows(con, rollup_sql("units_cellular"))
        operator = {(r["probe_id"], r["ward_code"]): r["operator_name"] for r in cellular}
        operator.update(
            {
                (r["probe_id"], r["ward_code"]): r["operator_name"]
                for r in downloads
                if r["network_kind"] == "mobile" and r["operator_name"] is not None
            }
        )
        return cls(
            con=con,
            period=period,
            synthetic=synthetic,
            calc=calc,
            site={str(r[0]): str(r[1]) for r in probe_rows},
            isp={str(r[0]): None if r[2] is None else str(r[2]) for r in probe_rows},
            operator=operator,
            downloads=downloads,
            cellular=cellular,
        )

    def rows(self, units: str) -> list[Row]:
        """The rows of one units_* query over the rollups, for the period's days."""
        return query_rows(self.con, rollup_sql(units))

    @property
    def mobile(self) -> list[Row]:
        """units_download's rows of mobile lines."""
        return [r for r in self.downloads if r["network_kind"] == "mobile"]

    @property
    def fixed(self) -> list[Row]:
        """units_download's rows of fixed lines."""
        return [r for r in self.downloads if r["network_kind"] == "fixed"]

    def group(self, probe: str, operator: Any = None, tech: Any = None) -> str | None:
        """The group `probe` counts in under the report's grouping."""
        return self.calc.group(operator=operator, tech=tech, site=self.site.get(probe, "unknown"))

    def fixed_group(self, probe: str) -> str | None:
        """A fixed line's group: by operator, its site's ISP."""
        return self.group(probe, fixed_line_group(self.isp.get(probe)), "fixed")

    def operator_of(self, row: Row) -> str:
        """The operator group of a per-probe row: a fixed line's ISP, a mobile probe's operator."""
        if row.get("network_kind") == "fixed":
            return fixed_line_group(self.isp.get(row["probe_id"]))
        return str(self.operator.get((row["probe_id"], row["ward_code"])) or "unknown")
