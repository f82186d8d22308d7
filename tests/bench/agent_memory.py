"""Agent footprint benchmark: what the probe box holds between tests and during them.

Runs the real processes on loopback (emulation.deployment: a fresh CA, the
aggregator, the reference server), enrols one box and starts
`wardprobe-agent run` with the full fixed-line schedule (ICMP and TCP
latency, download, upload, IPv6, each every 600 s). It samples the daemon
and every process under it every 50 ms through the first cycle and its
uploads, then watches the idle daemon for `--idle-s` seconds:

- the daemon's resident memory (VmRSS, and PSS) while idle after a cycle:
  the issue's figure, ≤ 40 MB;
- the largest worker's resident memory and the whole tree's peak during
  the cycle (what the box needs while a test runs);
- CPU seconds of the daemon and of its workers for the cycle, and the
  start-up cost of a worker (Python and its imports).

Usage: python tests/bench/agent_memory.py [--idle-s 30] [--duration-s 5]
Writes its table into docs/benchmarks.md (between the agent-memory markers).
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from emulation.deployment import CentralPorts, Deployment  # noqa: E402

DOCS = REPO / "docs" / "benchmarks.md"
BEGIN = "<!-- agent-memory:begin -->"
END = "<!-- agent-memory:end -->"
NINH_KIEU = 31135
MEASUREMENTS = ("latency_icmp", "latency_tcp", "download", "upload", "ipv6")
MiB = 1024 * 1024


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _pss_mb(process: psutil.Process) -> float:
    return float(process.memory_full_info().pss) / MiB


def _import_cost_s() -> float:
    """Wall time of a worker's imports (Python start-up included), best of 3."""
    times = []
    for _ in range(3):
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", "import agent.worker"], check=True, cwd=REPO)
        times.append(time.monotonic() - started)
    return min(times)


def main() -> None:
    """Run the deployment, sample the agent's processes, write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--idle-s", type=float, default=30.0)
    parser.add_argument("--duration-s", type=int, default=5, help="throughput test length")
    args = parser.parse_args()

    schedule = "".join(
        f'[[schedule]]\nmeasurement = "{name}"\ninterval_s = 600\njitter_s = 0\n'
        for name in MEASUREMENTS
    )
    with (
        tempfile.TemporaryDirectory(prefix="wp-agentmem-") as workdir,
        Deployment(
            workdir=Path(workdir),
            ports=CentralPorts.on_loopback(iperf3_pool=2),
            throughput_duration_s=args.duration_s,
        ) as deployment,
    ):
        deployment.init_central()
        deployment.start_aggregator()
        deployment.start_reference_server()
        box = deployment.add_probe("mem", NINH_KIEU, "household", agent_toml_extra=schedule)
        started = time.monotonic()
        daemon_popen = deployment.start_agent(box, "run")
        daemon = psutil.Process(daemon_popen.pid)

        peak_tree_mb = peak_worker_mb = 0.0
        workers_seen: set[int] = set()
        # The cycle: until every test has run and the spool is delivered (no worker left).
        while True:
            tree = _tree(daemon)
            total = 0.0
            for process in tree:
                try:
                    rss_mb = process.memory_info().rss / MiB
                    if process.pid != daemon.pid:
                        workers_seen.add(process.pid)
                        peak_worker_mb = max(peak_worker_mb, rss_mb)
                except psutil.NoSuchProcess:
                    continue
                total += rss_mb
            peak_tree_mb = max(peak_tree_mb, total)
            status = subprocess.run(
                deployment.agent_argv(box, "status"), capture_output=True, text=True, check=False
            ).stdout
            if (
                all(f"{name}:" in status for name in MEASUREMENTS)
                and "spool_depth: 0" in status
                and len(tree) == 1
            ):
                break
            if daemon_popen.poll() is not None or time.monotonic() - started > 600:
                raise SystemExit(deployment.log_tail("agent-mem-run"))
            time.sleep(0.05)
        cycle_s = time.monotonic() - started
        daemon_cpu = daemon.cpu_times()

        idle_rss = []
        idle_started = time.monotonic()
        while time.monotonic() - idle_started < args.idle_s:
            idle_rss.append(daemon.memory_info().rss / MiB)
            time.sleep(0.5)
        idle_pss = _pss_mb(daemon)
        maps = Path(f"/proc/{daemon.pid}/maps").read_text()
        heavy = sorted(
            lib for lib in ("cygrpc", "_pydantic_core", "libcrypto", "libssl") if lib in maps
        )
        daemon_popen.send_signal(signal.SIGTERM)
        daemon_popen.wait(30)

    import_s = _import_cost_s()
    rows = [
        ("daemon resident memory, idle after a cycle (VmRSS: max / min over "
         f"{args.idle_s:.0f} s)", f"{max(idle_rss):.1f} / {min(idle_rss):.1f} MB"),
        ("daemon proportional memory (PSS, shared libraries split)", f"{idle_pss:.1f} MB"),
        ("libraries mapped by the idle daemon among cygrpc, pydantic-core, libcrypto, libssl",
         ", ".join(heavy) or "none"),
        ("largest worker during the cycle (VmRSS)", f"{peak_worker_mb:.1f} MB"),
        ("whole agent tree at its peak (daemon + worker + iperf3 child)", f"{peak_tree_mb:.1f} MB"),
        (f"first cycle: {len(MEASUREMENTS)} tests ({args.duration_s} s throughput each way) "
         "and the uploads, wall time", f"{cycle_s:.1f} s"),
        ("CPU of the daemon itself over the cycle",
         f"{daemon_cpu.user + daemon_cpu.system:.2f} s"),
        (f"CPU of its {len(workers_seen)} workers (with their iperf3 children)",
         f"{daemon_cpu.children_user + daemon_cpu.children_system:.1f} s"),
        ("a worker's start-up (Python + its imports), wall, best of 3", f"{import_s:.2f} s"),
    ]  # fmt: skip
    table = "\n".join(
        ["| figure | value |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)]
    )
    print(table)
    text = DOCS.read_text("utf-8")
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _old, tail = rest.split(END, 1)
        DOCS.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}", "utf-8")
    else:
        print(f"(no {BEGIN} markers in {DOCS}: table not written)")


if __name__ == "__main__":
    main()
