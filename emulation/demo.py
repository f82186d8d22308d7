"""The main job: an emulated Cần Thơ measured end to end (`make demo`).

Builds a city of network namespaces (one central site, probe boxes on
shaped access lines in real wards), starts the aggregator and the reference
server, enrols every probe with a bootstrap token, runs two measurement
cycles through the real agent (boxes side by side, as many as the reference
server's iperf3 ports take: emulation/cycles.py), stops the aggregator
gracefully and prints
the per-ward summary, then the plan's indicators through the analysts' CLI:
on the probes' results, and on a synthetic city (every ward, marked
synthetic) generated beside them. Everything it writes goes to --out
(default demo-out/): the DuckDB store, logs, the probes' state, a summary,
the ward maps of every indicator, the yearly report (HTML and PDF) and the
synthetic city's indicators (JSON), for the probes and the synthetic city.
Without root it runs on loopback, unshaped, and says so.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from analysis.summary import summary_table, ward_summary
from emulation.city import City, cleanup_stale, have_netns
from emulation.city_services import HOSTS, SERVICES, CityServices
from emulation.cycles import CycleRun, run_cycles
from emulation.deployment import CentralPorts, Deployment, DeploymentError, ModemSpec, ProbeBox
from emulation.modem import ModemModel, ModemState
from emulation.routed import PathSpec, RoutedCity
from emulation.shaping import PROFILES, LinkProfile, NetworkKind

DEMO_PREFIX = "wpdemo"


@dataclass(frozen=True)
class DemoProbe:
    name: str
    ward_code: int
    site_class: str
    profile: str
    isp: str | None = None  # the fixed line's ISP (mobile boxes: their modem's operator)
    path: PathSpec = field(default_factory=PathSpec)  # its routers and line (emulation/routed.py)


# Six boxes in three real wards of Cần Thơ (GSO codes from vietnam-provinces),
# each behind its home router, access line, access router and the core router.
# The mobile lines add a radio network's round trip; one fixed path has a
# 1400-byte link (its router says Packet Too Big), another drops that message
# (a path-MTU black hole: its IPv6 check's large exchange stalls too).
DEMO_PROBES = (
    DemoProbe("ninhkieu-home", 31135, "household", "fibre_1g", "VNPT"),
    DemoProbe("ninhkieu-lte", 31135, "household", "lte", path=PathSpec(line_delay_ms=30)),
    DemoProbe(
        "caikhe-school",
        31120,
        "school",
        "fibre_300",
        "Viettel",
        PathSpec(core_mtu=1400, drop_packet_too_big=True),
    ),
    DemoProbe("caikhe-5g", 31120, "household", "nr5g", path=PathSpec(line_delay_ms=15)),
    DemoProbe("tanan-office", 31147, "ward_office", "ipv4_only", "FPT Telecom"),
    DemoProbe("tanan-home", 31147, "household", "fibre_300", "VNPT", PathSpec(core_mtu=1400)),
)

# The mobile boxes' emulated USB modems: an LTE-only EC25 on Viettel (probe-
# limited for 5G), and a 5G RM500Q on VinaPhone whose EN-DC (NSA) cell gives
# way to an SA cell from the second cycle (7 observations make one cycle).
DEMO_MODEMS = {
    "ninhkieu-lte": ModemSpec(ModemModel.EC25, ModemState.LTE, "45204"),
    "caikhe-5g": ModemSpec(
        ModemModel.RM500Q, ModemState.NR5G_NSA, "45202", ((8, ModemState.NR5G_SA),)
    ),
}


def main(
    out: Annotated[Path, typer.Option(help="Where the demo writes everything.")] = Path("demo-out"),
    cycles: Annotated[int, typer.Option(help="Measurement cycles per probe.", min=1)] = 2,
) -> None:
    """Run the emulated city end to end and print the per-ward summary."""
    # Wide enough for the tables even when the output is not a terminal (CI, logs).
    console = Console(width=max(110, Console().width))
    timings = _Timings()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    out = out.resolve()

    netns_ok, why = have_netns()
    if not netns_ok:
        console.print(
            f"[yellow]No network namespaces ({why}): running on loopback, without link "
            "shaping. Speeds below are loopback speeds, not access lines.[/yellow]"
        )
    cleanup_stale(DEMO_PREFIX)
    city = RoutedCity(prefix=DEMO_PREFIX) if netns_ok else None
    ports = CentralPorts() if city else CentralPorts.on_loopback()
    deployment = Deployment(
        workdir=out,
        city=city,
        ports=ports,
        throughput_duration_s=5,
        path_tests=True,
        # the city's own services, whose IPv6 readiness the probes check
        services=CityServices(out / "city-services") if city else None,
    )
    try:
        failures = _run(console, deployment, cycles, timings)
    finally:
        deployment.close()
        if city is not None:
            city.close()
        timings.lap("stopping the agents' modems, the reference server and the city")
    _report(console, deployment, out)
    timings.lap("the tables above (per ward, per probe, paths, radios)")
    failures += _outputs(console, deployment, out, timings)
    console.print(_where(out))
    console.print(timings.table())
    console.print(
        f"\n[bold]demo finished in {timings.total_s():.0f} s[/bold]; everything is in {out}"
    )
    if failures:
        console.print(f"[red]{failures} step(s) failed; see above and {out / 'logs'}[/red]")
        raise typer.Exit(code=1)


def _step(console: Console, text: str) -> None:
    console.print(f"[bold cyan]»[/bold cyan] {text}")


def _run(console: Console, deployment: Deployment, cycles: int, timings: _Timings) -> int:
    """The demo's steps; returns how many failed (an agent or the aggregator exiting non-zero)."""
    failures = 0
    if deployment.services is not None and deployment.city is not None:
        _step(
            console,
            f"the city's services: {len(SERVICES)} on {len(HOSTS)} hosts (dual-stack, "
            "IPv4-only, an AAAA refused, one timing out, a wrong certificate, an MX without "
            "AAAA, a zone whose name server has no AAAA), their records in the reference DNS",
        )
        deployment.services.start(deployment.city)
    _step(console, "central site: creating the CA and aggregator.toml")
    deployment.init_central()
    _step(
        console,
        "central site: starting the aggregator (mTLS ingest, enrolment) "
        "and the reference server (iperf3 pool, TCP echo, DNS)",
    )
    deployment.start_aggregator()
    deployment.start_reference_server()
    timings.lap("the city's core, the CA, the aggregator and the reference server")

    boxes: list[ProbeBox] = []
    for probe in DEMO_PROBES:
        profile: LinkProfile | None = PROFILES[probe.profile] if deployment.city else None
        box = deployment.add_probe(
            probe.name,
            probe.ward_code,
            probe.site_class,
            profile,
            modem=DEMO_MODEMS.get(probe.name),
            mobile=PROFILES[probe.profile].network_kind == NetworkKind.MOBILE,
            isp=probe.isp,
            # the household's advertised plan: what QCVN 34 compares the line with
            plan_mbps=f"{profile.down_mbps:g}/{profile.up_mbps:g}"
            if profile and profile.network_kind == NetworkKind.FIXED
            else None,
            path=probe.path,
        )
        line = (
            f"{profile.down_mbps:g}/{profile.up_mbps:g} Mb/s {profile.network_kind}"
            f"{'' if profile.ipv6 else ', IPv4 only'}"
            if profile
            else "loopback"
        )
        _step(
            console,
            f"enrolled {box.name} as {box.probe_id} in ward {box.ward_code} "
            f"({box.site_class}; {line})",
        )
        boxes.append(box)
    timings.lap(f"enrolling the {len(boxes)} boxes (their namespaces, lines and modems)")

    seats = len(deployment.ports.iperf3)
    _step(
        console,
        f"measuring: {cycles} cycles a box, up to {seats} boxes side by side (the reference "
        "server's iperf3 ports, as the aggregator's test slots allow; a gigabit line alone)",
    )

    def ended(run: CycleRun) -> None:
        nonlocal failures
        box = run.cycle.box
        if run.code != 0 or not run.results:
            failures += 1
            how = "killed at the time limit" if run.code is None else f"exited {run.code}"
            console.print(f"[red]{box.name}: agent {how}[/red]\n{_tail(run.log)}")
        summary = ", ".join(_short(r) for r in run.results)
        span = f"{run.started_s:.0f}–{run.ended_s or 0:.0f} s{', alone' if run.cycle.alone else ''}"
        _step(console, f"cycle {run.cycle.number}/{cycles} {box.name} ({span}): {summary}")

    runs = run_cycles(deployment, boxes, cycles, logs=deployment.workdir / "logs", on_end=ended)
    busiest = max(
        (sum(1 for r in runs if r.started_s <= t < (r.seat_released_s or r.ended_s or t)))
        for t in (r.started_s for r in runs)
    )
    timings.lap(
        f"measuring: {len(runs)} cycles, up to {busiest} boxes at once at the reference server"
    )

    if deployment.services is not None and deployment.central_netns is not None:
        _step(console, "central site: wardprobe-aggregator services check (the same checks)")
        checked = subprocess.run(
            City.netns_argv(
                deployment.central_netns,
                [deployment.python, "-m", "aggregator", "services", "check", "--config",
                 str(deployment.aggregator_config_path), "--resolver",
                 deployment.reference_ipv4, "--timeout-s", "1"],
            ),
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        console.print(checked.stdout.rstrip(), markup=False, highlight=False, soft_wrap=True)
        # 1: some services are not ready, which the emulated city is built to show
        if checked.returncode not in (0, 1):
            failures += 1
            console.print(f"[red]services check exited {checked.returncode}[/red]")
            console.print(checked.stderr, markup=False, highlight=False)
        timings.lap("the city's services checked at the central site")
    _step(console, "stopping the aggregator (SIGTERM: in-flight batches commit first)")
    code = deployment.stop_aggregator()
    if code != 0:
        failures += 1
        console.print(f"[red]aggregator exited {code}[/red]\n{deployment.log_tail('aggregator')}")
    timings.lap("stopping the aggregator")
    return failures


def _tail(log: Path, lines: int = 30) -> str:
    """The end of an agent's log."""
    text = log.read_text("utf-8", errors="replace") if log.is_file() else ""
    return "\n".join(text.splitlines()[-lines:])


def _short(result: dict[str, object]) -> str:
    env = result.get("envelope", {})
    assert isinstance(env, dict)
    status = str(env.get("status", "?")).removeprefix("STATUS_").lower()
    if "throughput" in result:
        body = result["throughput"]
        assert isinstance(body, dict)
        direction = str(body.get("direction", "")).removeprefix("DIRECTION_").lower()
        mbps = body.get("mbps")
        return (
            f"{direction} {mbps:.1f} Mb/s" if isinstance(mbps, float) else f"{direction} {status}"
        )
    if "latency" in result:
        body = result["latency"]
        assert isinstance(body, dict)
        rtt = body.get("rtt_median_ms")
        proto = body.get("protocol", "")
        return f"{proto} {rtt:.2f} ms" if isinstance(rtt, float) else f"{proto} {status}"
    if "ipv6" in result:
        body = result["ipv6"]
        assert isinstance(body, dict)
        return "IPv6 capable" if body.get("ipv6_capable") else "IPv6 not capable"
    if "traceroute" in result:
        body = result["traceroute"]
        assert isinstance(body, dict)
        hops = body.get("hop_count")
        target = body.get("target", "")
        return f"trace {target} {hops} hops" if hops else f"trace {target} {status}"
    if "ipv6_pmtu" in result:
        body = result["ipv6_pmtu"]
        assert isinstance(body, dict)
        hole = ", black hole" if body.get("pmtu_blackhole") else ""
        mtu = body.get("path_mtu")
        return f"IPv6 path MTU {mtu}{hole}" if mtu else f"IPv6 path MTU {status}"
    if "dns" in result:
        body = result["dns"]
        assert isinstance(body, dict)
        median = body.get("time_median_ms")
        kind = body.get("resolver_kind", "")
        return f"dns {kind} {median:.1f} ms" if isinstance(median, float) else f"dns {status}"
    if "ipv6_services" in result:
        body = result["ipv6_services"]
        assert isinstance(body, dict)
        checked = body.get("services_checked", 0)
        ready = body.get("services_ready", 0)
        return f"services IPv6-ready {ready}/{checked}" if checked else f"services {status}"
    if "cellular" in result:
        body = result["cellular"]
        assert isinstance(body, dict)
        tech = str(body.get("access_tech", "")).removeprefix("ACCESS_TECH_").lower()
        return f"radio {tech} {body.get('operator_name', '')}" if tech else f"radio {status}"
    return status


def _report(console: Console, deployment: Deployment, out: Path) -> None:
    store = deployment.store_path
    rows = ward_summary(store)
    console.print(summary_table(rows, "Per-ward summary (all stored tests of this run)"))
    lines = [
        "ward_code\tward_name\tprobes\ttests\tmean_download_mbps\tmedian_latency_ms\tipv6_share"
    ]
    for row in rows:
        values = (
            row.ward_code, row.ward_name, row.probes, row.tests, row.mean_download_mbps,
            row.median_latency_ms, row.ipv6_share,
        )  # fmt: skip
        lines.append("\t".join(str(v) for v in values))
    (out / "ward_summary.tsv").write_text("\n".join(lines) + "\n", "utf-8")

    by_probe = _downloads_by_probe(store)
    if deployment.city is not None:
        table = Table(title="Download reported by each probe next to its shaped line rate")
        for column in (
            "probe",
            "profile",
            "shaped down Mb/s",
            "reported down Mb/s (mean)",
            "shaped up Mb/s",
            "reported up Mb/s (mean)",
        ):
            table.add_column(column)
        for probe in DEMO_PROBES:
            profile = PROFILES[probe.profile]
            down, up = by_probe.get(probe.name, (None, None))
            table.add_row(
                probe.name,
                probe.profile,
                f"{profile.down_mbps:g}",
                _fmt(down),
                f"{profile.up_mbps:g}",
                _fmt(up),
            )
        console.print(table)
    console.print(_path_table(store))
    table = Table(title="Mobile downloads by the radio they ran on (cellular observations)")
    for column in ("probe", "modem", "5G-capable", "operator", "access tech", "download Mb/s"):
        table.add_column(column)
    for mobile_row in _mobile_downloads(store):
        table.add_row(*mobile_row)
    console.print(table)


@dataclass
class _Timings:
    """Where the demo's time goes: the seconds of each step, printed at the end."""

    started: float = field(default_factory=time.monotonic)
    last: float = field(default_factory=time.monotonic)
    # (step, seconds, whether it ran beside other steps)
    steps: list[tuple[str, float, bool]] = field(default_factory=list)

    def lap(self, step: str) -> None:
        """`step` took the time since the previous lap."""
        now = time.monotonic()
        self.steps.append((step, now - self.last, False))
        self.last = now

    def beside(self, step: str, seconds: float) -> None:
        """`step` took `seconds` beside others (within the next lap)."""
        self.steps.append((step, seconds, True))

    @contextlib.contextmanager
    def timed(self, step: str) -> Iterator[None]:
        """Time the block as a step beside others."""
        started = time.monotonic()
        yield
        self.beside(step, time.monotonic() - started)

    def total_s(self) -> float:
        """Seconds since the demo started."""
        return time.monotonic() - self.started

    def table(self) -> Table:
        """The steps and their seconds; those run side by side indented under their lap."""
        table = Table(title="Where the time went (seconds)")
        table.add_column("step")
        table.add_column("s", justify="right")
        pending: list[tuple[str, float]] = []
        for step, seconds, beside in self.steps:
            if beside:
                pending.append((step, seconds))
                continue
            table.add_row(step, f"{seconds:.0f}")
            for inner, inner_s in pending:
                table.add_row(f"  ∥ {inner}", f"{inner_s:.0f}")
            pending.clear()
        table.add_row("[bold]total[/bold]", f"[bold]{self.total_s():.0f}[/bold]")
        return table


@dataclass
class _LaneResult:
    """What a lane printed (kind "step", "out": laid out already, or "print"),
    and the seconds of each of its steps."""

    printed: list[tuple[str, str]] = field(default_factory=list)
    steps: list[tuple[str, float]] = field(default_factory=list)


def _lane_main(send: Any, work: Callable[..., _LaneResult], args: tuple[Any, ...]) -> None:
    """A lane's process: a process group of its own (so that it can be stopped
    with every program it has started); sends back its result or its failure."""
    os.setpgid(0, 0)
    try:
        send.send(work(*args))
    except Exception as err:  # sent as text: the parent says it failed
        send.send(DeploymentError(f"{type(err).__name__}: {err}"))
    finally:
        send.close()


class _Lane:
    """Steps run in a spawned process beside the demo's (this process holds
    DuckDB's threads and the city's), in a process group of its own."""

    def __init__(self, work: Callable[..., _LaneResult], args: tuple[Any, ...]) -> None:
        context = multiprocessing.get_context("spawn")
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_lane_main, args=(send, work, args), name=work.__name__
        )
        self._process.start()
        send.close()

    def result(self) -> _LaneResult:
        """Wait for the lane; its result, or DeploymentError if it failed."""
        try:
            outcome = self._receive.recv()
        except EOFError:
            outcome = DeploymentError(f"the lane's process ended with {self._process.exitcode}")
        self._process.join()
        if isinstance(outcome, Exception):
            raise outcome
        assert isinstance(outcome, _LaneResult)
        return outcome

    def stop(self) -> None:
        """End the lane and what it started, if it still runs (the demo failed)."""
        if self._process.is_alive():
            pid = self._process.pid
            assert pid is not None
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()


