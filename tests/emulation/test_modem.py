"""The modem emulator: a pty that answers AT commands like the modules do."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import serial

from emulation.modem import EmulatedModem, ModemModel, ModemState

# Every answer the emulator gives comes at once: waiting for one is bounded
# only by this guard, so that a busy machine answering late fails nothing.
ANSWER_GUARD_S = 30.0


def _final_result(data: bytes) -> bool:
    """A final result code has come, on a line of its own (an unsolicited
    result code may follow it in the same write)."""
    return re.search(rb"(?:^|\n)(?:OK|ERROR|\+CME ERROR: [^\r]*)\r\n", data) is not None


def _ask(
    port: serial.Serial,
    command: str,
    until: Callable[[bytes], bool] = _final_result,
    quiet_s: float = 0.0,
) -> list[str]:
    """Send `command` and read until `until` holds for what came back (a final
    result code unless told otherwise), then `quiet_s` more: a modem that
    stays silent after a partial answer shows it there."""
    port.write(command.encode() + b"\r")
    deadline, data = time.monotonic() + ANSWER_GUARD_S, b""
    while not until(data):
        assert time.monotonic() < deadline, f"{command}: {data!r}"
        data += port.read(port.in_waiting or 1)
    quiet_until = time.monotonic() + quiet_s
    while time.monotonic() < quiet_until:
        data += port.read(port.in_waiting or 1)
    text = data.decode("ascii", "replace")
    return [line for line in re.split(r"\r\n|\r", text) if line.strip()]


def test_answers_with_echo_and_v1_framing(tmp_path: Path) -> None:
    with (
        EmulatedModem(tmp_path / "tty", ModemModel.RM500Q, ModemState.NR5G_NSA, "45202") as m,
        serial.Serial(str(tmp_path / "tty"), 115200, timeout=0.05) as port,
    ):
        assert os.path.realpath(tmp_path / "tty") == m.device
        assert _ask(port, "AT") == ["AT", "OK"]  # ATE1 by default: the command comes back
        _ask(port, "ATE0")
        qeng = _ask(port, 'AT+QENG="servingcell"')
        assert qeng[0] == '+QENG: "servingcell","NOCONN"'
        assert qeng[1].startswith('+QENG: "LTE","FDD",452,02,')
        assert qeng[2].startswith('+QENG: "NR5G-NSA",452,02,')
        assert qeng[-1] == "OK"
        _ask(port, "AT+COPS=3,2")
        assert _ask(port, "AT+COPS?") == ['+COPS: 0,2,"45202",13', "OK"]
        assert _ask(port, "AT+QNWINFO")[1].startswith('+QNWINFO: "TDD NR5G","45202","NR5G BAND 78"')


def test_lte_only_module_knows_no_5g_commands(tmp_path: Path) -> None:
    with (
        EmulatedModem(tmp_path / "tty", ModemModel.EC25, ModemState.LTE) as _,
        serial.Serial(str(tmp_path / "tty"), 115200, timeout=0.05) as port,
    ):
        _ask(port, "ATE0")
        assert _ask(port, "AT+C5GREG?") == ["ERROR"]
        assert _ask(port, "ATI") == ["Quectel", "EC25", "Revision: EC25EFAR06A06M4G", "OK"]
    with pytest.raises(ValueError, match="cannot be on 5G"):
        EmulatedModem(tmp_path / "x", ModemModel.EC25, ModemState.NR5G_SA)


def test_sim_states(tmp_path: Path) -> None:
    with (
        EmulatedModem(tmp_path / "tty", state=ModemState.SIM_MISSING) as m,
        serial.Serial(str(tmp_path / "tty"), 115200, timeout=0.05) as port,
    ):
        _ask(port, "ATE0")
        assert _ask(port, "AT+CPIN?") == ["+CME ERROR: 10"]
        m.set_state(ModemState.PIN_LOCKED)
        assert _ask(port, "AT+CPIN?") == ["+CPIN: SIM PIN", "OK"]
        assert _ask(port, "AT+COPS?") == ["+COPS: 0", "OK"]


def test_unplug_removes_the_port_and_replug_is_a_new_pty(tmp_path: Path) -> None:
    link = tmp_path / "by-id" / "usb-Quectel_RM500Q-if02-port0"
    with EmulatedModem(link) as modem:
        first = modem.device
        port = serial.Serial(str(link), 115200, timeout=0.05)
        modem.set_state(ModemState.UNPLUGGED)
        assert not link.exists()
        with pytest.raises(serial.SerialException):
            port.write(b"AT\r")
            for _ in range(20):
                port.read(1)
        port.close()
        modem.set_state(ModemState.LTE)
        assert link.exists() and modem.replugs == 1
        with serial.Serial(str(link), 115200, timeout=0.05) as again:
            assert _ask(again, "AT") == ["AT", "OK"]
        assert modem.device  # a pty again (the kernel may reuse the number)
        assert first


def test_mute_garbage_and_partial(tmp_path: Path) -> None:
    with (
        EmulatedModem(tmp_path / "tty", state=ModemState.MUTE) as m,
        serial.Serial(str(tmp_path / "tty"), 115200, timeout=0.05) as port,
    ):
        # echo, then silence
        assert _ask(port, "AT", until=lambda d: b"AT\r" in d, quiet_s=0.3) == ["AT"]
        m.set_state(ModemState.GARBAGE)
        garbled = _ask(port, "AT", until=lambda d: any(b >= 0x80 for b in d), quiet_s=0.3)
        assert any("\ufffd" in line for line in garbled)
        m.set_state(ModemState.PARTIAL)
        half = _ask(
            port, 'AT+QENG="servingcell"', until=lambda d: b'+QENG: "serv' in d, quiet_s=0.3
        )
        assert half[-1].startswith('+QENG: "serv') and "OK" not in half


def test_script_switches_state_at_an_observation(tmp_path: Path) -> None:
    script = [(2, ModemState.NR5G_NSA), (3, ModemState.NO_SERVICE)]
    with (
        EmulatedModem(tmp_path / "tty", state=ModemState.LTE, script=script) as m,
        serial.Serial(str(tmp_path / "tty"), 115200, timeout=0.05) as port,
    ):
        _ask(port, "ATE0")
        seen = []
        for _ in range(3):
            _ask(port, "ATI")
            seen.append(m.state)
        assert seen == [ModemState.LTE, ModemState.NR5G_NSA, ModemState.NO_SERVICE]


def test_command_line_serves_until_terminated(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from agent.cellular.at import AtBackend

    link = tmp_path / "ttyMODEM"
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulation.modem", str(link), "--state", "nr5g-sa"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert "RM500Q-GL on 45204, nr5g-sa" in proc.stdout.readline()
        assert AtBackend(str(link), ANSWER_GUARD_S).observe().access_tech == "nr5g_sa"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert not link.exists()  # unplugged on the way out


def test_limited_service_umts_and_firmware_variants(tmp_path: Path) -> None:
    with (
        EmulatedModem(tmp_path / "tty", ModemModel.RM500Q, ModemState.LIMITED, limited_stat=8) as m,
        serial.Serial(str(tmp_path / "tty"), 115200, timeout=0.05) as port,
    ):
        _ask(port, "ATE0")
        assert _ask(port, 'AT+QENG="servingcell"')[0].startswith(
            '+QENG: "servingcell","LIMSRV","LTE","FDD",452,04,'
        )
        assert _ask(port, "AT+CEREG?") == ["+CEREG: 0,8", "OK"]
        assert _ask(port, "AT+COPS?") == ["+COPS: 0", "OK"]
        m.set_state(ModemState.UMTS)
        assert _ask(port, 'AT+QENG="servingcell"')[0] == (
            '+QENG: "servingcell","NOCONN","WCDMA",452,04,3A9,2E9F1C,10713,3,16,-85,-7,-,-,-,-,-'
        )
        assert _ask(port, "AT+CREG?") == ["+CREG: 0,1", "OK"]
    with (
        EmulatedModem(
            tmp_path / "tty2",
            ModemModel.RM500Q,
            ModemState.LTE,
            reserved_area=True,
            unpadded_codes=True,
        ),
        serial.Serial(str(tmp_path / "tty2"), 115200, timeout=0.05) as port,
    ):
        _ask(port, "ATE0")
        _ask(port, "AT+CEREG=2")
        assert _ask(port, "AT+CEREG?")[0] == '+CEREG: 2,1,"FFFE","1A2D001",7'
        _ask(port, "AT+COPS=3,2")
        assert _ask(port, "AT+COPS?")[0] == '+COPS: 0,2,"4524",7'
        assert _ask(port, 'AT+QENG="servingcell"')[0].startswith(
            '+QENG: "servingcell","NOCONN","LTE","FDD",452,4,1A2D001,211,1650,3,5,5,FFFE,'
        )
    with (
        EmulatedModem(tmp_path / "tty3", trailing_urc='+QIND: "csq",20,99'),
        serial.Serial(str(tmp_path / "tty3"), 115200, timeout=0.05) as port,
    ):
        # The unsolicited line follows the final result code in the same write.
        assert _ask(port, "ATE0") == ["ATE0", "OK", '+QIND: "csq",20,99']
