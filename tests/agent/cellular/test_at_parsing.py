"""AT response parsing, on the response forms of Quectel's manuals and on
lines real modems printed (sources beside each case)."""

from __future__ import annotations

import pytest

from agent.cellular.at import (
    parse_ati,
    parse_cops,
    parse_csq,
    parse_qeng_servingcell,
    parse_qnwinfo,
    parse_reg,
    read_regs,
)
from agent.cellular.observe import AccessTech, Registration
from agent.cellular.operators import hex_id, normalise_mcc_mnc, operator_name


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
    assert obs.nr_band is None and obs.nr_rsrp_dbm is None and obs.nr_pci is None


def test_lte_form_of_an_ec25_has_sinr_in_fifths_of_a_db() -> None:
    # A real EC25 line (as quoted in openqti's cell.h): no CQI/tx_power, SINR 0..250.
    obs = parse_qeng_servingcell(
        ['+QENG: "servingcell","NOCONN","LTE","FDD",214,01,7676A09,188,6300,20,3,3,603,'
         "-104,-9,-78,11,23"],
        "EC25",
    )  # fmt: skip
    assert (obs.mcc_mnc, obs.band, obs.channel, obs.tac) == ("21401", 20, 6300, "603")
    assert obs.sinr_db == pytest.approx(11 / 5 - 20)
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
    assert obs.sinr_db == 25.0


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
        ['+QENG: "servingcell","LIMSRV","LTE","FDD",452,02,-,211,1400,3,5,5,-,-,-,-,-,-,-,-'],
        "RM500Q-GL",
    )
    assert obs.access_tech is AccessTech.LTE
    assert (obs.cell_id, obs.tac) == ("", "")
    assert obs.rsrp_dbm is None and obs.rsrq_db is None and obs.sinr_db is None


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
        read_regs(["2,9"])


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
    assert hex_id('"00123456"') == "123456"
    assert hex_id("--") == ""
