"""Aggregator replicas on one lake (DuckLake, PostgreSQL catalogue): two real
`wardprobe-aggregator serve` processes, agents failing over between them,
one replica killed with SIGKILL in the middle of the agents' batches.
Nothing is lost, nothing is stored twice, and the indicators computed on
the lake are the embedded store's on the same results.

Each replica has a state directory of its own, as replicas on several hosts
do: the CA's files copied into each, and the probe registry in PostgreSQL
beside the lake's catalogue (aggregator.toml's `registry`), so a probe
enrolled through one replica is known to the other (docs/scaling.md)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import uuid6

from agent.backoff import Backoff
from agent.enrolment import enrol
from agent.identity import channel_credentials
from agent.spool import Spool
from agent.uploader import IN_USE_STATE, Uploader, UploadReport, UploadSettings
from aggregator.central import Aggregator
from aggregator.config import AggregatorConfig
from aggregator.enrolment.ca import CertificateAuthority, init_ca
from aggregator.enrolment.registry import ProbeRegistry, SiteClass
from aggregator.ingest.lake import LakeStore, connect_lake
from aggregator.ingest.store import ProbeRow
from aggregator.ingest.stores import LakeSpec, parse_store_spec
from aggregator.ingest.tables import RESULT_TABLES
from analysis.indicators.compute import compute_indicators
from analysis.indicators.export import report_json, rounded_floats
from analysis.periods import parse_period
from analysis.wards import ward_name
from emulation.deployment import free_tcp_port
from emulation.replica import Replica, start_replica
from tests.integration.conftest import NINH_KIEU, throughput_result
from wardprobe.v1 import results_pb2

PROBES = 4  # the indicators' floor is 3 probes
RESULTS_PER_PROBE = 600
NOW = datetime.now(UTC)


# Short commit groups: the agents' small batches keep moving.
_REPLICA_CONFIG = (
    "lake_flush_s = 0.1\nprobe_sync_interval_s = 0.5\ningest_read_workers = 1\ngrace_period_s = 2\n"
)


def _registry_uri(lake_spec: str) -> str:
    """The replicas' shared probe registry: in the lake catalogue's database."""
    spec = parse_store_spec(lake_spec)
    assert isinstance(spec, LakeSpec)
    return spec.catalogue_uri


@pytest.fixture
def replicas(tmp_path: Path, lake_spec: str) -> Iterator[list[Replica]]:
    states = [tmp_path / "aggregator0", tmp_path / "aggregator1"]
    init_ca(states[0], ["localhost", "127.0.0.1"])
    shutil.copytree(states[0], states[1])  # the CA and server certificate, as to another host
    config = _REPLICA_CONFIG + f"registry = '{_registry_uri(lake_spec)}'\n"
    # The first creates the lake's tables; the second finds them.
    started = [start_replica(states[0], lake_spec, "replica0", config)]
    try:
        started.append(start_replica(states[1], lake_spec, "replica1", config))
        yield started
    finally:
        for replica in started:
            if replica.process.poll() is None:
                os.killpg(replica.process.pid, signal.SIGTERM)
        for replica in started:
            replica.process.wait(timeout=60)


def _latency_result(probe_id: str, at: datetime, rng: random.Random) -> results_pb2.Result:
    message = throughput_result(probe_id=probe_id, measured_at=at)
    message.ClearField("throughput")
    message.envelope.method.tool = "ping"
    latency = message.latency
    latency.protocol = "icmp"
    latency.target = "198.18.0.1"
    latency.packets_sent = latency.packets_received = 10
    latency.rtt_min_ms, latency.rtt_median_ms = 4.0, rng.uniform(5, 40)
    latency.rtt_p95_ms = latency.rtt_max_ms = 60.0
    latency.jitter_ms, latency.loss_pct = 1.5, 0.0
    return message


def _results(probe_id: str, rng: random.Random) -> list[results_pb2.Result]:
    """A probe's results over the last three weeks: downloads and latency."""
    out = []
    for i in range(RESULTS_PER_PROBE):
        at = NOW - timedelta(days=21) + timedelta(seconds=3000 * i + rng.randrange(600))
        if i % 2:
            out.append(_latency_result(probe_id, at, rng))
        else:
            download = throughput_result(
                probe_id=probe_id, measured_at=at, mbps=rng.uniform(20, 300)
            )
            # Bytes that agree with the rate over the 8 s measured (else not valid).
            download.throughput.bytes_transferred = int(download.throughput.mbps * 1e6)
            out.append(download)
    # UUIDv7 ids are made when the result is: in measurement order.
    for message in out:
        message.envelope.result_id = str(uuid6.uuid7())
    return out


