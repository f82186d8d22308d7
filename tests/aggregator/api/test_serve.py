"""How the API runs: it follows a snapshot replaced under it (no answer of
the old one is served); `serve` runs it in a child process beside ingest
and stops both on SIGTERM; what cannot start says why in one line."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from typer.testing import CliRunner

from aggregator.api.server import _bind
from aggregator.cli import app
from aggregator.ingest.store import Store
from emulation.deployment import free_tcp_port
from tests.aggregator.api.conftest import (
    ApiData,
    wait_until_up,
    write_config,
)


@pytest.fixture
def own_snapshot(api_data: ApiData, tmp_path: Path) -> ApiData:
    """The city's snapshot copied to a path of this test's own."""
    snapshot = tmp_path / "snapshot.duckdb"
    shutil.copyfile(api_data.snapshot, snapshot)
    return ApiData(api_data.store, snapshot, api_data.state_dir, api_data.token)


def _start(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "api", "serve", "--config", str(config)],
            stderr=out,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)


def assert_graceful(process: subprocess.Popen[bytes], log: Path) -> None:
    """Stopped by SIGTERM after the server shut down in order (uvicorn then
    ends by the signal it caught: what systemd counts as a clean stop)."""
    assert process.wait(timeout=120) in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in log.read_text()


def test_the_api_follows_a_new_snapshot(own_snapshot: ApiData, tmp_path: Path) -> None:
    port = free_tcp_port()
    config = write_config(tmp_path / "a.toml", own_snapshot, f"127.0.0.1:{port}")
    url = f"https://127.0.0.1:{port}/api/v1"
    log = tmp_path / "api.log"
    for process in _start(config, log):
        wait_until_up(url, own_snapshot, process)
        headers = {"Authorization": f"Bearer {own_snapshot.token}"}
        with httpx.Client(base_url=url, verify=own_snapshot.tls(), headers=headers) as client:
            query = {"period": "2026", "synthetic": "true", "city_only": "true"}
            before = client.get("/indicators", params=query).json()
            assert any(f["status"] == "ok" for f in before["figures"])
            written = client.get("/health").json()["data_written_at"]
            # the aggregator publishes a new snapshot: renamed over the old one
            fresh = tmp_path / "fresh.duckdb"
            Store(fresh).close()  # a store with no result yet
            os.replace(fresh, own_snapshot.snapshot)
            after = client.get("/indicators", params=query).json()
            assert all(f["status"] != "ok" for f in after["figures"])
            assert client.get("/health").json()["data_written_at"] != written
            wards = client.get("/wards", params={"synthetic": "true"}).json()["wards"]
            assert not any(w["has_probes"] for w in wards)
        process.send_signal(signal.SIGTERM)
        assert_graceful(process, log)


def test_serve_runs_the_api_in_a_child_and_stops_it(api_data: ApiData, tmp_path: Path) -> None:
    store = tmp_path / "wardprobe.duckdb"
    shutil.copyfile(api_data.store, store)
    data = ApiData(store, tmp_path / "snapshot.duckdb", api_data.state_dir, api_data.token)
    port = free_tcp_port()
    config = write_config(
        tmp_path / "aggregator.toml",
        data,
        f"127.0.0.1:{port}",
        ingest_listen=f'"127.0.0.1:{free_tcp_port()}"',
        enrol_listen=f'"127.0.0.1:{free_tcp_port()}"',
    )
    serve = subprocess.Popen([sys.executable, "-m", "aggregator", "serve", "--config", str(config)])
    try:
        url = f"https://127.0.0.1:{port}/api/v1"
        wait_until_up(url, data, serve)
        children = psutil.Process(serve.pid).children()
        api = next(c for c in children if "api" in c.cmdline())
        assert api.cmdline()[-4:] == ["api", "serve", "--config", str(config)]
        assert api.pid != serve.pid  # drawing maps never runs in the ingest process
        with socket.create_connection(("127.0.0.1", port)):
            pass
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=120) == 0
        assert not psutil.pid_exists(api.pid) or api.status() == psutil.STATUS_ZOMBIE
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()


def test_serve_refuses_an_api_without_a_snapshot(api_data: ApiData, tmp_path: Path) -> None:
    config = tmp_path / "aggregator.toml"
    config.write_text(f'state_dir = "{api_data.state_dir}"\napi_listen = "127.0.0.1:1"\n')
    result = CliRunner().invoke(app, ["serve", "--config", str(config)])
    assert result.exit_code == 2
    assert "api_listen is set but snapshot_path is not" in result.output


def test_api_serve_says_why_it_cannot_start(api_data: ApiData, tmp_path: Path) -> None:
    runner = CliRunner()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        config = write_config(tmp_path / "a.toml", api_data, f"127.0.0.1:{port}")
        result = runner.invoke(app, ["api", "serve", "--config", str(config)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    empty_state = ApiData(api_data.store, api_data.snapshot, tmp_path / "nothing", "")
    config = write_config(tmp_path / "b.toml", empty_state, "127.0.0.1:1")
    result = runner.invoke(app, ["api", "serve", "--config", str(config)])
    assert result.exit_code == 1 and "no server certificate" in result.output
    result = runner.invoke(app, ["api", "serve", "--listen", "8443"])
    assert result.exit_code == 2 and "is not host:port" in result.output


async def test_answers_are_not_held_back_by_nagle() -> None:
    """The API's socket names TCP, so asyncio turns Nagle off on each
    connection: a small answer (health, a kept one) is not held 40 ms for
    the client's delayed ACK."""
    nodelay: list[int] = []

    def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        nodelay.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    listening = _bind(f"127.0.0.1:{free_tcp_port()}")
    server = await asyncio.start_server(accepted, sock=listening)
    async with server:
        port = listening.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        while not nodelay:
            await asyncio.sleep(0.01)
        writer.close()
    assert nodelay == [1]
