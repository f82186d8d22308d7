"""Serving the API: uvicorn over TLS with the aggregator's server
certificate, and the child process `wardprobe-aggregator serve` runs it in.

`run_api` is `wardprobe-aggregator api serve`: it binds the port itself (so
that a port it cannot have is one plain error), serves until SIGTERM or
SIGINT, and then lets requests in flight finish (uvicorn's graceful stop,
at most GRACEFUL_STOP_S).

`ApiProcess` is how `serve` runs it beside ingest: a child process of its
own (`python -m aggregator api serve`), so that drawing a map or printing a
PDF never takes the ingest process's CPU time or holds its event loop;
started again if it ends on its own, stopped with SIGTERM when `serve`
stops. The child ends by itself if the parent disappears.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Final

from aggregator.api.app import ApiSettings, create_app
from aggregator.api.source import DataSource, LakeSource
from aggregator.api.tokens import ApiTokenStore
from aggregator.config import AggregatorConfig, LakeSpec, split_listen

log = logging.getLogger(__name__)

SERVER_KEY_FILE: Final = "server.key"  # as aggregator/enrolment/ca.py writes them
SERVER_CERT_FILE: Final = "server.crt"
GRACEFUL_STOP_S: Final = 10.0
# Set by ApiProcess in the child's environment: the parent's pid, and the
# store `serve --store` was given (`api serve --store`'s default; in the
# environment, not the command line, where a password in it would show).
PARENT_ENV: Final = "WARDPROBE_API_PARENT"
STORE_ENV: Final = "WARDPROBE_API_STORE"
_RESTART_FIRST_S: Final = 2.0
_RESTART_MAX_S: Final = 60.0


class ApiUnavailable(Exception):
    """The API cannot start (no certificate, a port it cannot have)."""


def data_source(config: AggregatorConfig) -> DataSource | LakeSource:
    """What the reading commands read (aggregator/cli/support.py's
    read_source): the snapshot when one is configured, else the store
    read-only, the file or the lake. On a lake the API moves to the newest
    committed snapshot every snapshot_interval_s (as a snapshot file is
    republished), sooner if lake_keep_snapshots_s is shorter: a pinned
    snapshot is kept at least that long after a newer one."""
    from aggregator.cli.support import read_source

    source = read_source(config)
    if isinstance(source, LakeSpec):
        return LakeSource(source, min(config.snapshot_interval_s, config.lake_keep_snapshots_s))
    return DataSource(source, "snapshot" if config.snapshot_path is not None else "store")


def _bind(listen: str) -> socket.socket:
    host, port = split_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets that say
    # so, and without it a small answer waits 40 ms on Nagle and delayed ACKs
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise ApiUnavailable(
            f"cannot listen on {listen}: {err.strerror or err}",
        ) from None
    sock.set_inheritable(True)
    return sock


def _stop_with_parent(server: object, parent: int) -> None:
    """End the server when the process that started it is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            if stopped.wait(1.0):
                return
        log.warning("the aggregator that started this API is gone; stopping")
        server.should_exit = True  # type: ignore[attr-defined]

    stopped = threading.Event()
    threading.Thread(target=watch, name="api-parent", daemon=True).start()


def run_api(config: AggregatorConfig, listen: str) -> None:
    """Serve the API on `listen` (host:port) until SIGTERM or SIGINT."""
    import uvicorn

    key = config.state_dir / SERVER_KEY_FILE
    cert = config.state_dir / SERVER_CERT_FILE
    if not key.is_file() or not cert.is_file():
        raise ApiUnavailable(
            f"no server certificate in {config.state_dir} (run `ca init` first, or copy "
            "server.crt and server.key there)"
        )
    source = data_source(config)
    app = create_app(
        ApiSettings(
            source=source,
            tokens=ApiTokenStore.in_state_dir(config.state_dir),
            cache_entries=config.api_cache_entries,
            poll_s=config.api_poll_s,
            baselines=config.baseline_order,
        )
    )
    sock = _bind(listen)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            log_config=None,  # the command's logging, as the rest of the aggregator
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=int(GRACEFUL_STOP_S),
        )
    )
    parent = os.environ.get(PARENT_ENV)
    if parent and parent.isdigit():
        _stop_with_parent(server, int(parent))
    log.info("API serving on https://%s/api/v1 (%s %s)", listen, source.kind, source.path)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


class ApiProcess:
    """The API in a child process of `serve`, started again if it ends."""

    def __init__(self, config_path: Path, store: str | None = None) -> None:
        self.config_path = config_path
        self.store = store  # serve's --store, which wins over the file's
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ, **{PARENT_ENV: str(os.getpid())})
        if self.store is not None:
            env[STORE_ENV] = self.store
        command = [sys.executable, "-m", "aggregator", "api", "serve"]
        return subprocess.Popen([*command, "--config", str(self.config_path)], env=env)

    @property
    def pid(self) -> int | None:
        """The child's pid now (None: not running)."""
        with self._lock:
            return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        """Start the child and watch it."""
        with self._lock:
            self._proc = self._spawn()
        self._thread = threading.Thread(target=self._supervise, name="api-child", daemon=True)
        self._thread.start()

    def _supervise(self) -> None:
        delay = _RESTART_FIRST_S
        while True:
            with self._lock:
                proc = self._proc
            assert proc is not None
            code = proc.wait()
            if self._stopping.is_set():
                return
            log.error("the API process ended (exit %s); starting it again in %.0f s", code, delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, _RESTART_MAX_S)
            with self._lock:
                if self._stopping.is_set():
                    return
                self._proc = self._spawn()

    def stop(self) -> None:
        """SIGTERM the child, wait for its graceful stop (then SIGKILL)."""
        self._stopping.set()
        with self._lock:
            proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(GRACEFUL_STOP_S + 5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._thread is not None:
            self._thread.join()
