"""Reading an operator's CSV for an import (baseline, population, published
figures): the header checked once, each record handed back with its line
number, and every bad line collected so that one refusal names them all."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path


class LinesRefused(ValueError):
    """The file has bad lines; `problems` names each (line number, message).
    Line 0 is the command's own input, line 1 the header."""

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"line {n}: {msg}" for n, msg in problems))


def records(
    path: Path,
    columns: Sequence[str],
    problems: list[tuple[int, str]],
    refused: type[LinesRefused] = LinesRefused,
) -> Iterator[tuple[int, dict[str, str]]]:
    """Each record of a CSV whose header holds `columns` (in any order, among
    others), as (line number, {column: value}) with names stripped. A header
    without them raises `refused` at once; a record with more fields than the
    header is added to `problems` and skipped."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in columns if c not in header]
        if missing:
            raise refused([(1, f"header lacks the columns {', '.join(missing)}")])
        for record in reader:
            if None in record:
                problems.append((reader.line_num, "more fields than the header has"))
                continue
            yield reader.line_num, {k.strip(): v for k, v in record.items()}
