"""What scapy costs the worker that runs a traceroute or path-MTU test.

The resident daemon never imports scapy (tests/agent/measurements/
test_registry.py checks the measurement table does not either); the
`measure` worker of a traceroute or `ipv6_pmtu` test imports it inside the
test's `run`. This measures that import in fresh processes, each first
importing what a worker has loaded by then (the agent's runtime and the
measurement table), so the figure is scapy's own: wall time of the import
and the resident memory (VmRSS) it adds, median and largest of `--runs`.

Usage: python tests/bench/scapy_import.py [--runs 9]
Writes its table into docs/benchmarks.md (between the scapy-import markers).
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "benchmarks.md"
BEGIN = "<!-- scapy-import:begin -->"
END = "<!-- scapy-import:end -->"

_CHILD = """
import json, time
import agent.runtime, agent.measurements  # what a measure worker holds before its test runs

def rss_kib():
    with open("/proc/self/status") as status:
        return int(next(l for l in status if l.startswith("VmRSS")).split()[1])

before = rss_kib()
started = time.perf_counter()
from scapy.layers.inet import ICMP, IP, TCP, UDP  # what traceroute.py and ipv6_pmtu.py use
from scapy.layers.inet6 import IPv6, ICMPv6EchoRequest
took = time.perf_counter() - started
print(json.dumps({"s": took, "before_kib": before, "after_kib": rss_kib()}))
"""


def measure(runs: int) -> list[dict[str, float]]:
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True, cwd=REPO
        ).stdout
        samples.append(json.loads(out))
    return samples


def table(samples: list[dict[str, float]]) -> str:
    seconds = [s["s"] for s in samples]
    added = [(s["after_kib"] - s["before_kib"]) / 1024 for s in samples]
    before = [s["before_kib"] / 1024 for s in samples]
    return "\n".join(
        [
            f"{len(samples)} fresh processes on {platform.machine()} "
            f"({platform.python_implementation()} {platform.python_version()}):",
            "",
            "| figure | median | largest |",
            "|---|---|---|",
            f"| import time, s | {statistics.median(seconds):.2f} | {max(seconds):.2f} |",
            f"| worker's RSS before, MiB | {statistics.median(before):.1f} | {max(before):.1f} |",
            f"| RSS added by scapy, MiB | {statistics.median(added):.1f} | {max(added):.1f} |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    text = table(measure(args.runs))
    print(text)
    docs = DOCS.read_text("utf-8")
    if BEGIN in docs and END in docs:
        head, rest = docs.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        DOCS.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}", "utf-8")


if __name__ == "__main__":
    main()
