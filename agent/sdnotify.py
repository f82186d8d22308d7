"""systemd's notification protocol, with the standard library only.

The resident daemon (agent/daemon.py) must stay small, so this is not
python-systemd: sd_notify(3) is one datagram of `KEY=value` lines to the
AF_UNIX socket named in $NOTIFY_SOCKET ('@' at its start: an abstract
socket). The unit is Type=notify with WatchdogSec=: the daemon says READY=1
once it can run its schedule, and WATCHDOG=1 from its main loop every half
of $WATCHDOG_USEC, so that a daemon whose loop hangs is killed and restarted
(Restart=on-failure). Outside systemd (no $NOTIFY_SOCKET) every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, MutableMapping

log = logging.getLogger(__name__)

# What systemd sets for the service's main process; taken out of the
# environment so that the workers (children) do not inherit them.
_ENVIRONMENT = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class Notifier:
    """Sends sd_notify messages; pings the watchdog when one is due."""

    def __init__(
        self,
        address: str = "",
        watchdog_usec: int | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        # An abstract socket is written '@name' and addressed '\0name'.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._monotonic = monotonic
        # systemd's advice (sd_watchdog_enabled(3)): ping at half the timeout.
        self.watchdog_interval_s: float | None = (
            watchdog_usec / 2_000_000 if watchdog_usec else None
        )
        self._next_ping = monotonic()
        self._socket: socket.socket | None = None
        self._failed = False

    @classmethod
    def from_environment(cls, environ: MutableMapping[str, str] | None = None) -> Notifier:
        """The notifier systemd asked for, from $NOTIFY_SOCKET and $WATCHDOG_USEC
        (ignored when $WATCHDOG_PID names another process); removes them from
        `environ` (default os.environ)."""
        env = os.environ if environ is None else environ
        values = {name: env.pop(name, "") for name in _ENVIRONMENT}
        watchdog_usec: int | None = None
        pid = values["WATCHDOG_PID"]
        if values["WATCHDOG_USEC"] and (not pid or pid == str(os.getpid())):
            try:
                watchdog_usec = int(values["WATCHDOG_USEC"]) or None
            except ValueError:
                log.warning(
                    "WATCHDOG_USEC=%r is not a number: no watchdog", values["WATCHDOG_USEC"]
                )
        return cls(values["NOTIFY_SOCKET"], watchdog_usec)

    @property
    def enabled(self) -> bool:
        """Whether systemd listens (the service runs with Type=notify)."""
        return bool(self._address)

    def send(self, *fields: str) -> None:
        """One datagram of `KEY=value` lines. A failure is logged once and the
        daemon goes on: measuring matters more than telling systemd."""
        if not self._address:
            return
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
            self._socket.sendto("\n".join(fields).encode(), self._address)
        except OSError as err:
            if not self._failed:
                log.warning("cannot notify systemd at %s: %s", self._address.lstrip("\0"), err)
                self._failed = True

    def ready(self, status: str) -> None:
        """Start-up is over: systemd marks the unit started."""
        self.send("READY=1", f"STATUS={status}")
        self._next_ping = self._monotonic()

    def status(self, text: str) -> None:
        """What `systemctl status wardprobe-agent` shows on its Status: line."""
        self.send(f"STATUS={text}")

    def stopping(self) -> None:
        """The daemon is stopping on request (not failing)."""
        self.send("STOPPING=1", "STATUS=stopping")

    def seconds_to_ping(self) -> float | None:
        """How long the main loop may wait before it must call `keepalive`
        (None: no watchdog)."""
        if self.watchdog_interval_s is None:
            return None
        return max(0.0, self._next_ping - self._monotonic())

    def keepalive(self) -> None:
        """Ping the watchdog if half its timeout has passed since the last ping.
        Called from the main loop only: a hung loop then stops the pings."""
        if self.watchdog_interval_s is None:
            return
        now = self._monotonic()
        if now >= self._next_ping:
            self.send("WATCHDOG=1")
            self._next_ping = now + self.watchdog_interval_s

    def close(self) -> None:
        """Close the socket (the daemon is exiting)."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
