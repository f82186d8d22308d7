"""The libiperf child process (agent/measurements/throughput/libiperf_child.py):
it never outlives the agent that started it."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from tests.agent.measurements.services import SilentListener
from tests.agent.measurements.throughput.helpers import needs_iperf3


@needs_iperf3
def test_the_child_does_not_outlive_a_killed_agent() -> None:
    code = (
        "import sys; from agent.measurements.throughput import Direction, ThroughputParams, run; "
        "run(ThroughputParams(server_host='127.0.0.1', ports=(int(sys.argv[1]),), "
        "direction=Direction.DOWNLOAD, duration_s=1, omit_s=0, timeout_s=60.0))"
    )
    with SilentListener() as server:
        agent = subprocess.Popen([sys.executable, "-c", code, str(server.port)])
        try:
            # Wait until libiperf is inside its test: connected to the silent server.
            deadline = time.monotonic() + 20
            while not server.accepted and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.accepted, "libiperf never connected"
            children = psutil.Process(agent.pid).children()
            assert children, "the iperf3 child process is missing"
            agent.kill()  # an agent restart or crash in the middle of a test
            agent.wait()
            _gone, alive = psutil.wait_procs(children, timeout=10)
            assert not alive, "the iperf3 child outlived its agent"
        finally:
            agent.kill()
            agent.wait()
