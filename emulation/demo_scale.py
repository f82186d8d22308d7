"""The demo's scale mode (`make demo-scale`): aggregator replicas on one lake.

Starts a throwaway PostgreSQL cluster (emulation/postgres.py) for the lake's
catalogue, two `wardprobe-aggregator serve` replicas on that lake set up as
on two hosts (a state directory each, the CA's files copied into the second;
the probe registry in PostgreSQL beside the catalogue, aggregator.toml's
`registry`), the reference server, and a handful of probe boxes whose agent.toml
lists both replicas (`aggregators = [...]`). The boxes run measurement
cycles with the real agent (emulation/cycles.py), all starting on replica A
(the one their spool says they used last). Once half the cycles have ended,
replica A is killed with SIGKILL; the cycles still running upload to it,
fail, and fail over to replica B. Then the demo counts, table by table, what
the lake holds against every result the agents printed (nothing lost,
nothing doubled), prints the plan's indicators read from the lake through
the analysts' CLI, and copies the lake into a DuckDB file.

It runs on loopback, unshaped: what it shows is the replicas, not the access
lines (`make demo` is the city). Everything it writes goes to --out (default
demo-scale-out/): the replicas' configs and logs, the boxes' state and
logs, lake_counts.tsv, indicators.json and lake_copy.duckdb. The
PostgreSQL cluster and the lake's own files are deleted at the end.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from agent.runtime import SPOOL_FILE
from agent.spool import Spool
from agent.uploader import IN_USE_STATE
from aggregator.ingest.lake import connect_lake
from aggregator.ingest.stores import LakeSpec, parse_store_spec
from aggregator.ingest.tables import RESULT_TABLES
from analysis.indicators.export import rounded_floats
from emulation.cycles import CycleRun, run_cycles
from emulation.deployment import CentralPorts, Deployment, DeploymentError, ProbeBox, free_tcp_port
from emulation.postgres import PostgresCluster, PostgresMissing, throwaway_root

NINH_KIEU = 31135  # every box in one ward: the indicators' floor is 3 probes a ward
# A replica compacts the lake this often here (1 h in production): the demo
# lasts minutes, and compaction beside ingest is part of what it shows.
COMPACT_INTERVAL_S = 20


@dataclass(frozen=True)
class Replica:
    """One aggregator replica: its process name (logs/<name>.log), config and ports."""

    name: str
    config: Path
    ingest_port: int
    enrol_port: int

    @property
    def address(self) -> str:
        """Its ingest address, as the agents list it."""
        return f"127.0.0.1:{self.ingest_port}"


@dataclass(frozen=True)
class TableCount:
    """What the lake holds of one table at the end."""

    table: str
    rows: int
    distinct_ids: int
    sent: int  # results the agents printed for this table


def main(
    out: Annotated[Path, typer.Option(help="Where the demo writes everything.")] = Path(
        "demo-scale-out"
    ),
    boxes: Annotated[int, typer.Option(help="Probe boxes (3 at least: the floor).", min=3)] = 4,
    cycles: Annotated[int, typer.Option(help="Measurement cycles per box.", min=2)] = 3,
) -> None:
    """Two aggregator replicas on one lake, one killed mid-way; nothing lost or doubled."""
    console = Console(width=max(110, Console().width))
    started = time.monotonic()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    out = out.resolve()
    try:
        cluster = PostgresCluster(throwaway_root("wardprobe-demo-pg-"), fsync=False)
    except PostgresMissing as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(code=1) from None
    _step(console, f"PostgreSQL for the lake's catalogue: a throwaway cluster in {cluster.root}")
    cluster.start()
    lake = cluster.lake(cluster.root / "lake-data")
    deployment = Deployment(
        workdir=out,
        ports=CentralPorts.on_loopback(),
        throughput_duration_s=2,
        latency_count=5,
        # The replicas' shared registry, in the catalogue's database.
        registry=cluster.uri,
    )
    try:
        failures = _run(console, deployment, lake.store_spec, out, boxes, cycles)
    finally:
        deployment.close()
        cluster.stop(immediate=True)  # deleted next: nothing of it is kept
        shutil.rmtree(cluster.root, ignore_errors=True)
    console.print(
        f"\n[bold]demo-scale finished in {time.monotonic() - started:.0f} s[/bold]; "
        f"everything is in {out}"
    )
    if failures:
        console.print(f"[red]{failures} check(s) failed; see above and {out / 'logs'}[/red]")
        raise typer.Exit(code=1)


def _step(console: Console, text: str) -> None:
    console.print(f"[bold cyan]»[/bold cyan] {text}")


def _replica_config(template: str, store: str, ingest: int, enrol: int, state: Path) -> str:
    """aggregator.toml as deployment.py writes it, on the lake, on its own
    ports, with its own state directory."""
    keys = {
        "state_dir": f'state_dir = "{state}"',
        "store_path": f"store = '{store}'",  # a literal string: the URI as it is
        "ingest_listen": f'ingest_listen = "127.0.0.1:{ingest}"',
        "enrol_listen": f'enrol_listen = "127.0.0.1:{enrol}"',
        "ingest_public_address": f'ingest_public_address = "127.0.0.1:{ingest}"',
    }
    for key, line in keys.items():
        # The line as it is: a backslash in a path must not be read as a group.
        template, found = re.subn(
            rf"^{key} = .*$", line.replace("\\", "\\\\"), template, count=1, flags=re.M
        )
        if not found:
            raise DeploymentError(f"aggregator.toml has no {key} line")
    lake_keys = f"lake_compact_interval_s = {COMPACT_INTERVAL_S}\n"
    return template.replace("\n[reference_server]", f"{lake_keys}\n[reference_server]", 1)


def _run(
    console: Console, deployment: Deployment, store: str, out: Path, boxes: int, cycles: int
) -> int:
    """The demo's steps; how many checks failed."""
    _step(console, "central site: the CA, two replica configs on one lake, the reference server")
    deployment.init_central()
    template = deployment.aggregator_config_path.read_text("utf-8")
    # Replica B's own state directory, as on another host: the CA's files copied.
    state_b = deployment.aggregator_dir.parent / "aggregator-b"
    shutil.copytree(deployment.aggregator_dir, state_b, ignore=shutil.ignore_patterns("*.toml"))
    _step(
        console,
        f"replica B's state directory {state_b.name}/ holds a copy of the CA's files; both "
        "read the probe registry in PostgreSQL (aggregator.toml's registry)",
    )
    replicas = []
    for name, ingest, enrol, state in (
        ("replica-a", deployment.ports.ingest, deployment.ports.enrol, deployment.aggregator_dir),
        ("replica-b", free_tcp_port(), free_tcp_port(), state_b),
    ):
        config = deployment.aggregator_dir / f"{name}.toml"
        config.write_text(_replica_config(template, store, ingest, enrol, state), "utf-8")
        replicas.append(Replica(name, config, ingest, enrol))
    for replica in replicas:
        deployment.start_aggregator(
            replica.name, replica.config, (replica.ingest_port, replica.enrol_port)
        )
        _step(
            console, f"{replica.name} serves ingest at {replica.address} (logs/{replica.name}.log)"
        )
    deployment.start_reference_server()
    victim, survivor = replicas

    listed = ", ".join(f'"{r.address}"' for r in replicas)
    probes: list[ProbeBox] = []
    for n in range(1, boxes + 1):
        box = deployment.add_probe(f"box-{n}", NINH_KIEU, "household")
        text = box.config_path.read_text("utf-8")
        # A top-level key: before agent.toml's first table.
        box.config_path.write_text(
            text.replace("\n[preflight]", f"\naggregators = [{listed}]\n\n[preflight]", 1),
            "utf-8",
        )
        # As if A had taken its last upload: every box starts there.
        spool = Spool(box.state_dir / SPOOL_FILE)
        spool.set_state(IN_USE_STATE, victim.address)
        spool.close()
        probes.append(box)
    _step(
        console,
        f"enrolled {boxes} boxes in ward {NINH_KIEU}; each agent.toml lists both replicas "
        f"(aggregators = [{listed}]), each box starts on {victim.name}",
    )

    total = boxes * cycles
    ended: list[CycleRun] = []
    failures = 0

    def on_end(run: CycleRun) -> None:
        nonlocal failures
        ended.append(run)
        if run.code != 0 or not run.results:
            failures += 1
            console.print(f"[red]{run.cycle.box.name}: agent exited {run.code}[/red]")
        _step(
            console,
            f"cycle {run.cycle.number}/{cycles} {run.cycle.box.name}: {len(run.results)} results, "
            f"{_uploaded(run)}",
        )
        if len(ended) == total // 2:
            code = deployment.stop_aggregator(10.0, victim.name, signal.SIGKILL)
            _step(
                console,
                f"[bold]SIGKILL {victim.name}[/bold] (exit {code}) with {total - len(ended)} "
                "cycles to go: their uploads find it gone",
            )

    _step(console, f"measuring: {cycles} cycles a box, side by side as the reference server allows")
    runs = run_cycles(deployment, probes, cycles, logs=out / "logs", on_end=on_end)

    failovers = [line for run in runs for line in _failover_lines(run)]
    console.print(f"\n[bold]Failover[/bold]: {len(failovers)} upload(s) moved to another replica")
    for line in failovers:
        console.print(f"  {line}", markup=False, highlight=False)
    if not failovers:
        failures += 1
        console.print("[red]no agent failed over: the kill landed after every upload[/red]")

    _step(console, f"stopping {survivor.name} (SIGTERM: its commit groups finish first)")
    code = deployment.stop_aggregator(30.0, survivor.name)
    if code != 0:
        failures += 1
        console.print(
            f"[red]{survivor.name} exited {code}[/red]\n{deployment.log_tail(survivor.name)}"
        )
    for replica in replicas:
        for line in _compactions(out / "logs" / f"{replica.name}.log"):
            console.print(f"  {replica.name}: {line}", markup=False, highlight=False)

    spec = parse_store_spec(store)
    assert isinstance(spec, LakeSpec)
    counts, missing, extra = _count(spec, runs)
    console.print(_counts_table(counts, missing, extra))
    (out / "lake_counts.tsv").write_text(
        "table\trows\tdistinct_ids\tsent\n"
        + "".join(f"{c.table}\t{c.rows}\t{c.distinct_ids}\t{c.sent}\n" for c in counts),
        "utf-8",
    )
    if missing or extra or any(c.rows != c.distinct_ids or c.rows != c.sent for c in counts):
        failures += 1
        console.print(f"[red]the lake does not hold every result once: {missing} missing, "
                      f"{extra} not sent[/red]")  # fmt: skip
    else:
        console.print(
            f"[green]nothing lost, nothing doubled: {_sent(counts)} results "
            "sent, each once in the lake[/green]"
        )

    failures += _indicators(console, deployment, spec, survivor.config, out)
    return failures


