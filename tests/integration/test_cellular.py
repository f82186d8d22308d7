"""Mobile probes with (emulated) modems through the real processes: the agent
observes the radio on its schedule and around every mobile test, and the
store says on which network each mobile result was taken.

With network namespaces the boxes sit in the emulated city behind lines
shaped like 4G and 5G; without, everything runs on loopback."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from emulation.city import City, have_netns
from emulation.deployment import CentralPorts, Deployment, ModemSpec, ProbeBox
from emulation.modem import ModemModel, ModemState
from emulation.shaping import LTE, NR5G
from tests.integration.conftest import CAI_KHE, NINH_KIEU

NETNS_OK, _ = have_netns()


def _status(dep: Deployment, box: ProbeBox) -> dict[str, Any]:
    """`wardprobe-agent status --json`: exit 0 when healthy, 1 when not (this
    machine's clock may be unsynchronised, which makes any box not healthy)."""
    done = subprocess.run(
        [*dep.agent_argv(box, "status"), "--json"], capture_output=True, text=True, check=False
    )
    report: dict[str, Any] = json.loads(done.stdout)
    assert done.returncode == (0 if report["healthy"] else 1), done.stderr
    return report


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    with contextlib.ExitStack() as stack:
        city = stack.enter_context(City()) if NETNS_OK else None
        dep = stack.enter_context(
            Deployment(
                workdir=tmp_path,
                city=city,
                ports=CentralPorts() if city else CentralPorts.on_loopback(iperf3_pool=2),
                throughput_duration_s=2,
                latency_count=3,
            )
        )
        dep.init_central()
        dep.start_aggregator()
        dep.start_reference_server()
        yield dep


def test_mobile_results_carry_their_network(deployment: Deployment) -> None:
    dep = deployment
    # A 5G box on Viettel whose cell adds an NR leg during the download (the
    # cycle observes: 1 scheduled, 2-3 before the latency tests, 4 before and
    # 5 after the download, 6-7 around the upload).
    five_g = dep.add_probe(
        "caikhe-5g",
        CAI_KHE,
        "household",
        NR5G if dep.city else None,
        modem=ModemSpec(ModemModel.RM500Q, ModemState.LTE, "45204", ((5, ModemState.NR5G_NSA),)),
        mobile=True,
    )
    # A 4G-only box on VinaPhone: probe-limited for 5G.
    four_g = dep.add_probe(
        "ninhkieu-4g",
        NINH_KIEU,
        "household",
        LTE if dep.city else None,
        modem=ModemSpec(ModemModel.EC25, ModemState.LTE, "45202"),
        mobile=True,
    )
    for box in (five_g, four_g):
        code, results, stderr = dep.run_once(box)
        assert code == 0, stderr
        assert results[0]["cellular"]["access_tech"] == "ACCESS_TECH_LTE"

    modem = _status(dep, five_g)["modem"]
    assert modem["state"].startswith("nr5g_nsa on Viettel (45204)")
    assert (modem["model"], modem["5g_capable"]) == ("RM500Q-GL", "yes")

    assert dep.stop_aggregator() == 0, dep.log_tail("aggregator")
    with duckdb.connect(str(dep.store_path), read_only=True) as con:
        throughput = con.execute(
            """
            select probe_id, direction, network_kind, access_tech, access_tech_end,
                   mcc_mnc, operator_name, status
            from throughput order by probe_id, direction
            """
        ).fetchall()
        cellular = con.execute(
            """
            select probe_id, access_tech, mcc_mnc, operator_name, band, rsrp_dbm,
                   modem_model, modem_5g_capable, backend, network_kind, status, nr_band
            from cellular order by probe_id, measured_at
            """
        ).fetchall()
        latency = con.execute(
            "select probe_id, access_tech, operator_name from latency order by probe_id"
        ).fetchall()

    by_probe = {(r[0], r[1]): r[2:] for r in throughput}
    assert by_probe[(five_g.probe_id, "download")] == (
        "mobile", "lte", "nr5g_nsa", "45204", "Viettel", "ok",
    )  # fmt: skip
    assert by_probe[(five_g.probe_id, "upload")] == (
        "mobile", "nr5g_nsa", "nr5g_nsa", "45204", "Viettel", "ok",
    )  # fmt: skip
    for direction in ("download", "upload"):
        assert by_probe[(four_g.probe_id, direction)] == (
            "mobile", "lte", "lte", "45202", "VinaPhone", "ok",
        )  # fmt: skip

    five = [r for r in cellular if r[0] == five_g.probe_id]
    assert [r[1] for r in five] == ["lte"] * 4 + ["nr5g_nsa"] * 3
    assert {r[2:4] for r in five} == {("45204", "Viettel")}
    assert all(r[6:11] == ("RM500Q-GL", True, "at", "mobile", "ok") for r in five)
    assert {r[11] for r in five} == {None, 41}  # the NR leg's band once on NSA
    four = [r for r in cellular if r[0] == four_g.probe_id]
    assert len(four) == 7
    assert all(r[1:5] == ("lte", "45202", "VinaPhone", 3) for r in four)
    assert all(r[7] is False for r in four)  # EC25: modem_5g_capable = false
    assert all(r[5] is not None for r in four)
    assert {r[1:] for r in latency if r[0] == five_g.probe_id} == {("lte", "Viettel")}


def test_a_modem_problem_is_stored_and_shown_and_the_tests_still_run(
    deployment: Deployment,
) -> None:
    dep = deployment
    box = dep.add_probe(
        "nosim",
        CAI_KHE,
        "household",
        LTE if dep.city else None,
        modem=ModemSpec(ModemModel.RM500Q, ModemState.SIM_MISSING, "45201"),
        mobile=True,
    )
    code, _, stderr = dep.run_once(box)
    assert code == 0, stderr
    report = _status(dep, box)
    assert report["modem"]["state"] == "failed: sim-missing: no SIM in the modem (+CME ERROR: 10)"
    assert not report["healthy"]
    assert "modem: failed: sim-missing: no SIM in the modem (+CME ERROR: 10)" in report["reasons"]

    assert dep.stop_aggregator() == 0, dep.log_tail("aggregator")
    with duckdb.connect(str(dep.store_path), read_only=True) as con:
        observations = con.execute(
            "select status, status_reason, access_tech, modem_model from cellular"
        ).fetchall()
        speeds = con.execute(
            "select status, access_tech, operator_name from throughput order by direction"
        ).fetchall()
    assert len(observations) == 7
    assert {o[0] for o in observations} == {"failed"}
    assert all(o[1].startswith("sim-missing: ") and o[2] is None for o in observations)
    assert {o[3] for o in observations} == {"RM500Q-GL"}
    # The speed test over the line still ran; its radio is unknown, not "none".
    assert [s[0] for s in speeds] == ["ok", "ok"]
    assert all(s[1] is None and s[2] is None for s in speeds)
