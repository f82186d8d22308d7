"""Download and upload speed with speedtest-cli: the second throughput backend.

speedtest-cli (sivel/speedtest-cli, the `speedtest` module) speaks the HTTP
protocol of Ookla's servers: `latency.txt` for the round trip,
`random<N>x<N>.jpg` files fetched in parallel for the download, POSTs to
`upload.php` for the upload. Our reference server serves the same endpoints
(a self-hosted "Speedtest mini"), so the same code path runs offline, in the
tests and in-country; in production it may point at an Ookla server instead.

speedtest-cli's `Speedtest` class downloads its configuration from
www.speedtest.net whenever it is constructed, even for a mini server. The
agent never lets it: `_ConfiguredSpeedtest` replaces `get_config` with a
fetch of `config_url` (the reference server's `/speedtest/speedtest-config.php`,
or whatever the operator configured), parsed exactly as speedtest-cli parses
speedtest.net's, and the server is given by URL (`server_url`), so the
server list is never fetched either. There is no default URL: a probe only
talks to what its configuration names.

What it reports: speedtest-cli's own figure, bytes counted over the
wall-clock time of the whole transfer phase (connection set-up and TCP slow
start included, no warm-up dropped), which is why it reads low on fast
lines (see docs/benchmarks.md for where it stops being accurate). The result
says which backend produced it (`method.tool` = "speedtest-cli").
"""

from __future__ import annotations

import contextlib
import socket
import threading
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from agent import netif
from agent.measurements.base import MeasurementContext, Method, ReasonKind, Status
from agent.measurements.throughput import Direction, ThroughputResult
from agent.preflight import PreflightLimits, check_line
from wardprobe import validity

TOOL = "speedtest-cli"

# speedtest-cli's upload sizes, indexed by the configuration's `ratio` (as in its get_config).
_UPLOAD_SIZES = (32768, 65536, 131072, 262144, 524288, 1048576, 7340032)
_DOWNLOAD_SIZES = (350, 500, 750, 1000, 1500, 2000, 2500, 3000, 3500, 4000)


@dataclass(frozen=True, kw_only=True)
class SpeedtestParams:
    """One speedtest-cli test."""

    config_url: str  # the speedtest configuration (XML), e.g. the reference server's
    server_url: str  # the server's upload URL, e.g. http://host:8080/speedtest/upload.php
    direction: Direction
    interface: str = ""  # leave from this interface's address ("" = routing decides)
    bind_address: str = ""  # or from this address
    timeout_s: float = 60.0  # hard limit: the transfers are stopped after it
    preflight: PreflightLimits | None = None

    def __post_init__(self) -> None:
        for name in ("config_url", "server_url"):
            url = getattr(self, name)
            if urlsplit(url).scheme not in ("http", "https"):
                raise ValueError(f"{name} must be an http(s) URL, got {url!r}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s}")


def download_params_from(ctx: MeasurementContext) -> SpeedtestParams:
    """speedtest-cli download against the configured (reference) server."""
    return _params_from(ctx, Direction.DOWNLOAD)


def upload_params_from(ctx: MeasurementContext) -> SpeedtestParams:
    """speedtest-cli upload against the configured (reference) server."""
    return _params_from(ctx, Direction.UPLOAD)


def _params_from(ctx: MeasurementContext, direction: Direction) -> SpeedtestParams:
    config_url = ctx.speedtest_config_url or mini_urls(ctx.server_host, 8080)[0]
    server_url = config_url.rsplit("/", 1)[0] + "/upload.php"
    return SpeedtestParams(
        config_url=config_url,
        server_url=server_url,
        direction=direction,
        interface=ctx.interface,
        bind_address=ctx.bind_address,
        timeout_s=ctx.timeout_s,
        preflight=ctx.preflight,
    )


def mini_urls(host: str, port: int) -> tuple[str, str]:
    """(config URL, server URL) of a reference server's speedtest mini endpoints."""
    authority = f"[{host}]" if ":" in host else host
    base = f"http://{authority}:{port}/speedtest"
    return f"{base}/speedtest-config.php", f"{base}/upload.php"


def skipped(params: SpeedtestParams, reason: str, kind: ReasonKind) -> ThroughputResult:
    """A result for a test the agent chose not to run (deferred, over its byte budget)."""
    return ThroughputResult(
        measured_at=datetime.now(UTC),
        status=Status.SKIPPED,
        status_reason=reason,
        status_reason_kind=kind,
        method=_method(params),
        interface=params.interface,
        direction=params.direction,
    )


