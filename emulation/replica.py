"""An aggregator replica on loopback: `wardprobe-aggregator serve` with a
config of its own on a state_dir (shared, or one each with a registry in
PostgreSQL) and a shared store, as the replica test
(tests/integration/test_replicas.py) and the replicas benchmark
(tests/bench/replicas.py) start them. The demo's scale mode starts its
replicas through `Deployment.start_aggregator` instead, in the central
namespace."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from emulation.deployment import free_tcp_port


@dataclass
class Replica:
    """One running replica: where it listens, its process and its log."""

    address: str  # ingest, host:port
    enrol_address: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        """The end of its log (for a failure's message)."""
        return self.log.read_text("utf-8", "replace")[-3000:]

    def stop(self, timeout_s: float = 120.0) -> int:
        """SIGTERM (a graceful stop) unless it has exited; its exit code."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)


def start_replica(
    state: Path, store: str, name: str, extra: str = "", timeout_s: float = 120.0
) -> Replica:
    """Start `wardprobe-aggregator serve` on `store` (a store spec) with the
    CA and registry of `state`, its config and log beside `state` as
    <name>.toml and <name>.log, `extra` (TOML lines) added to its config;
    return once its ingest port accepts connections."""
    ingest, enrolment = f"127.0.0.1:{free_tcp_port()}", f"127.0.0.1:{free_tcp_port()}"
    config = state.parent / f"{name}.toml"
    config.write_text(
        f'state_dir = "{state}"\n'
        # a literal string: a URI's characters as they are
        f"store = '{store}'\n"
        f'ingest_listen = "{ingest}"\n'
        f'enrol_listen = "{enrolment}"\n'
        f'ingest_public_address = "{ingest}"\n' + extra,
        "utf-8",
    )
    log = state.parent / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "GRPC_VERBOSITY": "ERROR"},
        )
    replica = Replica(ingest, enrolment, process, log)
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"replica {name} exited ({process.returncode}):\n{replica.tail()}")
        try:
            with socket.create_connection(("127.0.0.1", int(ingest.rsplit(":", 1)[1])), 0.5):
                return replica
        except OSError:
            if time.monotonic() > deadline:
                replica.stop()
                raise RuntimeError(f"replica {name} did not listen:\n{replica.tail()}") from None
            time.sleep(0.05)
