"""An in-process aggregator (real gRPC with TLS, real DuckDB, real CA) and
enrolled probes, for tests of the ingest path over the real stream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
import uuid6

from agent.enrolment import enrol
from agent.identity import channel_credentials
from aggregator.central import Aggregator
from aggregator.config import AggregatorConfig, ReferenceServerConfig
from aggregator.enrolment.ca import init_ca
from aggregator.enrolment.registry import SiteClass
from emulation.deployment import free_tcp_port
from wardprobe.v1 import ingest_pb2, results_pb2

NINH_KIEU = 31135  # Phường Ninh Kiều, Cần Thơ
CAI_KHE = 31120  # Phường Cái Khế


@dataclass
class EnrolledProbe:
    probe_id: str
    ward_code: int
    state_dir: Path

    def channel(self, target: str) -> grpc.aio.Channel:
        return grpc.aio.secure_channel(target, channel_credentials(self.state_dir))


@dataclass
class Central:
    aggregator: Aggregator
    ingest_address: str
    enrol_address: str

    async def enrol_probe(
        self,
        state_dir: Path,
        ward_code: int = NINH_KIEU,
        site_class: SiteClass = SiteClass.HOUSEHOLD,
    ) -> EnrolledProbe:
        token = self.aggregator.registry.create_token(
            ward_code, site_class, timedelta(hours=1), self.aggregator.ca.pin
        )
        # enrol() is blocking gRPC; the server runs on this event loop.
        record = await asyncio.to_thread(
            enrol, self.enrol_address, token, state_dir, "test-box", "0.1.0"
        )
        return EnrolledProbe(record.probe_id, record.ward_code, state_dir)


@pytest.fixture
async def central(tmp_path: Path) -> AsyncIterator[Central]:
    state = tmp_path / "aggregator"
    init_ca(state, ["localhost", "127.0.0.1"])
    ingest_port, enrol_port = free_tcp_port(), free_tcp_port()
    config = AggregatorConfig(
        state_dir=state,
        store_path=state / "wardprobe.duckdb",
        ingest_listen=f"127.0.0.1:{ingest_port}",
        enrol_listen=f"127.0.0.1:{enrol_port}",
        ingest_public_address=f"127.0.0.1:{ingest_port}",
        reference_server=ReferenceServerConfig(host="127.0.0.1"),
        probe_sync_interval_s=0.2,
        max_batch_results=100,
        max_message_bytes=256 * 1024,
        grace_period_s=1.0,
    )
    async with Aggregator(config) as aggregator:
        yield Central(aggregator, f"127.0.0.1:{ingest_port}", f"127.0.0.1:{enrol_port}")


def throughput_result(
    ward_code: int = NINH_KIEU,
    mbps: float = 95.5,
    measured_at: datetime | None = None,
    result_id: str | None = None,
    probe_id: str = "",
) -> results_pb2.Result:
    """A download result as the agent would send it."""
    message = results_pb2.Result()
    env = message.envelope
    env.result_id = result_id or str(uuid6.uuid7())
    env.measured_at.FromDatetime(measured_at or datetime.now(UTC) - timedelta(minutes=1))
    env.agent_version = "0.1.0"
    env.interface = "eth0"
    env.network_kind = results_pb2.NETWORK_KIND_FIXED
    env.ip_family = results_pb2.IP_FAMILY_IPV4
    env.clock_sync = results_pb2.CLOCK_SYNC_SYNCHRONISED
    env.method.tool = "iperf3"
    env.method.server = "198.18.0.1"
    env.method.server_port = 5201
    env.method.duration_s = 10
    env.method.streams = 4
    env.status = results_pb2.STATUS_OK
    env.ward_code = ward_code
    env.probe_id = probe_id
    message.throughput.direction = results_pb2.DIRECTION_DOWNLOAD
    message.throughput.mbps = mbps
    message.throughput.bytes_transferred = 100_000_000
    message.throughput.measured_s = 8.0
    return message


def raw_upload(
    channel: grpc.aio.Channel,
) -> grpc.aio.StreamStreamMultiCallable[bytes, ingest_pb2.BatchAck]:
    """The Upload method with requests as raw bytes (to send malformed ones)."""
    return channel.stream_stream(
        "/wardprobe.v1.Ingest/Upload",
        request_serializer=None,
        response_deserializer=ingest_pb2.BatchAck.FromString,
    )


def random_uuid4() -> str:
    return str(uuid.uuid4())