def _method(params: SpeedtestParams, version: str = "") -> Method:
    parts = urlsplit(params.server_url)
    return Method(
        tool=TOOL,
        tool_version=version,
        server=parts.hostname or "",
        server_port=parts.port or (443 if parts.scheme == "https" else 80),
    )


def parse_config(xml_text: bytes) -> dict[str, Any]:
    """speedtest.net's configuration XML into the dict speedtest-cli's get_config builds."""
    root = ET.fromstring(xml_text)

    def attributes(tag: str) -> dict[str, str]:
        element = root.find(tag)
        if element is None:
            raise ValueError(f"speedtest configuration has no <{tag}>")
        return dict(element.attrib)

    server_config = attributes("server-config")
    download = attributes("download")
    upload = attributes("upload")
    client = attributes("client")
    ratio = int(upload["ratio"])
    upload_max = int(upload["maxchunkcount"])
    upload_sizes = list(_UPLOAD_SIZES[ratio - 1 :])
    upload_count = -(-upload_max // len(upload_sizes))
    return {
        "client": client,
        "ignore_servers": [int(i) for i in server_config.get("ignoreids", "").split(",") if i],
        "sizes": {"upload": upload_sizes, "download": list(_DOWNLOAD_SIZES)},
        "counts": {"upload": upload_count, "download": int(download["threadsperurl"])},
        "threads": {
            "upload": int(upload["threads"]),
            "download": int(server_config["threadcount"]) * 2,
        },
        "length": {"upload": int(upload["testlength"]), "download": int(download["testlength"])},
        "upload_max": upload_count * len(upload_sizes),
    }


def run(params: SpeedtestParams) -> ThroughputResult:
    """One speedtest-cli test; failures are FAILED results, never exceptions."""
    import speedtest as speedtest_cli  # type: ignore[import-untyped]  # loaded only when used

    # speedtest-cli 2.1.3 calls Event.isSet() in its transfer loops, thousands of times.
    warnings.filterwarnings("ignore", "isSet", DeprecationWarning, "speedtest")
    measured_at = datetime.now(UTC)
    method = _method(params, f"speedtest-cli {speedtest_cli.__version__}")
    extra: dict[str, Any] = {}
    if params.preflight is not None:
        interface = params.interface or netif.interface_of_address(
            netif.local_address_towards(method.server, method.server_port or 80)
        )
        reading = check_line(interface, params.preflight)
        extra = {
            "cross_traffic_bytes_per_s": reading.cross_traffic_bytes_per_s,
            "cpu_load_pct": reading.cpu_load_pct,
        }
        if reading.deferred_reason:
            return replace(skipped(params, reading.deferred_reason, ReasonKind.DEFERRED), **extra)
    source = params.bind_address or (
        netif.local_address_towards(method.server, method.server_port or 80, params.interface)
        if params.interface
        else ""
    )
    stop = threading.Event()
    timer = threading.Timer(params.timeout_s, stop.set)  # speedtest-cli stops on this event
    timer.daemon = True
    timer.start()
    try:
        with _connections_on_device(speedtest_cli, params.interface):
            return _transfer(speedtest_cli, params, method, source, stop, measured_at, extra)
    finally:
        timer.cancel()


def _transfer(
    speedtest_cli: Any,
    params: SpeedtestParams,
    method: Method,
    source: str,
    stop: threading.Event,
    measured_at: datetime,
    extra: dict[str, Any],
) -> ThroughputResult:
    """The transfer itself, and its result."""
    try:
        tester = _configured_speedtest(speedtest_cli)(
            params.config_url, source_address=source or None, timeout=10, shutdown_event=stop
        )
        server = {
            "url": params.server_url,
            "id": 0,
            "sponsor": "configured",
            "name": method.server,
            "d": 0,
        }
        tester.get_best_server([server])
        if params.direction is Direction.DOWNLOAD:
            bits_per_s = tester.download()
            moved = int(tester.results.bytes_received)
        else:
            bits_per_s = tester.upload(pre_allocate=False)
            moved = int(tester.results.bytes_sent)
    except (speedtest_cli.SpeedtestException, OSError, ValueError, KeyError) as exc:
        return ThroughputResult(
            measured_at=measured_at,
            status=Status.FAILED,
            status_reason=f"speedtest-cli failed: {type(exc).__name__}: {exc}",
            status_reason_kind=ReasonKind.TOOL_FAILED,
            method=method,
            interface=params.interface,
            direction=params.direction,
            **extra,
        )
    timed_out = stop.is_set()
    local = source or netif.local_address_towards(method.server, method.server_port or 80)
    interface = params.interface or netif.interface_of_address(local)
    mbps = bits_per_s / 1e6
    result = ThroughputResult(
        measured_at=measured_at,
        status=Status.OK,
        method=method,
        interface=interface,
        direction=params.direction,
        mbps=mbps,
        bytes_transferred=moved,
        measured_s=moved * 8 / bits_per_s if bits_per_s > 0 else None,
        # Not speedtest-cli's "ping": it is an HTTP request time, and halved
        # (sum of three over six); the iperf3 backend's ICMP figure is the RTT.
        link_speed_mbps=netif.link_speed_mbps(interface),
        mtu=netif.mtu(interface),
        local_address=local,
        **extra,
    )
    if timed_out:
        return replace(
            result,
            status=Status.FAILED,
            status_reason=f"timed out after {params.timeout_s:g} s: speedtest-cli was stopped",
            status_reason_kind=ReasonKind.TIMEOUT,
        )
    verdict = validity.check_throughput(
        validity.Transfer(
            tool=TOOL, bytes_transferred=moved, measured_s=result.measured_s, mbps=mbps
        )
    )
    if not verdict.valid:
        return replace(
            result,
            status=Status.FAILED,
            status_reason=verdict.reason,
            status_reason_kind=ReasonKind.INVALID_TRANSFER,
        )
    return result


class _SocketsOnDevice:
    """speedtest-cli's `socket` module, seen through this: every connection it
    opens is bound to `interface` (SO_BINDTODEVICE) before it connects, so the
    test leaves through that line whatever the routing table says. Binding the
    source address alone does not: the kernel would still route by the default
    route and only the replies would come back on the wanted line."""

    def __init__(self, interface: str) -> None:
        self._interface = interface

    def __getattr__(self, name: str) -> Any:
        return getattr(socket, name)

    def create_connection(
        self,
        address: tuple[str, int],
        timeout: float | None = None,
        source_address: tuple[str, int] | None = None,
    ) -> socket.socket:
        """socket.create_connection, bound to the interface."""
        host, port = address
        error: OSError = OSError(f"no address for {host}")
        for family, kind, proto, _name, sockaddr in socket.getaddrinfo(
            host, port, 0, socket.SOCK_STREAM
        ):
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self._interface.encode())
                sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as err:
                sock.close()
                error = err
        raise error


