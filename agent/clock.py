"""Is the probe's clock synchronised? Asked of the kernel, as chrony and ntpd
set it: adjtimex(2) returns TIME_ERROR while the clock is unsynchronised."""

from __future__ import annotations

import ctypes
import enum
import functools

_TIME_ERROR = 5  # from <sys/timex.h>
# struct timex is 208 bytes on 64-bit Linux; a larger zeroed buffer is safe
# and modes = 0 (the first int) makes the call read-only.
_TIMEX_BUFFER_BYTES = 512


class ClockState(enum.StrEnum):
    SYNCHRONISED = "synchronised"
    UNSYNCHRONISED = "unsynchronised"
    UNKNOWN = "unknown"


@functools.cache
def _libc() -> ctypes.CDLL:
    # The process's own symbols, libc's among them: no ctypes.util.find_library,
    # which runs ldconfig at every call (the daemon asks every few seconds
    # while it waits for the clock).
    return ctypes.CDLL(None, use_errno=True)


def clock_state() -> ClockState:
    """The kernel's view of clock synchronisation, UNKNOWN where it can't be read."""
    try:
        buffer = ctypes.create_string_buffer(_TIMEX_BUFFER_BYTES)
        state = _libc().adjtimex(buffer)
    except (OSError, AttributeError):
        return ClockState.UNKNOWN
    if state < 0:
        return ClockState.UNKNOWN
    return ClockState.UNSYNCHRONISED if state == _TIME_ERROR else ClockState.SYNCHRONISED
