"""The per-ward summary that the demo and `wardprobe-aggregator summary` print."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
from rich.table import Table

from analysis.catalog import view_sql


@dataclass(frozen=True)
class WardSummary:
    ward_code: int
    ward_name: str
    probes: int
    tests: int
    mean_download_mbps: float | None
    median_latency_ms: float | None
    ipv6_share: float | None  # 0..1


def ward_summary_sql() -> str:
    """The view ward_summary's SQL (analysis/views/ward_summary.sql), which
    reads only the store's tables: it runs on a store without the views."""
    return view_sql("ward_summary")


def ward_summary(store_path: Path) -> list[WardSummary]:
    """Read the summary from a DuckDB file (opened read-only)."""
    with duckdb.connect(str(store_path), read_only=True) as con:
        return ward_summary_of(con)


def ward_summary_of(con: duckdb.DuckDBPyConnection) -> list[WardSummary]:
    """Read the summary on an open connection (a file, or a lake attached and USE'd)."""
    rows = con.execute(ward_summary_sql()).fetchall()
    return [
        WardSummary(int(r[0]), str(r[1] or ""), int(r[2]), int(r[3]), r[4], r[5], r[6])
        for r in rows
    ]


def summary_table(rows: list[WardSummary], title: str) -> Table:
    """The summary as a table for the terminal."""
    table = Table(title=title)
    for column in (
        "ward", "name", "probes", "tests", "mean download Mb/s", "median latency ms", "IPv6 share",
    ):  # fmt: skip
        table.add_column(column, justify="left" if column == "name" else "right")
    for row in rows:
        table.add_row(
            str(row.ward_code),
            row.ward_name,
            str(row.probes),
            str(row.tests),
            "n/a" if row.mean_download_mbps is None else f"{row.mean_download_mbps:.1f}",
            "n/a" if row.median_latency_ms is None else f"{row.median_latency_ms:.2f}",
            "n/a" if row.ipv6_share is None else f"{row.ipv6_share:.0%}",
        )
    return table
