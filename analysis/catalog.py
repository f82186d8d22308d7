"""The SQL files of analysis/ and how they are put on a connection.

Three kinds of file, each in its folder:
- `views/<name>.sql`: one view per file, what an analyst reads on the
  snapshot (docs/schema.md documents each). `install_views` creates them.
- `rollups/rollup_<name>.sql`: the daily rollup tables that
  analysis/rollups.py fills from the views (`rollup_keys.sql` is its
  bookkeeping, not a rollup).
- `rollups/units_<name>.sql`: queries over the rollups that give one row
  per probe for a period's days; the indicators read them.

Nobody keeps the order of creation by hand: it follows from what each file
reads, as dbt's ref() does. The names after `from` and `join` that are views
(or rollups) are the file's dependencies, and VIEW_ORDER and ROLLUPS are
those graphs sorted so that everything comes after what it reads (names in
alphabetical order where the graph leaves a choice). Any other name must be
a CTE of the file, a table of the store (aggregator/ingest/schema.sql) or one of
ANALYSIS_TABLES; else the file is reported (SqlCatalogError), as is a cycle.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources

import duckdb

from analysis import constants as k
from wardprobe import validity

# Tables analysis/ itself makes, which SQL files may read besides the store's.
ANALYSIS_TABLES: Mapping[str, str] = {
    "indicator_constants": "the thresholds, made by install_views",
    "rollup_dirty": "the (probe, day) pairs a rollup refresh rebuilds (analysis/rollups.py)",
}

# Rules a view takes from Python instead of restating them: `{{name}}` in a
# view's file is replaced by this SQL when the view is created.
VIEW_FRAGMENTS: dict[str, Callable[[], str]] = {
    "throughput_exclusion": lambda: validity.throughput_exclusion_sql("t"),
    "zone_site_classes": lambda: ", ".join(f"'{c}'" for c in k.ZONE_SITE_CLASSES),
    "office_site_classes": lambda: ", ".join(f"'{c}'" for c in k.GOVERNMENT_OFFICE_CLASSES),
}
_FRAGMENT = re.compile(r"\{\{(\w+)\}\}")
# Comments and string literals, blanked before reading a file's references:
# one alternation, so that a quote in a comment or `--` in a string is skipped.
_NOT_CODE = re.compile(r"--[^\n]*|'(?:[^']|'')*'")
# A name read from: after `from` or `join`, the whole (possibly qualified)
# name, not a table function such as generate_series(...).
_READ = re.compile(r"\b(?:from|join)\s+([a-z_][\w.]*)(?![\w.])(?!\s*\()")
_CTE = re.compile(
    r"(?:\bwith(?:\s+recursive)?|,)\s*([a-z_]\w*)\s+as\s*(?:not\s+)?(?:materialized\s+)?\("
)


class SqlCatalogError(ValueError):
    """A SQL file of analysis/ reads a name nothing defines, or files read each other in a cycle."""


class StoreTooOld(RuntimeError):
    """The store was made by an older release and lacks a column the views read."""


def _read_text(folder: str, name: str) -> str:
    return resources.files("analysis").joinpath(folder, f"{name}.sql").read_text("utf-8")


def _names(folder: str, prefix: str = "") -> list[str]:
    return sorted(
        entry.name.removesuffix(".sql")
        for entry in resources.files("analysis").joinpath(folder).iterdir()
        if entry.name.endswith(".sql") and entry.name.startswith(prefix)
    )


def view_sql(name: str) -> str:
    """The SQL of one view: analysis/views/<name>.sql with its `{{fragment}}`
    markers filled in from VIEW_FRAGMENTS (an unknown one is a KeyError)."""
    return _FRAGMENT.sub(lambda m: VIEW_FRAGMENTS[m[1]](), _read_text("views", name))


def rollup_sql(name: str) -> str:
    """The SQL text of analysis/rollups/<name>.sql: a rollup_* table's or a units_* query."""
    return _read_text("rollups", name)


def units_names() -> list[str]:
    """The units_* queries in analysis/rollups/."""
    return _names("rollups", "units_")


def reads(sql: str) -> frozenset[str]:
    """The names a SQL text reads from (after `from` or `join`), lowercase,
    without a schema prefix, leaving out the text's own CTEs."""
    code = _NOT_CODE.sub(" ", sql).lower()
    ctes = set(_CTE.findall(code))
    return frozenset(m.rsplit(".", 1)[-1] for m in _READ.findall(code)) - ctes