def _enrol(
    state: Path, registry_uri: str, enrol_address: str, root: Path
) -> list[tuple[str, Path]]:
    registry = ProbeRegistry(registry_uri, ward_name)
    pin = CertificateAuthority.load(state).pin
    probes = []
    for i in range(PROBES):
        token = registry.create_token(NINH_KIEU, SiteClass.HOUSEHOLD, timedelta(hours=1), pin)
        record = enrol(enrol_address, token, root / f"probe{i}", f"box-{i}", "0.1.0")
        probes.append((record.probe_id, root / f"probe{i}"))
    return probes


def _spool(path: Path, messages: list[results_pb2.Result]) -> Spool:
    spool = Spool(path)
    for message in messages:
        kind = "download" if message.HasField("throughput") else "latency_icmp"
        spool.add(message.envelope.result_id, kind, message.SerializeToString())
    return spool


def _uploader(
    spool: Spool, probe_dir: Path, addresses: list[str], batch_size: int = 20
) -> Uploader:
    return Uploader(
        spool,
        addresses,
        channel_credentials(probe_dir),
        # Small batches, two in flight: many batches, so the kill lands among them.
        UploadSettings(batch_size=batch_size, window=2),
        backoff=Backoff(base_s=0.05, cap_s=0.2),
    )


async def _upload_killing(
    spools: list[Spool], uploaders: list[Uploader], victim: Replica, total: int
) -> list[UploadReport]:
    """Drain every spool at once; SIGKILL `victim` once a fifth of the results
    are acked and most are not (its batches in flight then die with it)."""
    drains = [asyncio.create_task(u.drain()) for u in uploaders]
    async with asyncio.timeout(120):
        while sum(s.depth() for s in spools) > total * 4 // 5:
            assert not all(d.done() for d in drains), "the uploads ended before the kill"
            await asyncio.sleep(0.01)
    os.killpg(victim.process.pid, signal.SIGKILL)
    victim.process.wait()
    async with asyncio.timeout(120):
        return list(await asyncio.gather(*drains))


