"""Measurement fidelity: our agent beside iperf3, speedtest-cli and ping, same link, same run.

For each shaped line (10, 50, 100, 300, 1000 Mb/s; tbf both ways) and added
round trip (0, 20, 50 ms through emulation/delayline.py),
three namespaces probe — router — server are built (emulation.delayline.
routed_line), the server runs `iperf3 -s` and the speedtest mini, and from
the probe namespace, one after the other:

1. `ping -c 20 -i 0.2` (iputils) and the agent's ICMP latency test (20
   echoes, 0.2 s apart): median RTTs;
2. the agent's download (agent/measurements/throughput/: libiperf in a
   child, 4 streams, 2 s warm-up omitted, 10 s measured), with its CPU time
   (the agent process and its iperf3 child) and loaded RTT;
3. the iperf3 command line, same settings (`iperf3 -c -R -P 4 -O 2 -t 10`);
4. speedtest-cli (the agent's second backend) against the mini.

Then the agent's memory: a fresh agent process runs a cycle (download,
upload, ICMP latency) on the 1000 Mb/s line and reports its resident set
size afterwards, idle, and whether heavy modules were loaded.

Usage (root, namespaces):
    python tests/bench/fidelity.py [--rates 10,50] [--delays 20,50 | --quick] [--no-write]
Writes the table into docs/benchmarks.md (between the fidelity markers) and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from emulation.delayline import SERVER_ADDRESS, routed_line  # noqa: E402

DOCS = REPO / "docs" / "benchmarks.md"
BEGIN = "<!-- fidelity:begin -->"
END = "<!-- fidelity:end -->"
DURATION_S, OMIT_S, STREAMS = 10, 2, 4
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def in_ns(netns: str, *argv: str, timeout_s: float = 120) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", netns, *argv],
        capture_output=True, text=True, check=True, timeout=timeout_s, cwd=REPO, env=ENV,
    ).stdout  # fmt: skip


def python_in(netns: str, code: str, timeout_s: float = 120) -> Any:
    return json.loads(in_ns(netns, sys.executable, "-c", code, timeout_s=timeout_s))


AGENT_DOWNLOAD = f"""
import json, resource, time
from agent.measurements.throughput import Direction, ThroughputParams, run
t0 = time.monotonic()
r = run(ThroughputParams(server_host={SERVER_ADDRESS!r}, ports=(5201,),
        direction=Direction.DOWNLOAD, duration_s={DURATION_S}, omit_s={OMIT_S},
        streams={STREAMS}, timeout_s=90))
wall = time.monotonic() - t0
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
print(json.dumps(dict(status=str(r.status), reason=r.status_reason, mbps=r.mbps,
      loaded=r.loaded_rtt_median_ms, idle=r.idle_rtt_median_ms, retrans=r.retransmits,
      cpu_pct=100 * cpu / wall)))
"""

AGENT_LATENCY = f"""
import json
from agent.measurements.latency import LatencyParams, LatencyProtocol, run
r = run(LatencyParams(protocol=LatencyProtocol.ICMP, target={SERVER_ADDRESS!r},
        count=20, interval_s=0.2))
print(json.dumps(dict(median=r.rtt_median_ms, loss=r.loss_pct)))
"""

SPEEDTEST = f"""
import json, warnings
from agent.measurements.speedtest import SpeedtestParams, mini_urls, run
from agent.measurements.throughput import Direction
c, s = mini_urls({SERVER_ADDRESS!r}, 8080)
r = run(SpeedtestParams(config_url=c, server_url=s, direction=Direction.DOWNLOAD, timeout_s=60))
print(json.dumps(dict(status=str(r.status), reason=r.status_reason, mbps=r.mbps,
      seconds=r.measured_s)))
