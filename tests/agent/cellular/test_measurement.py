"""The `cellular` measurement through the real serial code against the modem
emulator: each state a probe meets in the field gives a clear status, and the
next observation recovers by itself when the modem is back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.cellular.observe import AccessTech, ModemSettings
from agent.clock import ClockState
from agent.measurements import run_measurement
from agent.measurements.base import MeasurementContext, ReasonKind, Status
from agent.measurements.cellular import CellularObservationResult
from agent.wire import ProbeContext, to_json_dict, to_proto
from emulation.modem import FAKE_IMEI, FAKE_IMSI, EmulatedModem, ModemModel, ModemState
from tests.agent.cellular import replay_mmcli

PROBE = ProbeContext(probe_id="p", ward_code=31135, agent_version="0.1.0", network_kind="mobile")


@pytest.fixture
def link(tmp_path: Path) -> Path:
    return tmp_path / "serial" / "by-id" / "usb-Quectel-if02-port0"


# The emulator answers at once: a modem that answers is waited for up to this
# guard, so that a busy machine answering late fails nothing. A modem that
# stops answering (mute, or silent after a partial answer) is given up on
# after SILENT_S, per command as the agent does (so in the partial case the
# commands it still answers must come within it: a second is ample).
ANSWER_GUARD_S = 30.0
SILENT_S = 1.0


def _observe(link: Path, timeout_s: float = ANSWER_GUARD_S) -> CellularObservationResult:
    ctx = MeasurementContext(
        server_host="unused",
        interface="wwan0",
        modem=ModemSettings(backend="at", serial_port=str(link), at_timeout_s=timeout_s),
    )
    result = run_measurement("cellular", ctx)
    assert isinstance(result, CellularObservationResult)
    return result


@pytest.fixture
def modem(link: Path) -> Iterator[EmulatedModem]:
    with EmulatedModem(link, ModemModel.RM500Q, ModemState.LTE, "45204") as emulated:
        yield emulated


@pytest.mark.parametrize(
    ("model", "state", "tech", "capable"),
    [
        (ModemModel.EC25, ModemState.LTE, AccessTech.LTE, False),
        (ModemModel.RM500Q, ModemState.LTE, AccessTech.LTE, True),
        (ModemModel.RM500Q, ModemState.NR5G_NSA, AccessTech.NR5G_NSA, True),
        (ModemModel.RM500Q, ModemState.NR5G_SA, AccessTech.NR5G_SA, True),
        (ModemModel.SIM8200, ModemState.NR5G_NSA, AccessTech.NR5G_NSA, True),
    ],
)
def test_observations_on_each_network(
    link: Path, model: ModemModel, state: ModemState, tech: AccessTech, capable: bool
) -> None:
    with EmulatedModem(link, model, state, "45202") as emulated:
        result = _observe(link)
    assert result.status is Status.OK, result.status_reason
    assert result.access_tech is tech
    assert (result.mcc_mnc, result.operator_name) == ("45202", "VinaPhone")
    assert result.modem_5g_capable is capable
    assert (result.backend, result.method.tool, result.interface) == ("at", "at", "wwan0")
    assert result.registration_state == "home"
    if model is ModemModel.SIM8200:
        # Not a Quectel: what 3GPP's commands give (cell and TAC), no radio figures.
        assert result.rsrp_dbm is None and result.band is None and result.tac == "1C3"
    else:
        assert result.rsrp_dbm is not None and result.band is not None
        assert result.sinr_db == pytest.approx(21.0 if tech is AccessTech.NR5G_SA else 15.0)
    if tech is AccessTech.NR5G_NSA and model is ModemModel.RM500Q:
        assert (result.nr_band, result.nr_rsrp_dbm, result.nr_sinr_db) == (78, -88.0, 21.0)
    # No SIM identities asked for, none kept, and the wire message has none.
    assert not any(c.upper() in ("AT+CIMI", "AT+QCCID", "AT+CNUM") for c in emulated.commands)
    wire = str(to_json_dict(to_proto("cellular", result, PROBE, ClockState.SYNCHRONISED)))
    assert FAKE_IMEI not in wire and FAKE_IMSI not in wire


@pytest.mark.parametrize(
    ("state", "status", "kind", "reason"),
    [
        (ModemState.SIM_MISSING, Status.FAILED, ReasonKind.MODEM_UNAVAILABLE,
         "sim-missing: no SIM in the modem"),
        (ModemState.PIN_LOCKED, Status.FAILED, ReasonKind.MODEM_UNAVAILABLE,
         "sim-locked: SIM is locked (SIM PIN)"),
        (ModemState.UNPLUGGED, Status.FAILED, ReasonKind.MODEM_UNAVAILABLE,
         "unplugged: cannot open"),
        (ModemState.MUTE, Status.FAILED, ReasonKind.TIMEOUT, "timeout: no final result to ATE0"),
        (ModemState.GARBAGE, Status.FAILED, ReasonKind.MALFORMED_OUTPUT,
         "malformed output: unreadable answer"),
        (ModemState.PARTIAL, Status.FAILED, ReasonKind.TIMEOUT,
         "timeout: no final result to AT+QENG"),
    ],
)  # fmt: skip
def test_each_failure_is_a_clear_status_and_the_modem_recovers(
    modem: EmulatedModem,
    link: Path,
    state: ModemState,
    status: Status,
    kind: ReasonKind,
    reason: str,
) -> None:
    modem.set_state(state)
    failed = _observe(link, SILENT_S if kind is ReasonKind.TIMEOUT else ANSWER_GUARD_S)
    assert failed.status is status
    assert failed.status_reason_kind is kind
    assert failed.status_reason.startswith(reason), failed.status_reason
    assert failed.access_tech is None  # unknown: not counted as "no service"
    if state in (ModemState.SIM_MISSING, ModemState.PIN_LOCKED, ModemState.PARTIAL):
        assert (failed.modem_model, failed.modem_5g_capable) == ("RM500Q-GL", True)
    modem.set_state(ModemState.NR5G_NSA)
    back = _observe(link)
    assert back.status is Status.OK, back.status_reason
    assert back.access_tech is AccessTech.NR5G_NSA


def test_no_registration_is_an_observation_of_no_service(modem: EmulatedModem, link: Path) -> None:
    modem.set_state(ModemState.NO_SERVICE)
    result = _observe(link)
    assert result.status is Status.OK
    assert result.access_tech is AccessTech.NONE
    assert result.registration_state == "searching"
    assert (result.mcc_mnc, result.operator_name, result.rsrp_dbm) == ("", "", None)


def test_unplugged_during_an_answer_and_re_enumerated(modem: EmulatedModem, link: Path) -> None:
    first = modem.device
    modem.set_state(ModemState.MUTE)  # the modem hangs mid-observation ...

    threading.Timer(0.15, modem.set_state, (ModemState.UNPLUGGED,)).start()  # ... and drops
    gone = _observe(link)  # it waits on the hung modem until the unplugging, however late
    assert gone.status is Status.FAILED
    assert gone.status_reason.startswith("unplugged: ")
    modem.set_state(ModemState.LTE)  # back on the bus, maybe as another tty
    assert modem.replugs == 1 and modem.device and first
    assert _observe(link).access_tech is AccessTech.LTE


def test_no_modem_configured_is_skipped(tmp_path: Path) -> None:
    ctx = MeasurementContext(
        server_host="unused",
        modem=ModemSettings(backend="auto", mmcli_command=str(tmp_path / "absent")),
    )
    result = run_measurement("cellular", ctx)
    assert result.status is Status.SKIPPED
    assert result.status_reason_kind is ReasonKind.NOT_CONFIGURED
    assert "not-configured" in result.status_reason


def test_modemmanager_absent_is_a_failed_observation(tmp_path: Path) -> None:
    mmcli = replay_mmcli.install(
        tmp_path,
        {"-L": {"exit": 1, "stderr": "error: couldn't find the ModemManager process in the bus"}},
    )
    ctx = MeasurementContext(
        server_host="unused", modem=ModemSettings(backend="modemmanager", mmcli_command=mmcli)
    )
    result = run_measurement("cellular", ctx)
    assert result.status is Status.FAILED
    assert result.status_reason.startswith("modemmanager-absent: ModemManager is not running")
    assert result.method.tool == "mmcli"
