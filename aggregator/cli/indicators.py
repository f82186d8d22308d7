"""`wardprobe-aggregator indicators` and `wardprobe-aggregator baseline import`
and `baseline import-ookla`."""

from __future__ import annotations

import csv
import dataclasses
import io
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from aggregator.cli.support import (
    ConfigOption,
    config_or_exit,
    reading,
    store_failure,
    using_store,
)
from aggregator.config import LakeSpec
from wardprobe.cli_errors import PlainErrors, fail, usage_error

baseline_app = typer.Typer(
    help="Baselines from outside the store (e.g. 2024 figures) for the doubling target.",
    no_args_is_help=True,
    cls=PlainErrors,
)

StoreOption = Annotated[
    Path | None,
    typer.Option(
        help="DuckDB file: the analyst snapshot or a stopped store (default: the config's "
        "snapshot_path if set, else its store: store_path, or its lake read-only)."
    ),
]


def indicators(
    period: Annotated[
        str, typer.Option(help="2026, 2026Q3 or 2026-01-01..2026-04-01 (Asia/Ho_Chi_Minh time).")
    ],
    ward: Annotated[
        int | None,
        typer.Option(help="Only this ward (GSO code); a code not of the city is refused (exit 1)."),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option(
            help="Group by operator (mobile lines by operator, fixed lines by their "
            "site's ISP), access_tech or site_class."
        ),
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    synthetic: Annotated[
        bool,
        typer.Option(help="Use the synthetic generator's rows instead of the probes' results."),
    ] = False,
    city_only: Annotated[
        bool,
        typer.Option(
            help="Show only the figures for the whole city, not each ward (nor, in a table, "
            "each zone site)."
        ),
    ] = False,
    baseline: Annotated[
        str | None,
        typer.Option(
            help="The 2024 baseline the doubling ratio uses first where a scope has it: "
            "probes, ookla_tiles or imported (default: the config's baseline_order, else "
            "probes, then ookla_tiles, then imported; every one is shown beside it)."
        ),
    ] = None,
    config: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Every indicator of the plan for a period: value, 95 % interval, mean and median
    across probes, probes and tests behind it, targets met or not, exclusions.
    Exits 2 on a bad option or a store that is missing or cannot be read."""
    from analysis.indicators import compute_indicators, report_json
    from analysis.requests import (
        RequestRefused,
        check_baseline,
        check_grouping,
        check_period,
        check_ward,
    )

    # The HTTP API refuses the same things in the same words (analysis/requests.py).
    try:
        parsed = check_period(period)
    except RequestRefused as err:
        raise typer.BadParameter(str(err), param_hint="--period") from None
    try:
        grouping = check_grouping(by)
    except RequestRefused as err:
        raise typer.BadParameter(str(err), param_hint="--by") from None
    if output_format not in ("table", "csv", "json"):
        raise typer.BadParameter("expected table, csv or json", param_hint="--format")
    try:
        check_baseline(baseline)
    except RequestRefused as err:
        raise typer.BadParameter(str(err), param_hint="--baseline") from None
    # A code of no ward would get a table of "insufficient data", as if the
    # ward existed and had no probes; refused as `token create` refuses it.
    try:
        ward = None if ward is None else check_ward(ward)
    except RequestRefused as err:
        raise fail(str(err)) from None
    # read with --store too: its baseline_order is the default of --baseline
    cfg = config_or_exit(config)
    baselines = check_baseline(baseline, cfg.baseline_order)
    # --store, else the snapshot, else the config's store: its file or its lake
    with reading(cfg, store) as (con, source):
        report = compute_indicators(
            con,
            parsed,
            ward=ward,
            by=grouping,
            synthetic=synthetic,
            baselines=baselines,
        )
    if output_format == "json":
        sys.stdout.write(report_json(report, city_only=city_only) + "\n")
        return
    if city_only:
        report = dataclasses.replace(
            report, figures=[f for f in report.figures if f.scope == "city"]
        )
    if output_format == "csv":
        sys.stdout.write(_csv(report.figures))
    else:
        _table(report, source, list_zone_sites=not city_only)


_CSV_COLUMNS = (
    "indicator",
    "scope",
    "group",
    "unit",
    "value",
    "ci_low",
    "ci_high",
    "interval",
    "mean",
    "median",
    "probes",
    "tests",
    "probe_limited",
    "status",
    "targets",
    "note",
    "baselines",
)


def _targets_text(targets: Any) -> str:
    return "; ".join(
        f"{t.comparator} {t.value:g} ({t.source}, {t.due}): "
        + ("n/a" if t.met is None else "met" if t.met else "not met")
        for t in targets
    )


def _csv(figures: list[Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_CSV_COLUMNS)
    for f in figures:
        row = dataclasses.asdict(f)
        row["targets"] = _targets_text(f.targets)
        row["baselines"] = "; ".join(_comparison_text(c) for c in f.baselines)
        writer.writerow(["" if row[c] is None else row[c] for c in _CSV_COLUMNS])
    return out.getvalue()


def _comparison_text(c: Any) -> str:
    """One baseline comparison in a line: "probes/ookla_tiles mean 2.1 [1.9–2.3] ... (used)"."""
    interval = "" if c.ci_low is None or c.ci_high is None else f" [{c.ci_low:.3g}–{c.ci_high:.3g}]"
    value = c.status if c.value is None else f"{c.value:.3g}{interval}"
    words = f"{c.numerator}/{c.baseline} {c.statistic} {value}"
    words += ", like with like" if c.like_with_like else ", not like with like"
    return words + (" (used)" if c.used else "")


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    return (
        f"{value:.1%}"
        if unit == "share"
        else f"{value:.3g}"
        if unit.startswith("ratio")
        else (f"{value:.1f}")
    )


def _table(report: Any, path: Path | LakeSpec, *, list_zone_sites: bool = True) -> None:
    console = Console(width=200)
    table = Table(
        title=f"Indicators for {report.period.label} "
        f"({report.period.start:%Y-%m-%d}..{report.period.end:%Y-%m-%d} Asia/Ho_Chi_Minh) "
        f"from {path}" + (" — SYNTHETIC data" if report.synthetic else "")
    )
    for column in (
        "indicator",
        "scope",
        "group",
        "value",
        "95 % interval",
        "mean",
        "median",
        "probes",
        "tests",
        "limited",
        "targets",
        "note",
    ):
        table.add_column(column)
    for f in report.figures:
        value = f.status if f.value is None else _num(f.value, f.unit) + f" {f.unit}"
        interval = (
            "–"
            if f.ci_low is None or f.ci_high is None
            else f"{_num(f.ci_low, f.unit)} – {_num(f.ci_high, f.unit)} ({f.interval})"
        )
        table.add_row(
            f.indicator,
            f.scope,
            f.group or "",
            value,
            interval,
            _num(f.mean, f.unit),
            _num(f.median, f.unit),
            str(f.probes),
            str(f.tests),
            str(f.probe_limited),
            _targets_text(f.targets),
            f.note,
        )
    console.print(table)
    console.print(f"Baseline used: {report.baseline}")
    _baselines_table(console, report)
    _ipv6_reference_table(console, report.ipv6_reference)
    excluded = ", ".join(f"{t} {reason}: {n}" for t, reason, n in report.exclusions)
    console.print(f"Excluded results: {excluded or 'none'}")
    if report.zone_sites and not list_zone_sites:
        console.print(f"Zone sites: {len(report.zone_sites)} (each is listed without --city-only)")
    elif report.zone_sites:
        zones = Table(title="Zone sites (target: every site with 5G and gigabit fixed access)")
        for column in (
            "probe",
            "ward",
            "site class",
            "NR time share",
            "saw NR",
            "gigabit-capable",
            "downloads",
        ):
            zones.add_column(column)
        for s in report.zone_sites:
            zones.add_row(
                s.probe_id,
                str(s.ward_code),
                s.site_class,
                _num(s.nr_time_share, "share"),
                "probe-limited" if s.nr_probe_limited else _yes(s.saw_nr),
                "probe-limited" if s.gigabit_probe_limited else _yes(s.gigabit_capable),
                "–" if s.download_tests is None else str(s.download_tests),
            )
        console.print(zones)
    _offices_table(console, report, list_all=list_zone_sites)
    _people_line(console, report)
    _services_table(console, report, list_all=list_zone_sites)


def _offices_table(console: Console, report: Any, *, list_all: bool) -> None:
    """The government offices one by one (ipv6_office_share), or their count."""
    if not report.offices:
        return
    from analysis.periods import TZ  # here: analysis imports DuckDB, which --help need not load

    if not list_all:
        n = len(report.offices)
        console.print(f"Government offices: {n} (each is listed without --city-only)")
        return
    offices = Table(title="Government offices: IPv6 on their LAN (target: every office by 2030)")
    for column in ("probe", "ward", "site class", "working IPv6", "checks", "last check", "found"):
        offices.add_column(column)
    for o in report.offices:
        at = o.last_checked_at
        found = o.last_check_capable
        offices.add_row(
            o.probe_id,
            str(o.ward_code),
            o.site_class,
            "no valid check" if o.ipv6_capable is None else _yes(o.ipv6_capable),
            "–" if o.checks is None else str(o.checks),
            "–" if at is None else f"{at.astimezone(TZ):%Y-%m-%d %H:%M} (UTC+7)",
            "–" if found is None else ("IPv6" if found else "no IPv6"),
        )
    console.print(offices)


def _people_line(console: Console, report: Any) -> None:
    """The people nr_population_share weighs by, and those it cannot say about."""
    wards = report.nr_population
    if not any(w.population is not None for w in wards):
        return
    people = sum(w.population or 0 for w in wards)
    unknown = [w for w in wards if w.population is not None and w.nr_time_share is None]
    covered = sum(w.people_covered or 0.0 for w in wards)
    console.print(
        f"Population: {people:,} people in {sum(1 for w in wards if w.population)} wards; "
        f"with 5G (time share × people): {covered:,.0f}; in wards without enough data: "
        f"{sum(w.population for w in unknown):,} ({len(unknown)} wards)"
    )


def _services_table(console: Console, report: Any, *, list_all: bool) -> None:
    """The city's services one by one (ipv6_service_ready_share), or their count."""
    if not report.services:
        return
    if not list_all:
        n = len(report.services)
        console.print(f"City services: {n} (each is listed without --city-only)")
        return
    services = Table(title="The city's services: IPv6 readiness (target: every service by 2030)")
    for column in ("department", "service", "kind", "ready", "checked by", "failing checks"):
        services.add_column(column)
    for s in report.services:
        services.add_row(
            s.department,
            s.hostname,
            s.kind,
            "not decided" if s.ready is None else _yes(s.ready),
            s.checked_by or "–",
            s.why_not or "",
        )
    console.print(services)


def _baselines_table(console: Console, report: Any) -> None:
    """The doubling ratio of each scope against every 2024 baseline it has."""
    rows = [(f, c) for f in report.figures for c in f.baselines]
    if not rows:
        return
    table = Table(
        title="mobile_download_ratio against every 2024 baseline "
        "(used: the figure's value; like with like: both sides measured the same way)"
    )
    for column in (
        "scope",
        "group",
        "now",
        "over",
        "statistic",
        "baseline",
        "ratio",
        "95 % interval",
        "like with like",
        "used",
    ):
        table.add_column(column)
    for f, c in rows:
        counts = ", ".join(
            f"{n} {what}"
            for n, what in (
                (c.baseline_probes, "probes"),
                (c.baseline_tests, "tests"),
                (c.baseline_devices, "devices"),
                (c.baseline_tiles, "tiles"),
            )
            if n is not None
        )
        base = "–" if c.baseline_mbps is None else f"{c.baseline_mbps:.1f} Mb/s"
        detail = "; ".join(x for x in (", ".join(c.baseline_quarters), counts, c.licence) if x)
        now = c.numerator + (f" {', '.join(c.current_quarters)}" if c.current_quarters else "")
        table.add_row(
            f.scope,
            f.group or "",
            now,
            c.baseline,
            c.statistic,
            f"{base} ({detail})" if detail else base,
            c.status if c.value is None else _num(c.value, "ratio"),
            "–"
            if c.ci_low is None or c.ci_high is None
            else f"{_num(c.ci_low, 'ratio')} – {_num(c.ci_high, 'ratio')} ({c.interval})",
            _yes(c.like_with_like),
            _yes(c.used),
        )
    console.print(table)


def _ipv6_reference_table(console: Console, ref: Any) -> None:
    """ipv6_leading_provinces: the probes' IPv6 per ISP beside APNIC's, and
    Cần Thơ's rank among the provinces (nothing when no figure is there)."""
    if ref is None or not (ref.isps or ref.vietnam or ref.provinces):
        return
    vietnam = (
        "–"
        if ref.vietnam is None
        else f"{_num(ref.vietnam.capable_share, 'share')} ({ref.vietnam.published_on})"
    )
    table = Table(
        title=f"{ref.indicator}: IPv6 capable, the probes per ISP beside APNIC's rate of the "
        f"ISP's network (APNIC, Vietnam: {vietnam})"
    )
    for column in ("ISP", "probes' share", "95 % interval", "probes", "APNIC AS", "APNIC share"):
        table.add_column(column)
    for c in ref.isps:
        table.add_row(
            c.isp or "(ISP not recorded)",
            c.status if c.probes_capable_share is None else _num(c.probes_capable_share, "share"),
            "–"
            if c.ci_low is None or c.ci_high is None
            else f"{_num(c.ci_low, 'share')} – {_num(c.ci_high, 'share')}",
            str(c.probes),
            "–" if c.apnic is None else f"AS{c.apnic.asn} ({c.apnic.published_on})",
            "–" if c.apnic is None else _num(c.apnic.capable_share, "share"),
        )
    console.print(table)
    services = (
        "not measured"
        if ref.services is None or ref.services.ready_share is None
        else _num(ref.services.ready_share, "share")
    )
    console.print(f"City services fully IPv6-ready: {services}")
    for p in ref.provinces:
        city = "–" if p.city_share is None else _num(p.city_share, "share")
        console.print(
            f"Cần Thơ, {p.metric} ({p.published_on}, {p.source}): {city}, {p.text}; "
            f"best {_num(p.best_share, 'share')}"
        )
    console.print("Target: " + _targets_text([ref.target]) + f" — {ref.note}")
    for source, method in ref.methods:
        console.print(f"How measured — {source}: {method}")


def _yes(value: bool | None) -> str:
    return "–" if value is None else "yes" if value else "no"


@baseline_app.command("import")
def baseline_import(
    file: Annotated[
        Path,
        typer.Argument(help="CSV file (see analysis/baseline.py).", exists=True, dir_okay=False),
    ],
    config: ConfigOption = None,
    store: Annotated[
        Path | None,
        typer.Option(help="DuckDB store to write (default: the config's store_path)."),
    ] = None,
) -> None:
    """Check and import baseline rows: scope, ward_code, year, network_kind,
    access_tech, statistic, value_mbps, sample_size, source. The store must not be
    open in a running aggregator (DuckDB allows one writer). Exits 1 naming every bad
    line (nothing is imported), 2 when the file or the store cannot be used."""
    import duckdb

    from aggregator.ingest.store import Store
    from analysis.baseline import BaselineError, import_rows, read_csv
    from analysis.wards import can_tho_wards

    try:
        rows = read_csv(file, can_tho_wards())
    except BaselineError as err:
        for line, message in err.problems:
            typer.echo(f"{file}:{line}: {message}", err=True)
        bad = len(err.problems)
        raise fail(f"nothing imported: {bad} bad line{'s' if bad > 1 else ''} in {file}") from None
    except UnicodeDecodeError:
        raise usage_error(f"{file} is not UTF-8 text", "save it as CSV UTF-8") from None
    except OSError as err:
        raise usage_error(f"cannot read {file}: {err.strerror or err}") from None
    path = store or config_or_exit(config).store_path
    try:
        Store(path).close()  # creates the tables, baseline among them, if new
    except duckdb.Error as err:
        raise store_failure(path, err, writing=True) from None
    with using_store(path, writing=True) as con:
        count = import_rows(con, rows)
    typer.echo(f"imported {count} baseline rows into {path}")


@baseline_app.command("import-ookla")
def baseline_import_ookla(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="Ookla's performance tiles, one Parquet file per quarter, as Ookla names them "
            "(2024-01-01_performance_mobile_tiles.parquet).",
            exists=True,
            dir_okay=False,
        ),
    ],
    kind: Annotated[str, typer.Option(help="mobile or fixed: the layer the files hold.")],
    year: Annotated[int, typer.Option(help="The year the files hold, e.g. 2024.")],
    quarter: Annotated[
        int | None,
        typer.Option(
            help="The quarter (1-4), for a file whose name does not say it.", min=1, max=4
        ),
    ] = None,
    config: ConfigOption = None,
    store: Annotated[
        Path | None,
        typer.Option(help="DuckDB store to write (default: the config's store_path)."),
    ] = None,
) -> None:
    """Sum Ookla's open performance tiles per ward and for the city (the
    tests-weighted mean download, tests, devices, tiles) and store them as a
    baseline, a quarter imported again replacing its rows. Tiles centred
    outside the city are counted and left out. The store must not be open in a
    running aggregator. Exits 1 when a file is not Ookla's tiles (naming each
    missing or mistyped column), holds no tile in the city or is not the
    quarter it is said to be: nothing is stored then; 2 when a file or the
    store cannot be read."""
    import duckdb

    from aggregator.ingest.store import Store
    from analysis.ookla import (
        DATASET,
        KINDS,
        LICENCE,
        QuarterTiles,
        TilesRefused,
        identify,
        read_quarter,
        store_quarters,
    )

    if kind not in KINDS:
        raise typer.BadParameter("expected mobile or fixed", param_hint="--kind")
    try:
        quarters = [identify(f, kind, year, quarter) for f in files]
    except TilesRefused as err:
        raise fail(f"{err}; nothing stored") from None
    labels = [q.label for q in quarters]
    if len(set(labels)) != len(labels):
        twice = sorted({label for label in labels if labels.count(label) > 1})
        raise fail(f"{', '.join(twice)} given twice: import each quarter once; nothing stored")
    path = store or config_or_exit(config).store_path
    try:
        Store(path).close()  # creates the tables (and the baseline's new columns) if needed
    except duckdb.Error as err:
        raise store_failure(path, err, writing=True) from None
    # The files are read before the store is opened for writing: a quarter of
    # the world's tiles takes seconds, and the store is held only to write.
    reader = duckdb.connect()
    read: list[QuarterTiles] = []
    try:
        for qf in quarters:
            try:
                read.append(read_quarter(reader, qf))
            except TilesRefused as err:
                raise fail(f"{err}; nothing stored") from None
            except duckdb.Error as err:
                text = str(err).strip()
                first = text.splitlines()[0] if text else type(err).__name__
                raise usage_error(f"cannot read {qf.path} as Parquet: {first}") from None
    finally:
        reader.close()
    with using_store(path, writing=True) as con:
        replaced = store_quarters(con, read)
    for q in read:
        again = " (replaces the earlier import)" if f"{kind} {q.file.label}" in replaced else ""
        typer.echo(
            f"{kind} {q.file.label} from {q.file.path.name}: {q.tiles_read} tiles read, "
            f"{q.city.tiles} in Cần Thơ ({len(q.wards)} wards), {q.tiles_outside} outside the "
            f"city left out; city {q.city.mean_mbps:.1f} Mb/s tests-weighted mean over "
            f"{q.city.tests} tests, {q.city.devices} devices{again}"
        )
    typer.echo(
        f"stored {len(read)} quarter{'s' if len(read) > 1 else ''} into {path}; "
        f'licence {LICENCE}: credit "{DATASET}" wherever the figures are shown'
    )
