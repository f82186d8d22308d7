"""The modem's AT port: one serial port through pyserial, one command at a time.

This is the I/O half of the AT backend (`at.py` decides what to ask,
`at_parse.py` reads the answers): it writes a command, reads V1-framed lines
(CR LF between them) until a final result code (OK, ERROR, NO CARRIER,
+CME/+CMS ERROR) within a deadline, and returns the information lines as an
`AtResponse`. What arrived after the final result code in the same read (an
unsolicited +QIND, the start of another answer) is kept for the next
command. A port that cannot be opened or goes away is `unplugged`, no final
result code in time is `timeout`, and unprintable bytes (line noise, a
baud-rate mismatch, a modem rebooting mid-answer) are `garbage`.
"""

from __future__ import annotations

import contextlib
import re
import time
from types import TracebackType

import serial

from agent.cellular.at_parse import AtResponse
from agent.cellular.observe import ModemProblem, ProblemKind

_BAUD = 115200  # USB CDC ports ignore it; a UART modem expects Quectel's default
_FINAL = re.compile(r"^(OK|ERROR|NO CARRIER|\+CM[ES] ERROR:.*)$")
# A line of an AT response is printable ASCII (Quectel, 3GPP); anything else
# is line noise, a baud-rate mismatch or a modem rebooting mid-answer.
_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")


class AtError(Exception):
    """The modem answered ERROR / +CME ERROR to a command."""

    def __init__(self, command: str, final: str, lines: list[str]) -> None:
        super().__init__(f"{command}: {final}")
        self.command, self.final, self.lines = command, final, lines


class AtPort:
    """One open serial port, one command at a time, with a deadline each."""

    def __init__(self, path: str, timeout_s: float) -> None:
        self.path = path
        self.timeout_s = timeout_s
        # What followed a final result code in the same read (an unsolicited
        # +QIND, the start of the next answer): the next command reads it first.
        self._pending = b""
        try:
            # exclusive: a second reader on the same port (a forgotten minicom,
            # ModemManager) would steal half of every answer.
            self._serial = serial.Serial(
                path, _BAUD, timeout=0.05, write_timeout=timeout_s, exclusive=True
            )
        except (serial.SerialException, OSError) as err:
            raise ModemProblem(ProblemKind.UNPLUGGED, f"cannot open {path}: {err}") from err
        self._serial.reset_input_buffer()

    def close(self) -> None:
        # An unplugged port may fail to close: there is nothing left to close.
        with contextlib.suppress(serial.SerialException, OSError):
            self._serial.close()

    def __enter__(self) -> AtPort:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def command(self, command: str) -> AtResponse:
        """Send `command`, read until its final result code. ModemProblem on
        timeout (with or without a partial answer), unplugging or noise.
        Lines read after the final result code are kept for the next command."""
        buffer, self._pending = self._pending, b""
        lines: list[str] = []
        try:
            self._serial.write(command.encode("ascii") + b"\r")
            deadline = time.monotonic() + self.timeout_s
            while True:
                *complete, buffer = re.split(rb"\r\n|\r|\n", buffer)
                for index, raw in enumerate(complete):
                    text = raw.decode("ascii", errors="replace").strip()
                    if not text or text == command:  # blank, or our command echoed (ATE1)
                        continue
                    if not _PRINTABLE.match(text):
                        raise ModemProblem(
                            ProblemKind.GARBAGE,
                            f"malformed output: unreadable answer to {command}: {text[:60]!r}",
                        )
                    if _FINAL.match(text):
                        after = complete[index + 1 :]
                        self._pending = b"".join(line + b"\r\n" for line in after) + buffer
                        return AtResponse(lines, text)
                    lines.append(text)
                if time.monotonic() >= deadline:
                    break
                buffer += self._serial.read(self._serial.in_waiting or 1)
        except (serial.SerialException, OSError) as err:
            raise ModemProblem(
                ProblemKind.UNPLUGGED, f"{self.path} went away during {command}: {err}"
            ) from err
        rest = buffer.decode("ascii", errors="replace")
        partial = f" after a partial answer {[*lines[:2], rest][:3]!r}" if lines or rest else ""
        raise ModemProblem(
            ProblemKind.TIMEOUT,
            f"no final result to {command} within {self.timeout_s:g} s{partial}",
        )

    def query(self, command: str) -> AtResponse:
        """`command`, raising AtError unless it ends in OK."""
        response = self.command(command)
        if not response.ok:
            raise AtError(command, response.final, response.lines)
        return response
