"""Periods and the time zone they are in, and the session variables that
choose what the views and the rollups' queries read.

Every period is whole days in Asia/Ho_Chi_Minh time (analysis/constants.py,
TIMEZONE; UTC+7 all year). The views read [period_from, period_to) as
instants; the units_* queries over the daily rollups read [day_from,
day_to) as Cần Thơ days. Both read `synthetic`. This module is the one place
that sets them (analysis/rollups.py too sets the views' period through it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import duckdb

from analysis import constants as k

TZ = ZoneInfo(k.TIMEZONE)


@dataclass(frozen=True)
class Period:
    """[start, end) in Asia/Ho_Chi_Minh time, with the label it was given."""

    label: str
    start: datetime
    end: datetime

    @property
    def days(self) -> tuple[date, date]:
        """[first, after) Cần Thơ days of the period."""
        return (self.start.date(), self.end.date())


def local_midnight(day: date) -> datetime:
    """The instant a Cần Thơ day begins."""
    return datetime(day.year, day.month, day.day, tzinfo=TZ)


def parse_period(text: str) -> Period:
    """`2026`, `2026Q3` or `2026-01-01..2026-04-01` (from inclusive, to exclusive)."""
    text = text.strip()
    if re.fullmatch(r"\d{4}", text):
        year = int(text)
        return Period(text, local_midnight(date(year, 1, 1)), local_midnight(date(year + 1, 1, 1)))
    if m := re.fullmatch(r"(\d{4})[Qq]([1-4])", text):
        year, quarter = int(m[1]), int(m[2])
        first = date(year, 3 * quarter - 2, 1)
        after = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
        return Period(f"{year}Q{quarter}", local_midnight(first), local_midnight(after))
    if m := re.fullmatch(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})", text):
        start, end = date.fromisoformat(m[1]), date.fromisoformat(m[2])
        if end <= start:
            raise ValueError(f"period {text!r}: the end must come after the start")
        return Period(text, local_midnight(start), local_midnight(end))
    raise ValueError(f"period {text!r}: expected YYYY, YYYYQn or YYYY-MM-DD..YYYY-MM-DD")


def set_period(con: duckdb.DuckDBPyConnection, period: Period | None, synthetic: bool) -> None:
    """Set the variables the views read (None: all time)."""
    if period is None:
        con.execute("reset variable period_from")
        con.execute("reset variable period_to")
    else:
        con.execute("set variable period_from = ?::timestamptz", [period.start.isoformat()])
        con.execute("set variable period_to = ?::timestamptz", [period.end.isoformat()])
    con.execute("set variable synthetic = ?", [synthetic])


def set_days(con: duckdb.DuckDBPyConnection, period: Period, synthetic: bool) -> None:
    """Set the variables the units_* queries over the daily rollups read."""
    first, after = period.days
    con.execute("set variable day_from = ?::date", [first])
    con.execute("set variable day_to = ?::date", [after])
    con.execute("set variable synthetic = ?", [synthetic])
