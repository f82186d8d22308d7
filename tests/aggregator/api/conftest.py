"""What the API tests share: a synthetic Cần Thơ in a store, the analysts'
snapshot published from it by the aggregator's own code, a state directory
with the CA and server certificate (`ca init`), a read token made by
`api-token create`, and `wardprobe-aggregator api serve` running over TLS
on loopback as its own process."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from aggregator.cli import app
from aggregator.enrolment.ca import init_ca
from aggregator.ingest.snapshot import publish_snapshot
from aggregator.ingest.store import Store
from emulation.deployment import free_tcp_port

# Enough results for a figure in most wards, few enough to compute quickly.
ROWS = 100_000
# A guard against a server that never comes up, not a claim about speed.
START_GUARD_S = 180.0


@dataclass(frozen=True)
class ApiData:
    """The files an API reads, and a token for it."""

    store: Path
    snapshot: Path
    state_dir: Path
    token: str

    @property
    def ca(self) -> Path:
        """The CA certificate a client checks the API's certificate against."""
        return self.state_dir / "ca.crt"

    def tls(self) -> ssl.SSLContext:
        """A client's TLS context trusting the aggregator's CA alone."""
        return ssl.create_default_context(cafile=self.ca)


@dataclass(frozen=True)
class RunningApi:
    """`api serve` running, and how to reach it."""

    url: str  # https://127.0.0.1:<port>/api/v1
    data: ApiData
    process: subprocess.Popen[bytes]
    config: Path

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTPS client that checks the server against the CA, with
        `token` (default: the fixture's) as its bearer token."""
        headers = {"Authorization": f"Bearer {token or self.data.token}"}
        return httpx.Client(base_url=self.url, verify=self.data.tls(), headers=headers, timeout=600)

    def anonymous(self) -> httpx.Client:
        """An HTTPS client with no token."""
        return httpx.Client(base_url=self.url, verify=self.data.tls(), timeout=600)


def create_token(state_dir: Path, name: str) -> str:
    """A read token made by `api-token create` (its last line is the token)."""
    result = CliRunner().invoke(
        app, ["api-token", "create", "--name", name, "--state-dir", str(state_dir)]
    )
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def write_config(path: Path, data: ApiData, listen: str, **extra: str) -> Path:
    lines = [
        f'state_dir = "{data.state_dir}"',
        f'store_path = "{data.store}"',
        f'snapshot_path = "{data.snapshot}"',
        f'api_listen = "{listen}"',
        *(f"{k} = {v}" for k, v in extra.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def wait_until_up(url: str, data: ApiData, process: subprocess.Popen[bytes]) -> None:
    """Until the API answers /health (or its process ends: then fail)."""
    deadline = time.monotonic() + START_GUARD_S
    headers = {"Authorization": f"Bearer {data.token}"}
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the API process ended with {process.returncode}")
        try:
            httpx.get(f"{url}/health", verify=data.tls(), headers=headers, timeout=30)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail("the API did not come up")


@pytest.fixture(scope="session")
def api_data(tmp_path_factory: pytest.TempPathFactory) -> ApiData:
    work = tmp_path_factory.mktemp("api")
    store = work / "wardprobe.duckdb"
    subprocess.run(
        [sys.executable, "-m", "aggregator", "synthetic", "--store", str(store),
         "--rows", str(ROWS), "--year", "2026"],
        check=True, capture_output=True,
    )  # fmt: skip
    # Published IPv6 figures too: the snapshot carries them to the API's ipv6_reference.
    figures = Path(__file__).resolve().parents[2] / "fixtures" / "reference"
    for args in (
        ["import-apnic", str(figures / "apnic_vn_networks.csv"), "--date", "2026-06-01"],
        ["import-vnnic", str(figures / "vnnic_provinces.csv")],
    ):
        subprocess.run(
            [sys.executable, "-m", "aggregator", "reference-figures", *args, "--store", str(store)],
            check=True, capture_output=True,
        )  # fmt: skip
    snapshot = work / "snapshot.duckdb"
    writer = Store(store)
    try:
        publish_snapshot(writer, snapshot)
    finally:
        writer.close()
    state_dir = work / "state"
    init_ca(state_dir, ["localhost", "127.0.0.1"])
    token = create_token(state_dir, "Sở KH&CN, tests")
    return ApiData(store=store, snapshot=snapshot, state_dir=state_dir, token=token)


@pytest.fixture(scope="session")
def api(api_data: ApiData, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    port = free_tcp_port()
    config = write_config(
        tmp_path_factory.mktemp("api-config") / "aggregator.toml", api_data, f"127.0.0.1:{port}"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "api", "serve", "--config", str(config)],
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    url = f"https://127.0.0.1:{port}/api/v1"
    try:
        wait_until_up(url, api_data, process)
        yield RunningApi(url=url, data=api_data, process=process, config=config)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)
