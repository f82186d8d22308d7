"""Published IPv6 figures set beside the probes' own: `wardprobe-aggregator
reference-figures import-apnic FILE.csv --date YYYY-MM-DD` and
`reference-figures import-vnnic FILE.csv`.

APNIC Labs (stats.labs.apnic.net/ipv6) measures end users' IPv6 with an
advertisement that fetches an IPv6-only and a dual-stack object: "IPv6
capable" is the share of samples that fetched the IPv6-only one, "IPv6
preferred" the share that used IPv6 for the dual-stack one. Its pages show
two tables, whose columns an import takes as they are (the page's table
saved as CSV, header line first; other columns, such as a rank or weighted
samples, are ignored):

- per economy (the world page, stats.labs.apnic.net/ipv6/XA):
  `CC, Country, IPv6 Capable, IPv6 Preferred, Samples`;
- per network within an economy (stats.labs.apnic.net/ipv6/VN):
  `ASN, AS Name, IPv6 Capable, IPv6 Preferred, Samples`; the economy is a
  `CC` column when the file has one, else `--economy` (default VN).

Percentages may carry a `%` sign, samples thousands separators (`1,234,567`),
an ASN its `AS` prefix. The table says nothing of its date, so the import
is told it (`--date`, the day the page showed the figures) and stores it
with the source.

VNNIC publishes provincial IPv6 figures (for example the share of each
province's information portal and public-service portal that works over
IPv6) in reports, not in a machine-readable form; they are typed into a CSV
of these columns:

    province,metric,value_pct,date,source

province is the GSO code (92) or the name ("Cần Thơ", "Thành phố Cần Thơ",
"can_tho") of one of the 34 provinces after the 2025 merger, as the
`vietnam-provinces` package lists them; metric one of METRICS; value_pct a
percentage 0-100; date the day the figure describes (YYYY-MM-DD); source
who published it and where.

Every line of either file is checked and every bad one named (missing
columns, bad numbers, unknown provinces); nothing is imported unless all are
good. A figure imported again for the same day replaces the one stored.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Final, Literal

import duckdb

from analysis.csv_import import LinesRefused

APNIC_SOURCE: Final = "APNIC Labs IPv6 measurement, stats.labs.apnic.net/ipv6"
APNIC_METHOD: Final = (
    "an online advertisement has end users' browsers fetch an IPv6-only and a "
    "dual-stack object; IPv6 capable is the share of samples that fetched the IPv6-only one"
)
VNNIC_METHOD: Final = (
    "its own checks of each province's portals (a portal counts when it answers over IPv6)"
)
# The metrics a provincial figure may give, with what each counts.
METRICS: Final[dict[str, str]] = {
    "information_portal": "share of the province's information portals that work over IPv6",
    "public_service_portal": "share of the province's public-service portals that work over IPv6",
}
VNNIC_COLUMNS: Final = ("province", "metric", "value_pct", "date", "source")
ApnicScope = Literal["economy", "network"]


class FiguresRefused(LinesRefused):
    """A file the import refuses; `problems` names each (line number, message)."""


@dataclass(frozen=True)
class ApnicRow:
    """One APNIC figure: an economy's, or one network's (AS) within an economy."""

    scope: ApnicScope
    economy: str  # ISO 3166 alpha-2 code, "VN"
    asn: int | None  # the network's AS number; None for an economy
    name: str  # the economy's or the AS's name as APNIC gives it
    capable_pct: float  # 0..100
    preferred_pct: float  # 0..100
    samples: int
    published_on: date
    source: str


@dataclass(frozen=True)
class ProvinceRow:
    """One provincial figure (VNNIC's, typed in)."""

    province_code: int
    province_name: str
    metric: str
    value_pct: float  # 0..100
    published_on: date
    source: str


# --- reading the files ------------------------------------------------------------


def _header_key(name: str) -> str:
    """A header as compared: "IPv6 Capable (%)" -> "ipv6 capable"."""
    return re.sub(r"\s+", " ", re.sub(r"[(%)]", " ", name)).strip().lower()


def _pct(text: str, column: str) -> float:
    raw = text.strip().removesuffix("%").strip()
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{column} must be a percentage, got {text.strip()!r}") from None
    if not 0.0 <= value <= 100.0:  # NaN fails this too
        raise ValueError(f"{column} must lie between 0 and 100, got {text.strip()!r}")
    return value


def _count(text: str, column: str) -> int:
    raw = text.strip().replace(",", "")
    if not raw.isdigit():
        raise ValueError(f"{column} must be a whole number of samples, got {text.strip()!r}")
    return int(raw)


def _rows(
    path: Path, required: Iterable[str]
) -> tuple[dict[str, str], list[tuple[int, dict[str, str]]]]:
    """The file's header (compared form -> as written) and its records with
    keys in compared form; FiguresRefused when columns are missing."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise FiguresRefused([(1, "the file is empty: a header line is expected")])
        keys = [_header_key(h) for h in header]
        found = dict(zip(keys, header, strict=True))
        missing = [c for c in required if _header_key(c) not in found]
        if missing:
            raise FiguresRefused([(1, f"header lacks the columns {', '.join(missing)}")])
        records: list[tuple[int, dict[str, str]]] = []
        for fields in reader:
            line = reader.line_num
            if not any(f.strip() for f in fields):
                continue
            if len(fields) > len(keys):
                records.append((line, {"": "more fields than the header has"}))
                continue
            records.append((line, dict(zip(keys, fields, strict=False))))
    return found, records


def read_apnic(
    path: Path, published_on: date, *, economy: str = "VN", source: str = APNIC_SOURCE
) -> list[ApnicRow]:
    """APNIC's per-economy or per-network table saved as CSV (the module
    docstring has the columns); FiguresRefused names every bad line."""
    if not re.fullmatch(r"[A-Z]{2}", economy):
        raise FiguresRefused(
            [(0, f"--economy must be a two-letter code such as VN, got {economy!r}")]
        )
    if not source.strip():
        raise FiguresRefused([(0, "the source must name who published the figures")])
    with path.open(newline="", encoding="utf-8-sig") as handle:
        first = handle.readline()
    if not first.strip():
        raise FiguresRefused([(1, "the file is empty: a header line is expected")])
    keys = {_header_key(h) for h in next(csv.reader([first]), [])}
    figures = ["IPv6 Capable", "IPv6 Preferred", "Samples"]
    scope: ApnicScope
    if "asn" in keys:
        scope, required = "network", ["ASN", "AS Name", *figures]
    elif "cc" in keys:
        scope = "economy"
        name_column = "Economy" if "economy" in keys and "country" not in keys else "Country"
        required = ["CC", name_column, *figures]
    else:
        raise FiguresRefused(
            [
                (
                    1,
                    "header has neither ASN (APNIC's per-network table) nor CC (its per-economy "
                    "table); expected ASN, AS Name, IPv6 Capable, IPv6 Preferred, Samples or "
                    "CC, Country, IPv6 Capable, IPv6 Preferred, Samples",
                )
            ]
        )
    _, records = _rows(path, required)
    problems: list[tuple[int, str]] = []
    rows: list[ApnicRow] = []
    seen: dict[tuple[str, int | None], int] = {}
    for line, record in records:
        if "" in record:
            problems.append((line, record[""]))
            continue
        get = {c: (record.get(_header_key(c)) or "").strip() for c in required}
        try:
            if scope == "network":
                asn_text = get["ASN"].upper().removeprefix("AS")
                if not asn_text.isdigit() or not 0 < int(asn_text) < 2**32:
                    raise ValueError(
                        f"ASN must be an AS number such as AS45899, got {get['ASN']!r}"
                    )
                asn: int | None = int(asn_text)
                name = get["AS Name"]
                cc = (record.get("cc") or economy).strip().upper()
            else:
                asn = None
                name = get[required[1]]
                cc = get["CC"].upper()
            if not re.fullmatch(r"[A-Z]{2}", cc):
                raise ValueError(f"CC must be a two-letter economy code such as VN, got {cc!r}")
            if not name:
                raise ValueError(f"{required[1]} is empty")
            row = ApnicRow(
                scope=scope,
                economy=cc,
                asn=asn,
                name=name,
                capable_pct=_pct(get["IPv6 Capable"], "IPv6 Capable"),
                preferred_pct=_pct(get["IPv6 Preferred"], "IPv6 Preferred"),
                samples=_count(get["Samples"], "Samples"),
                published_on=published_on,
                source=source.strip(),
            )
        except ValueError as err:
            problems.append((line, str(err)))
            continue
        key = (row.economy, row.asn)
        if key in seen:
            what = f"AS{row.asn}" if row.asn is not None else row.economy
            problems.append((line, f"{what} appears twice (first on line {seen[key]})"))
            continue
        seen[key] = line
        rows.append(row)
    if problems:
        raise FiguresRefused(problems)
    if not rows:
        raise FiguresRefused([(1, "no figures after the header")])
    return rows


def _plain(text: str) -> str:
    """A name as compared: no diacritics, lower case, words joined by "_"."""
    decomposed = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    letters = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return re.sub(r"[^a-z0-9]+", "_", letters.lower()).strip("_")


@cache
def provinces() -> dict[int, str]:
    """Vietnam's provinces by GSO code, as the `vietnam-provinces` package
    lists them (34 since the July 2025 merger), their names without "Tỉnh"."""
    from vietnam_provinces import Province

    return {int(p.code): p.name for p in Province.iter_all()}


@cache
def _province_lookup() -> dict[str, int]:
    """Every accepted spelling of a province, compared form -> code."""
    from vietnam_provinces import Province

    out: dict[str, int] = {}
    for p in Province.iter_all():
        code = int(p.code)
        plain = _plain(p.name)
        for spelling in (plain, plain.removeprefix("thanh_pho_"), plain.removeprefix("tinh_"),
                         p.codename, str(code), f"{code:02d}"):  # fmt: skip
            out[spelling] = code
    return out


def province_code(text: str) -> int | None:
    """The GSO code of a province named or numbered by `text`; None when none is."""
    return _province_lookup().get(_plain(text.strip()))


def read_vnnic(path: Path) -> list[ProvinceRow]:
    """The provincial figures' CSV (the module docstring has the columns);
    FiguresRefused names every bad line."""
    _, records = _rows(path, VNNIC_COLUMNS)
    names = provinces()
    problems: list[tuple[int, str]] = []
    rows: list[ProvinceRow] = []
    seen: dict[tuple[int, str, date], int] = {}
    for line, record in records:
        if "" in record:
            problems.append((line, record[""]))
            continue
        get = {c: (record.get(c) or "").strip() for c in VNNIC_COLUMNS}
        try:
            code = province_code(get["province"])
            if code is None:
                raise ValueError(
                    f"province {get['province']!r} is none of Vietnam's {len(names)} provinces "
                    "(a GSO code such as 92 or a name such as Cần Thơ)"
                )
            if get["metric"] not in METRICS:
                raise ValueError(
                    f"metric must be one of {', '.join(METRICS)}, got {get['metric']!r}"
                )
            value = _pct(get["value_pct"], "value_pct")
            try:
                day = date.fromisoformat(get["date"])
            except ValueError:
                raise ValueError(f"date must be YYYY-MM-DD, got {get['date']!r}") from None
            if not get["source"]:
                raise ValueError("source must name who published the figure")
        except ValueError as err:
            problems.append((line, str(err)))
            continue
        key = (code, get["metric"], day)
        if key in seen:
            problems.append(
                (line, f"{names[code]} {get['metric']} {day} appears twice (line {seen[key]} too)")
            )
            continue
        seen[key] = line
        rows.append(ProvinceRow(code, names[code], get["metric"], value, day, get["source"]))
    if problems:
        raise FiguresRefused(problems)
    if not rows:
        raise FiguresRefused([(1, "no figures after the header")])
    return rows


# --- the store ----------------------------------------------------------------------


def _replace(
    con: duckdb.DuckDBPyConnection,
    rows: list[tuple[object, ...]],
    delete: str,
    insert: str,
    key: Callable[[tuple[object, ...]], list[object]],
) -> None:
    con.execute("begin transaction")
    try:
        for row in rows:
            con.execute(delete, key(row))
            con.execute(insert, list(row))
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def _apnic_values(r: ApnicRow) -> tuple[object, ...]:
    return (r.scope, r.economy, r.asn, r.name, r.capable_pct, r.preferred_pct, r.samples,
            r.published_on, r.source)  # fmt: skip


def store_apnic(con: duckdb.DuckDBPyConnection, rows: list[ApnicRow]) -> int:
    """Store APNIC's figures in one transaction, each replacing the one stored
    for the same economy or network and day."""
    now = datetime.now(UTC)
    _replace(
        con,
        [(*_apnic_values(r), now) for r in rows],
        "delete from reference_apnic_ipv6 where scope = ? and economy = ? "
        "and asn is not distinct from ? and published_on = ?",
        "insert into reference_apnic_ipv6 (scope, economy, asn, name, capable_pct, "
        "preferred_pct, samples, published_on, source, imported_at) "
        "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        lambda r: [r[0], r[1], r[2], r[7]],
    )
    return len(rows)


def store_vnnic(con: duckdb.DuckDBPyConnection, rows: list[ProvinceRow]) -> int:
    """Store provincial figures in one transaction, each replacing the one
    stored for the same province, metric and day."""
    now = datetime.now(UTC)
    _replace(
        con,
        [
            (r.province_code, r.province_name, r.metric, r.value_pct, r.published_on, r.source, now)
            for r in rows
        ],
        "delete from reference_province_ipv6 where province_code = ? and metric = ? "
        "and published_on = ?",
        "insert into reference_province_ipv6 (province_code, province_name, metric, value_pct, "
        "published_on, source, imported_at) values (?, ?, ?, ?, ?, ?, ?)",
        lambda r: [r[0], r[2], r[4]],
    )
    return len(rows)


def _has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    # A snapshot or store from before these tables has none: no figures, not an error.
    row = con.execute(
        "select count(*) from information_schema.tables where table_name = ?", [table]
    ).fetchone()
    return row is not None and int(row[0]) > 0


def latest_apnic(con: duckdb.DuckDBPyConnection, on_or_before: date) -> list[ApnicRow]:
    """Each economy's and network's latest APNIC figure dated on or before a day."""
    if not _has_table(con, "reference_apnic_ipv6"):
        return []
    return [
        ApnicRow(*r)
        for r in con.execute(
            "select scope, economy, asn, name, capable_pct, preferred_pct, samples, "
            "published_on, source from reference_apnic_ipv6 where published_on <= ? "
            "qualify row_number() over (partition by scope, economy, asn "
            "order by published_on desc) = 1 order by scope, economy, asn",
            [on_or_before],
        ).fetchall()
    ]


def latest_provinces(
    con: duckdb.DuckDBPyConnection, metric: str, on_or_before: date
) -> list[ProvinceRow]:
    """The provincial figures of a metric's latest day on or before a day
    (one publication: provinces are ranked only against figures of the same
    day)."""
    if not _has_table(con, "reference_province_ipv6"):
        return []
    return [
        ProvinceRow(*r)
        for r in con.execute(
            "select province_code, province_name, metric, value_pct, published_on, source "
            "from reference_province_ipv6 where metric = ? and published_on = ("
            "select max(published_on) from reference_province_ipv6 "
            "where metric = ? and published_on <= ?) order by province_code",
            [metric, metric, on_or_before],
        ).fetchall()
    ]


# --- a synthetic set, for the demo and tests ------------------------------------------

SYNTHETIC_SOURCE: Final = "SYNTHETIC: made up by wardprobe for the demo, not published figures"


def write_synthetic(directory: Path, year: int, seed: int = 2026) -> dict[str, Path]:
    """Made-up files in the import forms, their source saying SYNTHETIC: APNIC's
    per-network table for Vietnam's ISPs ("apnic_networks"), its per-economy
    table ("apnic_economies") and provincial figures of every province
    ("provinces"), dated 30 June of `year`. Same seed, same files."""
    import numpy as np

    from analysis.indicators.ipv6_reference import ISP_ASNS

    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    day = date(year, 6, 30).isoformat()

    def rates(low: float, high: float) -> tuple[str, str]:
        capable = float(rng.uniform(low, high))
        return f"{capable:.2f}%", f"{capable * float(rng.uniform(0.95, 0.99)):.2f}%"

    networks = directory / "apnic_networks_synthetic.csv"
    with networks.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["ASN", "AS Name", "IPv6 Capable", "IPv6 Preferred", "Samples"])
        for isp, asns in ISP_ASNS.items():
            for asn in asns:
                out.writerow(
                    [
                        f"AS{asn}",
                        f"{isp} (synthetic)",
                        *rates(5, 80),
                        f"{int(rng.integers(10_000, 2_000_000)):,}",
                    ]
                )
    economies = directory / "apnic_economies_synthetic.csv"
    with economies.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["CC", "Country", "IPv6 Capable", "IPv6 Preferred", "Samples"])
        for cc, name in (("VN", "Viet Nam"), ("TH", "Thailand"), ("MY", "Malaysia"),
                         ("IN", "India"), ("XA", "World")):  # fmt: skip
            out.writerow(
                [
                    cc,
                    f"{name} (synthetic)",
                    *rates(35, 80),
                    f"{int(rng.integers(1_000_000, 10_000_000)):,}",
                ]
            )
    figures = directory / "provinces_synthetic.csv"
    with figures.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(VNNIC_COLUMNS)
        for metric in METRICS:
            for code in provinces():
                # Whole percentages, as reports print them: ties happen, as in real tables.
                value = int(rng.integers(40, 101))
                out.writerow([code, metric, value, day, SYNTHETIC_SOURCE])
    return {"apnic_networks": networks, "apnic_economies": economies, "provinces": figures}
