"""The path-MTU search when the host cannot give it the sockets it needs."""

from __future__ import annotations

import errno
import socket

import pytest

from agent.measurements import ipv6_pmtu, pathnet
from agent.measurements.base import ReasonKind, Status


def test_a_socket_option_the_kernel_lacks_fails_the_test_not_the_cycle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """qemu-user, for one, refuses SO_TIMESTAMPNS on raw sockets: the search
    must come back as a FAILED result naming why, never as an exception that
    ends `wardprobe-agent once` (it did on the arm64 package's first run)."""
    sender = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)

    def no_listener(*_args: object, **_kwargs: object) -> socket.socket:
        raise OSError(errno.ENOPROTOOPT, "Protocol not available")

    monkeypatch.setattr(pathnet, "has_default_route", lambda *_a, **_k: True)
    monkeypatch.setattr(pathnet, "resolve", lambda *_a, **_k: (["fd00::1"], ""))
    monkeypatch.setattr(pathnet, "source_address", lambda *_a, **_k: "fd00::2")
    monkeypatch.setattr(pathnet, "interface_mtu", lambda *_a, **_k: 1500)
    monkeypatch.setattr(pathnet, "raw_sender", lambda *_a, **_k: sender)
    monkeypatch.setattr(pathnet, "raw_listener", no_listener)

    result = ipv6_pmtu.run(ipv6_pmtu.PmtuParams(target="fd00::1", interface="lo"))

    assert result.status is Status.FAILED
    assert result.status_reason_kind is ReasonKind.TOOL_FAILED
    assert "Protocol not available" in result.status_reason
    assert sender.fileno() == -1  # the sender it had opened is closed
