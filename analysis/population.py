"""Ward populations: `wardprobe-aggregator population import FILE.csv`, the
synthetic city's made-up ones, and the populations an indicator weighs by.

The 5G target of 87/KH-UBND and 235/KH-UBND is a share of the population,
so nr_population_share (analysis/indicators/nr.py) weighs each ward's 5G
figure by its people. The CSV has a header line and these columns:

    ward_code,population,year,source

ward_code a GSO code of a Cần Thơ ward (analysis/wards.py, the registry);
population a whole number of people, at least 1; year such as 2025; source
not empty (who counted them: the statistics office's release, the census).
Every line is checked and every bad one named with its line number; nothing
is imported unless all are good. A ward given twice for the same year is
refused (both lines named). Wards of the registry the file leaves out are
listed by `missing_wards`: the CLI imports the file and prints them, or
refuses it with --require-all. An import replaces the year's imported rows
(a year imported again is the newer count); the synthetic generator's rows
(`synthetic = true`) are never replaced by an import and never weigh real
figures.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import duckdb

from analysis.csv_import import LinesRefused, records
from analysis.wards import WardInfo, can_tho_wards

COLUMNS: Final = ("ward_code", "population", "year", "source")
SYNTHETIC_SOURCE: Final = "synthetic (wardprobe demo)"
# The synthetic city: about Cần Thơ's 3.2 million people after the 2025
# merger, counted for 2025.
SYNTHETIC_TOTAL: Final = 3_200_000
SYNTHETIC_YEAR: Final = 2025


@dataclass(frozen=True)
class PopulationRow:
    """One ward's population in one year."""

    ward_code: int
    population: int  # people
    year: int
    source: str


@dataclass(frozen=True)
class Populations:
    """The populations an indicator weighs by: one year's, by ward."""

    year: int
    by_ward: dict[int, int]  # ward code -> people
    source_of: dict[int, str]  # ward code -> who counted them
    sources: tuple[str, ...]  # the sources of that year's rows
    synthetic: bool


class PopulationError(LinesRefused):
    """The CSV has bad lines; `problems` names each (line number, message)."""


def _row(fields: dict[str, str], wards: dict[int, WardInfo]) -> PopulationRow:
    """One CSV record as a PopulationRow; ValueError says what is wrong."""
    get = {c: (fields.get(c) or "").strip() for c in COLUMNS}
    if not get["ward_code"].isdigit():
        raise ValueError(f"ward_code must be a GSO ward code, got {get['ward_code']!r}")
    ward = int(get["ward_code"])
    if ward not in wards:
        raise ValueError(f"ward_code {ward} is not a ward of Cần Thơ")
    if not get["population"].isdigit() or int(get["population"]) == 0:
        raise ValueError(
            f"population must be a whole number of people, at least 1, got {get['population']!r}"
        )
    if not (get["year"].isdigit() and 2000 <= int(get["year"]) <= 2100):
        raise ValueError(f"year must be a year such as 2025, got {get['year']!r}")
    if not get["source"]:
        raise ValueError("source must say who counted the population")
    return PopulationRow(ward, int(get["population"]), int(get["year"]), get["source"])


def read_csv(path: Path) -> list[PopulationRow]:
    """Parse and check a population CSV against the ward registry;
    PopulationError names every bad line."""
    wards = can_tho_wards()
    problems: list[tuple[int, str]] = []
    rows: list[PopulationRow] = []
    first_line: dict[tuple[int, int], int] = {}
    for line, record in records(path, COLUMNS, problems, PopulationError):
        try:
            row = _row(record, wards)
        except ValueError as err:
            problems.append((line, str(err)))
            continue
        key = (row.ward_code, row.year)
        if key in first_line:
            problems.append(
                (
                    line,
                    f"ward {row.ward_code} has a population for {row.year} already, "
                    f"on line {first_line[key]}",
                )
            )
            continue
        first_line[key] = line
        rows.append(row)
    if problems:
        raise PopulationError(problems)
    if not rows:
        raise PopulationError([(1, "no population rows after the header")])
    return rows