def _sent(counts: list[TableCount]) -> int:
    """Results the agents sent (result_ids counts them again)."""
    return sum(c.sent for c in counts if c.table != "result_ids")


def _uploaded(run: CycleRun) -> str:
    """The agent's `uploaded: ...` line (its stderr), or that it printed none."""
    text = run.log.read_text("utf-8", "replace") if run.log.is_file() else ""
    lines = [line for line in text.splitlines() if line.startswith("uploaded:")]
    return lines[-1] if lines else "no upload reported"


def _failover_lines(run: CycleRun) -> list[str]:
    """The uploader's warnings that it left one replica for the other, short:
    which replica failed, gRPC's status, and the one it went on to."""
    text = run.log.read_text("utf-8", "replace") if run.log.is_file() else ""
    lines = []
    for line in text.splitlines():
        found = re.search(r"aggregator (\S+) failed \((\w+).*\); trying (\S+) in", line)
        if found is not None:
            failed, status, next_one = found.groups()
            lines.append(
                f"{run.cycle.box.name} cycle {run.cycle.number}: {failed} failed ({status}), "
                f"went on to {next_one}"
            )
    return lines


def _compactions(log: Path) -> list[str]:
    """A replica's compaction lines (done or failed)."""
    text = log.read_text("utf-8", "replace") if log.is_file() else ""
    return [
        line.split(": ", 1)[-1] if "lake compacted" in line else line
        for line in text.splitlines()
        if "lake compacted" in line or "lake compaction failed" in line
    ]


