"""A cellular modem on a pseudo-terminal, answering AT commands as Quectel
modules do, for the tests and the demo.

The agent's AT backend (agent/cellular/at.py, its port in at_port.py) opens the emulator's port
exactly as it opens a real /dev/ttyUSB2: through pyserial, by a stable link
like /dev/serial/by-id/... (here a symlink the emulator keeps pointing at its
current /dev/pts/N). Answers follow the modules' AT manuals (Quectel
EC2x&EG9x&EM05 for the EC25, RG50xQ&RM5xxQ for the RM500Q; 3GPP TS 27.007
for +COPS/+CSQ/+CPIN/+CREG/+CEREG/+C5GREG), with V1 framing: every line
between CR LF pairs, a final OK / ERROR / +CME ERROR.

The modem is scripted through states (`ModemState`): LTE, NR5G-NSA,
NR5G-SA, UMTS (WCDMA with RSCP and Ec/Io), limited service (camping on an
LTE cell without registration: +QENG "LIMSRV"), no service (searching), SIM
missing, PIN locked, unplugged (the pty closes and the link goes; plugging
back in makes a new pty, as a re-enumerated USB modem gets a new ttyUSBn),
mute (commands time out), garbage (line noise) and partial (the
serving-cell answer stops half-way). `script` switches states at given
observations, so a state change during a test is deterministic.

Firmware differences are switches of their own: what +CEREG/+CREG say in
limited service (`limited_stat`), reserved area codes (`reserved_area`),
network codes printed as plain numbers (`unpadded_codes`), the 2020 RM500Q
NSA line with its SINR in tenths of a dB (`early_nsa_firmware`) and an
unsolicited result code sent right after every final result code
(`trailing_urc`). Besides the Vietnamese networks, the modem can be on a
Cambodian one (45606) or on a test network (00101), as near a border or
on a lab callbox.
"""

from __future__ import annotations

import contextlib
import enum
import os
import select
import threading
import tty
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, TracebackType


class ModemState(enum.StrEnum):
    LTE = "lte"
    NR5G_NSA = "nr5g-nsa"
    NR5G_SA = "nr5g-sa"
    UMTS = "umts"  # WCDMA (HSPA): +QENG's WCDMA form, registered on the CS domain
    LIMITED = "limited"  # camping on the LTE cell without registration (LIMSRV)
    NO_SERVICE = "no-service"
    SIM_MISSING = "sim-missing"
    PIN_LOCKED = "pin-locked"
    UNPLUGGED = "unplugged"
    MUTE = "mute"  # reads commands, answers nothing (AT timeouts)
    GARBAGE = "garbage"  # answers line noise
    PARTIAL = "partial"  # the serving-cell answer stops half-way, no final result


class ModemModel(enum.StrEnum):
    EC25 = "EC25"  # Quectel LTE Cat 4: no 5G, +C5GREG unknown, SINR in 1/5 dB
    RM500Q = "RM500Q-GL"  # Quectel 5G sub-6: LTE, EN-DC (NSA), SA
    SIM8200 = "SIMCOM_SIM8200EA-M2"  # not a Quectel: no +QENG, the 3GPP commands only


@dataclass(frozen=True)
class OperatorCells:
    """The cells an operator's emulated network offers the modem."""

    mcc: str
    mnc: str
    long_name: str  # what +COPS prints in long alphanumeric format
    lte_band: int
    earfcn: int
    lte_cell_id: str
    tac: str
    nr_band: int
    nr_arfcn: int
    nr_cell_id: str
    lac: str  # the UMTS location area
    uarfcn: int
    umts_cell_id: str