@contextlib.contextmanager
def _connections_on_device(module: Any, interface: str) -> Iterator[None]:
    """While it lasts, speedtest-cli's connections leave through `interface`
    ("": routing decides). speedtest-cli opens them with its module's `socket.create_connection` and
    has no option for a device, so its `socket` name is swapped for the test
    (tests run one at a time in the agent; nothing else uses that module)."""
    if not interface:
        yield
        return
    original = module.socket
    module.socket = _SocketsOnDevice(interface)
    try:
        yield
    finally:
        module.socket = original


def _configured_speedtest(module: Any) -> Any:
    """speedtest-cli's Speedtest with get_config reading `config_url` instead of
    www.speedtest.net (built here so the module is imported only when used)."""

    class ConfiguredSpeedtest(module.Speedtest):  # type: ignore[misc]
        def __init__(self, config_url: str, **kwargs: Any) -> None:
            self._config_url = config_url
            super().__init__(**kwargs)

        def get_config(self) -> dict[str, Any]:
            request = module.build_request(self._config_url)
            handle, error = module.catch_request(request, opener=self._opener)
            if error:
                raise module.ConfigRetrievalError(error)
            body = handle.read()
            handle.close()
            try:
                config = parse_config(body)
            except (ET.ParseError, ValueError, KeyError) as exc:
                raise module.SpeedtestConfigError(
                    f"malformed speedtest configuration from {self._config_url}: {exc}"
                ) from None
            self.config.update(config)
            return config

    return ConfiguredSpeedtest
