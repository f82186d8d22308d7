"""Download and upload speed with iperf3, against the reference server's port pool.

One module per part:
- model.py: the params, the result, and the results made without a transfer
  (skipped, failed);
- run.py: one test from start to end (line check, port pool, RTT samples,
  validity rule): `run`, `run_both`;
- libiperf_child.py: the child process libiperf runs in, which the agent
  can kill at its hard limit;
- iperf3_output.py: libiperf's JSON, parsed once into results;
- rtt_sampler.py: idle and loaded round trips to the server.
"""

from __future__ import annotations

from agent.measurements.throughput.iperf3_output import parse_iperf3_json, parse_iperf3_output
from agent.measurements.throughput.model import (
    TOOL,
    Direction,
    ThroughputParams,
    ThroughputResult,
    download_params_from,
    skipped,
    upload_params_from,
)
from agent.measurements.throughput.rtt_sampler import RttSampler
from agent.measurements.throughput.run import run, run_both

__all__ = [
    "TOOL",
    "Direction",
    "RttSampler",
    "ThroughputParams",
    "ThroughputResult",
    "download_params_from",
    "parse_iperf3_json",
    "parse_iperf3_output",
    "run",
    "run_both",
    "skipped",
    "upload_params_from",
]
