"""Modem states read as the module means them, through the real serial code
against the modem emulator: limited service, reserved area codes, test and
foreign networks, codes printed unpadded, UMTS figures, SINR units, and an
unsolicited result code in the same read as a final result."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cellular.at_port import AtPort
from agent.cellular.observe import AccessTech, ModemSettings, SinrConversion
from agent.clock import ClockState
from agent.measurements import run_measurement
from agent.measurements.base import MeasurementContext, Status
from agent.measurements.cellular import CellularObservationResult
from agent.wire import ProbeContext, to_json_dict, to_proto
from emulation.modem import EmulatedModem, ModemModel, ModemState

PROBE = ProbeContext(probe_id="p", ward_code=31135, agent_version="0.1.0", network_kind="mobile")
QIND = '+QIND: "csq",20,99'


@pytest.fixture
def link(tmp_path: Path) -> Path:
    return tmp_path / "serial" / "by-id" / "usb-Quectel-if02-port0"


def _observe(link: Path) -> CellularObservationResult:
    ctx = MeasurementContext(
        server_host="unused",
        interface="wwan0",
        # The emulator answers at once: the limit is a guard against a hang.
        modem=ModemSettings(backend="at", serial_port=str(link), at_timeout_s=30.0),
    )
    result = run_measurement("cellular", ctx)
    assert isinstance(result, CellularObservationResult)
    assert result.status is Status.OK, result.status_reason
    return result


@pytest.mark.parametrize(
    ("stat", "registration"),
    [
        (0, "not-registered"),  # +CEREG: not registered, not searching
        (3, "denied"),  # registration denied: why the modem camps in limited service
        (8, "not-registered"),  # attached for emergency bearer services only
        (1, "not-registered"),  # the 3GPP answer lags the serving cell: LIMSRV decides
    ],
)
def test_limited_service_is_no_service_and_no_operator(
    link: Path, stat: int, registration: str
) -> None:
    with EmulatedModem(link, ModemModel.RM500Q, ModemState.LIMITED, limited_stat=stat):
        result = _observe(link)
    assert result.access_tech is AccessTech.NONE
    assert result.registration_state == registration
    # The camped cell may be another network's: no operator is named.
    assert (result.mcc_mnc, result.operator_name) == ("", "")
    assert (result.band, result.rsrp_dbm) == (3, -95.0)  # the camped cell's figures


@pytest.mark.parametrize("state", [ModemState.LTE, ModemState.NR5G_SA, ModemState.UMTS])
def test_reserved_area_codes_are_no_area(link: Path, state: ModemState) -> None:
    with EmulatedModem(link, ModemModel.RM500Q, state, reserved_area=True):
        result = _observe(link)
    assert result.access_tech is not AccessTech.NONE
    assert result.tac == ""  # FFFE (LAC, EPS TAC) / FFFFFE (5GS TAC): no valid area
    assert result.cell_id != ""


def test_a_network_outside_vietnam_is_roaming_and_never_named(link: Path) -> None:
    # The modem says "home" (its SIM's own network) on Smart, Cambodia.
    with EmulatedModem(link, ModemModel.RM500Q, ModemState.LTE, "45606"):
        result = _observe(link)
    assert result.access_tech is AccessTech.LTE
    assert (result.mcc_mnc, result.operator_name) == ("45606", "")
    assert result.registration_state == "roaming"


@pytest.mark.parametrize(
    ("operator", "code", "name"), [("45204", "45204", "Viettel"), ("00101", "", "")]
)
def test_codes_printed_unpadded(link: Path, operator: str, code: str, name: str) -> None:
    # +COPS "4524" / "0011" and +QENG "452,4" / "1,1": one code, zero-padded;
    # the test network 001-01 of a lab callbox is no operator at all.
    with EmulatedModem(link, ModemModel.RM500Q, ModemState.LTE, operator, unpadded_codes=True):
        result = _observe(link)
    assert result.access_tech is AccessTech.LTE
    assert (result.mcc_mnc, result.operator_name) == (code, name)
    assert result.registration_state == "home"


@pytest.mark.parametrize("model", [ModemModel.EC25, ModemModel.RM500Q])
def test_umts_reports_rscp_ecio_rssi_and_the_lac(link: Path, model: ModemModel) -> None:
    with EmulatedModem(link, model, ModemState.UMTS, "45202"):
        result = _observe(link)
    assert result.access_tech is AccessTech.UMTS
    assert (result.rscp_dbm, result.ecio_db) == (-85.0, -7.0)
    assert result.rssi_dbm == -65.0  # +CSQ 24
    assert (result.tac, result.cell_id, result.channel) == ("1C4", "1B0C2A", 10638)
    assert (result.mcc_mnc, result.operator_name) == ("45202", "VinaPhone")
    assert result.rsrp_dbm is None and result.sinr_db is None


def test_sinr_keeps_the_printed_value_and_its_conversion(link: Path) -> None:
    # EC25: LTE SINR on the 0..250 scale (15 dB prints as 175).
    with EmulatedModem(link, ModemModel.EC25, ModemState.LTE):
        ec25 = _observe(link)
    assert (ec25.sinr_db, ec25.sinr_raw) == (15.0, 175.0)
    assert ec25.sinr_conversion is SinrConversion.FIFTHS_MINUS_20
    wire = to_json_dict(to_proto("cellular", ec25, PROBE, ClockState.SYNCHRONISED))["cellular"]
    assert (wire["sinr_raw"], wire["sinr_conversion"]) == (175.0, "SINR_CONVERSION_FIFTHS_MINUS_20")
    # 2020 RM500Q firmware: the NSA leg's SINR in tenths (21 dB prints as 210).
    with EmulatedModem(link, ModemModel.RM500Q, ModemState.NR5G_NSA, early_nsa_firmware=True):
        nsa = _observe(link)
    assert (nsa.nr_sinr_db, nsa.nr_sinr_raw) == (21.0, 210.0)
    assert nsa.nr_sinr_conversion is SinrConversion.TENTHS
    assert (nsa.sinr_raw, nsa.sinr_conversion) == (15.0, SinrConversion.AS_PRINTED)
    assert nsa.nr_band == 41  # the early line has none: +QNWINFO's NR line gives it


def test_what_follows_a_final_result_is_kept_for_the_next_command(link: Path) -> None:
    # The modem sends an unsolicited +QIND right after OK, in the same write:
    # the port reads both at once, and the line is the next command's to see.
    with EmulatedModem(link, ModemModel.RM500Q, ModemState.LTE, trailing_urc=QIND):
        with AtPort(str(link), 2.0) as port:
            assert port.command("ATE0").final == "OK"
            csq = port.command("AT+CSQ")
            assert csq.lines == [QIND, "+CSQ: 24,99"]
            assert csq.final == "OK"
        # A whole observation with a +QIND after every answer reads as without.
        result = _observe(link)
    assert (result.access_tech, result.mcc_mnc, result.rsrp_dbm) == (AccessTech.LTE, "45204", -95.0)
