"""One libiperf client test in a child Python process that the agent can kill.

The test itself is libiperf's, driven through the `iperf3` Python wrapper
(ctypes). The wrapper is known to hang or lose output when it captures
libiperf's stdout through a pipe, and under daemons without a terminal
(iperf3-python issues #13, #53, #75). So each test runs in a child Python
process (`python -c "... child_main()"`, see `run_child`): the child sets the
test up with the wrapper, calls libiperf's `iperf_run_client` itself with
stdout pointed at /dev/null, and hands back libiperf's own JSON text
(`iperf_get_test_json_output_string`). The parent enforces a hard timeout,
kills the child when it passes, and parses the JSON (iperf3_output.py).
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agent.measurements.base import MALFORMED_PREFIX, IpFamily, ReasonKind
from agent.measurements.throughput.model import Direction, ThroughputParams, timeout_reason

# libiperf refuses report intervals above 60 s on its command line (MAX_INTERVAL);
# we stay inside what it supports even though the setter does not check.
_MAX_REPORT_INTERVAL_S = 60.0

# How the child tells the parent that it could not even start the test: the
# exit code says which kind of reason, its last line of stderr the reason.
_EXIT_BY_SETUP_KIND = {
    ReasonKind.TOOL_FAILED: 3,  # libiperf missing; or the parent died before the test
    ReasonKind.NETWORK_ERROR: 4,  # the server name has no address of the wanted family
}
_SETUP_KIND_BY_EXIT = {code: kind for kind, code in _EXIT_BY_SETUP_KIND.items()}

# Enough of the child's stderr to explain a crash, not enough to flood a log.
_STDERR_TAIL_CHARS = 500


@dataclass(frozen=True, kw_only=True)
class _ChildRequest:
    """What the child needs to run one libiperf client test (sent as JSON on stdin)."""

    host: str
    port: int
    reverse: bool
    duration_s: int
    omit_s: int
    streams: int
    bind_address: str
    interface: str
    connect_timeout_ms: int
    ip_family: str  # "" = any, else an IpFamily value
    bytes_cap: int  # 0 = end by duration
    bidirectional: bool
    parent_pid: int  # the agent process that waits for this test
    time_limit_s: int  # the child ends itself after this, whatever happens to the parent


@dataclass(frozen=True)
class ChildFailure:
    """The child gave no JSON to parse: why, and the kind of that reason."""

    reason: str
    kind: ReasonKind


def run_child(params: ThroughputParams, port: int, timeout_s: float) -> str | ChildFailure:
    """Run one test in a fresh Python process; its stdout is libiperf's JSON text."""
    request = _ChildRequest(
        host=params.server_host,
        port=port,
        reverse=params.direction is Direction.DOWNLOAD and not params.bidirectional,
        duration_s=params.duration_s,
        omit_s=params.omit_s,
        streams=params.streams,
        bind_address=params.bind_address,
        interface=params.interface,
        connect_timeout_ms=max(1, round(params.connect_timeout_s * 1000)),
        ip_family=params.ip_family.value if params.ip_family else "",
        bytes_cap=params.bytes_cap or 0,
        bidirectional=params.bidirectional,
        parent_pid=os.getpid(),
        # A little past the parent's own limit: the parent normally kills first.
        time_limit_s=math.ceil(timeout_s) + 5,
    )
    # The child must import this package even when the agent runs from a source tree.
    package_root = str(Path(__file__).resolve().parents[3])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    command = [
        sys.executable,
        "-c",
        "from agent.measurements.throughput.libiperf_child import child_main; child_main()",
    ]
    try:
        completed = subprocess.run(
            command,
            input=json.dumps(asdict(request)).encode(),
            capture_output=True,
            timeout=timeout_s,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        # subprocess.run has already killed and reaped the child.
        return ChildFailure(timeout_reason(params, port), ReasonKind.TIMEOUT)
    stderr = completed.stderr.decode("utf-8", errors="replace").strip()
    setup_kind = _SETUP_KIND_BY_EXIT.get(completed.returncode)
    if setup_kind is not None:
        reason = stderr.splitlines()[-1] if stderr else "iperf3 could not start"
        return ChildFailure(reason, setup_kind)
    if completed.returncode < 0:
        try:
            name = signal.Signals(-completed.returncode).name
        except ValueError:  # a real-time signal has no name
            name = f"signal {-completed.returncode}"
        return ChildFailure(
            f"iperf3 child process died from {name}: {stderr[-_STDERR_TAIL_CHARS:]}",
            ReasonKind.TOOL_FAILED,
        )
    if completed.returncode != 0:
        return ChildFailure(
            f"iperf3 child process exited with status {completed.returncode}: "
            f"{stderr[-_STDERR_TAIL_CHARS:]}",
            ReasonKind.TOOL_FAILED,
        )
    text = completed.stdout.decode("utf-8", errors="replace")
    if not text.strip():
        return ChildFailure(
            f"{MALFORMED_PREFIX}iperf3 produced no output", ReasonKind.MALFORMED_OUTPUT
        )
    return text


def child_main() -> None:
    """Entry point of the child process: one libiperf client test, JSON to stdout."""
    request = _ChildRequest(**json.loads(sys.stdin.read()))
    _end_with_parent_or_time_limit(request)
    # Keep the real stdout for our answer and send libiperf's own prints to
    # /dev/null: a stray line there must not corrupt the JSON we hand back.
    answer_fd = os.dup(1)
    devnull_fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull_fd, 1)
    try:
        host = _address_for_family(request.host, request.port, request.ip_family)
        text = _run_libiperf_client(request, host)
    except _ChildSetupError as exc:
        print(str(exc), file=sys.stderr, flush=True)
        sys.exit(_EXIT_BY_SETUP_KIND[exc.kind])
    payload = text.encode("utf-8")
    while payload:
        written = os.write(answer_fd, payload)
        payload = payload[written:]
    os.close(answer_fd)