def _count(spec: LakeSpec, runs: list[CycleRun]) -> tuple[list[TableCount], int, int]:
    """Per result table: rows, distinct ids and results sent; then how many
    sent results the lake lacks and how many it holds that were not sent."""
    sent_ids: dict[str, str] = {}
    for run in runs:
        for result in run.results:
            envelope = result.get("envelope")
            if isinstance(envelope, dict) and "result_id" in envelope:
                sent_ids[str(envelope["result_id"])] = str(run.cycle.box.name)
    con = connect_lake(spec, read_only=True)
    try:
        stored: Counter[str] = Counter()
        counts = []
        for table in RESULT_TABLES:
            ids = [str(r[0]) for r in con.execute(f"select result_id from {table}").fetchall()]
            stored.update(ids)
            sent = sum(1 for i in ids if i in sent_ids)
            counts.append(TableCount(table, len(ids), len(set(ids)), sent))
        row = con.execute("select count(*), count(distinct result_id) from result_ids").fetchone()
        if row is not None:
            counts.append(TableCount("result_ids", int(row[0]), int(row[1]), len(sent_ids)))
    finally:
        con.close()
    missing = sum(1 for i in sent_ids if i not in stored)
    extra = sum(1 for i in stored if i not in sent_ids)
    return [c for c in counts if c.rows or c.sent], missing, extra


