"""The choice of modem backend from the agent's [modem] settings.

Kept apart from `observe.py` so that the backends (`at.py`, `mmcli.py`)
depend on the shared types there and nothing there depends on them: this
module is the only one that knows both backends.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from agent.cellular.at import AtBackend
from agent.cellular.mmcli import MmcliBackend
from agent.cellular.observe import (
    ModemBackend,
    ModemProblem,
    ModemSettings,
    ProblemKind,
    RadioObservation,
)


def make_backend(settings: ModemSettings) -> ModemBackend:
    """The backend `settings` asks for. `auto` takes ModemManager when its
    `mmcli` is installed (it then owns the modem's ports: talking AT beside
    it would race its own AT traffic), else the serial port."""
    if settings.backend == "at":
        return AtBackend(settings.serial_port, settings.at_timeout_s)
    if settings.backend == "modemmanager":
        return MmcliBackend(
            settings.mmcli_command, settings.modemmanager_index, settings.mmcli_timeout_s
        )
    if settings.backend != "auto":
        raise ValueError(f"unknown modem backend {settings.backend!r}")
    if shutil.which(settings.mmcli_command) is not None and not settings.serial_port:
        return MmcliBackend(
            settings.mmcli_command, settings.modemmanager_index, settings.mmcli_timeout_s
        )
    if settings.serial_port:
        return AtBackend(settings.serial_port, settings.at_timeout_s)
    return _Unconfigured()


@dataclass
class _Unconfigured:
    """auto with neither ModemManager nor a serial port: says so at each observation."""

    name: str = "auto"

    def observe(self) -> RadioObservation:
        raise ModemProblem(
            ProblemKind.NOT_CONFIGURED,
            "no modem to observe: ModemManager (mmcli) is not installed and [modem] "
            "serial_port is empty in agent.toml",
        )
