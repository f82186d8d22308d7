"""The one interface both modem backends implement, and what they return.

`ModemBackend.observe()` returns a `RadioObservation` or raises
`ModemProblem`, whose `kind` names what went wrong in the field (unplugged,
timeout, garbage, SIM missing, PIN locked, ModemManager absent, ...). A
modem that answers but is not registered is not a problem: that is an
observation of no service (access technology `none`), which the 5G and
4G availability shares must count.

Backends are cheap to build and hold nothing open between observations:
the serial port or `mmcli` is opened for each observation, so a modem that
was unplugged or re-enumerated (a new /dev/ttyUSBn behind the same
/dev/serial/by-id link, a new ModemManager index) is found again by itself.

The backends (`at.py`, `mmcli.py`) import this module and this module
imports neither; `backends.py` picks one from `ModemSettings`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Protocol

from agent.cellular.operators import is_foreign, operator_code, operator_name


class AccessTech(enum.StrEnum):
    """Radio access technology; values match the store's words."""

    NONE = "none"
    GSM = "gsm"
    UMTS = "umts"
    LTE = "lte"
    NR5G_NSA = "nr5g_nsa"
    NR5G_SA = "nr5g_sa"


class Registration(enum.StrEnum):
    """Network registration (3GPP TS 27.007 +CREG/+CEREG/+C5GREG <stat>)."""

    HOME = "home"
    ROAMING = "roaming"
    SEARCHING = "searching"
    DENIED = "denied"
    NOT_REGISTERED = "not-registered"
    UNKNOWN = "unknown"


class SinrConversion(enum.StrEnum):
    """How `sinr_db` was made from the number the modem printed (`sinr_raw`):
    firmware prints SINR in different units, and this says which one was
    assumed, so that an analyst can undo it. Values match the store's words."""

    AS_PRINTED = "as_printed"  # printed in dB: sinr_db = raw
    TENTHS = "tenths"  # printed in tenths of a dB: sinr_db = raw / 10
    # Quectel's LTE scale of the EC2x/EG9x/EM05 manuals: 0..250 in 1/5 dB
    # steps from -20 dB, sinr_db = raw / 5 - 20.
    FIFTHS_MINUS_20 = "fifths_minus_20"


def sinr_db_of(raw: float, conversion: SinrConversion) -> float:
    """The SINR in dB of a printed value under `conversion`."""
    if conversion is SinrConversion.TENTHS:
        return raw / 10.0
    if conversion is SinrConversion.FIFTHS_MINUS_20:
        return raw / 5.0 - 20.0
    return raw


class ProblemKind(enum.StrEnum):
    """Why a modem could not be observed; each is a clear status for people."""

    NOT_CONFIGURED = "not-configured"  # no serial port and no ModemManager modem to use
    UNPLUGGED = "unplugged"  # the port is gone, or vanished mid-command
    TIMEOUT = "timeout"  # the modem stopped answering
    GARBAGE = "garbage"  # answers that are not AT responses / not JSON
    SIM_MISSING = "sim-missing"
    SIM_LOCKED = "sim-locked"  # PIN or PUK required
    MODEMMANAGER_ABSENT = "modemmanager-absent"  # no mmcli, or the daemon is not running
    MODEM_FAILED = "modem-failed"  # the modem reports itself failed / disabled


@dataclass(frozen=True, kw_only=True)
class RadioFigures:
    """The radio figures of an observation, named as the proto's
    CellularObservation fields; a figure the modem did not give is None.
    Shared by RadioObservation and the stored measurement result."""

    mcc_mnc: str = ""
    operator_name: str = ""
    band: int | None = None
    channel: int | None = None  # EARFCN / NR-ARFCN
    cell_id: str = ""  # hex
    tac: str = ""  # hex
    rsrp_dbm: float | None = None
    rsrq_db: float | None = None
    sinr_db: float | None = None
    registration_state: str = ""
    modem_model: str = ""
    modem_5g_capable: bool | None = None
    backend: str = ""
    nr_band: int | None = None
    nr_rsrp_dbm: float | None = None
    nr_sinr_db: float | None = None
    pci: int | None = None  # physical cell id of the serving cell
    nr_channel: int | None = None  # NSA: the 5G leg's NR-ARFCN
    nr_pci: int | None = None  # NSA: the 5G leg's physical cell id
    rssi_dbm: float | None = None  # the serving carrier's RSSI (GSM, UMTS; LTE where given)
    rscp_dbm: float | None = None  # UMTS: received signal code power
    ecio_db: float | None = None  # UMTS: Ec/Io
    # The SINR figures as the modem printed them, and how they became dB.
    sinr_raw: float | None = None
    sinr_conversion: SinrConversion | None = None
    nr_sinr_raw: float | None = None
    nr_sinr_conversion: SinrConversion | None = None


@dataclass(frozen=True, kw_only=True)
class RadioObservation(RadioFigures):
    """What the modem saw at one moment."""

    access_tech: AccessTech = AccessTech.NONE
    # Not stored: how the backend got it (firmware revision / mmcli version).
    tool_version: str = field(default="", compare=False)

    @property
    def on_nr(self) -> bool:
        return self.access_tech in (AccessTech.NR5G_NSA, AccessTech.NR5G_SA)

    def with_(self, **changes: object) -> RadioObservation:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]


_REGISTERED = (str(Registration.HOME), str(Registration.ROAMING))


def as_recorded(obs: RadioObservation) -> RadioObservation:
    """The network part of an observation settled the same way for both backends.

    A modem that is not registered (searching, limited service: emergency
    calls only, denied) has no service whatever cell it camps on: access
    technology `none` and no network code or operator (the camped cell may be
    another network's, which is why it was refused). A code that can be no
    operator's (MCC 000, 001, 999) is dropped. A network outside Vietnam is
    recorded as roaming and is never named as a Vietnamese operator.
    """
    code = operator_code(obs.mcc_mnc)
    registration = obs.registration_state
    if registration not in _REGISTERED:
        return obs.with_(access_tech=AccessTech.NONE, mcc_mnc="", operator_name="")
    if is_foreign(code):
        registration = str(Registration.ROAMING)
    return obs.with_(
        mcc_mnc=code, operator_name=operator_name(code), registration_state=registration
    )


class ModemProblem(Exception):
    """The modem could not be observed. `partial` holds what was learnt before
    the problem (e.g. the model and 5G capability of a modem without a SIM)."""

    def __init__(
        self, kind: ProblemKind, reason: str, partial: RadioObservation | None = None
    ) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason
        self.partial = partial


class ModemBackend(Protocol):
    """What the agent asks of a modem, whichever way it talks to it."""

    name: str  # "at" | "modemmanager"

    def observe(self) -> RadioObservation:
        """One observation now; raises ModemProblem when there is none."""
        ...


@dataclass(frozen=True, kw_only=True)
class ModemSettings:
    """How to reach the modem ([modem] in agent.toml)."""

    backend: str = "auto"  # auto | modemmanager | at
    serial_port: str = ""  # AT port, e.g. /dev/serial/by-id/usb-Quectel_...-if02-port0
    modemmanager_index: int | None = None  # None: the first modem mmcli lists
    mmcli_command: str = "mmcli"
    at_timeout_s: float = 3.0  # per AT command
    mmcli_timeout_s: float = 10.0  # per mmcli call
