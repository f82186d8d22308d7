"""Aggregator replicas: the agent fails over between the addresses it is
given (a list, or one name with several A records), sticks with the one that
works, and sends what was not acknowledged again there.

Real aggregators in this process, on loopback, sharing one state directory
(one CA, one probe registry) as replicas on one machine do; each has its own
embedded store, so a result is stored in whichever took it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import dns.message
import dns.query
import dns.rdatatype
import grpc
import pytest

from agent import AGENT_VERSION
from agent.backoff import Backoff
from agent.config import AgentSettings, ConfigError, load_settings
from agent.enrolment import enrol
from agent.health import check
from agent.identity import channel_credentials, load_enrolment
from agent.spool import Spool
from agent.uploader import IN_USE_STATE, Uploader, UploadError, UploadSettings
from aggregator.central import Aggregator
from aggregator.config import AggregatorConfig
from aggregator.enrolment.ca import init_ca, server_credentials
from aggregator.enrolment.registry import SiteClass
from aggregator.reference.server import DnsName, dns_response
from emulation.deployment import free_tcp_port
from tests.integration.conftest import NINH_KIEU, throughput_result
from wardprobe.v1 import ingest_pb2, ingest_pb2_grpc

NAME = "aggregators.wardprobe.test"  # one name, a record per replica
# Failover waits as short as the jitter allows: no test waits on the clock.
QUICK = Backoff(base_s=0.01, cap_s=0.05)


@dataclass
class Replicas:
    state_dir: Path
    probe_dir: Path
    running: dict[str, Aggregator]  # ingest address -> the replica there
    stacks: dict[str, AsyncExitStack]

    async def stop(self, address: str) -> int:
        """Stop the replica at `address`; the results its store held."""
        replica = self.running.pop(address)
        stored = replica.store.count("throughput")
        await self.stacks.pop(address).aclose()
        return stored

    def stored(self, address: str) -> int:
        return self.running[address].store.count("throughput")


def _config(state: Path, index: int, ingest: str) -> AggregatorConfig:
    return AggregatorConfig(
        state_dir=state,
        store_path=state / f"replica{index}.duckdb",
        ingest_listen=ingest,
        enrol_listen=f"127.0.0.1:{free_tcp_port()}",
        ingest_public_address=ingest,
        probe_sync_interval_s=0.2,
        ingest_read_workers=1,
        grace_period_s=0.5,
    )


@asynccontextmanager
async def _replicas(tmp_path: Path, ingest_addresses: list[str]) -> AsyncIterator[Replicas]:
    """Replicas on these ingest addresses, one state directory, a probe enrolled."""
    state = tmp_path / "aggregator"
    init_ca(state, ["localhost", "127.0.0.1", NAME])
    running: dict[str, Aggregator] = {}
    stacks: dict[str, AsyncExitStack] = {}
    async with AsyncExitStack() as outer:
        for index, address in enumerate(ingest_addresses):
            stack = AsyncExitStack()
            running[address] = await stack.enter_async_context(
                Aggregator(_config(state, index, address))
            )
            stacks[address] = stack
            outer.push_async_callback(_close_if_open, stacks, address)
        first = running[ingest_addresses[0]]
        token = first.registry.create_token(
            NINH_KIEU, SiteClass.HOUSEHOLD, timedelta(hours=1), first.ca.pin
        )
        probe = tmp_path / "probe"
        await asyncio.to_thread(enrol, first.config.enrol_listen, token, probe, "test-box", "0.1.0")
        yield Replicas(state, probe, running, stacks)


async def _close_if_open(stacks: dict[str, AsyncExitStack], address: str) -> None:
    stack = stacks.pop(address, None)
    if stack is not None:
        await stack.aclose()


@pytest.fixture
async def two(tmp_path: Path) -> AsyncIterator[Replicas]:
    async with _replicas(
        tmp_path, [f"127.0.0.1:{free_tcp_port()}", f"127.0.0.1:{free_tcp_port()}"]
    ) as replicas:
        yield replicas


def _spool_results(spool: Spool, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        result = throughput_result()
        spool.add(result.envelope.result_id, "download", result.SerializeToString())
        ids.append(result.envelope.result_id)
    return ids


def _uploader(
    spool: Spool, probe_dir: Path, addresses: list[str], seed: int = 0, **kwargs: Any
) -> Uploader:
    return Uploader(
        spool,
        addresses,
        channel_credentials(probe_dir),
        UploadSettings(batch_size=5, window=2),
        backoff=QUICK,
        rng=random.Random(seed),
        **kwargs,
    )


async def test_the_agent_sticks_with_a_replica_and_fails_over_when_it_stops(
    two: Replicas, tmp_path: Path
) -> None:
    a, b = two.running
    spool = Spool(tmp_path / "spool.sqlite")
    _spool_results(spool, 12)

    first = await _uploader(spool, two.probe_dir, [a, b]).drain()
    used = spool.get_state(IN_USE_STATE)
    assert used in (a, b) and first.stored == 12
    other = b if used == a else a
    assert (two.stored(used), two.stored(other)) == (12, 0)
    # Each drain is a new worker process (a new uploader, another random
    # draw): it starts with the replica that took the last upload.
    for seed in range(1, 6):
        _spool_results(spool, 2)
        await _uploader(spool, two.probe_dir, [a, b], seed=seed).drain()
    assert (two.stored(used), two.stored(other)) == (22, 0)

    assert used is not None
    assert await two.stop(used) == 22
    _spool_results(spool, 7)
    report = await _uploader(spool, two.probe_dir, [a, b]).drain()

    assert (report.stored, spool.depth()) == (7, 0)
    assert two.stored(other) == 7
    assert spool.get_state(IN_USE_STATE) == other
    # `wardprobe-agent status` names the replica in use among those configured.
    settings = AgentSettings(state_dir=two.probe_dir, aggregators=[a, b])
    health = check(settings, load_enrolment(two.probe_dir), spool, [], AGENT_VERSION)
    assert ("aggregator", f"{other} (of {a} or {b})") in health.lines
    assert health.report["aggregator_in_use"] == other


async def test_when_no_replica_answers_the_results_stay_and_the_error_names_each(
    two: Replicas, tmp_path: Path
) -> None:
    a, b = list(two.running)
    for address in (a, b):
        await two.stop(address)
    spool = Spool(tmp_path / "spool.sqlite")
    _spool_results(spool, 3)

    with pytest.raises(UploadError) as failed:
        await _uploader(spool, two.probe_dir, [a, b]).drain()

    assert f"{a}: UNAVAILABLE" in str(failed.value) and f"{b}: UNAVAILABLE" in str(failed.value)
    assert spool.depth() == 3
    assert f"{a}: UNAVAILABLE" in (spool.get_state("last_upload_error") or "")


class _BreaksMidBatch(ingest_pb2_grpc.IngestServicer):
    """A replica that dies mid-batch: it reads two batches, acks neither,
    and the stream ends UNAVAILABLE (as when its process is killed)."""

    def __init__(self) -> None:
        self.batches_read = 0

    async def Upload(
        self,
        request_iterator: AsyncIterator[ingest_pb2.ResultBatch],
        context: grpc.aio.ServicerContext[ingest_pb2.ResultBatch, ingest_pb2.BatchAck],
    ) -> AsyncIterator[ingest_pb2.BatchAck]:
        async for _batch in request_iterator:
            self.batches_read += 1
            if self.batches_read == 2:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "replica going away")
        # Never reached: a generator method is what the stream handler expects.
        for _ in ():
            yield ingest_pb2.BatchAck()


async def test_batches_in_flight_when_a_stream_breaks_are_stored_once_by_the_next(
    two: Replicas, tmp_path: Path
) -> None:
    _, good = two.running
    broken_address = f"127.0.0.1:{free_tcp_port()}"
    server = grpc.aio.server()
    breaker = _BreaksMidBatch()
    ingest_pb2_grpc.add_IngestServicer_to_server(breaker, server)
    server.add_secure_port(broken_address, server_credentials(two.state_dir, True))
    await server.start()
    try:
        spool = Spool(tmp_path / "spool.sqlite")
        ids = _spool_results(spool, 20)
        # The breaking replica took the last upload, so it is tried first.
        spool.set_state(IN_USE_STATE, broken_address)

        report = await _uploader(spool, two.probe_dir, [broken_address, good]).drain()
    finally:
        await server.stop(None)

    assert breaker.batches_read == 2
    assert (report.stored, report.duplicates, spool.depth()) == (20, 0, 0)
    assert spool.get_state(IN_USE_STATE) == good
    rows = two.running[good].store.query(
        "select result_id::varchar, count(*) from throughput group by all"
    )
    assert sorted(rows) == sorted((i, 1) for i in ids)


def _resolver_asking(dns_port: int) -> Callable[[str, int], list[str]]:
    """A resolver that asks the DNS server on 127.0.0.1:`dns_port` for A records."""

    def resolve(host: str, _port: int) -> list[str]:
        query = dns.message.make_query(host, dns.rdatatype.A)
        answer = dns.query.udp(query, "127.0.0.1", timeout=5.0, port=dns_port)
        return [item.to_text() for rrset in answer.answer for item in rrset]

    return resolve


class _DnsResponder(asyncio.DatagramProtocol):
    """The reference server's DNS answers (dns_response) on a loopback port."""

    def __init__(self, names: list[DnsName]) -> None:
        self.names = names
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        reply = dns_response(data, self.names, ttl_s=0)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