def _outputs(console: Console, deployment: Deployment, out: Path, timings: _Timings) -> int:
    """The plan's indicators, every indicator's map and the yearly report, of
    the probes' results and of a synthetic city, in two lanes side by side,
    printed as each ends; returns how many lanes failed.

    Only once the measurement is over: work beside it, even at the lowest
    priority (nice 19), lowered the lines' figures (the synthetic city's
    lane run so during the cycles: 272 and 278 Mb/s on the 300 Mb/s lines,
    368 on the 400, 91.5 on the 100, against 0.956 × the rate without it).
    Side by side, the lanes fill each other's gaps on two cores: much of the
    work runs in one process (each CLI's start, the reports' gathering,
    WeasyPrint's PDF)."""
    year = str(datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).year)
    lanes = (
        (_Lane(_probes_lane, (deployment.python, deployment.store_path, out, year)),
         "the probes' results"),
        (_Lane(_synthetic_lane, (deployment.python, out, year)), "the synthetic city"),
    )  # fmt: skip
    failures = 0
    try:
        for lane, what in lanes:
            try:
                result = lane.result()
            except DeploymentError as err:
                console.print(f"[red]{what}: {err}[/red]", markup=True, highlight=False)
                failures += 1
                continue
            for kind, text in result.printed:
                if kind == "step":
                    _step(console, text)
                elif kind == "out":
                    # laid out by the CLI already: rich must not wrap it again
                    console.out(text, highlight=False)
                else:
                    console.print(text)
            for step, seconds in result.steps:
                timings.beside(step, seconds)
    finally:
        for lane, _ in lanes:
            lane.stop()
    timings.lap("indicators, maps and reports: two lanes side by side")
    return failures


