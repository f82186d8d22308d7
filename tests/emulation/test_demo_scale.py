"""The demo's scale mode (emulation/demo_scale.py): its replica configs.
The run itself (`make demo-scale`, about 80 s) is not part of the suite:
tests/integration/test_replicas.py proves the replicas."""

from __future__ import annotations

from pathlib import Path

from aggregator.config import LakeSpec, load_config
from emulation.demo_scale import COMPACT_INTERVAL_S, _replica_config
from emulation.deployment import CentralPorts, Deployment

CATALOGUE = "postgres://postgres@/wardprobe?host=/tmp/pg/socket&port=5432"
LAKE = f"ducklake:{CATALOGUE}&data_path=/tmp/lake"


def test_a_replica_config_is_the_deployments_on_the_lake_and_its_own_ports(
    tmp_path: Path,
) -> None:
    deployment = Deployment(workdir=tmp_path, ports=CentralPorts.on_loopback(), registry=CATALOGUE)
    (tmp_path / "aggregator").mkdir()
    (tmp_path / "aggregator" / "ca.crt").write_text("")  # init_central then writes only its toml
    deployment.init_central()
    template = deployment.aggregator_config_path.read_text("utf-8")
    path = tmp_path / "replica-b.toml"
    state_b = tmp_path / "aggregator-b"
    path.write_text(_replica_config(template, LAKE, 7001, 7002, state_b), "utf-8")

    config = load_config(path)

    assert config.store_spec == LakeSpec(
        "postgres://postgres@/wardprobe?host=/tmp/pg/socket&port=5432", "/tmp/lake"
    )
    assert (config.ingest_listen, config.enrol_listen) == ("127.0.0.1:7001", "127.0.0.1:7002")
    assert config.ingest_public_address == "127.0.0.1:7001"
    assert config.lake_compact_interval_s == COMPACT_INTERVAL_S
    # as on another host: a state directory of its own, the registry shared
    assert config.state_dir == state_b
    assert config.registry == CATALOGUE
    # the rest is the deployment's: its reference server and schedule
    assert config.reference_server.iperf3_ports == list(deployment.ports.iperf3)
    assert config.schedule
