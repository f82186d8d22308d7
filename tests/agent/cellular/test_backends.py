"""The choice of modem backend from [modem] settings (agent/cellular/backends.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agent.cellular.at import AtBackend
from agent.cellular.backends import make_backend
from agent.cellular.mmcli import MmcliBackend
from agent.cellular.observe import ModemProblem, ModemSettings, ProblemKind


def _installed_mmcli(tmp_path: Path) -> str:
    """A path `shutil.which` finds: an executable file (never run here)."""
    program = tmp_path / "mmcli"
    program.write_text("#!/bin/sh\nexit 1\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return str(program)


def test_named_backends_are_taken_as_named(tmp_path: Path) -> None:
    at = make_backend(ModemSettings(backend="at", serial_port="/dev/ttyUSB2", at_timeout_s=1.5))
    assert isinstance(at, AtBackend)
    assert (at.name, at.port, at.timeout_s) == ("at", "/dev/ttyUSB2", 1.5)
    mm = make_backend(
        ModemSettings(backend="modemmanager", mmcli_command="mmcli", modemmanager_index=2)
    )
    assert isinstance(mm, MmcliBackend)
    assert mm.name == "modemmanager"


def test_auto_prefers_modemmanager_unless_a_serial_port_is_set(tmp_path: Path) -> None:
    mmcli = _installed_mmcli(tmp_path)
    assert isinstance(make_backend(ModemSettings(mmcli_command=mmcli)), MmcliBackend)
    # A configured serial port is the operator's choice of AT, ModemManager or not.
    chosen = make_backend(ModemSettings(mmcli_command=mmcli, serial_port="/dev/ttyUSB2"))
    assert isinstance(chosen, AtBackend)
    absent = str(tmp_path / "absent")
    serial_only = make_backend(ModemSettings(mmcli_command=absent, serial_port="/dev/ttyUSB2"))
    assert isinstance(serial_only, AtBackend)


def test_auto_with_nothing_to_use_says_so_at_each_observation(tmp_path: Path) -> None:
    backend = make_backend(ModemSettings(mmcli_command=str(tmp_path / "absent")))
    assert backend.name == "auto"
    for _ in range(2):
        with pytest.raises(ModemProblem) as problem:
            backend.observe()
        assert problem.value.kind is ProblemKind.NOT_CONFIGURED
        assert "serial_port is empty" in problem.value.reason


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown modem backend 'qmi'"):
        make_backend(ModemSettings(backend="qmi"))
