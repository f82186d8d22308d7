"""The ModemManager backend on mmcli's JSON (tests/fixtures/mmcli/), run
through the real subprocess path with a stand-in that replays it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cellular.bands import lte_band, nr_band
from agent.cellular.mmcli import (
    MmcliBackend,
    access_tech_of,
    apply_signal,
    parse_cell,
    parse_modem,
)
from agent.cellular.observe import AccessTech, ModemProblem, ProblemKind, SinrConversion
from tests.agent.cellular import replay_mmcli
from tests.agent.cellular.replay_mmcli import FIXTURES

NOT_RUNNING = {"exit": 1, "stderr": "error: couldn't find the ModemManager process in the bus\n"}
# What mmcli prints for --get-cell-info where there is none (cli/mmcli.c and
# cli/mmcli-modem.c of ModemManager; GLib rejects an option it does not know,
# and mmcli then sees no action at all).
OLD_MMCLI = {"exit": 1, "stderr": "error: no actions specified\n"}
UNSUPPORTED = {
    "exit": 1,
    "stderr": "error: couldn't get cell info in the modem: "
    "'GDBus.Error:org.freedesktop.ModemManager1.Error.Core.Unsupported: "
    "Cannot get cell info: operation not supported'\n",
}


def _load(name: str) -> dict[str, object]:
    document: dict[str, object] = json.loads((FIXTURES / name).read_text())
    return document


def _script(
    modem: str,
    signal: str,
    location: str | None = "telit_le910c4_location.json",
    cell_info: str | dict[str, object] = OLD_MMCLI,
) -> dict[str, str | dict[str, object]]:
    script: dict[str, str | dict[str, object]] = {
        "-L": "list.json",
        "-m 3": modem,
        "-m 3 --signal-get": signal,
        "-m 3 --get-cell-info": cell_info,
    }
    if location:
        script["-m 3 --location-get"] = location
    return script


TELIT = ("telit_le910c4_lte_modem.json", "telit_le910c4_signal.json")


def test_access_technologies_to_ours() -> None:
    assert access_tech_of(["lte", "5gnr"]) is AccessTech.NR5G_NSA
    assert access_tech_of(["5gnr"]) is AccessTech.NR5G_SA
    assert access_tech_of(["lte"]) is AccessTech.LTE
    assert access_tech_of(["hsdpa", "hsupa"]) is AccessTech.UMTS
    assert access_tech_of(["edge"]) is AccessTech.GSM
    assert access_tech_of([]) is AccessTech.NONE


def test_lte_only_modem_through_mmcli(tmp_path: Path) -> None:
    # Recorded: a Telit LE910C4-WWXD roaming on Vodafone DE (see the README).
    mmcli = replay_mmcli.install(tmp_path, _script(*TELIT))
    obs = MmcliBackend(mmcli).observe()
    assert obs.access_tech is AccessTech.LTE
    assert obs.registration_state == "roaming"
    # Not a Vietnamese network: the code is kept, the name is not the modem's text.
    assert (obs.mcc_mnc, obs.operator_name) == ("26202", "")
    assert (obs.rsrp_dbm, obs.rsrq_db, obs.sinr_db) == (-104.0, None, 2.0)  # rsrq "--"
    # ModemManager gives SNR in dB: kept as printed beside it.
    assert (obs.sinr_raw, obs.sinr_conversion) == (2.0, SinrConversion.AS_PRINTED)
    assert (obs.cell_id, obs.tac) == ("197763E", "C945")
    # "unlock-required: sim-pin2" on a connected modem is not a locked SIM.
    assert obs.modem_5g_capable is False  # "gsm-umts, lte": probe-limited for 5G
    assert obs.modem_model == "LE910C4-WWXD"
    assert obs.tool_version == "25.30.608  1  [Nov 14 2023 07:00:00]"
    assert obs.backend == "modemmanager"
    # ModemManager before 1.20 (no --get-cell-info): no band, no channel, no problem.
    assert (obs.band, obs.channel) == (None, None)
    # Identities in the output are never taken.
    assert "000000000000000" not in repr(obs) and "e867aad2" not in repr(obs)
    assert replay_mmcli.calls(tmp_path) == [
        "-L",
        "-m 3",
        "-m 3 --signal-get",
        "-m 3 --location-get",
        "-m 3 --get-cell-info",
    ]


def test_lte_band_and_channel_from_cell_info(tmp_path: Path) -> None:
    # The serving cell of a recorded EM9191 cell list (EARFCN 500), three
    # neighbours before it; the modem, signal and location are the Telit's.
    script = _script(*TELIT, cell_info="em9191_lte_cell_info.json")
    obs = MmcliBackend(replay_mmcli.install(tmp_path, script)).observe()
    assert (obs.band, obs.channel) == (1, 500)
    assert (obs.cell_id, obs.tac) == ("197763E", "C945")  # --location-get's, as before
    assert obs.rsrp_dbm == -104.0  # --signal-get's
    assert obs.rsrq_db == -10.0  # --signal-get had "--": the serving cell's
    assert obs.sinr_db == 2.0  # LTE cell info carries no SINR


def test_cell_info_fills_cell_id_without_location(tmp_path: Path) -> None:
    script = _script(*TELIT, location=None, cell_info="em9191_lte_cell_info.json")
    script["-m 3 --location-get"] = {
        "exit": 1,
        "stderr": "error: couldn't get location from the modem: 'Location not enabled'\n",
    }
    obs = MmcliBackend(replay_mmcli.install(tmp_path, script)).observe()
    assert (obs.cell_id, obs.tac, obs.band) == ("19E4A2B", "11D1", 1)


@pytest.mark.parametrize("refusal", [OLD_MMCLI, UNSUPPORTED, {"stdout": "{}"}])
def test_no_cell_info_is_no_band_and_no_problem(tmp_path: Path, refusal: dict[str, object]) -> None:
    obs = MmcliBackend(replay_mmcli.install(tmp_path, _script(*TELIT, cell_info=refusal))).observe()
    assert obs.access_tech is AccessTech.LTE and obs.rsrp_dbm == -104.0
    assert (obs.band, obs.channel, obs.nr_band) == (None, None, None)


def test_umts_modem_and_pre_1_20_signal_layout(tmp_path: Path) -> None:
    # Recorded: a Quectel EM12-G on HSPA; an LTE signal of ModemManager
    # before 1.20 (no "5g" section), from another recording.
    script = _script("em12g_umts_modem.json", "lte_signal_mm118.json", None)
    obs = MmcliBackend(replay_mmcli.install(tmp_path, script)).observe()
    assert obs.access_tech is AccessTech.UMTS
    assert obs.rsrp_dbm is None  # LTE figures are not a UMTS cell's
    assert obs.modem_model == "EM12-G" and obs.modem_5g_capable is False


def test_lte_signal_of_modemmanager_before_1_20() -> None:
    obs = parse_modem(_load("telit_le910c4_lte_modem.json"))
    obs = apply_signal(obs, _load("lte_signal_mm118.json"))
    assert (obs.rsrp_dbm, obs.rsrq_db, obs.sinr_db) == (-92.0, -9.0, 19.2)
    assert obs.nr_rsrp_dbm is None


def test_nsa_reports_lte_and_nr_figures(tmp_path: Path) -> None:
    script = _script("rm500q_nsa_modem.json", "rm500q_nsa_signal.json")
    mmcli = replay_mmcli.install(tmp_path, script)
    obs = MmcliBackend(mmcli).observe()
    assert obs.access_tech is AccessTech.NR5G_NSA
    assert (obs.mcc_mnc, obs.operator_name) == ("45202", "VinaPhone")
    assert (obs.rsrp_dbm, obs.sinr_db) == (-94.0, 13.2)  # the LTE anchor
    assert (obs.nr_rsrp_dbm, obs.nr_sinr_db) == (-86.0, 19.5)  # the NR leg
    assert obs.modem_5g_capable is True


def test_nsa_band_is_the_lte_anchor_and_nr_band_the_leg(tmp_path: Path) -> None:
    script = _script("rm500q_nsa_modem.json", "rm500q_nsa_signal.json", None)
    script["-m 3 --get-cell-info"] = "rm500q_nsa_cell_info.json"
    obs = MmcliBackend(replay_mmcli.install(tmp_path, script)).observe()
    assert (obs.band, obs.channel) == (3, 1300)  # as +QENG's LTE line in the AT backend
    assert obs.nr_band == 78  # NR-ARFCN 650016 (3750.24 MHz)
    assert (obs.pci, obs.nr_channel, obs.nr_pci) == (0x1C5, 650016, 0x2F4)  # PCIs print in hex
    assert (obs.cell_id, obs.tac) == ("1A2D001", "2F0A")  # the anchor's, not the leg's "0"
    assert (obs.rsrp_dbm, obs.nr_rsrp_dbm) == (-94.0, -86.0)


def test_nsa_figures_from_cell_info_when_signal_is_not_polled(tmp_path: Path) -> None:
    script = _script("rm500q_nsa_modem.json", "signal_refresh_off.json", None)
    script["-m 3 --signal-setup=30"] = {"stdout": "{}"}
    script["-m 3 --get-cell-info"] = "rm500q_nsa_cell_info.json"
    obs = MmcliBackend(replay_mmcli.install(tmp_path, script)).observe()
    assert (obs.rsrp_dbm, obs.rsrq_db, obs.sinr_db) == (-94.0, -10.0, None)
    assert (obs.nr_rsrp_dbm, obs.nr_sinr_db) == (-86.0, 19.5)


def test_sa_band_channel_and_cell_from_the_nr_cell(tmp_path: Path) -> None:
    script = _script(
        "rm500q_sa_modem.json", "rm500q_sa_signal_no_snr.json", None, "rm500q_sa_cell_info.json"
    )
    obs = MmcliBackend(replay_mmcli.install(tmp_path, script)).observe()
    assert obs.access_tech is AccessTech.NR5G_SA
    assert (obs.band, obs.channel, obs.nr_band) == (41, 504990, None)
    assert (obs.cell_id, obs.tac, obs.pci, obs.nr_pci) == ("51B2C4010", "3A0B12", 0x1F, None)
    assert (obs.rsrp_dbm, obs.sinr_db) == (-101.0, 7.5)  # SINR: --signal-get had "--"


def test_sa_cell_without_snr(tmp_path: Path) -> None:
    mmcli = replay_mmcli.install(
        tmp_path, _script("rm500q_sa_modem.json", "rm500q_sa_signal_no_snr.json", None)
    )
    obs = MmcliBackend(mmcli).observe()
    assert obs.access_tech is AccessTech.NR5G_SA
    assert (obs.rsrp_dbm, obs.rsrq_db, obs.sinr_db) == (-101.0, -12.0, None)
    assert obs.nr_rsrp_dbm is None  # SA figures are the cell's own, not an NSA leg
    assert (obs.cell_id, obs.tac) == ("", "")  # location not enabled: unknown, not zero


def test_signal_polling_is_switched_on_when_off(tmp_path: Path) -> None:
    script = _script("telit_le910c4_lte_modem.json", "signal_refresh_off.json")
    script["-m 3 --signal-setup=30"] = {"stdout": "{}"}
    mmcli = replay_mmcli.install(tmp_path, script)
    obs = MmcliBackend(mmcli).observe()
    assert obs.access_tech is AccessTech.LTE
    assert obs.rsrp_dbm is None  # still "--" right after setup: None, never a number
    assert "-m 3 --signal-setup=30" in replay_mmcli.calls(tmp_path)


def test_searching_is_an_observation_of_no_service(tmp_path: Path) -> None:
    script = _script("rm500q_searching.json", "signal_refresh_off.json")
    mmcli = replay_mmcli.install(tmp_path, script)
    obs = MmcliBackend(mmcli).observe()
    assert obs.access_tech is AccessTech.NONE
    assert obs.registration_state == "searching"
    assert obs.mcc_mnc == "" and obs.operator_name == ""
    assert "-m 3 --get-cell-info" not in replay_mmcli.calls(tmp_path)  # no serving cell


@pytest.mark.parametrize(
    ("modem", "kind", "words"),
    [
        ("ec25_sim_missing.json", ProblemKind.SIM_MISSING, "sim-missing"),
        ("ec25_sim_pin_locked.json", ProblemKind.SIM_LOCKED, "sim-pin"),
    ],
)
def test_sim_problems_keep_the_modem_identity(
    tmp_path: Path, modem: str, kind: ProblemKind, words: str
) -> None:
    mmcli = replay_mmcli.install(tmp_path, _script(modem, "signal_refresh_off.json"))
    with pytest.raises(ModemProblem) as caught:
        MmcliBackend(mmcli).observe()
    assert caught.value.kind is kind
    assert words in caught.value.reason
    assert caught.value.partial is not None
    assert caught.value.partial.modem_5g_capable is False


def test_modemmanager_absent_then_back(tmp_path: Path) -> None:
    mmcli = replay_mmcli.install(tmp_path, {"-L": NOT_RUNNING})
    with pytest.raises(ModemProblem) as caught:
        MmcliBackend(mmcli).observe()
    assert caught.value.kind is ProblemKind.MODEMMANAGER_ABSENT
    with pytest.raises(ModemProblem) as missing:
        MmcliBackend(str(tmp_path / "no-such-mmcli")).observe()
    assert missing.value.kind is ProblemKind.MODEMMANAGER_ABSENT
    replay_mmcli.update(tmp_path, _script(*TELIT))
    assert MmcliBackend(mmcli).observe().access_tech is AccessTech.LTE


def test_a_dbus_error_of_the_modem_is_not_modemmanager_absent(tmp_path: Path) -> None:
    script = _script(*TELIT)
    script["-m 3"] = UNSUPPORTED
    with pytest.raises(ModemProblem) as caught:
        MmcliBackend(replay_mmcli.install(tmp_path, script)).observe()
    assert caught.value.kind is ProblemKind.MODEM_FAILED


def test_unplugged_and_re_enumerated(tmp_path: Path) -> None:
    mmcli = replay_mmcli.install(tmp_path, {"-L": "list_empty.json"})
    with pytest.raises(ModemProblem) as caught:
        MmcliBackend(mmcli).observe()
    assert caught.value.kind is ProblemKind.UNPLUGGED
    # Plugged back in, ModemManager calls it modem 3 (it was 0): a fixed index
    # says so; no index finds it.
    replay_mmcli.update(tmp_path, _script(*TELIT))
    with pytest.raises(ModemProblem) as stale:
        MmcliBackend(mmcli, index=0).observe()
    assert stale.value.kind is ProblemKind.UNPLUGGED and "re-enumerated" in stale.value.reason
    assert MmcliBackend(mmcli).observe().mcc_mnc == "26202"


def test_garbage_and_timeout(tmp_path: Path) -> None:
    mmcli = replay_mmcli.install(tmp_path, {"-L": {"stdout": "modem-list: [ /org/freedes"}})
    with pytest.raises(ModemProblem) as caught:
        MmcliBackend(mmcli).observe()
    assert caught.value.kind is ProblemKind.GARBAGE
    assert caught.value.reason.startswith("malformed output: ")
    slow = tmp_path / "slow-mmcli"
    slow.write_text("#!/bin/sh\nsleep 5\n")
    slow.chmod(0o755)
    with pytest.raises(ModemProblem) as timed_out:
        MmcliBackend(str(slow), timeout_s=0.3).observe()
    assert timed_out.value.kind is ProblemKind.TIMEOUT


def test_signal_of_a_modem_not_on_lte_or_nr_is_ignored() -> None:
    obs = parse_modem(_load("rm500q_searching.json"))
    assert apply_signal(obs, _load("rm500q_nsa_signal.json")).rsrp_dbm is None


def test_cell_strings_as_libmm_glib_builds_them() -> None:
    # The EM9191's serving cell, verbatim: ids in hex, PCI "20" is 0x20.
    cell = parse_cell(
        "cell type: lte, serving: yes, operator id: 20201, tac: 11D1, ci: 19E4A2B, "
        "physical ci: 20, earfcn: 500, rsrp: -104.000000, rsrq: -10.000000"
    )
    assert (cell.kind, cell.serving, cell.operator_id) == ("lte", True, "20201")
    assert (cell.tac, cell.cell_id, cell.pci, cell.channel) == ("11D1", "19E4A2B", 32, 500)
    assert (cell.rsrp_dbm, cell.rsrq_db, cell.sinr_db) == (-104.0, -10.0, None)
    neighbour = parse_cell("cell type: lte, serving: no, physical ci: 20, rsrp: -104.000000")
    assert (neighbour.serving, neighbour.channel, neighbour.cell_id) == (False, None, "")
    gsm = parse_cell("cell type: gsm, serving: yes, lac: 55FA, ci: 1D23, arfcn: 736")
    assert (gsm.tac, gsm.channel) == ("55FA", 736)


@pytest.mark.parametrize(
    ("earfcn", "band"),
    [
        (0, 1),
        (500, 1),
        (1300, 3),
        (1850, 3),
        (2525, 5),
        (3350, 7),
        (3650, 8),
        (9410, 28),
        (38000, 38),
        (39150, 40),
        (40620, 41),
        (6300, None),
        (None, None),
    ],
)
def test_lte_band_of_earfcn(earfcn: int | None, band: int | None) -> None:
    assert lte_band(earfcn) == band


@pytest.mark.parametrize(
    ("arfcn", "band"),
    [
        (428000, 1),
        (368500, 3),
        (156510, 28),
        (528030, 41),
        (504990, 41),
        (636666, 78),
        (650016, 78),
        (666666, 77),
        (720000, 79),
        (2079167, None),
        (None, None),
    ],
)
def test_nr_band_of_nr_arfcn(arfcn: int | None, band: int | None) -> None:
    assert nr_band(arfcn) == band


def test_umts_and_gsm_figures_with_decimal_commas(tmp_path: Path) -> None:
    # The recorded EM12-G on HSPA; its signal as mmcli prints it under a
    # locale with a decimal comma ("-75,00").
    script = _script("em12g_umts_modem.json", "umts_signal_decimal_comma.json", None)
    obs = MmcliBackend(replay_mmcli.install(tmp_path, script)).observe()
    assert obs.access_tech is AccessTech.UMTS
    assert (obs.rssi_dbm, obs.rscp_dbm, obs.ecio_db) == (-75.0, -95.0, -7.5)
    assert obs.rsrp_dbm is None and obs.sinr_raw is None
    gsm = _load("em12g_umts_modem.json")
    gsm["modem"]["generic"]["access-technologies"] = ["edge"]  # type: ignore[index]
    on_gsm = apply_signal(parse_modem(gsm), _load("umts_signal_decimal_comma.json"))
    assert on_gsm.access_tech is AccessTech.GSM
    assert (on_gsm.rssi_dbm, on_gsm.rscp_dbm) == (-75.0, None)


def test_lte_figures_with_decimal_commas() -> None:
    signal = {"modem": {"signal": {"lte": {"rsrp": "-104,50", "rsrq": "-9,00", "rssi": "-70,25",
                                           "snr": "12,40"}}}}  # fmt: skip
    obs = apply_signal(parse_modem(_load("telit_le910c4_lte_modem.json")), signal)
    assert (obs.rsrp_dbm, obs.rsrq_db, obs.rssi_dbm, obs.sinr_db) == (-104.5, -9.0, -70.25, 12.4)
    cell = parse_cell(
        "cell type: lte, serving: yes, earfcn: 500, rsrp: -104,500000, rsrq: -10,250000"
    )
    assert (cell.channel, cell.rsrp_dbm, cell.rsrq_db) == (500, -104.5, -10.25)


def test_mmcli_runs_in_the_c_locale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # mmcli is translated (gettext) and prints numbers the locale's way: under
    # a German locale its "no ModemManager" error is German, which no check reads.
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    mmcli = tmp_path / "mmcli"
    mmcli.write_text(
        "#!/bin/sh\n"
        'if [ "$LC_ALL" = C ]; then\n'
        '  echo "error: couldn\'t find the ModemManager process in the bus" >&2\n'
        "else\n"
        "  echo 'Fehler: ModemManager-Prozess im Bus nicht gefunden' >&2\n"
        "fi\n"
        "exit 1\n"
    )
    mmcli.chmod(0o755)
    with pytest.raises(ModemProblem) as caught:
        MmcliBackend(str(mmcli)).observe()
    assert caught.value.kind is ProblemKind.MODEMMANAGER_ABSENT


def test_a_blanked_operator_code_is_no_operator() -> None:
    # The EM12-G recording's operator was blanked to "00000" at the source.
    obs = parse_modem(_load("em12g_umts_modem.json"))
    assert obs.access_tech is AccessTech.UMTS
    assert (obs.mcc_mnc, obs.operator_name) == ("", "")


def test_a_network_outside_vietnam_is_roaming() -> None:
    document = _load("telit_le910c4_lte_modem.json")
    threegpp = document["modem"]["3gpp"]  # type: ignore[index]
    threegpp["registration-state"] = "home"
    threegpp["operator-code"] = "45606"  # Smart, Cambodia: across the border
    obs = parse_modem(document)
    assert (obs.mcc_mnc, obs.operator_name, obs.registration_state) == ("45606", "", "roaming")
    assert obs.access_tech is AccessTech.LTE


def test_emergency_services_only_is_no_service_and_no_operator(tmp_path: Path) -> None:
    document = _load("rm500q_nsa_modem.json")
    threegpp = document["modem"]["3gpp"]  # type: ignore[index]
    threegpp["registration-state"] = "emergency-services"  # camping in limited service
    (tmp_path / "modem.json").write_text(json.dumps(document))
    script = _script(str(tmp_path / "modem.json"), "rm500q_nsa_signal.json")
    obs = MmcliBackend(replay_mmcli.install(tmp_path / "bin", script)).observe()
    assert obs.access_tech is AccessTech.NONE
    assert obs.registration_state == "not-registered"
    assert (obs.mcc_mnc, obs.operator_name) == ("", "")


def test_reserved_area_codes_are_no_area(tmp_path: Path) -> None:
    script = _script(*TELIT, location="location_no_area.json")
    obs = MmcliBackend(replay_mmcli.install(tmp_path, script)).observe()
    assert (obs.cell_id, obs.tac) == ("197763E", "")  # TAC 00FFFE: no valid area
    umts = _script(
        "em12g_umts_modem.json", "umts_signal_decimal_comma.json", "location_no_area.json"
    )
    on_umts = MmcliBackend(replay_mmcli.install(tmp_path / "umts", umts)).observe()
    assert on_umts.tac == ""  # LAC FFFE
    cell = parse_cell("cell type: 5gnr, serving: yes, tac: FFFFFE, ci: 51B2C4010, nrarfcn: 504990")
    assert (cell.tac, cell.cell_id) == ("", "51B2C4010")


def test_nr_sinr_from_cell_info_keeps_its_raw_value(tmp_path: Path) -> None:
    script = _script("rm500q_nsa_modem.json", "signal_refresh_off.json", None)
    script["-m 3 --signal-setup=30"] = {"stdout": "{}"}
    script["-m 3 --get-cell-info"] = "rm500q_nsa_cell_info.json"
    obs = MmcliBackend(replay_mmcli.install(tmp_path, script)).observe()
    assert (obs.nr_sinr_db, obs.nr_sinr_raw) == (19.5, 19.5)
    assert obs.nr_sinr_conversion is SinrConversion.AS_PRINTED
    assert (obs.sinr_db, obs.sinr_raw, obs.sinr_conversion) == (None, None, None)