# Vietnamese operators and bands they use (LTE B3 1800 MHz; NR n41 2.5 GHz for
# Viettel, n78 3.5-3.8 GHz for VinaPhone and MobiFone; UMTS band I 2100 MHz);
# a Cambodian network (Smart, 456-06) as a border probe could see it, and the
# ITU test network 001-01 of a lab callbox. Cell ids are made up.
OPERATORS = MappingProxyType(
    {
        "45204": OperatorCells(
            "452", "04", "Viettel", 3, 1650, "1A2D001", "2F0A", 41, 509202, "3A1B2C005",
            "3A9", 10713, "2E9F1C",
        ),
        "45202": OperatorCells(
            "452", "02", "VinaPhone", 3, 1400, "0B9F50D", "1C3", 78, 650000, "1F0E3D002",
            "1C4", 10638, "1B0C2A",
        ),
        "45201": OperatorCells(
            "452", "01", "MobiFone", 3, 1850, "21A4C07", "5D4", 78, 643334, "2B7C1A009",
            "5D5", 10563, "3C1D0E",
        ),
        "45606": OperatorCells(
            "456", "06", "SMART", 3, 1300, "0C3F201", "A12", 78, 636666, "1A2B3C004",
            "A13", 10788, "4D2E1F",
        ),
        "00101": OperatorCells(
            "001", "01", "Test PLMN 1-1", 3, 1575, "0000101", "1", 78, 627264, "000000101",
            "2", 10700, "101",
        ),
    }
)  # fmt: skip


@dataclass(frozen=True)
class Radio:
    """The figures the emulated modem reports (dB / dBm as a real modem would)."""

    rsrp_dbm: int = -95
    rsrq_db: int = -10
    rssi_dbm: int = -65
    sinr_db: int = 15
    nr_rsrp_dbm: int = -88
    nr_rsrq_db: int = -11
    nr_sinr_db: int = 21
    rscp_dbm: int = -85  # UMTS
    ecio_db: int = -7  # UMTS


# Quectel answers to ATI: manufacturer, model, revision.
_REVISIONS = {
    ModemModel.EC25: "EC25EFAR06A06M4G",
    ModemModel.RM500Q: "RM500QGLABR11A06M4G",
    ModemModel.SIM8200: "LE20B04SIM8200M40",
}
# An IMEI that the SIMCom's ATI prints (the agent must not keep it).
FAKE_IMEI = "861234050012345"
FAKE_IMSI = "452041234567890"


