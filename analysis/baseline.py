"""Baselines from outside the store: `wardprobe-aggregator baseline import FILE.csv`.

The mobile doubling target compares a period with 2024. When the store holds
2024 measurements the indicators compute the baseline from them; otherwise
they use an imported row (VNNIC's provincial figures, for example) that
names its source and its statistic. The CSV has a header line and these
columns:

    scope,ward_code,year,network_kind,access_tech,statistic,value_mbps,sample_size,source

scope is `city` (ward_code empty) or `ward` (ward_code a GSO code of the
city); network_kind `fixed` or `mobile`; access_tech empty for all
technologies; statistic `mean` or `median`; value_mbps > 0; sample_size
empty or a positive integer; source not empty. Every line is checked and
every bad one named; nothing is imported unless all are good. A row with
the same scope, ward, year, kind, technology and statistic replaces the
one stored. Ookla's tiles (`baseline import-ookla`, analysis/ookla.py) are
stored in the same table with origin `ookla_tiles`; an import of either
kind never replaces the other's rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from analysis.csv_import import LinesRefused, records

COLUMNS = (
    "scope",
    "ward_code",
    "year",
    "network_kind",
    "access_tech",
    "statistic",
    "value_mbps",
    "sample_size",
    "source",
)
ACCESS_TECHS = frozenset({"gsm", "umts", "lte", "nr5g_nsa", "nr5g_sa"})


@dataclass(frozen=True)
class BaselineRow:
    """One imported baseline figure."""

    scope: str
    ward_code: int | None
    year: int
    network_kind: str
    access_tech: str | None
    statistic: str
    value_mbps: float
    sample_size: int | None
    source: str


class BaselineError(LinesRefused):
    """The CSV has bad lines; `problems` names each (line number, message)."""


def _row(fields: dict[str, str], known_wards: frozenset[int]) -> BaselineRow:
    """One CSV record as a BaselineRow; ValueError says what is wrong."""
    get = {c: (fields.get(c) or "").strip() for c in COLUMNS}
    scope = get["scope"]
    if scope not in ("city", "ward"):
        raise ValueError(f"scope must be city or ward, got {scope!r}")
    ward: int | None = None
    if scope == "ward":
        if not get["ward_code"].isdigit():
            raise ValueError(f"ward_code must be a GSO ward code, got {get['ward_code']!r}")
        ward = int(get["ward_code"])
        if known_wards and ward not in known_wards:
            raise ValueError(f"ward_code {ward} is not a ward of the city")
    elif get["ward_code"]:
        raise ValueError("ward_code must be empty when scope is city")
    if not (get["year"].isdigit() and 2000 <= int(get["year"]) <= 2100):
        raise ValueError(f"year must be a year such as 2024, got {get['year']!r}")
    if get["network_kind"] not in ("fixed", "mobile"):
        raise ValueError(f"network_kind must be fixed or mobile, got {get['network_kind']!r}")
    tech = get["access_tech"] or None
    if tech is not None and tech not in ACCESS_TECHS:
        raise ValueError(
            f"access_tech must be empty or one of {sorted(ACCESS_TECHS)}, got {tech!r}"
        )
    if get["statistic"] not in ("mean", "median"):
        raise ValueError(f"statistic must be mean or median, got {get['statistic']!r}")
    try:
        value = float(get["value_mbps"])
    except ValueError:
        raise ValueError(f"value_mbps must be a number, got {get['value_mbps']!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(f"value_mbps must be a positive number of Mb/s, got {value!r}")
    size: int | None = None
    if get["sample_size"]:
        if not get["sample_size"].isdigit() or int(get["sample_size"]) == 0:
            raise ValueError(
                f"sample_size must be empty or a positive integer, got {get['sample_size']!r}"
            )
        size = int(get["sample_size"])
    if not get["source"]:
        raise ValueError("source must name who published the figure")
    return BaselineRow(
        scope,
        ward,
        int(get["year"]),
        get["network_kind"],
        tech,
        get["statistic"],
        value,
        size,
        get["source"],
    )


def read_csv(path: Path, known_wards: Iterable[int] = ()) -> list[BaselineRow]:
    """Parse and check a baseline CSV; BaselineError names every bad line."""
    wards = frozenset(known_wards)
    problems: list[tuple[int, str]] = []
    rows: list[BaselineRow] = []
    for line, record in records(path, COLUMNS, problems, BaselineError):
        try:
            rows.append(_row(record, wards))
        except ValueError as err:
            problems.append((line, str(err)))
    if problems:
        raise BaselineError(problems)
    if not rows:
        raise BaselineError([(1, "no baseline rows after the header")])
    return rows


def import_rows(con: duckdb.DuckDBPyConnection, rows: list[BaselineRow]) -> int:
    """Store the rows (replacing those with the same key) in one transaction."""
    now = datetime.now(UTC)
    con.execute("begin transaction")
    try:
        for r in rows:
            con.execute(
                "delete from baseline where origin = 'csv' and scope = ? "
                "and ward_code is not distinct from ? "
                "and year = ? and network_kind = ? and access_tech is not distinct from ? "
                "and statistic = ?",
                [r.scope, r.ward_code, r.year, r.network_kind, r.access_tech, r.statistic],
            )
            con.execute(
                "insert into baseline (scope, ward_code, year, network_kind, access_tech, "
                "statistic, value_mbps, sample_size, source, imported_at, origin) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'csv')",
                [
                    r.scope,
                    r.ward_code,
                    r.year,
                    r.network_kind,
                    r.access_tech,
                    r.statistic,
                    r.value_mbps,
                    r.sample_size,
                    r.source,
                    now,
                ],
            )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return len(rows)


def imported_rows(con: duckdb.DuckDBPyConnection, year: int) -> dict[str, list[BaselineRow]]:
    """The CSV-imported mobile, all-technology baselines of a year by scope
    ("city" or a ward code), the mean before the median."""
    columns = {
        str(r[0])
        for r in con.execute(
            "select column_name from information_schema.columns where table_name = 'baseline'"
        ).fetchall()
    }
    if not columns:
        return {}
    # A snapshot from before Ookla's tiles has only imported rows, without origin.
    csv_only = "and origin = 'csv' " if "origin" in columns else ""
    out: dict[str, list[BaselineRow]] = {}
    for r in con.execute(
        "select scope, ward_code, year, network_kind, access_tech, statistic, value_mbps, "
        "sample_size, source from baseline where year = ? and network_kind = 'mobile' "
        f"and access_tech is null {csv_only}order by statistic, source",
        [year],
    ).fetchall():
        row = BaselineRow(*r)
        out.setdefault("city" if row.scope == "city" else str(row.ward_code), []).append(row)
    return out


def imported_baselines(con: duckdb.DuckDBPyConnection, year: int) -> dict[str, BaselineRow]:
    """Imported mobile, all-technology baselines of a year by scope ("city" or
    a ward code); the mean is preferred where both statistics were imported."""
    return {scope: rows[0] for scope, rows in imported_rows(con, year).items()}
