"""What a request for figures may ask for, checked in one place.

The command line (`indicators`, `map`, `report`) and the HTTP API
(aggregator/api/) ask for the same things: a period, a ward, a grouping, a
language, a year. Each check here returns the parsed value or raises
`RequestRefused`, whose text says what was wrong and what is accepted; the
CLI prints that text, the API sends it (and the accepted list) in its 404 or
422 answer, so both refuse in the same words. The map's own checks
(indicator, map grouping, group, format) raise `MapRequestError`
(analysis/maps/layers.py), a RequestRefused too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from analysis import constants as k
from analysis.indicators.figures import GROUPINGS, Grouping
from analysis.labels import Lang
from analysis.periods import Period, parse_period
from analysis.wards import can_tho_wards

LANGS: Final[tuple[Lang, ...]] = ("vi", "en")
PERIOD_FORMS: Final = ("YYYY", "YYYYQn", "YYYY-MM-DD..YYYY-MM-DD")
# The report's years: the CLI's --year has the same floor.
FIRST_YEAR: Final = 2000
LAST_YEAR: Final = 9999


class RequestRefused(ValueError):
    """A request named something that does not exist; `accepted` lists what does.

    The text is "<problem>; accepted: <accepted>" (or `message` when given,
    for a problem that already says what is accepted); `shown` replaces the
    list in the text when it is too long to print (the wards)."""

    def __init__(
        self,
        what: str,
        asked: str,
        accepted: Iterable[str],
        *,
        problem: str = "",
        shown: str = "",
        message: str = "",
    ) -> None:
        self.what = what
        self.asked = asked
        self.accepted = tuple(accepted)
        said = problem or f"unknown {what} {asked!r}"
        listed = shown or ", ".join(self.accepted) or "(none)"
        super().__init__(message or f"{said}; accepted: {listed}")


def check_period(text: str) -> Period:
    """`text` as a period (2026, 2026Q3, 2026-01-01..2026-04-01)."""
    try:
        return parse_period(text)
    except ValueError as err:
        said = str(err)
        # parse_period's text for a malformed period names the forms already
        named = all(form in said for form in PERIOD_FORMS)
        raise RequestRefused(
            "period", text, PERIOD_FORMS, problem=said, message=said if named else ""
        ) from None


def check_ward(code: int) -> int:
    """`code` when it is one of the city's wards (GSO code)."""
    wards = can_tho_wards()
    if code not in wards:
        codes = sorted(wards)
        raise RequestRefused(
            "ward",
            str(code),
            [str(c) for c in codes],
            problem=f"{code} is not a ward code of the city",
            shown=f"the city's {len(codes)} ward codes, {codes[0]} to {codes[-1]} "
            "(GET /api/v1/wards lists them)",
        )
    return code


def check_grouping(by: str | None) -> Grouping | None:
    """`by` as a grouping of the indicators (operator, access_tech, site_class)."""
    if by is None:
        return None
    for grouping in GROUPINGS:
        if by == grouping:
            return grouping
    raise RequestRefused("grouping", by, GROUPINGS)


def check_baseline(
    baseline: str | None, default: Sequence[str] = k.BASELINE_PREFERENCE
) -> tuple[str, ...]:
    """The 2024 baselines the doubling ratio tries, in order: `baseline`
    first when one is asked for (probes, ookla_tiles, imported), then
    `default` (aggregator.toml's baseline_order where the caller has one)."""
    if baseline is not None and baseline not in k.BASELINE_KINDS:
        raise RequestRefused("baseline", baseline, k.BASELINE_KINDS)
    first = () if baseline is None else (baseline,)
    return tuple(dict.fromkeys([*first, *default]))


def check_lang(lang: str) -> Lang:
    """`lang` as a language of the maps and the report (vi, en)."""
    for accepted in LANGS:
        if lang == accepted:
            return accepted
    raise RequestRefused("language", lang, LANGS)


def check_year(year: int | str) -> int:
    """`year` (a number, or its digits) when the report can be asked for it."""
    text = str(year).strip()
    if not text.isdigit() or not FIRST_YEAR <= int(text) <= LAST_YEAR:
        raise RequestRefused("year", text, [f"{FIRST_YEAR} to {LAST_YEAR}"])
    return int(text)