"""

MINI = """
import asyncio, sys
from aggregator.reference.speedtest_mini import SpeedtestMini
async def main():
    mini = SpeedtestMini([sys.argv[1]], 8080)
    await mini.start()
    print("listening", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""

AGENT_CYCLE = f"""
import gc, json, sys, time
import agent.worker  # a worker's imports: gRPC, protobuf, pydantic, the spool
from agent.measurements import run_measurement
from agent.measurements.base import MeasurementContext
ctx = MeasurementContext(server_host={SERVER_ADDRESS!r}, iperf3_ports=(5201,),
      throughput_duration_s=5, latency_count=5, latency_interval_s=0.2, timeout_s=60)
for name in ("download", "upload", "latency_icmp"):
    run_measurement(name, ctx)
gc.collect()
time.sleep(1)
rss_kb = int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmRSS")))
heavy = sorted(m for m in ("scapy", "pyarrow", "duckdb", "numpy", "speedtest") if m in sys.modules)
print(json.dumps(dict(rss_mb=rss_kb / 1024, heavy=heavy)))
"""


def ping_median_ms(netns: str) -> float:
    out = in_ns(netns, "ping", "-n", "-c", "20", "-i", "0.2", SERVER_ADDRESS)
    return statistics.median(float(m) for m in re.findall(r"time=([\d.]+) ms", out))


def iperf3_cli_mbps(netns: str) -> tuple[float, float]:
    t0 = time.monotonic()
    document = json.loads(
        in_ns(netns, "iperf3", "-c", SERVER_ADDRESS, "-R", "-P", str(STREAMS), "-O", str(OMIT_S),
              "-t", str(DURATION_S), "--json")
    )  # fmt: skip
    cpu = document["end"].get("cpu_utilization_percent", {}).get("host_total", 0.0)
    _ = time.monotonic() - t0
    return document["end"]["sum_received"]["bits_per_second"] / 1e6, float(cpu)


def start_servers(server: str) -> list[subprocess.Popen[str]]:
    iperf = subprocess.Popen(
        ["ip", "netns", "exec", server, "iperf3", "-s", "-p", "5201"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    mini = subprocess.Popen(
        ["ip", "netns", "exec", server, sys.executable, "-c", MINI, SERVER_ADDRESS],
        stdout=subprocess.PIPE, text=True, cwd=REPO, env=ENV,
    )  # fmt: skip
    assert mini.stdout is not None and mini.stdout.readline().strip() == "listening"
    threading.Thread(target=mini.stdout.read, daemon=True).start()
    time.sleep(0.5)  # iperf3 -s binds at once; give it the moment
    return [iperf, mini]


def one_line(rate: float, rtt_ms: float) -> dict[str, Any]:
    prefix = f"wfb{os.getpid() % 1000}r{int(rate)}d{int(rtt_ms)}"
    with routed_line(
        prefix, down_mbps=rate, up_mbps=rate, queue_ms=50.0 + rtt_ms, rtt_ms=rtt_ms
    ) as (probe, _router, server):
        servers = start_servers(server)
        try:
            row: dict[str, Any] = {"rate": rate, "rtt_ms": rtt_ms}
            row["ping_ms"] = ping_median_ms(probe)
            row["agent_latency_ms"] = python_in(probe, AGENT_LATENCY)["median"]
            row["agent"] = python_in(probe, AGENT_DOWNLOAD)
            row["iperf3_mbps"], row["iperf3_cpu"] = iperf3_cli_mbps(probe)
            row["speedtest"] = python_in(probe, SPEEDTEST)
            if rate == max(RATES) and rtt_ms == 0:
                row["cycle"] = python_in(probe, AGENT_CYCLE, timeout_s=180)
        finally:
            for process in servers:
                process.kill()
                process.wait()
    print(json.dumps(row), flush=True)
    return row


RATES = (10.0, 50.0, 100.0, 300.0, 1000.0)
# Added round trip, ms: every rate with each, the delay line carries them
# all (docs/benchmarks.md).
DELAYS_MS = (0, 20, 50)


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| shaped Mb/s | added RTT ms | agent Mb/s | iperf3 CLI Mb/s | agent / iperf3 | "
        "agent / shaped | speedtest-cli Mb/s | ping median ms | agent ICMP median ms | "
        "agent loaded RTT ms | agent CPU % | agent retransmits |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        agent = r["agent"]
        mbps = agent["mbps"] or 0.0
        speed = r["speedtest"]
        speed_text = f"{speed['mbps']:.1f}" if speed["mbps"] else "–"
        if speed["status"] != "ok":
            speed_text += " (invalid: short)" if "invalid" in speed["reason"] else " (failed)"
        lines.append(
            f"| {r['rate']:g} | {r['rtt_ms']:g} | {mbps:.1f} | {r['iperf3_mbps']:.1f} | "
            f"{mbps / r['iperf3_mbps']:.3f} | {mbps / r['rate']:.3f} | {speed_text} | "
            f"{r['ping_ms']:.3f} | {r['agent_latency_ms']:.3f} | "
            f"{(agent['loaded'] or 0):.1f} | {agent['cpu_pct']:.0f} | "
            f"{'–' if agent['retrans'] is None else agent['retrans']} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run the lines, print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rates", default=",".join(f"{r:g}" for r in RATES))
    parser.add_argument(
        "--delays",
        default=",".join(f"{d:g}" for d in DELAYS_MS),
        help="added round trips in ms, e.g. 20,50 for the delayed lines only",
    )
    parser.add_argument("--quick", action="store_true", help="no added delay (--delays 0)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    delays_ms = [0.0] if args.quick else [float(d) for d in args.delays.split(",")]
    rows = []
    for rate in (float(r) for r in args.rates.split(",")):
        for rtt_ms in delays_ms:
            rows.append(one_line(rate, rtt_ms))
    text = table(rows)
    cycle = next((r["cycle"] for r in rows if "cycle" in r), None)
    if cycle is not None:
        text += (
            f"\n\nAn agent worker's process after download, upload and ICMP latency "
            f"(gRPC, pydantic and the spool imported): resident memory "
            f"{cycle['rss_mb']:.1f} MB; heavy modules loaded: "
            f"{', '.join(cycle['heavy']) or 'none'}. Between tests only the daemon stays "
            f"resident: see the agent's footprint below."
        )
    print(text)
    if not args.no_write:
        doc = DOCS.read_text("utf-8")
        if BEGIN in doc and END in doc:
            doc = doc[: doc.index(BEGIN) + len(BEGIN)] + "\n" + text + "\n" + doc[doc.index(END) :]
            DOCS.write_text(doc, "utf-8")


if __name__ == "__main__":
    main()
