"""AT response parsing (agent/cellular/at_parse.py), on the response forms
of Quectel's manuals and on lines real modems printed (sources beside each
case): text in, typed values out, no serial port."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agent.cellular.at_parse import (
    AtResponse,
    band_number,
    best_registration,
    parse_ati,
    parse_cops,
    parse_csq,
    parse_qeng_servingcell,
    parse_qnwinfo,
    parse_reg,
    read_regs,
    sim_problem,
)
from agent.cellular.observe import (
    AccessTech,
    ProblemKind,
    RadioObservation,
    Registration,
    SinrConversion,
    as_recorded,
)
from agent.cellular.operators import (
    area_code,
    hex_id,
    normalise_mcc_mnc,
    normalise_plmn,
    operator_code,
    operator_name,
)


def test_lte_form_of_a_5g_module() -> None:
    # RM500Q LTE form: ...,<RSRP>,<RSRQ>,<RSSI>,<SINR>,<CQI>,<tx_power>,<srxlev>
    obs = parse_qeng_servingcell(
        [
            '+QENG: "servingcell","NOCONN","LTE","FDD",452,04,1A2D001,211,1650,3,5,5,'
            "2F0A,-95,-10,-65,15,13,230,-"
        ],
        "RM500Q-GL",
    )
    assert obs.access_tech is AccessTech.LTE
    assert (obs.mcc_mnc, obs.cell_id, obs.tac) == ("45204", "1A2D001", "2F0A")
    assert (obs.band, obs.channel, obs.pci) == (3, 1650, 211)
    assert (obs.rsrp_dbm, obs.rsrq_db, obs.sinr_db) == (-95.0, -10.0, 15.0)
    assert (obs.sinr_raw, obs.sinr_conversion) == (15.0, SinrConversion.AS_PRINTED)
    assert obs.rssi_dbm == -65.0
    assert obs.nr_band is None and obs.nr_rsrp_dbm is None and obs.nr_pci is None
    assert obs.registration_state == ""  # NOCONN: registered, +CEREG tells where


def test_lte_form_of_an_ec25_has_sinr_in_fifths_of_a_db() -> None:
    # A real EC25 line (as quoted in openqti's cell.h): no CQI/tx_power, SINR 0..250.
    obs = parse_qeng_servingcell(
        ['+QENG: "servingcell","NOCONN","LTE","FDD",214,01,7676A09,188,6300,20,3,3,603,'
         "-104,-9,-78,11,23"],
        "EC25",
    )  # fmt: skip
    assert (obs.mcc_mnc, obs.band, obs.channel, obs.tac) == ("21401", 20, 6300, "603")
    assert obs.sinr_db == pytest.approx(11 / 5 - 20)
    # The printed 11 is kept, and how it became dB, so the conversion can be redone.
    assert (obs.sinr_raw, obs.sinr_conversion) == (11.0, SinrConversion.FIFTHS_MINUS_20)
    assert obs.rsrp_dbm == -104.0


def test_nsa_form_reports_both_the_lte_anchor_and_the_nr_leg() -> None:
    # RG500Q-EA on an EN-DC cell (luci-app-3ginfo-lite issue #56).
    obs = parse_qeng_servingcell(
        [
            '+QENG: "servingcell","NOCONN"',
            '+QENG: "LTE","FDD",515,03,3359966,1,150,1,5,5,4AA3,-89,-13,-58,16,15,20,-',
            '+QENG:"NR5G-NSA",515,03,832,-76,21,-11,528030,41,8,1',
        ],
        "RG500Q-EA",
    )
    assert obs.access_tech is AccessTech.NR5G_NSA
    assert (obs.mcc_mnc, obs.band, obs.channel, obs.tac) == ("51503", 1, 150, "4AA3")
    assert (obs.rsrp_dbm, obs.sinr_db) == (-89.0, 16.0)
    assert (obs.nr_band, obs.nr_rsrp_dbm, obs.nr_sinr_db) == (41, -76.0, 21.0)
    # The anchor's physical cell id; the 5G leg's NR-ARFCN and PCI, its only identity.
    assert (obs.pci, obs.nr_channel, obs.nr_pci) == (1, 528030, 832)


def test_early_nsa_line_without_band_and_sinr_in_tenths() -> None:
    # RM500Q of 2020 (libqmi merge request): 7 fields, SINR 180 where qmicli read 18.5 dB.
    obs = parse_qeng_servingcell(
        [
            '+QENG: "servingcell","NOCONN"',
            '+QENG: "LTE","FDD",1,01,1A2D001,1,1575,3,3,3,1,-70,-9,-46,25,-',
            '+QENG:"NR5G-NSA",1,01,500,-75,180,-11',
        ],
        "RM500Q-GL",
    )
    assert obs.access_tech is AccessTech.NR5G_NSA
    assert obs.nr_band is None and obs.nr_channel is None
    assert obs.nr_pci == 500
    assert obs.nr_rsrp_dbm == -75.0
    assert obs.nr_sinr_db == pytest.approx(18.0)
    assert (obs.nr_sinr_raw, obs.nr_sinr_conversion) == (180.0, SinrConversion.TENTHS)
    assert obs.sinr_db == 25.0
    # MCC 1, MNC 01: the ITU test network 001-01 of a lab callbox.
    assert obs.mcc_mnc == "00101"


def test_sa_form_with_a_space_after_the_duplex_field() -> None:
    # RM520N on an SA cell (luci-app-3ginfo-lite issue #57), "-" for srxlev.
    obs = parse_qeng_servingcell(
        ['+QENG: "servingcell","NOCONN","NR5G-SA","TDD", 515,66,100072000,538,114000,'
         "620640,78,12,-109,-12,14,1,-"],
        "RM520N-GL",
    )  # fmt: skip
    assert obs.access_tech is AccessTech.NR5G_SA
    assert (obs.mcc_mnc, obs.cell_id, obs.tac) == ("51566", "100072000", "114000")
    assert (obs.band, obs.channel, obs.pci) == (78, 620640, 538)
    assert (obs.rsrp_dbm, obs.rsrq_db, obs.sinr_db) == (-109.0, -12.0, 14.0)


def test_dash_fields_are_none_not_numbers() -> None:
    obs = parse_qeng_servingcell(
        ['+QENG: "servingcell","CONNECT","LTE","FDD",452,02,-,211,1400,3,5,5,-,-,-,-,-,-,-,-'],
        "RM500Q-GL",
    )
    assert obs.access_tech is AccessTech.LTE
    assert (obs.cell_id, obs.tac) == ("", "")
    assert obs.rsrp_dbm is None and obs.rsrq_db is None and obs.sinr_db is None
    assert obs.sinr_raw is None and obs.sinr_conversion is None


@pytest.mark.parametrize(
    ("state", "registration"),
    [("LIMSRV", Registration.NOT_REGISTERED), ("SEARCH", Registration.SEARCHING)],
)
def test_limited_service_and_searching_are_no_service_whatever_the_cell(
    state: str, registration: Registration
) -> None:
    # Quectel's <state>: LIMSRV camps on a cell without registration
    # (emergency calls only), SEARCH has found no suitable cell yet; both
    # may still print the camped cell's technology and figures.
    obs = parse_qeng_servingcell(
        [
            f'+QENG: "servingcell","{state}","LTE","FDD",452,04,1A2D001,211,1650,3,5,5,'
            "2F0A,-118,-17,-90,2,13,230,-"
        ],
        "RM500Q-GL",
    )
    assert obs.access_tech is AccessTech.NONE
    assert obs.registration_state == registration
    assert (obs.band, obs.rsrp_dbm) == (3, -118.0)  # the camped cell's figures are kept


def test_umts_form_gives_lac_rscp_and_ecio() -> None:
    obs = parse_qeng_servingcell(
        ['+QENG: "servingcell","NOCONN","WCDMA",452,04,3A9,2E9F1C,10713,3,16,-85,-7,-,-,-,-,-'],
        "EC25",
    )
    assert (obs.access_tech, obs.tac, obs.cell_id) == (AccessTech.UMTS, "3A9", "2E9F1C")
    assert (obs.rscp_dbm, obs.ecio_db) == (-85.0, -7.0)
    assert obs.rsrp_dbm is None


def test_reserved_area_codes_are_no_area() -> None:
    lte = parse_qeng_servingcell(
        ['+QENG: "servingcell","NOCONN","LTE","FDD",452,04,1A2D001,211,1650,3,5,5,'
         "FFFE,-95,-10,-65,15,13,230,-"],
        "RM500Q-GL",
    )  # fmt: skip
    assert (lte.tac, lte.cell_id) == ("", "1A2D001")
    sa = parse_qeng_servingcell(
        ['+QENG: "servingcell","NOCONN","NR5G-SA","TDD",452,04,3A1B2C005,538,FFFFFE,'
         "509202,41,12,-88,-11,21,1,-"],
        "RM500Q-GL",
    )  # fmt: skip
    assert sa.tac == ""
    umts = parse_qeng_servingcell(
        ['+QENG: "servingcell","NOCONN","WCDMA",452,04,FFFF,2E9F1C,10713,3,16,-85,-7,-,-,-,-,-'],
        "EC25",
    )
    assert umts.tac == ""
    assert parse_reg('2,1,"FFFE","01A2D001",7') == (Registration.HOME, "", "1A2D001")
    # 0000 is reserved too (TS 23.003): a module not yet registered in an area prints it
    assert parse_reg('2,1,"0000","01A2D001",7') == (Registration.HOME, "", "1A2D001")
    assert area_code("000000", 24) == "" and area_code("0") == ""
    assert parse_reg('2,1,"FFFFFE","3A1B2C005",11', area_bits=24)[1] == ""
    # FFFE is a valid 24-bit 5GS TAC (00FFFE): only its own width's values are reserved.
    assert area_code("FFFE", 24) == "FFFE"
    assert area_code("00C945") == "C945"
    assert area_code("--") == ""


def test_emergency_only_and_sms_only_registrations() -> None:
    # TS 27.007 <stat> 6-11: SMS only (registered), attached for emergency
    # bearer services only (limited service), CSFB not preferred, RLOS only.
    assert parse_reg("2,8")[0] is Registration.NOT_REGISTERED
    assert parse_reg("0,6")[0] is Registration.HOME
    assert parse_reg("0,7")[0] is Registration.ROAMING
    assert parse_reg("0,10")[0] is Registration.ROAMING
    assert parse_reg("0,11")[0] is Registration.NOT_REGISTERED


def test_no_cell_and_umts_forms() -> None:
    assert parse_qeng_servingcell(['+QENG: "servingcell","SEARCH"'], "EC25").access_tech is (
        AccessTech.NONE
    )
    umts = parse_qeng_servingcell(
        ['+QENG: "servingcell","NOCONN","WCDMA",452,04,3A9,2E9F1C,10713,3,16,-85,-7,-,-,-,-,-'],
        "EC25",
    )
    assert (umts.access_tech, umts.mcc_mnc, umts.channel) == (AccessTech.UMTS, "45204", 10713)


@pytest.mark.parametrize(
    "lines",
    [
        [],
        ["+QENG: garbage"],
        ['+QENG: "servingcell","NOCONN","LTE","FDD",452'],  # cut short
        ['+QENG: "servingcell","NOCONN","CDMA",1,2,3'],
    ],
)
def test_lines_that_fit_no_form_are_refused(lines: list[str]) -> None:
    with pytest.raises(ValueError):
        parse_qeng_servingcell(lines, "RM500Q-GL")


def test_qnwinfo_one_line_per_rat() -> None:
    infos = parse_qnwinfo(
        [
            '+QNWINFO: "FDD LTE","51503","LTE BAND 1",150',
            '+QNWINFO: "TDD NR5G","51503","NR5G BAND 41",528030',
        ]
    )
    assert [(i.act, i.mcc_mnc, i.band, i.channel) for i in infos] == [
        ("FDD LTE", "51503", "LTE BAND 1", 150),
        ("TDD NR5G", "51503", "NR5G BAND 41", 528030),
    ]
    assert parse_qnwinfo(["+QNWINFO: No Service"])[0].act == "No Service"


def test_cops_numeric_and_access_technology() -> None:
    assert parse_cops('0,2,"45204",7') == ("45204", AccessTech.LTE)
    assert parse_cops('0,2,"45202",13') == ("45202", AccessTech.NR5G_NSA)
    assert parse_cops('0,2,"45201",11') == ("45201", AccessTech.NR5G_SA)
    assert parse_cops('0,0,"Viettel",7') == ("", AccessTech.LTE)  # long name: no code
    # A numeric operator printed with its one-digit MNC unpadded.
    assert parse_cops('0,2,"4524",7') == ("45204", AccessTech.LTE)
    assert parse_cops("0") == ("", AccessTech.NONE)


def test_registration_read_forms() -> None:
    # Fibocom FM350-GL (luci-app-3ginfo-lite PR #70): +CEREG: 2,1,"1234","00123456",7
    assert parse_reg('2,1,"1234","00123456",7') == (Registration.HOME, "1234", "123456")
    assert parse_reg('2,1,"60AA00","939204254",11,1,"01"')[0] is Registration.HOME
    assert parse_reg("0,2") == (Registration.SEARCHING, "", "")
    assert parse_reg("0,5")[0] is Registration.ROAMING
    assert parse_reg("0,3")[0] is Registration.DENIED
    with pytest.raises(ValueError):
        parse_reg("1")


def test_unsolicited_registration_lines_are_not_the_answer() -> None:
    # With +CEREG=2 a cell change sends "+CEREG: 1,"2F0A","1A2D001",7" at any time.
    payloads = ['1,"2F0B","1A2D002",7', "5", '2,1,"2F0A","1A2D001",7']
    assert read_regs(payloads) == [(Registration.HOME, "2F0A", "1A2D001")]
    with pytest.raises(ValueError):
        read_regs(["2,99"])


def test_csq_to_dbm() -> None:
    assert parse_csq("24,99") == -65.0
    assert parse_csq("99,99") is None


def test_ati_keeps_no_imei() -> None:
    quectel = parse_ati(["Quectel", "EC25", "Revision: EC25EFAR06A06M4G"])
    assert (quectel.manufacturer, quectel.model, quectel.revision) == (
        "Quectel",
        "EC25",
        "EC25EFAR06A06M4G",
    )
    other = parse_ati(
        ["Manufacturer: QUALCOMM", "Model: T99W175", "Revision: T99W175.F0.1", "IMEI: 35..."]
    )
    assert (other.manufacturer, other.model) == ("QUALCOMM", "T99W175")
    assert "35" not in repr(other)


def test_operator_table_names_vietnams_networks() -> None:
    assert operator_name("45204") == "Viettel"
    assert operator_name("45202") == "VinaPhone"
    assert operator_name("45201") == "MobiFone"
    assert operator_name("45205") == "Vietnamobile"
    assert operator_name("45207") == "Gmobile"
    assert operator_name("31026") == ""  # not in the table: no name, not the modem's text
    assert normalise_mcc_mnc("452", "4") == "45204"
    assert normalise_mcc_mnc("310", "260") == "310260"
    assert normalise_mcc_mnc("-", "04") == ""
    assert normalise_mcc_mnc("1", "1") == "00101"  # +QENG of a test network, unpadded
    assert normalise_plmn("4524") == "45204"
    assert normalise_plmn("452 04") == "45204"
    assert normalise_plmn("310260") == "310260"
    assert normalise_plmn("Viettel") == ""
    assert hex_id('"00123456"') == "123456"
    assert hex_id("--") == ""


def test_codes_of_no_operator_are_dropped() -> None:
    assert operator_code("00000") == ""  # blanked / redacted
    assert operator_code("00101") == ""  # ITU test network
    assert operator_code("99999") == ""  # private network
    assert operator_code("45204") == "45204"
    registered = RadioObservation(registration_state="home", access_tech=AccessTech.LTE)
    for code in ("00000", "00101"):
        obs = as_recorded(registered.with_(mcc_mnc=code))
        assert (obs.mcc_mnc, obs.operator_name) == ("", "")
        assert obs.access_tech is AccessTech.LTE  # registered all the same


def test_a_network_outside_vietnam_is_roaming_and_never_named() -> None:
    # Smart (Cambodia, 456-06), as a probe near the border could see it; the
    # SIM's "home" does not make it a Vietnamese operator.
    obs = as_recorded(
        RadioObservation(registration_state="home", access_tech=AccessTech.LTE, mcc_mnc="45606")
    )
    assert (obs.mcc_mnc, obs.operator_name, obs.registration_state) == ("45606", "", "roaming")
    home = as_recorded(obs.with_(mcc_mnc="45204", registration_state="home"))
    assert (home.operator_name, home.registration_state) == ("Viettel", "home")


def test_a_modem_not_registered_has_no_operator() -> None:
    camped = RadioObservation(
        registration_state="not-registered", access_tech=AccessTech.LTE, mcc_mnc="45204", band=3
    )
    obs = as_recorded(camped)
    assert (obs.access_tech, obs.mcc_mnc, obs.operator_name) == (AccessTech.NONE, "", "")
    assert obs.band == 3


def test_the_parsers_load_without_the_serial_library() -> None:
    # The parsers are text in, values out: importing them opens no port and
    # pulls in no pyserial (a fresh interpreter, so other tests' imports do not count).
    code = "import sys, agent.cellular.at_parse; print('serial' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("lines", "final", "kind"),
    [
        (["+CPIN: SIM PIN"], "OK", ProblemKind.SIM_LOCKED),
        (["+CPIN: SIM PUK"], "OK", ProblemKind.SIM_LOCKED),
        (["+CPIN: NOT READY"], "OK", ProblemKind.SIM_MISSING),
        ([], "+CME ERROR: 10", ProblemKind.SIM_MISSING),
        ([], "+CME ERROR: SIM not inserted", ProblemKind.SIM_MISSING),
        ([], "+CME ERROR: 11", ProblemKind.SIM_LOCKED),
        ([], "+CME ERROR: 13", ProblemKind.SIM_MISSING),
        ([], "ERROR", ProblemKind.MODEM_FAILED),
    ],
)
def test_sim_problem_from_cpin(lines: list[str], final: str, kind: ProblemKind) -> None:
    # TS 27.007 §8.3 (+CPIN: <code>) and §9.2.1 (+CME ERROR, numeric and verbose).
    problem = sim_problem(AtResponse(lines, final))
    assert problem is not None
    assert problem[0] is kind
    # The reason shows what the modem said, for the person reading the status.
    assert (lines[0].removeprefix("+CPIN: ") if lines else final) in problem[1]


def test_a_ready_sim_is_no_problem() -> None:
    assert sim_problem(AtResponse(["+CPIN: READY"], "OK")) is None


def test_registered_on_any_domain_counts() -> None:
    # +C5GREG searching, +CEREG home, +CREG not registered: registered (EPS).
    states = [Registration.SEARCHING, Registration.HOME, Registration.NOT_REGISTERED]
    assert best_registration(states) is Registration.HOME
    assert (
        best_registration([Registration.DENIED, Registration.SEARCHING]) is Registration.SEARCHING
    )
    assert best_registration([]) is Registration.UNKNOWN


def test_band_number_of_a_qnwinfo_band() -> None:
    assert band_number("NR5G BAND 78") == 78
    assert band_number("LTE BAND 3") == 3
    assert band_number("") is None