async def test_one_name_with_two_records_fails_over_to_the_second(tmp_path: Path) -> None:
    port = free_tcp_port()  # the same port on two loopback addresses, as behind one name
    one, two_ = f"127.0.0.1:{port}", f"127.0.0.2:{port}"
    async with _replicas(tmp_path, [one, two_]) as replicas:
        responder = _DnsResponder([DnsName(name=NAME, ipv4=("127.0.0.1", "127.0.0.2"))])
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: responder, local_addr=("127.0.0.1", 0)
        )
        dns_port = transport.get_extra_info("sockname")[1]
        try:
            spool = Spool(tmp_path / "spool.sqlite")
            uploader = _uploader(
                spool, replicas.probe_dir, [f"{NAME}:{port}"], resolver=_resolver_asking(dns_port)
            )
            endpoints = await uploader.endpoints()
            assert sorted(e.target for e in endpoints) == [one, two_]
            # The certificate is checked against the name, not each record.
            assert {e.server_name for e in endpoints} == {NAME}

            spool.set_state(IN_USE_STATE, f"{NAME}:{port} at {one}")
            await replicas.stop(one)
            _spool_results(spool, 9)
            report = await uploader.drain()
        finally:
            transport.close()

        assert (report.stored, spool.depth()) == (9, 0)
        assert replicas.stored(two_) == 9
        assert spool.get_state(IN_USE_STATE) == f"{NAME}:{port} at {two_}"


def test_aggregators_is_a_list_of_host_port_and_excludes_aggregator(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('aggregators = ["a.example.vn:7443", "[fd00::1]:7443"]\n')
    assert load_settings(config).aggregator_addresses("enrolled:7443") == (
        "a.example.vn:7443",
        "[fd00::1]:7443",
    )
    assert AgentSettings().aggregator_addresses("enrolled:7443") == ("enrolled:7443",)
    for text, says in (
        ('aggregators = ["a.example.vn"]\n', "aggregators"),
        ('aggregators = ["a:1", "a:1"]\n', "listed twice"),
        ('aggregator = "a:1"\naggregators = ["b:1"]\n', "not both"),
    ):
        config.write_text(text)
        with pytest.raises(ConfigError, match=says):
            load_settings(config)