class EmulatedModem:
    """An emulated modem behind `link` (a symlink to its pty). Use as a
    context manager or call start()/close()."""

    def __init__(
        self,
        link: Path,
        model: ModemModel = ModemModel.RM500Q,
        state: ModemState = ModemState.LTE,
        operator: str = "45204",
        radio: Radio | None = None,
        script: Sequence[tuple[int, ModemState]] = (),
        *,
        limited_stat: int = 3,
        reserved_area: bool = False,
        unpadded_codes: bool = False,
        early_nsa_firmware: bool = False,
        trailing_urc: str = "",
    ) -> None:
        """`limited_stat`: the <stat> +CEREG and +CREG answer in LIMITED (TS
        27.007: 0 not registered, 3 denied, 8 emergency bearer services only;
        1 for a modem whose registration answer lags its serving cell).
        `reserved_area`: LAC and TAC print as FFFE (5GS TAC FFFFFE), no valid
        area. `unpadded_codes`: MCC and MNC print as plain numbers ("1","1"
        for 001-01; +COPS "4524"). `early_nsa_firmware`: the NR5G-NSA line
        of 2020 RM500Q firmware (no band, SINR in tenths of a dB).
        `trailing_urc`: a line written right after every final result code."""
        if operator not in OPERATORS:
            raise ValueError(f"no emulated network for {operator}; have {', '.join(OPERATORS)}")
        if model == ModemModel.EC25 and state in (ModemState.NR5G_NSA, ModemState.NR5G_SA):
            raise ValueError("an EC25 cannot be on 5G")
        self.link = link
        self.model = model
        self.operator = operator
        self.radio = radio or Radio()
        self.limited_stat = limited_stat
        self.reserved_area = reserved_area
        self.unpadded_codes = unpadded_codes
        self.early_nsa_firmware = early_nsa_firmware
        self.trailing_urc = trailing_urc
        self.commands: list[str] = []  # every command received, for tests
        self.observations = 0  # ATI commands seen: the agent sends one per observation
        self._script = sorted(script)
        self._state = state
        self._lock = threading.Lock()
        self._echo = True
        self._cops_numeric = False
        self._cereg_n = 0
        self._c5greg_n = 0
        self._master = -1
        self._slave = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.replugs = 0

    # --- life cycle ----------------------------------------------------

    def start(self) -> EmulatedModem:
        """Create the pty (unless unplugged) and serve it in a thread."""
        if self._state != ModemState.UNPLUGGED:
            self._plug()
        self._thread = threading.Thread(target=self._serve, name=f"modem-{self.link.name}")
        self._thread.daemon = True  # never keeps a test run alive
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, close the pty, remove the link."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            self._unplug()

    def __enter__(self) -> EmulatedModem:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def state(self) -> ModemState:
        return self._state

    @property
    def device(self) -> str:
        """The current /dev/pts/N ("" while unplugged)."""
        return os.ttyname(self._slave) if self._slave >= 0 else ""

    def set_state(self, state: ModemState) -> None:
        """Switch state now; to/from UNPLUGGED closes/makes the pty."""
        with self._lock:
            self._set_state(state)

    def _set_state(self, state: ModemState) -> None:
        if state == ModemState.UNPLUGGED:
            self._unplug()
        elif self._master < 0:
            self._plug()
            self.replugs += 1
        self._state = state

    def _plug(self) -> None:
        self._master, self._slave = os.openpty()
        # Raw, so the line discipline neither echoes nor rewrites CR: the
        # emulator does the echo itself, as the modem's ATE1 does.
        tty.setraw(self._slave)
        self._echo, self._cops_numeric, self._cereg_n, self._c5greg_n = True, False, 0, 0
        self.link.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.link.with_name(self.link.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.ttyname(self._slave))
        os.replace(tmp, self.link)  # the link never dangles while plugged

    def _unplug(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1

    # --- serving -------------------------------------------------------

    def _serve(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            with self._lock:
                master = self._master
            if master < 0:
                buffer = b""
                self._stop.wait(0.02)
                continue
            try:
                ready, _, _ = select.select([master], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(master, 4096)
            except OSError:
                continue  # closed under us (unplugged) or no reader yet
            buffer += data
            while b"\r" in buffer:
                raw, _, buffer = buffer.partition(b"\r")
                command = raw.strip(b"\n ").decode("ascii", errors="replace")
                if command:
                    self._handle(command)

    def _write(self, data: bytes) -> None:
        with self._lock:
            if self._master < 0:
                return
            with contextlib.suppress(OSError):
                os.write(self._master, data)

    def _handle(self, command: str) -> None:
        with self._lock:
            self.commands.append(command)
            if command.upper() == "ATI":
                self.observations += 1
                while self._script and self._script[0][0] <= self.observations:
                    self._set_state(self._script.pop(0)[1])
            state, echo = self._state, self._echo
        if state == ModemState.UNPLUGGED:
            return
        if echo:
            self._write(command.encode("ascii", errors="replace") + b"\r")
        if state == ModemState.MUTE:
            return
        if state == ModemState.GARBAGE:
            self._write(b"\r\n\xff\xfe+QE\x00NG\x1b[2J\xc3\x28\r\n")
            return
        lines, final = self.answer(command)
        if state == ModemState.PARTIAL and command.upper().startswith("AT+QENG"):
            first = lines[0] if lines else ""
            self._write(b"\r\n" + first[: len(first) // 2].encode("ascii"))
            return
        payload = b"".join(b"\r\n" + line.encode("ascii") + b"\r\n" for line in lines)
        # One write: what follows the final result arrives in the same read.
        urc = f"\r\n{self.trailing_urc}\r\n" if self.trailing_urc else ""
        self._write(payload + b"\r\n" + (final + urc).encode("ascii") + b"\r\n")

    # --- answers (the AT manuals' formats) -----------------------------

    def answer(self, command: str) -> tuple[list[str], str]:
        """The information lines and final result code for one command."""
        cmd = command.upper().replace(" ", "")
        state, net, r, model = self._state, OPERATORS[self.operator], self.radio, self.model
        quectel = model != ModemModel.SIM8200
        sim_ok = state not in (ModemState.SIM_MISSING, ModemState.PIN_LOCKED)
        on = state in _REGISTERED_STATES and sim_ok
        camped = on or (state == ModemState.LIMITED and sim_ok)  # measuring a cell
        if cmd in ("AT", "ATE1", "ATE0"):
            self._echo = cmd != "ATE0"
            return [], "OK"
        if cmd == "ATI":
            if quectel:
                return ["Quectel", model.value, f"Revision: {_REVISIONS[model]}"], "OK"
            return [
                "Manufacturer: SIMCOM INCORPORATED",
                f"Model: {model.value}",
                f"Revision: {_REVISIONS[model]}",
                f"IMEI: {FAKE_IMEI}",
            ], "OK"
        if cmd == "AT+CGMM":
            return [model.value], "OK"
        if cmd == "AT+CIMI":  # a real modem answers; the agent never asks
            return ([FAKE_IMSI], "OK") if sim_ok else ([], "+CME ERROR: 10")
        if cmd == "AT+CPIN?":
            if state == ModemState.SIM_MISSING:
                return [], "+CME ERROR: 10"
            if state == ModemState.PIN_LOCKED:
                return ["+CPIN: SIM PIN"], "OK"
            return ["+CPIN: READY"], "OK"
        if cmd.startswith("AT+COPS=3,"):
            self._cops_numeric = cmd.endswith(",2")
            return [], "OK"
        if cmd == "AT+COPS?":
            if not on:
                return ["+COPS: 0"], "OK"
            act = {
                ModemState.LTE: 7,
                ModemState.NR5G_NSA: 13,
                ModemState.NR5G_SA: 11,
                ModemState.UMTS: 6,
            }[state]
            mcc, mnc = self._codes()
            name = mcc.zfill(3) + mnc if self._cops_numeric else net.long_name
            return [f'+COPS: 0,{2 if self._cops_numeric else 0},"{name}",{act}'], "OK"
        if cmd == "AT+CSQ":
            return [f"+CSQ: {(r.rssi_dbm + 113) // 2 if camped else 99},99"], "OK"
        if cmd.startswith("AT+CEREG="):
            self._cereg_n = int(cmd.rpartition("=")[2] or 0)
            return [], "OK"
        if cmd.startswith("AT+C5GREG="):
            if model == ModemModel.EC25:
                return [], "ERROR"
            self._c5greg_n = int(cmd.rpartition("=")[2] or 0)
            return [], "OK"
        if cmd == "AT+CEREG?":
            stat = self._stat(state, on and state in (ModemState.LTE, ModemState.NR5G_NSA))
            if stat == 1 and self._cereg_n >= 2:
                tac = self._area(net.tac, 16)
                return [f'+CEREG: {self._cereg_n},1,"{tac}","{net.lte_cell_id}",7'], "OK"
            return [f"+CEREG: {self._cereg_n},{stat}"], "OK"
        if cmd == "AT+C5GREG?":
            if model == ModemModel.EC25:
                return [], "ERROR"
            stat = 1 if state == ModemState.NR5G_SA and sim_ok else 0
            if stat == 1 and self._c5greg_n >= 2:
                tac = self._area(net.tac, 24)
                return [f'+C5GREG: {self._c5greg_n},1,"{tac}","{net.nr_cell_id}",11'], "OK"
            return [f"+C5GREG: {self._c5greg_n},{stat}"], "OK"
        if cmd == "AT+CREG?":
            cs = on and state in (ModemState.LTE, ModemState.NR5G_NSA, ModemState.UMTS)
            return [f"+CREG: 0,{self._stat(state, cs)}"], "OK"
        if cmd == 'AT+QENG="SERVINGCELL"' and quectel:
            return self._qeng(state if sim_ok else ModemState.NO_SERVICE), "OK"
        if cmd == "AT+QNWINFO" and quectel:
            return self._qnwinfo(state if sim_ok else ModemState.NO_SERVICE), "OK"
        return [], "ERROR"

    def _stat(self, state: ModemState, registered: bool) -> int:
        """<stat> of +CEREG / +CREG (TS 27.007): 1 registered, 2 searching,
        `limited_stat` in limited service, 0 otherwise."""
        if registered:
            return 1
        if state == ModemState.LIMITED:
            return self.limited_stat
        return 2 if state == ModemState.NO_SERVICE else 0

    def _codes(self) -> tuple[str, str]:
        """MCC and MNC as this firmware prints them in +QENG (and +COPS's MNC)."""
        net = OPERATORS[self.operator]
        if self.unpadded_codes:
            return str(int(net.mcc)), str(int(net.mnc))
        return net.mcc, net.mnc

    def _area(self, code: str, bits: int) -> str:
        """A LAC/TAC, or the reserved "no valid area" value of its width."""
        if not self.reserved_area:
            return code
        return "FFFFFE" if bits == 24 else "FFFE"

    def _lte_fields(self) -> str:
        net, r = OPERATORS[self.operator], self.radio
        if self.model == ModemModel.EC25:
            # EC2x manual: <SINR> 0..250 in 1/5 dB from -20 dB; no CQI/tx_power.
            tail = f"{(r.sinr_db + 20) * 5},52"
        else:
            tail = f"{r.sinr_db},13,230,-"
        mcc, mnc = self._codes()
        return (
            f'"FDD",{mcc},{mnc},{net.lte_cell_id},211,{net.earfcn},{net.lte_band},'
            f"5,5,{self._area(net.tac, 16)},{r.rsrp_dbm},{r.rsrq_db},{r.rssi_dbm},{tail}"
        )

    def _qeng(self, state: ModemState) -> list[str]:
        net, r = OPERATORS[self.operator], self.radio
        mcc, mnc = self._codes()
        if state == ModemState.LTE:
            return [f'+QENG: "servingcell","NOCONN","LTE",{self._lte_fields()}']
        if state == ModemState.LIMITED:
            return [f'+QENG: "servingcell","LIMSRV","LTE",{self._lte_fields()}']
        if state == ModemState.NR5G_NSA:
            if self.early_nsa_firmware:
                # 2020 RM500Q firmware: no NR-ARFCN or band, SINR in tenths of a dB.
                leg = f"{r.nr_rsrp_dbm},{r.nr_sinr_db * 10},{r.nr_rsrq_db}"
            else:
                leg = (
                    f"{r.nr_rsrp_dbm},{r.nr_sinr_db},{r.nr_rsrq_db},"
                    f"{net.nr_arfcn},{net.nr_band},12,1"
                )
            return [
                '+QENG: "servingcell","NOCONN"',
                f'+QENG: "LTE",{self._lte_fields()}',
                f'+QENG: "NR5G-NSA",{mcc},{mnc},832,{leg}',
            ]
        if state == ModemState.NR5G_SA:
            return [
                f'+QENG: "servingcell","NOCONN","NR5G-SA","TDD",{mcc},{mnc},'
                f"{net.nr_cell_id},538,{self._area(net.tac, 24)},{net.nr_arfcn},{net.nr_band},"
                f"12,{r.nr_rsrp_dbm},{r.nr_rsrq_db},{r.nr_sinr_db},1,-"
            ]
        if state == ModemState.UMTS:
            # EC2x manual: ...,<LAC>,<cellID>,<uarfcn>,<PSC>,<RAC>,<RSCP>,<ecio>,
            # <phych>,<SF>,<slot>,<speech_code>,<comMod>
            return [
                f'+QENG: "servingcell","NOCONN","WCDMA",{mcc},{mnc},{self._area(net.lac, 16)},'
                f"{net.umts_cell_id},{net.uarfcn},3,16,{r.rscp_dbm},{r.ecio_db},-,-,-,-,-"
            ]
        return ['+QENG: "servingcell","SEARCH"']

    def _qnwinfo(self, state: ModemState) -> list[str]:
        net = OPERATORS[self.operator]
        code = net.mcc + net.mnc
        lte = f'+QNWINFO: "FDD LTE","{code}","LTE BAND {net.lte_band}",{net.earfcn}'
        nr = f'+QNWINFO: "TDD NR5G","{code}","NR5G BAND {net.nr_band}",{net.nr_arfcn}'
        if state in (ModemState.LTE, ModemState.LIMITED):
            return [lte]
        if state == ModemState.NR5G_NSA:
            return [lte, nr]
        if state == ModemState.NR5G_SA:
            return [nr]
        if state == ModemState.UMTS:
            return [f'+QNWINFO: "WCDMA","{code}","WCDMA 2100",{net.uarfcn}']
        return ["+QNWINFO: No Service"]


_REGISTERED_STATES = (
    ModemState.LTE,
    ModemState.NR5G_NSA,
    ModemState.NR5G_SA,
    ModemState.UMTS,
)


def main(
    link: Path,
    model: ModemModel = ModemModel.RM500Q,
    state: ModemState = ModemState.LTE,
    operator: str = "45204",
) -> None:
    """Serve an emulated modem behind LINK until interrupted (Ctrl-C / SIGTERM).

    Point an agent at it: in the modem table of its agent.toml,
    backend = "at" and serial_port = "LINK".
    """
    import signal

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with EmulatedModem(link, model, state, operator) as modem:
        print(f"{model.value} on {operator}, {state}: {link} -> {modem.device}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: stop, unplug, remove the link
            stop.wait()


if __name__ == "__main__":
    import typer

    typer.run(main)
