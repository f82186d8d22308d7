"""Test slots through the real config RPC: enrolled probes ask for their
config over mTLS and no slot holds more probes than the pool has ports."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from pathlib import Path

import grpc

from agent.enrolment import enrol
from agent.identity import channel_credentials
from aggregator.config import AggregatorConfig, ReferenceServerConfig
from aggregator.enrolment.ca import init_ca, server_credentials
from aggregator.enrolment.registry import ProbeRegistry, SiteClass
from aggregator.enrolment.service import EnrolmentServicer
from aggregator.ingest.service import ProbeConfigServicer
from analysis.wards import ward_name
from wardprobe.v1 import enrolment_pb2, enrolment_pb2_grpc

# Deadlines of calls that succeed: guards against a hang, far beyond what any
# call takes, so that no test fails because this machine is busy.
RPC_GUARD_S = 60.0

NINH_KIEU = 31135
PORTS = [5201, 5202]


async def test_the_config_rpc_hands_out_slots(tmp_path: Path) -> None:
    state = tmp_path / "aggregator"
    ca = init_ca(state, ["localhost", "127.0.0.1"])
    registry = ProbeRegistry.in_state_dir(state, ward_name)
    config = AggregatorConfig(
        state_dir=state,
        reference_server=ReferenceServerConfig(host="198.18.0.1", iperf3_ports=PORTS),
    )
    ingest = grpc.aio.server()
    enrolment_pb2_grpc.add_ProbeConfigServicer_to_server(
        ProbeConfigServicer(registry, config), ingest
    )
    ingest_port = ingest.add_secure_port(
        "127.0.0.1:0", server_credentials(state, require_client_auth=True)
    )
    enrolling = grpc.aio.server()
    enrolment_pb2_grpc.add_EnrolmentServicer_to_server(
        EnrolmentServicer(registry, ca, f"127.0.0.1:{ingest_port}"), enrolling
    )
    enrol_port = enrolling.add_secure_port(
        "127.0.0.1:0", server_credentials(state, require_client_auth=False)
    )
    for server in (ingest, enrolling):
        await server.start()
    try:
        configs = []
        for index in range(5):
            probe_dir = tmp_path / f"probe{index}"
            token = registry.create_token(
                NINH_KIEU, SiteClass.HOUSEHOLD, timedelta(hours=1), ca.pin, "slots"
            )
            await asyncio.to_thread(
                enrol, f"127.0.0.1:{enrol_port}", token, probe_dir, f"pi-{index}", "0.1.0",
                timeout_s=RPC_GUARD_S,
            )  # fmt: skip
            async with grpc.aio.secure_channel(
                f"127.0.0.1:{ingest_port}", channel_credentials(probe_dir)
            ) as channel:
                configs.append(
                    await enrolment_pb2_grpc.ProbeConfigStub(channel).GetConfig(
                        enrolment_pb2.ConfigRequest(agent_version="0.1.0"), timeout=RPC_GUARD_S
                    )
                )
        # Ask again once all five are enrolled: the slots are those of five probes.
        final = []
        for index in range(5):
            async with grpc.aio.secure_channel(
                f"127.0.0.1:{ingest_port}", channel_credentials(tmp_path / f"probe{index}")
            ) as channel:
                final.append(
                    await enrolment_pb2_grpc.ProbeConfigStub(channel).GetConfig(
                        enrolment_pb2.ConfigRequest(agent_version="0.1.0"), timeout=RPC_GUARD_S
                    )
                )
    finally:
        for server in (ingest, enrolling):
            await server.stop(None)

    assert configs[0].throughput_slot_period_s == 60  # one probe: one slot
    per_slot = Counter(c.throughput_slot_offset_s for c in final)
    assert max(per_slot.values()) <= len(PORTS)
    assert sorted(per_slot) == [0, 60, 120]  # five probes, two ports: three slots
    assert {c.throughput_slot_period_s for c in final} == {180}
    assert {c.throughput_slot_length_s for c in final} == {60}
    for offset in per_slot:
        firsts = [c.throughput_port_order[0] for c in final if c.throughput_slot_offset_s == offset]
        assert len(firsts) == len(set(firsts))  # each starts on its own port
    assert all(sorted(c.throughput_port_order) == PORTS for c in final)
