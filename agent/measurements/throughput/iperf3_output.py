"""libiperf's JSON output for one client test, parsed once into results.

Which figure is the speed: `end.sum_received`, the receiving side's count of
the payload that actually arrived. For a download (reverse mode, server
sends) that is the probe's own count; for an upload it is the server's
count, which libiperf fetches at the end of the test. `end.sum_sent` is not
used for the speed because it also counts bytes still queued in the sender's
socket buffer when the clock stopped, which overstates a slow line. The
sender's TCP retransmissions come from `end.sum_sent.retransmits` (in reverse
mode libiperf reports the server's). The warm-up (`omit_s`, TCP slow start)
is excluded by libiperf from both sums.
"""

from __future__ import annotations

import ipaddress
import json
import math
from datetime import datetime
from typing import Any

from agent.measurements.base import MALFORMED_PREFIX, IpFamily, ReasonKind, Status
from agent.measurements.throughput.model import (
    Direction,
    ThroughputParams,
    ThroughputResult,
    failed_all,
    method,
)

# iperf3's own text for IEACCESSDENIED; the only error that sends us to the next port.
_SERVER_BUSY_MARKER = "server is busy"


def parse_iperf3_json(
    text: str, *, params: ThroughputParams, server_port: int, measured_at: datetime
) -> ThroughputResult:
    """The result of a one-direction test (see `parse_iperf3_output`)."""
    return parse_iperf3_output(
        text, params=params, server_port=server_port, measured_at=measured_at
    )[0]


def parse_iperf3_output(
    text: str, *, params: ThroughputParams, server_port: int, measured_at: datetime
) -> list[ThroughputResult]:
    """Turn libiperf's JSON output for one client test into results: one, or
    (download, upload) for a bidirectional test.

    "iperf3 reported an error" (the JSON has `error`) gives FAILED with the
    tool's message, kind SERVER_BUSY when another client held the server and
    TOOL_FAILED otherwise; JSON that does not parse or lacks the figures
    gives FAILED, kind MALFORMED_OUTPUT.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        reason = f"{MALFORMED_PREFIX}iperf3 JSON does not parse: {exc}"
        return failed_all(params, server_port, measured_at, reason, ReasonKind.MALFORMED_OUTPUT)
    if not isinstance(document, dict):
        reason = f"{MALFORMED_PREFIX}iperf3 JSON is not an object"
        return failed_all(params, server_port, measured_at, reason, ReasonKind.MALFORMED_OUTPUT)
    start = document.get("start")
    tool_version = ""
    if isinstance(start, dict) and isinstance(start.get("version"), str):
        tool_version = start["version"]
    error = document.get("error")
    if error is not None:
        # The one error iperf3 only words: another client holds the server.
        busy = _SERVER_BUSY_MARKER in str(error)
        kind = ReasonKind.SERVER_BUSY if busy else ReasonKind.TOOL_FAILED
        reason = f"iperf3 reported an error: {error}"
        return failed_all(params, server_port, measured_at, reason, kind, tool_version)
    try:
        return _parse_success(
            document,
            params=params,
            server_port=server_port,
            measured_at=measured_at,
            tool_version=tool_version,
        )
    except _MalformedOutputError as exc:
        reason = f"{MALFORMED_PREFIX}{exc}"
        return failed_all(
            params, server_port, measured_at, reason, ReasonKind.MALFORMED_OUTPUT, tool_version
        )


class _MalformedOutputError(Exception):
    """The JSON parsed but does not hold what a finished iperf3 test reports."""


def _parse_success(
    document: dict[str, Any],
    *,
    params: ThroughputParams,
    server_port: int,
    measured_at: datetime,
    tool_version: str,
) -> list[ThroughputResult]:
    start = _object(document, "start")
    test_start = _object(start, "test_start", "start.")
    end = _object(document, "end")
    reverse = test_start.get("reverse")
    if params.bidirectional:
        if "sum_received_bidir_reverse" not in end:
            raise _MalformedOutputError("a bidirectional test was asked for, no bidir sums")
        # Forward sums are the client's sending (upload), *_bidir_reverse the server's.
        sums = {
            Direction.UPLOAD: ("sum_received", "sum_sent"),
            Direction.DOWNLOAD: ("sum_received_bidir_reverse", "sum_sent_bidir_reverse"),
        }
    else:
        expected_reverse = 1 if params.direction is Direction.DOWNLOAD else 0
        if reverse != expected_reverse:
            raise _MalformedOutputError(
                f"start.test_start.reverse is {reverse!r} but a {params.direction} test "
                "was asked for"
            )
        sums = {params.direction: ("sum_received", "sum_sent")}
    family = _family_of_connection(start)
    local_address = _local_address(start)
    omitted_s = _number(test_start, "omit", "start.test_start.")
    results = []
    for direction, (received_key, sent_key) in sums.items():
        received = _object(end, received_key, "end.")
        sent = end.get(sent_key)
        retransmits: int | None = None
        if isinstance(sent, dict):
            value = sent.get("retransmits")
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                retransmits = value
        where = f"end.{received_key}."
        results.append(
            ThroughputResult(
                measured_at=measured_at,
                status=Status.OK,
                method=method(params, server_port, tool_version),
                interface=params.interface,
                ip_family=family,
                direction=direction,
                mbps=_number(received, "bits_per_second", where) / 1e6,
                bytes_transferred=int(_number(received, "bytes", where)),
                measured_s=_number(received, "seconds", where),
                retransmits=retransmits,
                omitted_s=omitted_s,
                local_address=local_address,
            )
        )
    return results


def _local_address(start: dict[str, Any]) -> str:
    connected = start["connected"][0]  # checked by _family_of_connection
    address = ipaddress.ip_address(str(connected.get("local_host")))
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _object(parent: dict[str, Any], key: str, where: str = "") -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise _MalformedOutputError(f"no {where}{key} object")
    return value


def _number(parent: dict[str, Any], key: str, where: str) -> float:
    value = parent.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _MalformedOutputError(f"{where}{key} is not a number: {value!r}")
    if not math.isfinite(value) or value < 0:
        raise _MalformedOutputError(f"{where}{key} is out of range: {value!r}")
    return float(value)


def _family_of_connection(start: dict[str, Any]) -> IpFamily:
    connected = start.get("connected")
    if not isinstance(connected, list) or not connected or not isinstance(connected[0], dict):
        raise _MalformedOutputError("no start.connected[0] entry")
    local_host = connected[0].get("local_host")
    try:
        address = ipaddress.ip_address(str(local_host))
    except ValueError:
        raise _MalformedOutputError(
            f"start.connected[0].local_host is not an address: {local_host!r}"
        ) from None
    # An IPv6 socket talking to an IPv4 peer shows ::ffff:a.b.c.d; the wire was IPv4.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return IpFamily.IPV6
    return IpFamily.IPV4
