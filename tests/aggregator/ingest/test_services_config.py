"""The city's service list reaches the probes with the rest of their config:
aggregator.toml names the file (checked once, at load: a bad line refused
with its number, exit 2), the config RPC hands the services and their CA
certificates out, and the agent's ipv6_services test gets them."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from agent.config import AgentSettings
from agent.enrolment import enrol
from agent.identity import channel_credentials
from agent.measurements import MEASUREMENTS
from agent.runtime import AgentRuntime
from aggregator.cli import app
from aggregator.config import AggregatorConfig, ReferenceServerConfig
from aggregator.enrolment.ca import init_ca, server_credentials
from aggregator.enrolment.registry import ProbeRegistry, SiteClass
from aggregator.enrolment.service import EnrolmentServicer
from aggregator.ingest.service import ProbeConfigServicer
from analysis.wards import ward_name
from wardprobe.service_list import CityService
from wardprobe.v1 import enrolment_pb2, enrolment_pb2_grpc

RPC_GUARD_S = 60.0  # a guard against a hang, far beyond what a call takes
NINH_KIEU = 31135
LIST = "name,department,kind\ncantho.gov.vn,VP UBND,portal\ncantho.gov.vn,VP UBND,mail_domain\n"


def test_a_bad_service_list_stops_the_config_naming_the_line(tmp_path: Path) -> None:
    listing = tmp_path / "services.csv"
    listing.write_text(LIST + "cantho gov vn,VP UBND,portal\n", "utf-8")
    with pytest.raises(ValidationError, match=r"services\.csv, line 4: 'cantho gov vn'"):
        AggregatorConfig(services_list=listing)
    toml = tmp_path / "aggregator.toml"
    toml.write_text(f'services_list = "{listing}"\n', "utf-8")
    result = CliRunner().invoke(app, ["services", "check", "--config", str(toml)])
    assert result.exit_code == 2
    assert "line 4" in result.output and "cantho gov vn" in result.output
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate", "utf-8")
    with pytest.raises(ValidationError, match="no PEM certificate"):
        AggregatorConfig(services_ca_file=ca)


async def test_the_config_rpc_hands_the_services_to_the_agent(tmp_path: Path) -> None:
    listing = tmp_path / "services.csv"
    listing.write_text(LIST, "utf-8")
    ca_pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    (tmp_path / "ca.pem").write_bytes(ca_pem)
    state = tmp_path / "aggregator"
    ca = init_ca(state, ["localhost", "127.0.0.1"])
    registry = ProbeRegistry.in_state_dir(state, ward_name)
    config = AggregatorConfig(
        state_dir=state,
        reference_server=ReferenceServerConfig(host="198.18.0.1"),
        services_list=listing,
        services_ca_file=tmp_path / "ca.pem",
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
    probe_dir = tmp_path / "probe"
    try:
        token = registry.create_token(
            NINH_KIEU, SiteClass.HOUSEHOLD, timedelta(hours=1), ca.pin, "services"
        )
        await asyncio.to_thread(
            enrol, f"127.0.0.1:{enrol_port}", token, probe_dir, "pi", "0.1.0",
            timeout_s=RPC_GUARD_S,
        )  # fmt: skip
        async with grpc.aio.secure_channel(
            f"127.0.0.1:{ingest_port}", channel_credentials(probe_dir)
        ) as channel:
            remote = await enrolment_pb2_grpc.ProbeConfigStub(channel).GetConfig(
                enrolment_pb2.ConfigRequest(agent_version="0.1.0"), timeout=RPC_GUARD_S
            )
    finally:
        for server in (ingest, enrolling):
            await server.stop(None)

    assert [(s.name, s.kind) for s in remote.services] == [
        ("cantho.gov.vn", "portal"), ("cantho.gov.vn", "mail_domain"),
    ]  # fmt: skip
    assert remote.services_ca_pem == ca_pem
    # The default schedule runs the check once a day on the fixed line.
    assert [(e.interval_s, e.network_kind) for e in remote.schedule
            if e.measurement == "ipv6_services"] == [(86400, "fixed")]  # fmt: skip
    # An entry the agent cannot take is left out, not fatal.
    remote.services.add(name="not a name", department="X", kind="portal")
    effective = AgentRuntime(AgentSettings(state_dir=probe_dir)).effective_config(remote)
    ctx = effective.contexts["fixed"]
    assert ctx.city_services == (
        CityService(name="cantho.gov.vn", department="VP UBND", kind="portal"),
        CityService(name="cantho.gov.vn", department="VP UBND", kind="mail_domain"),
    )
    params = MEASUREMENTS["ipv6_services"].params_from(ctx)
    assert (params.services, params.ca_pem) == (ctx.city_services, ca_pem)