def _end_with_parent_or_time_limit(request: _ChildRequest) -> None:
    """Never outlive the test: a hung libiperf must not linger after an agent restart."""
    import ctypes  # only the child needs it

    # SIGALRM's default action ends the process even while it is inside libiperf.
    signal.alarm(request.time_limit_s)
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1  # <linux/prctl.h>
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != request.parent_pid:  # the parent died before prctl took effect
        sys.exit(_EXIT_BY_SETUP_KIND[ReasonKind.TOOL_FAILED])


class _ChildSetupError(Exception):
    """The test could not be started at all."""

    def __init__(self, reason: str, kind: ReasonKind) -> None:
        super().__init__(reason)
        self.kind = kind


def _address_for_family(host: str, port: int, family: str) -> str:
    """The server's address in the wanted family; libiperf has no setter for -4/-6."""
    if not family:
        return host
    wanted = socket.AF_INET if family == IpFamily.IPV4.value else socket.AF_INET6
    try:
        infos = socket.getaddrinfo(host, port, wanted, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise _ChildSetupError(
            f"{host} has no {family} address: {exc.strerror}", ReasonKind.NETWORK_ERROR
        ) from None
    return str(infos[0][4][0])


def _run_libiperf_client(request: _ChildRequest, host: str) -> str:
    """Configure a libiperf client through the wrapper and run it; returns its JSON text."""
    from ctypes import c_char_p, c_double, c_int, c_uint64, c_void_p  # child only

    import iperf3  # loads libiperf: child only, keeps the agent light

    try:
        client = iperf3.Client()
    except OSError as exc:
        raise _ChildSetupError(
            f"libiperf could not be loaded (is iperf3 installed?): {exc}", ReasonKind.TOOL_FAILED
        ) from None
    client.verbose = False
    client.json_output = True
    client.server_hostname = host
    client.port = request.port
    client.duration = request.duration_s
    client.omit = request.omit_s
    client.num_streams = request.streams
    client.reverse = request.reverse
    if request.bind_address:
        client.bind_address = request.bind_address
    lib: Any = client.lib
    test: int = client._test
    # Setters the wrapper lacks. One report interval for the whole test keeps the
    # JSON small: we only read the end sums.
    for name in ("iperf_set_test_stats_interval", "iperf_set_test_reporter_interval"):
        setter = getattr(lib, name)
        setter.argtypes = (c_void_p, c_double)
        setter.restype = None
        setter(test, min(float(request.duration_s), _MAX_REPORT_INTERVAL_S))
    if request.bytes_cap:
        # libiperf takes one end condition: with a byte count it ignores the duration.
        lib.iperf_set_test_bytes.argtypes = (c_void_p, c_uint64)
        lib.iperf_set_test_bytes.restype = None
        lib.iperf_set_test_bytes(test, request.bytes_cap)
    if request.bidirectional:
        lib.iperf_set_test_bidirectional.argtypes = (c_void_p, c_int)
        lib.iperf_set_test_bidirectional.restype = None
        lib.iperf_set_test_bidirectional(test, 1)
    lib.iperf_set_test_connect_timeout.argtypes = (c_void_p, c_int)
    lib.iperf_set_test_connect_timeout.restype = None
    lib.iperf_set_test_connect_timeout(test, request.connect_timeout_ms)
    if request.interface:
        lib.iperf_set_test_bind_dev.argtypes = (c_void_p, c_char_p)
        lib.iperf_set_test_bind_dev.restype = None
        lib.iperf_set_test_bind_dev(test, request.interface.encode())
    lib.iperf_run_client(test)
    # libiperf 3.12 finishes its JSON (with "error" on failure) inside iperf_run_client.
    raw = lib.iperf_get_test_json_output_string(test)
    if raw:
        return bytes(raw).decode("utf-8", errors="replace")
    # Older libiperf leaves no JSON on some errors: describe it in iperf3's own shape.
    return json.dumps({"error": client._error_to_string(client._errno)})