def creation_order(
    sources: Mapping[str, str], *, kind: str, available: frozenset[str] = frozenset()
) -> tuple[str, ...]:
    """The names of `sources` (name -> SQL) in an order where each comes after
    every other one it reads: those that read none of the others first, then
    those that read only those, and so on, alphabetical within each round.

    A name read that is not in `sources` must be in `available` (tables
    made before these are created). Raises SqlCatalogError naming the file
    and the name for an unknown reference, and the loop for a cycle. `kind`
    ("view", "rollup") is for the messages."""
    deps: dict[str, set[str]] = {}
    for name, sql in sorted(sources.items()):
        deps[name] = set()
        for ref in sorted(reads(sql)):
            if ref in sources:
                if ref != name:
                    deps[name].add(ref)
                else:
                    raise SqlCatalogError(f"{kind} {name} reads from itself")
            elif ref not in available:
                raise SqlCatalogError(
                    f"{kind} {name} reads from {ref!r}, which is no {kind} of analysis/, "
                    "no CTE of its file and no table it may read (the store's, aggregator/"
                    f"ingest/schema.sql, or analysis/'s own: {', '.join(ANALYSIS_TABLES)})"
                )
    # In rounds: first what reads none of the others, then what reads only
    # those, and so on, each round alphabetical (Kahn's algorithm).
    order: list[str] = []
    placed: set[str] = set()
    while ready := sorted(n for n, d in deps.items() if n not in placed and d <= placed):
        order.extend(ready)
        placed.update(ready)
    if len(order) < len(deps):
        raise SqlCatalogError(
            f"{kind}s read each other in a cycle: " + " -> ".join(_cycle(deps, set(order)))
        )
    return tuple(order)


def _cycle(deps: Mapping[str, set[str]], done: set[str]) -> list[str]:
    """One cycle among the names not in `done`, as a -> b -> ... -> a (a reads b)."""
    path: list[str] = []
    name = min(n for n in deps if n not in done)
    while name not in path:
        path.append(name)
        # every name left waits on at least one other name left
        name = min(d for d in deps[name] if d not in done)
    return [*path[path.index(name) :], name]


@cache
def store_tables() -> frozenset[str]:
    """The tables of the store, as aggregator/ingest/schema.sql creates them."""
    schema = resources.files("aggregator.ingest").joinpath("schema.sql").read_text("utf-8")
    return frozenset(
        m.lower()
        for m in re.findall(r"create\s+table\s+(?:if\s+not\s+exists\s+)?(\w+)", schema, re.I)
    )


def _view_order() -> tuple[str, ...]:
    views = {name: view_sql(name) for name in _names("views")}
    return creation_order(views, kind="view", available=store_tables() | {"indicator_constants"})


def _rollup_order() -> tuple[str, ...]:
    rollups = {
        name: rollup_sql(name) for name in _names("rollups", "rollup_") if name != "rollup_keys"
    }
    return creation_order(
        rollups,
        kind="rollup",
        available=store_tables() | frozenset(VIEW_ORDER) | frozenset(ANALYSIS_TABLES),
    )


# The views (every file in analysis/views/) in the order they are created.
VIEW_ORDER: tuple[str, ...] = _view_order()
# The rollups (analysis/rollups/rollup_*.sql but rollup_keys) in the order they are filled.
ROLLUPS: tuple[str, ...] = _rollup_order()


def install_views(con: duckdb.DuckDBPyConnection, *, temporary: bool = True) -> None:
    """Create `indicator_constants` and every view on a connection (temporary:
    in the temp schema, which works on a read-only store)."""
    have = {str(r[0]) for r in con.execute("describe probes").fetchall()}
    missing = [c for c in ("isp", "plan_down_mbps", "plan_up_mbps") if c not in have]
    if missing:
        raise StoreTooOld(
            f"this store's probes table has no {', '.join(missing)} "
            f"column{'s' if len(missing) > 1 else ''} (an older release "
            "made it); open it once with this release's aggregator, which adds it, or read "
            "the snapshot the aggregator publishes"
        )
    temp = "temp " if temporary else ""
    con.execute(
        f"create or replace {temp}table indicator_constants "
        "(name varchar, value double, unit varchar)"
    )
    con.executemany(
        "insert into indicator_constants values (?, ?, ?)", k.indicator_constants_rows()
    )
    for name in VIEW_ORDER:
        con.execute(f"create or replace {temp}view {name} as\n{view_sql(name)}")
