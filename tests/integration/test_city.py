"""The spine in the emulated city: aggregator and reference server in the core
namespace, agents in probe namespaces behind shaped access lines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from emulation.city import City, have_netns
from emulation.cycles import run_cycles
from emulation.deployment import Deployment
from emulation.shaping import LTE, shaped

NETNS_OK, NETNS_WHY = have_netns()
pytestmark = pytest.mark.skipif(not NETNS_OK, reason=NETNS_WHY)

NINH_KIEU = 31135
CAI_KHE = 31120


@pytest.fixture
def city_deployment(tmp_path: Path) -> Iterator[Deployment]:
    with City() as city, Deployment(workdir=tmp_path, city=city, throughput_duration_s=5) as dep:
        dep.init_central()
        dep.start_aggregator()
        dep.start_reference_server()
        yield dep


def test_agent_on_a_50_mbps_line_reports_45_to_50_mbps(city_deployment: Deployment) -> None:
    dep = city_deployment
    fixed = dep.add_probe("fifty", NINH_KIEU, "household", shaped(50))
    mobile = dep.add_probe("lte", CAI_KHE, "household", LTE)

    for box in (fixed, mobile):
        code, results, stderr = dep.run_once(box)
        assert code == 0, stderr
        assert results

    assert dep.stop_aggregator() == 0
    with duckdb.connect(str(dep.store_path), read_only=True) as con:
        rows = con.execute(
            """
            select probe_id, ward_code, network_kind, interface, direction, mbps,
                   tool, server, streams, duration_s, ip_family
            from throughput where status = 'ok' order by probe_id, direction
            """
        ).fetchall()
    by_probe = {(r[0], r[4]): r for r in rows}
    for direction in ("download", "upload"):
        row = by_probe[(fixed.probe_id, direction)]
        assert row[1] == NINH_KIEU
        assert row[2] == "fixed"
        assert row[3] == "eth0"
        assert 45.0 <= row[5] <= 50.0, f"{direction} {row[5]} Mb/s on a 50 Mb/s line"
        assert (row[6], row[7], row[8], row[9]) == ("iperf3", dep.reference_ipv4, 4, 5.0)
    # The LTE box measures over its modem line: 40 down, 15 up, labelled mobile.
    down = by_probe[(mobile.probe_id, "download")]
    up = by_probe[(mobile.probe_id, "upload")]
    assert down[2] == up[2] == "mobile"
    assert 0.9 * 40 <= down[5] <= 40.0
    assert 0.9 * 15 <= up[5] <= 15.0


def test_boxes_measured_side_by_side_each_read_their_own_line(
    city_deployment: Deployment, tmp_path: Path
) -> None:
    """Cycles side by side, as the demo runs them (emulation/cycles.py): both
    boxes hold a seat at the reference server at once, and each still reads
    its own line, not a share of the other's."""
    dep = city_deployment
    boxes = [
        dep.add_probe("fifty", NINH_KIEU, "household", shaped(50)),
        dep.add_probe("hundred", CAI_KHE, "household", shaped(100, 40)),
    ]
    runs = run_cycles(dep, boxes, 1, logs=tmp_path / "cycles")
    assert [(r.cycle.box.name, r.code) for r in runs] == [("fifty", 0), ("hundred", 0)]
    first, second = runs
    assert first.seat_released_s is not None
    assert second.started_s < first.seat_released_s  # both measured at once

    assert dep.stop_aggregator() == 0
    with duckdb.connect(str(dep.store_path), read_only=True) as con:
        rows = con.execute(
            "select probe_id, direction, mbps from throughput where status = 'ok'"
        ).fetchall()
    mbps = {(probe_id, direction): value for probe_id, direction, value in rows}
    fifty, hundred = (box.probe_id for box in boxes)
    assert 45.0 <= mbps[(fifty, "download")] <= 50.0
    assert 45.0 <= mbps[(fifty, "upload")] <= 50.0
    assert 90.0 <= mbps[(hundred, "download")] <= 100.0
    assert 36.0 <= mbps[(hundred, "upload")] <= 40.0