def _lake_rows(spec: LakeSpec, sql: str) -> list[tuple[object, ...]]:
    con = connect_lake(spec, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


async def _embedded_copy(
    state: Path,
    registry_uri: str,
    store: Path,
    probes: list[tuple[str, Path]],
    sent: dict[str, list[bytes]],
) -> None:
    """The same results, through the same ingest, into an embedded store."""
    ingest = f"127.0.0.1:{free_tcp_port()}"
    config = AggregatorConfig(
        state_dir=state,
        registry=registry_uri,
        store_path=store,
        ingest_listen=ingest,
        enrol_listen=f"127.0.0.1:{free_tcp_port()}",
        ingest_public_address=ingest,
        ingest_read_workers=1,
        grace_period_s=1.0,
    )
    uploaders = []
    for probe_id, probe_dir in probes:
        spool = Spool(probe_dir / "embedded-spool.sqlite")
        for payload in sent[probe_id]:
            message = results_pb2.Result.FromString(payload)
            spool.add(message.envelope.result_id, "result", payload)
        uploaders.append(_uploader(spool, probe_dir, [ingest], batch_size=500))
    async with Aggregator(config):
        reports = await asyncio.gather(*(u.drain() for u in uploaders))
    assert [r.stored for r in reports] == [len(sent[p]) for p, _ in probes]


def test_two_replicas_one_killed_mid_batch_lose_and_double_nothing(
    replicas: list[Replica], lake_spec: str, tmp_path: Path
) -> None:
    victim, survivor = replicas
    state = tmp_path / "aggregator0"
    registry_uri = _registry_uri(lake_spec)
    # Enrolled through the replica that will be killed; the survivor, with a
    # state directory of its own, knows them from the shared registry.
    probes = _enrol(state, registry_uri, victim.enrol_address, tmp_path / "probes")
    rng = random.Random(16)
    sent: dict[str, list[bytes]] = {}
    spools, uploaders = [], []
    for index, (probe_id, probe_dir) in enumerate(probes):
        messages = _results(probe_id, rng)
        sent[probe_id] = [m.SerializeToString() for m in messages]
        spool = _spool(probe_dir / "spool.sqlite", messages)
        # Three agents start on the replica that will be killed, one on the other.
        spool.set_state(IN_USE_STATE, survivor.address if index == 0 else victim.address)
        spools.append(spool)
        uploaders.append(_uploader(spool, probe_dir, [victim.address, survivor.address]))
    total = PROBES * RESULTS_PER_PROBE

    reports = asyncio.run(_upload_killing(spools, uploaders, victim, total))

    assert [s.depth() for s in spools] == [0] * PROBES
    assert {s.get_state(IN_USE_STATE) for s in spools} == {survivor.address}
    assert sum(r.rejected for r in reports) == 0
    assert not list(tmp_path.glob("aggregator*/registry.sqlite"))
    spec = parse_store_spec(lake_spec)
    assert isinstance(spec, LakeSpec)
    union = " union all ".join(f"select result_id from {t}" for t in RESULT_TABLES)
    ids = {str(i) for i, _ in _lake_rows(spec, f"select result_id, 1 from ({union})")}
    # Nothing lost: every result sent is in the lake ...
    expected = {
        results_pb2.Result.FromString(p).envelope.result_id for v in sent.values() for p in v
    }
    assert ids == expected
    # ... and nothing doubled: one row per id, in its table and in result_ids.
    assert _lake_rows(spec, f"select count(*) from ({union})") == [(total,)]
    assert _lake_rows(spec, "select count(*), count(distinct result_id) from result_ids") == [
        (total, total)
    ]

    # The survivor stops cleanly (SIGTERM), with nothing left to commit.
    os.killpg(survivor.process.pid, signal.SIGTERM)
    assert survivor.process.wait(timeout=60) == 0, survivor.tail()

    embedded = tmp_path / "embedded.duckdb"
    asyncio.run(_embedded_copy(state, registry_uri, embedded, probes, sent))
    period = parse_period(
        f"{(NOW - timedelta(days=22)).date()}..{(NOW + timedelta(days=1)).date()}"
    )
    with duckdb.connect(str(embedded), read_only=True) as con:
        on_embedded = compute_indicators(con, period)
    lake = connect_lake(spec, read_only=True)
    try:
        on_lake = compute_indicators(lake, period)
    finally:
        lake.close()
    assert any(f.status == "ok" for f in on_lake.figures), "the data must give some figures"
    # Equal figure by figure; a float may differ in its last bits (1e-15:
    # DuckDB's threads add a per-probe mean's terms in whatever order).
    assert rounded_floats(json.loads(report_json(on_lake))) == rounded_floats(
        json.loads(report_json(on_embedded))
    )


def test_replicas_mirroring_the_registry_at_once_keep_one_row_per_probe(lake_spec: str) -> None:
    spec = parse_store_spec(lake_spec)
    assert isinstance(spec, LakeSpec)
    one, two = LakeStore(spec), LakeStore(spec)
    now = datetime.now(UTC)
    probes = [
        ProbeRow(
            probe_id=f"wp-{i}",
            ward_code=NINH_KIEU,
            ward_name="Phường Ninh Kiều",
            site_class="household",
            hostname=None,
            agent_version=None,
            enrolled_at=now,
            cert_serial=f"{i:x}",
            cert_not_after=now + timedelta(days=365),
            cert_state="active",
            revoked_at=None,
            isp=None,
            plan_down_mbps=None,
            plan_up_mbps=None,
        )
        for i in range(3)
    ]
    try:
        # Both start from an empty table, as two replicas do when the first
        # probe enrols: without a conflict between them every probe was doubled.
        for count in (1, 3, 2):
            start = threading.Barrier(2)

            def mirror(
                store: LakeStore,
                rows: list[ProbeRow] = probes[:count],
                start: threading.Barrier = start,
            ) -> None:
                start.wait()
                store.replace_probes(rows)

            threads = [threading.Thread(target=mirror, args=(s,)) for s in (one, two)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert one.query("select probe_id, count(*) from probes group by all order by 1") == [
                (p.probe_id, 1) for p in probes[:count]
            ]
            one.replace_probes([])
    finally:
        one.close()
        two.close()