def missing_wards(rows: list[PopulationRow]) -> dict[int, list[WardInfo]]:
    """For each year of `rows`, the registry's wards it has no population for
    (an empty dict when every year has all of them)."""
    wards = can_tho_wards()
    given: dict[int, set[int]] = defaultdict(set)
    for r in rows:
        given[r.year].add(r.ward_code)
    out = {
        year: [wards[code] for code in sorted(set(wards) - codes)]
        for year, codes in sorted(given.items())
    }
    return {year: missing for year, missing in out.items() if missing}


def import_rows(con: duckdb.DuckDBPyConnection, rows: list[PopulationRow]) -> int:
    """Store the rows, replacing every imported row of their years, in one transaction."""
    now = datetime.now(UTC)
    con.execute("begin transaction")
    try:
        for year in sorted({r.year for r in rows}):
            con.execute("delete from ward_population where year = ? and not synthetic", [year])
        con.executemany(
            "insert into ward_population (ward_code, year, population, source, imported_at, "
            "synthetic) values (?, ?, ?, ?, ?, false)",
            [[r.ward_code, r.year, r.population, r.source, now] for r in rows],
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return len(rows)


def synthetic_populations(total: int = SYNTHETIC_TOTAL) -> dict[int, int]:
    """Made-up populations of all the registry's wards, about `total` people
    together: a log-normal spread (a dense inner-city ward has several times
    the people of a rural commune), from a fixed seed, so that a ward has the
    same people in every synthetic store."""
    codes = sorted(can_tho_wards())
    rng = random.Random("wardprobe synthetic population")
    weights = [rng.lognormvariate(0.0, 0.5) for _ in codes]
    scale = total / sum(weights)
    return {code: max(1, round(w * scale)) for code, w in zip(codes, weights, strict=True)}


def write_synthetic(
    con: duckdb.DuckDBPyConnection, wards: list[int], year: int = SYNTHETIC_YEAR
) -> None:
    """Store the synthetic populations of `wards` (those of the registry) for
    `year`, marked synthetic and with SYNTHETIC_SOURCE, replacing theirs."""
    people = synthetic_populations()
    rows = [[code, year, people[code], SYNTHETIC_SOURCE] for code in wards if code in people]
    if not rows:
        return
    con.executemany(
        "delete from ward_population where ward_code = ? and year = ? and synthetic",
        [r[:2] for r in rows],
    )
    con.executemany(
        "insert into ward_population (ward_code, year, population, source, imported_at, "
        "synthetic) values (?, ?, ?, ?, now(), true)",
        rows,
    )


def populations(
    con: duckdb.DuckDBPyConnection, year: int, *, synthetic: bool
) -> Populations | None:
    """The populations to weigh a period ending in `year` by: the latest year
    not after it, else the earliest after it; the synthetic rows for the
    synthetic city, the imported ones otherwise. None when there are none
    (or the store predates the table)."""
    have = con.execute(
        "select count(*) from information_schema.tables where table_name = 'ward_population'"
    ).fetchone()
    if have is None or int(have[0]) == 0:
        return None
    years = [
        int(r[0])
        for r in con.execute(
            "select distinct year from ward_population where synthetic = ? order by year",
            [synthetic],
        ).fetchall()
    ]
    if not years:
        return None
    before = [y for y in years if y <= year]
    chosen = before[-1] if before else years[0]
    rows = con.execute(
        "select ward_code, population, source from ward_population "
        "where year = ? and synthetic = ? order by ward_code",
        [chosen, synthetic],
    ).fetchall()
    return Populations(
        year=chosen,
        by_ward={int(r[0]): int(r[1]) for r in rows},
        source_of={int(r[0]): str(r[2]) for r in rows},
        sources=tuple(sorted({str(r[2]) for r in rows})),
        synthetic=synthetic,
    )
