"""The ModemManager backend on mmcli's JSON (tests/fixtures/mmcli/), run
through the real subprocess path with a stand-in that replays it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cellular.mmcli import MmcliBackend, access_tech_of, apply_signal, parse_modem
from agent.cellular.observe import AccessTech, ModemProblem, ProblemKind
from tests.agent.cellular import replay_mmcli
from tests.agent.cellular.replay_mmcli import FIXTURES

NOT_RUNNING = {"exit": 1, "stderr": "error: couldn't find the ModemManager process in the bus\n"}


def _load(name: str) -> dict[str, object]:
    document: dict[str, object] = json.loads((FIXTURES / name).read_text())
    return document


def _script(
    modem: str, signal: str, location: str | None = "location_3gpp.json"
) -> dict[str, str | dict[str, object]]:
    script: dict[str, str | dict[str, object]] = {
        "-L": "list.json",
        "-m 3": modem,
        "-m 3 --signal-get": signal,
    }
    if location:
        script["-m 3 --location-get"] = location
    return script


def test_access_technologies_to_ours() -> None:
    assert access_tech_of(["lte", "5gnr"]) is AccessTech.NR5G_NSA
    assert access_tech_of(["5gnr"]) is AccessTech.NR5G_SA
    assert access_tech_of(["lte"]) is AccessTech.LTE
    assert access_tech_of(["hsdpa", "hsupa"]) is AccessTech.UMTS
    assert access_tech_of(["edge"]) is AccessTech.GSM
    assert access_tech_of([]) is AccessTech.NONE


def test_lte_only_modem_through_mmcli(tmp_path: Path) -> None:
    mmcli = replay_mmcli.install(tmp_path, _script("ec25_lte_modem.json", "ec25_lte_signal.json"))
    obs = MmcliBackend(mmcli).observe()
    assert obs.access_tech is AccessTech.LTE
    assert (obs.mcc_mnc, obs.operator_name) == ("45204", "Viettel")  # the table, not "VIETTEL"
    assert (obs.rsrp_dbm, obs.rsrq_db, obs.sinr_db) == (-97.0, -11.0, 8.4)
    assert (obs.cell_id, obs.tac) == ("1A2D001", "2F0A")
    assert obs.registration_state == "home"
    assert obs.modem_5g_capable is False  # "gsm-umts, lte": probe-limited for 5G
    assert obs.modem_model == "QUECTEL Mobile Broadband Module"
    assert obs.backend == "modemmanager"
    # Identities in the output are never taken.
    assert "861234050012345" not in repr(obs) and "+8496" not in repr(obs)
    assert replay_mmcli.calls(tmp_path) == [
        "-L",
        "-m 3",
        "-m 3 --signal-get",
        "-m 3 --location-get",
    ]


def test_nsa_reports_lte_and_nr_figures(tmp_path: Path) -> None:
    script = _script("rm500q_nsa_modem.json", "rm500q_nsa_signal.json")
    mmcli = replay_mmcli.install(tmp_path, script)
    obs = MmcliBackend(mmcli).observe()
    assert obs.access_tech is AccessTech.NR5G_NSA
    assert (obs.mcc_mnc, obs.operator_name) == ("45202", "VinaPhone")
    assert (obs.rsrp_dbm, obs.sinr_db) == (-94.0, 13.2)  # the LTE anchor
    assert (obs.nr_rsrp_dbm, obs.nr_sinr_db) == (-86.0, 19.5)  # the NR leg
    assert obs.modem_5g_capable is True


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
    script = _script("ec25_lte_modem.json", "signal_refresh_off.json")
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
    replay_mmcli.update(tmp_path, _script("ec25_lte_modem.json", "ec25_lte_signal.json"))
    assert MmcliBackend(mmcli).observe().access_tech is AccessTech.LTE


def test_unplugged_and_re_enumerated(tmp_path: Path) -> None:
    mmcli = replay_mmcli.install(tmp_path, {"-L": "list_empty.json"})
    with pytest.raises(ModemProblem) as caught:
        MmcliBackend(mmcli).observe()
    assert caught.value.kind is ProblemKind.UNPLUGGED
    # Plugged back in, ModemManager calls it modem 3 (it was 0): a fixed index
    # says so; no index finds it.
    replay_mmcli.update(tmp_path, _script("ec25_lte_modem.json", "ec25_lte_signal.json"))
    with pytest.raises(ModemProblem) as stale:
        MmcliBackend(mmcli, index=0).observe()
    assert stale.value.kind is ProblemKind.UNPLUGGED and "re-enumerated" in stale.value.reason
    assert MmcliBackend(mmcli).observe().mcc_mnc == "45204"


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