def _cli(python: str, out: Path, *argv: str) -> str:
    """`wardprobe-aggregator ...` (as `python -m aggregator`): its stdout."""
    return Deployment(workdir=out, python=python).run(None, [python, "-m", "aggregator", *argv])


def _probes_lane(python: str, store: Path, out: Path, year: str) -> _LaneResult:
    """The indicators of what the demo's probes measured, through the CLI an
    analyst uses, then every indicator's map and the yearly report."""
    lane = _LaneResult()
    started = time.monotonic()
    lane.printed += [
        ("step", f"indicators for {year} on the demo's results (city figures)"),
        ("out", _cli(python, out, "indicators", "--period", year, "--store", str(store),
                     "--city-only")),
        ("print", "Six probes and two cycles are below the floor (3 probes and 30 valid tests "
                  "a figure), and a result counts only if its probe's clock was synchronised "
                  "(NTP): see 'Excluded results' above."),
    ]  # fmt: skip
    lane.steps.append(("indicators of the probes' results (CLI)", time.monotonic() - started))
    maps_s, maps_text = _write_maps(store, out / "maps" / "probes", year, synthetic=False)
    report_s, report_text = _write_report(store, out, year, synthetic=False)
    lane.printed += [("print", maps_text), ("print", report_text)]
    lane.steps += [
        ("maps of every indicator, the probes' results", maps_s),
        ("the yearly report (HTML and PDF), the probes' results", report_s),
    ]
    return lane