def _counts_table(counts: list[TableCount], missing: int, extra: int) -> Table:
    table = Table(title=f"The lake at the end ({missing} sent results missing, {extra} not sent)")
    for column in ("table", "rows", "distinct result ids", "sent by the agents"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for c in counts:
        table.add_row(c.table, str(c.rows), str(c.distinct_ids), str(c.sent))
    return table


def _indicators(
    console: Console, deployment: Deployment, store: LakeSpec, config: Path, out: Path
) -> int:
    """The plan's indicators read from the lake (read-only, as an analyst
    attaches it) through `wardprobe-aggregator indicators`, and again on a
    DuckDB copy of the lake; 1 when either failed or they differ."""
    year = str(datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).year)
    argv = [deployment.python, "-m", "aggregator", "indicators", "--period", year,
            "--config", str(config)]  # fmt: skip
    _step(console, f"indicators for {year} read from the lake ({config.name}'s store, read-only)")
    try:
        console.out(deployment.run(None, [*argv, "--city-only"]), highlight=False)
        console.print(
            "A few boxes and cycles are below most figures' floor (3 probes and 30 valid "
            "tests), and a result counts only if its probe's clock was synchronised (NTP): "
            "see 'Excluded results' above."
        )
        (out / "indicators.json").write_text(
            deployment.run(None, [*argv, "--format", "json"]), "utf-8"
        )
        # The same CLI on the lake's copy: a lake reads as the file does.
        _copy_lake(store, out / "lake_copy.duckdb")
        on_copy = deployment.run(
            None, [*argv, "--store", str(out / "lake_copy.duckdb"), "--format", "json"]
        )
    except DeploymentError as err:
        console.print(f"[red]{err}[/red]", markup=False, highlight=False)
        return 1
    _step(console, f"the lake copied into {out / 'lake_copy.duckdb'} (open it with DuckDB)")
    on_lake = json.loads((out / "indicators.json").read_text("utf-8"))
    if rounded_floats(json.loads(on_copy)) != rounded_floats(on_lake):
        console.print("[red]the indicators on the lake's copy differ from the lake's[/red]")
        return 1
    console.print("[green]the same indicators computed on the copy equal the lake's[/green]")
    return 0


def _copy_lake(spec: LakeSpec, target: Path) -> None:
    """Every table of the lake, as it is at the end, into a DuckDB file."""
    con = connect_lake(spec, read_only=True)
    try:
        con.execute(f"attach '{target}' as lake_copy")
        con.execute("copy from database lake to lake_copy")
        con.execute("detach lake_copy")
    finally:
        con.close()


if __name__ == "__main__":
    typer.run(main)