def _synthetic_lane(python: str, out: Path, year: str) -> _LaneResult:
    """A synthetic Cần Thơ, where every ward has data (the probes of a short
    demo are far below the floor): its indicators through the CLI, every
    indicator's map and the yearly report."""
    lane = _LaneResult()
    store = out / "synthetic_city.duckdb"
    lane.printed.append(
        ("step", f"a synthetic Cần Thơ (all 103 wards, marked synthetic) in {store}")
    )
    started = time.monotonic()
    _cli(python, out, "synthetic", "--store", str(store), "--year", year)
    lane.steps.append(("a synthetic Cần Thơ (103 wards)", time.monotonic() - started))
    started = time.monotonic()
    lane.printed += _synthetic_reference_figures(python, out, store, int(year))
    lane.steps.append(
        ("published IPv6 figures, made up (APNIC's, the provinces')", time.monotonic() - started)
    )
    started = time.monotonic()
    indicators = ["indicators", "--period", year, "--store", str(store), "--synthetic"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        table = pool.submit(_cli, python, out, *indicators, "--city-only")
        as_json = pool.submit(_cli, python, out, *indicators, "--format", "json")
        lane.printed.append(("out", table.result()))
        (out / "indicators_synthetic_city.json").write_text(as_json.result(), "utf-8")
    lane.steps.append(
        (
            "indicators of the synthetic city (CLI: table and JSON side by side)",
            time.monotonic() - started,
        )
    )
    maps_s, maps_text = _write_maps(store, out / "maps" / "synthetic", year, synthetic=True)
    report_s, report_text = _write_report(store, out, year, synthetic=True)
    lane.printed += [
        ("print", maps_text),
        ("print", report_text),
        ("print", f"every ward's figures: {out / 'indicators_synthetic_city.json'} "
                  f"(wardprobe-aggregator indicators --period {year} --store {store} "
                  "--synthetic)"),
    ]  # fmt: skip
    lane.steps += [
        ("maps of every indicator, the synthetic city", maps_s),
        ("the yearly report (HTML and PDF), the synthetic city", report_s),
    ]
    return lane


def _synthetic_reference_figures(
    python: str, out: Path, store: Path, year: int
) -> list[tuple[str, str]]:
    """Made-up APNIC and provincial IPv6 figures (their source says SYNTHETIC)
    imported into the synthetic city through the CLI an operator uses, so that
    ipv6_leading_provinces has something to set the probes beside."""
    from analysis.reference_figures import SYNTHETIC_SOURCE, write_synthetic

    files = write_synthetic(out / "reference_figures", year)
    day = f"{year}-06-30"
    printed = [
        (
            "step",
            f"published IPv6 figures, made up and marked synthetic: {files['provinces'].parent}",
        )
    ]
    for kind in ("apnic_networks", "apnic_economies"):
        printed.append(
            ("out", _cli(python, out, "reference-figures", "import-apnic", str(files[kind]),
                         "--date", day, "--source", SYNTHETIC_SOURCE, "--store", str(store)))
        )  # fmt: skip
    printed.append(
        ("out", _cli(python, out, "reference-figures", "import-vnnic", str(files["provinces"]),
                     "--store", str(store)))
    )  # fmt: skip
    return printed


def _write_maps(store: Path, out_dir: Path, year: str, *, synthetic: bool) -> tuple[float, str]:
    """The map of every indicator for the year (one HTML page switching between
    them, a PNG and a GeoJSON each), as `wardprobe-aggregator map` draws them;
    the seconds it took and a line saying what was written."""
    from analysis.indicators import open_store, parse_period
    from analysis.maps import (
        boundary_reconciliation,
        reconciliation_report,
        ward_layers,
        write_all_maps,
    )

    started = time.monotonic()
    con = open_store(store)
    try:
        layers = ward_layers(con, parse_period(year), synthetic=synthetic)
    finally:
        con.close()
    written = write_all_maps(layers, out_dir)
    (out_dir / "boundaries_vs_registry.txt").write_text(
        reconciliation_report(boundary_reconciliation()), "utf-8"
    )
    what = "the synthetic city" if synthetic else "the probes' results"
    seconds = time.monotonic() - started
    return seconds, (
        f"maps of {len(layers)} indicator layers for {year} on {what}: {out_dir / 'index.html'} "
        f"(all of them, in a browser), and a PNG and a GeoJSON each: {len(written)} files in "
        f"{out_dir} ({seconds:.0f} s)"
    )


def _write_report(store: Path, out: Path, year: str, *, synthetic: bool) -> tuple[float, str]:
    """The yearly report (docs/report.md) as HTML and PDF, as `wardprobe-aggregator
    report` writes it; its maps are the PNGs _write_maps has just drawn. The
    seconds it took and a line saying what was written."""
    from analysis.indicators import open_store
    from analysis.labels import Lang
    from analysis.maps import WardLayer, layer_file_name, png_bytes
    from analysis.report import write_reports

    maps = out / "maps" / ("synthetic" if synthetic else "probes")

    def drawn(layer: WardLayer, lang: Lang) -> bytes:
        # the demo's maps are Vietnamese, as the report is
        path = maps / f"{layer_file_name(layer)}.png"
        return path.read_bytes() if lang == "vi" and path.is_file() else png_bytes(layer, lang)

    started = time.monotonic()
    outs = [out / f"{_report_name(synthetic)}.html", out / f"{_report_name(synthetic)}.pdf"]
    con = open_store(store)
    try:
        write_reports(con, int(year), outs, "vi", synthetic, map_png=drawn)
    finally:
        con.close()
    what = "the synthetic city" if synthetic else "the probes' results"
    seconds = time.monotonic() - started
    return seconds, (
        f"the yearly report for {year} on {what}: {outs[0]} and {outs[1]} "
        f"({seconds:.0f} s; wardprobe-aggregator report --year {year})"
    )


def _report_name(synthetic: bool) -> str:
    return "report_synthetic_city" if synthetic else "report_probes"


def _where(out: Path) -> Table:
    """What the demo wrote, where (relative to `out`), in a short list."""

    def count(folder: Path, suffix: str) -> int:
        return sum(1 for _ in folder.glob(f"*{suffix}")) if folder.is_dir() else 0

    table = Table(title=f"Where everything is (in {out})", show_header=False)
    table.add_column("what")
    table.add_column("file")
    rows = [
        ("the store (DuckDB) of the probes' results", "wardprobe.duckdb"),
        ("per-ward summary (TSV)", "ward_summary.tsv"),
    ]
    for name, folder in (("the probes' results", "probes"), ("the synthetic city", "synthetic")):
        maps = out / "maps" / folder
        rows.append(
            (
                f"maps of every indicator, {name}",
                f"maps/{folder}/index.html (all, in a browser); "
                f"{count(maps, '.png')} PNG, {count(maps, '.geojson')} GeoJSON beside it",
            )
        )
    for name, synthetic in (("the probes' results", False), ("the synthetic city", True)):
        rows.append((f"yearly report, {name}", f"{_report_name(synthetic)}.html, .pdf"))
    rows += [
        ("every ward's figures, the synthetic city (JSON)", "indicators_synthetic_city.json"),
        ("the synthetic city's store", "synthetic_city.duckdb"),
        ("published IPv6 figures imported into it (made up, SYNTHETIC)", "reference_figures/"),
        ("logs: aggregator, reference server, each agent cycle", "logs/"),
    ]
    for what, where in rows:
        table.add_row(what, where)
    return table


def _path_table(store: Path) -> Table:
    """One traceroute per probe (its latest ICMP trace of the reference server
    over IPv4), its IPv6 path MTU and its DNS resolution time."""
    table = Table(title="Where the path is: one traceroute per probe (median RTT per hop)")
    for column in ("probe", "hops (segment address ms)", "access ms", "IPv6 path MTU", "DNS ms"):
        table.add_column(column)
    import json

    import duckdb

    # The demo's boxes by the name of their state directory (all share one host name).
    names = {
        json.loads((state / "enrolment.json").read_text("utf-8"))["probe_id"]: state.name
        for state in (store.parent / "probes").iterdir()
    }
    with duckdb.connect(str(store), read_only=True) as con:
        rows = con.execute(
            """
            with names as (select probe_id from probes),
            trace as (
                select probe_id, hops, access_rtt_ms,
                       row_number() over (partition by probe_id order by measured_at desc) as n
                from traceroute
                where status = 'ok' and protocol = 'icmp' and ip_family = 'ipv4'
            ),
            pmtu as (
                select probe_id, path_mtu, pmtu_blackhole, ptb_received,
                       row_number() over (partition by probe_id order by measured_at desc) as n
                from ipv6_pmtu where status = 'ok'
            ),
            resolution as (
                select probe_id, median(time_median_ms) as dns_ms from dns group by probe_id
            )
            select n.probe_id, t.hops, t.access_rtt_ms, m.path_mtu, m.pmtu_blackhole,
                   m.ptb_received, r.dns_ms
            from names n
            left join trace t on t.probe_id = n.probe_id and t.n = 1
            left join pmtu m on m.probe_id = n.probe_id and m.n = 1
            left join resolution r on r.probe_id = n.probe_id
            """
        ).fetchall()
    for probe_id, hops, access_ms, mtu, hole, ptb, dns_ms in sorted(
        rows, key=lambda r: names.get(r[0], r[0])
    ):
        path = " → ".join(
            f"{h['segment'] or '*'} {h['address'] or '*'} "
            f"{_fmt(statistics.median(h['rtts_ms']) if h['rtts_ms'] else None)}"
            for h in hops or []
        )
        mtu_text = (
            "—"
            if mtu is None
            else f"{mtu}" + (" (black hole)" if hole else " (Packet Too Big)" if ptb else "")
        )
        table.add_row(
            names.get(probe_id, probe_id), path or "—", _fmt(access_ms), mtu_text, _fmt(dns_ms)
        )
    return table


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _mobile_downloads(store: Path) -> list[tuple[str, ...]]:
    """Per mobile probe and access technology at the start of the test: the
    modem, its operator and the mean download."""
    import json

    import duckdb

    with duckdb.connect(str(store), read_only=True) as con:
        rows = con.execute(
            """
            with modems as (
                select probe_id, any_value(modem_model) as model,
                       bool_or(modem_5g_capable) as capable
                from cellular where modem_model is not null group by probe_id
            )
            select t.probe_id, m.model, m.capable, t.operator_name, t.access_tech,
                   avg(t.mbps)
            from throughput t left join modems m using (probe_id)
            where t.network_kind = 'mobile' and t.direction = 'download' and t.status = 'ok'
            group by all
            order by t.probe_id, t.access_tech
            """
        ).fetchall()
    names = {
        json.loads((state / "enrolment.json").read_text("utf-8"))["probe_id"]: state.name
        for state in (store.parent / "probes").iterdir()
    }
    return [
        (
            names.get(probe_id, probe_id),
            str(model),
            "yes" if capable else "no (probe-limited)",
            str(operator or "?"),
            str(tech or "?"),
            _fmt(mbps),
        )
        for probe_id, model, capable, operator, tech, mbps in rows
    ]


def _downloads_by_probe(store: Path) -> dict[str, tuple[float | None, float | None]]:
    """Mean download and upload per demo box (by the name of its state directory)."""
    import json

    import duckdb

    with duckdb.connect(str(store), read_only=True) as con:
        rows = con.execute(
            "select probe_id, direction, avg(mbps) from throughput where status = 'ok' group by all"
        ).fetchall()
    names = {
        json.loads((state / "enrolment.json").read_text("utf-8"))["probe_id"]: state.name
        for state in (store.parent / "probes").iterdir()
    }
    result: dict[str, tuple[float | None, float | None]] = {}
    for probe_id, direction, mbps in rows:
        name = names.get(probe_id, probe_id)
        down, up = result.get(name, (None, None))
        result[name] = (mbps, up) if direction == "download" else (down, mbps)
    return result


if __name__ == "__main__":
    typer.run(main)
