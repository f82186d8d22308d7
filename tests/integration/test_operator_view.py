"""The central site as its operator watches it: grpc.health.v1 on every port
and the Prometheus metrics, read with the standard clients (grpc_health's
HealthStub; an HTTP GET parsed by prometheus_client.parser) while a real
agent uploads, and health following a store that cannot be written: a
store that raises, and a real full disk (a tmpfs in a mount namespace)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import duckdb
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from agent.identity import channel_credentials
from agent.spool import Spool
from aggregator.enrolment.ca import init_ca
from aggregator.monitoring import CONFIG_SERVICE, ENROLMENT_SERVICE, INGEST_SERVICE, OVERALL
from emulation.deployment import CentralPorts, Deployment, ProbeBox, free_tcp_port
from tests.aggregator.cli.test_cli_errors import assert_plain_error, run_module
from tests.integration.conftest import CAI_KHE, NINH_KIEU, Central, throughput_result
from wardprobe.v1 import ingest_pb2, ingest_pb2_grpc

TAN_AN = 31147
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    """GET /metrics, parsed as Prometheus parses it."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode("utf-8")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def health(channel: grpc.Channel, service: str = OVERALL) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    return int(answer.status)


def _spool_depth(box: ProbeBox) -> int:
    with contextlib.closing(sqlite3.connect(box.state_dir / "spool.sqlite", timeout=10)) as db:
        return int(db.execute("select count(*) from results").fetchone()[0])


def _operator_config(dep: Deployment, extra: str) -> None:
    """Top-level keys go before aggregator.toml's first table."""
    path = dep.aggregator_config_path
    path.write_text(extra + path.read_text("utf-8"), "utf-8")


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Deployment, int, int]]:
    """`wardprobe-aggregator serve` with metrics, plaintext health and a snapshot."""
    with Deployment(workdir=tmp_path, ports=CentralPorts.on_loopback(iperf3_pool=1)) as dep:
        dep.init_central()
        metrics_port, health_port = free_tcp_port(), free_tcp_port()
        _operator_config(
            dep,
            f'metrics_listen = "127.0.0.1:{metrics_port}"\n'
            f'health_listen = "127.0.0.1:{health_port}"\n'
            f'snapshot_path = "{tmp_path / "snapshot.duckdb"}"\n',
        )
        dep.start_aggregator()
        dep.wait_for_tcp("127.0.0.1", metrics_port, "aggregator")
        yield dep, metrics_port, health_port


def _channels(dep: Deployment, box: ProbeBox, health_port: int) -> dict[str, grpc.Channel]:
    """A standard client's channel to each port that answers health: the
    plaintext health port, enrolment (TLS, the CA's certificate), ingest
    (mTLS: a client certificate of the CA, here the probe's)."""
    ca = (dep.aggregator_dir / "ca.crt").read_bytes()
    return {
        "health": grpc.insecure_channel(f"127.0.0.1:{health_port}"),
        "enrolment": grpc.secure_channel(
            f"127.0.0.1:{dep.ports.enrol}", grpc.ssl_channel_credentials(root_certificates=ca)
        ),
        "ingest": grpc.secure_channel(
            f"127.0.0.1:{dep.ports.ingest}", channel_credentials(box.state_dir)
        ),
    }


def test_metrics_and_health_while_a_real_agent_uploads(
    watched: tuple[Deployment, int, int],
) -> None:
    dep, metrics_port, health_port = watched
    box = dep.add_probe(
        "office", TAN_AN, "ward_office", agent_toml_extra="[upload]\nbatch_size = 25\nwindow = 1\n"
    )
    before = scrape(metrics_port)
    assert value(before, "wardprobe_probes_active") == 1
    assert value(before, "wardprobe_probes_seen", window="1h") == 0  # enrolled, never called
    silent = {"ward_code": str(TAN_AN), "ward_name": "Phường Tân An"}
    assert value(before, "wardprobe_probes_silent", **silent) == 0
    good, bad = 2000, 5
    spool = Spool(box.state_dir / "spool.sqlite")
    for n in range(good + bad):
        # The last batch: five results naming a ward that is not the city's.
        result = throughput_result(ward_code=TAN_AN if n < good else 1, probe_id=box.probe_id)
        spool.add(result.envelope.result_id, "download", result.SerializeToString())
    spool.close()
    channels = _channels(dep, box, health_port)

    uploader = dep.start_agent(box, "upload")
    # Frozen mid-stream (its stream open, a batch in flight or acked), the
    # central site answers as it does while the agent sends.
    while _spool_depth(box) == good + bad and uploader.poll() is None:
        time.sleep(0.01)
    os.killpg(uploader.pid, signal.SIGSTOP)
    try:
        left = _spool_depth(box)
        during = scrape(metrics_port)
        for name, channel in channels.items():
            for service in (OVERALL, INGEST_SERVICE, CONFIG_SERVICE, ENROLMENT_SERVICE):
                assert health(channel, service) == SERVING, (name, service)
        stored = value(during, "wardprobe_results_stored_total", table="throughput") or 0
        assert good + bad - left <= stored + 25 <= good + 25  # acked, or one batch committed
        if left:
            assert stored < good
    finally:
        os.killpg(uploader.pid, signal.SIGCONT)
    assert uploader.wait(timeout=300) == 0, dep.log_tail("agent-office-upload")
    assert _spool_depth(box) == 0

    after = scrape(metrics_port)
    batches = (good + bad + 24) // 25
    assert value(after, "wardprobe_results_stored_total", table="throughput") == good
    assert value(after, "wardprobe_results_duplicate_total", table="throughput") in (None, 0)
    refused = {
        labels: n
        for (name, labels), n in after.items()
        if name == "wardprobe_results_refused_total"
    }
    ((labels, count),) = refused.items()
    assert count == bad
    assert dict(labels) == {
        "table": "throughput",
        "reason": "envelope.ward_code",
        "code": "INVALID_ARGUMENT",
    }
    assert value(after, "wardprobe_batches_total", outcome="acked") == batches
    assert value(after, "wardprobe_ingest_latency_seconds_count") == batches
    assert (value(after, "wardprobe_ingest_latency_seconds_sum") or 0) > 0
    # The last batch (the five bad results, alone in the spool when it left).
    depth = value(
        after, "wardprobe_probe_spool_depth_results", probe_id=box.probe_id, ward_code=str(TAN_AN)
    )
    assert depth == bad
    dropped = value(
        after, "wardprobe_probe_spool_dropped_results", probe_id=box.probe_id, ward_code=str(TAN_AN)
    )
    assert dropped == 0
    assert value(after, "wardprobe_probes_seen", window="1h") == 1
    assert value(after, "wardprobe_probes_seen", window="24h") == 1
    assert value(after, "wardprobe_probes_silent", **silent) == 0
    assert value(after, "wardprobe_store_writable") == 1
    assert value(after, "wardprobe_store_write_failures_total") == 0
    store_bytes = dep.store_path.stat().st_size
    wal = dep.store_path.with_name(dep.store_path.name + ".wal")
    store_bytes += wal.stat().st_size if wal.exists() else 0
    assert (value(after, "wardprobe_store_size_bytes") or 0) >= dep.store_path.stat().st_size
    assert (value(after, "wardprobe_store_size_bytes") or 0) <= store_bytes
    # Published once at start (interval 300 s): its age is since then.
    age = value(after, "wardprobe_snapshot_age_seconds")
    published = (dep.workdir / "snapshot.duckdb").stat().st_mtime
    assert age is not None and 0 <= age <= time.time() - published + 1
    for channel in channels.values():
        channel.close()


def _upload(
    channel: grpc.Channel, probe_id: str, sequence: int, results: int = 1
) -> ingest_pb2.BatchAck:
    batch = ingest_pb2.ResultBatch(
        sequence=sequence,
        results=[
            throughput_result(ward_code=NINH_KIEU, probe_id=probe_id) for _ in range(results)
        ],
    )
    (ack,) = list(ingest_pb2_grpc.IngestStub(channel).Upload(iter([batch]), timeout=30))
    return ack


def _until(channel: grpc.Channel, service: str, want: int) -> None:
    """Health is changed by a task just after the failing commit: ask until
    it says `want` (the deadline only guards a hang)."""
    deadline = time.monotonic() + 30
    while health(channel, service) != want:
        assert time.monotonic() < deadline, f"{service!r} never became {want}"
        time.sleep(0.05)


@pytest.mark.netns
@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare(1): a tmpfs in a mount namespace of its own",
)
def test_a_full_disk_turns_health_not_serving_until_a_commit_succeeds(tmp_path: Path) -> None:
    disk = tmp_path / "disk"  # the store's file system: 16 MB, in the aggregator's namespace
    disk.mkdir()
    with Deployment(workdir=tmp_path, ports=CentralPorts.on_loopback(iperf3_pool=1)) as dep:
        dep.init_central()
        metrics_port, health_port = free_tcp_port(), free_tcp_port()
        config = dep.aggregator_config_path
        config.write_text(
            f'metrics_listen = "127.0.0.1:{metrics_port}"\n'
            f'health_listen = "127.0.0.1:{health_port}"\n'
            + config.read_text("utf-8")
            .replace(str(dep.store_path), str(disk / "store.duckdb"))
            # The probe registry's mirror is a write too: a few rows can still
            # fit in the last page of the WAL on a full disk and turn health
            # SERVING again between the failed upload and the check (seen in
            # CI). Only the uploads write here.
            .replace("probe_sync_interval_s = 0.5", "probe_sync_interval_s = 3600"),
            "utf-8",
        )
        assert "probe_sync_interval_s = 3600" in config.read_text("utf-8")
        serve = f"{dep.python} -m aggregator serve --config {config}"
        dep._start(
            "aggregator",
            None,
            [
                "unshare",
                "--mount",
                "sh",
                "-c",
                f"mount -t tmpfs -o size=16m tmpfs {disk} && exec {serve}",
            ],
        )
        dep.wait_for_tcp("127.0.0.1", health_port, "aggregator")
        box = dep.add_probe("home", NINH_KIEU, "household")
        channels = _channels(dep, box, health_port)
        ingest, plain = channels["ingest"], channels["health"]
        assert _upload(ingest, box.probe_id, 1).stored == 1
        # unshare and sh exec the aggregator: the process started is it, and
        # its root shows its own mounts.
        pid = dep._processes["aggregator"].pid
        filler = Path(f"/proc/{pid}/root{disk}/filler")
        with filler.open("wb", buffering=0) as handle, contextlib.suppress(OSError):
            while True:
                handle.write(bytes(65536))

        # A whole batch's worth of WAL: one result's few hundred bytes can
        # still fit in the tail of a page the WAL already has.
        with pytest.raises(grpc.RpcError) as failed:
            _upload(ingest, box.probe_id, 2, results=500)
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        _until(plain, OVERALL, NOT_SERVING)
        for channel in channels.values():
            assert health(channel, OVERALL) == NOT_SERVING
            assert health(channel, INGEST_SERVICE) == NOT_SERVING
            # These do not need the store.
            assert health(channel, ENROLMENT_SERVICE) == SERVING
            assert health(channel, CONFIG_SERVICE) == SERVING
        down = scrape(metrics_port)
        assert value(down, "wardprobe_store_writable") == 0
        assert value(down, "wardprobe_store_write_failures_total") == 1
        assert value(down, "wardprobe_batches_total", outcome="failed") == 1
        # The log says why, in the commit's words (not the rollback's after it).
        assert "No space left on device): health NOT_SERVING" in dep.log_tail("aggregator", 200)

        filler.unlink()
        assert _upload(ingest, box.probe_id, 3).stored == 1
        _until(plain, OVERALL, SERVING)
        assert health(ingest, INGEST_SERVICE) == SERVING
        assert value(scrape(metrics_port), "wardprobe_store_writable") == 1
        for channel in channels.values():
            channel.close()
        assert dep.stop_aggregator() == 0


async def test_a_store_that_raises_is_not_serving_until_a_commit_succeeds(
    central: Central, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The same as a full disk, in-process and without root: the store raises."""
    aggregator = central.aggregator
    probe = await central.enrol_probe(tmp_path / "probe")
    ca = (aggregator.config.state_dir / "ca.crt").read_bytes()
    enrol = grpc.aio.secure_channel(
        central.enrol_address, grpc.ssl_channel_credentials(root_certificates=ca)
    )
    ingest = probe.channel(central.ingest_address)
    stub = health_pb2_grpc.HealthStub(enrol)

    async def status(service: str = OVERALL) -> int:
        answer = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        return int(answer.status)

    async def upload(sequence: int) -> ingest_pb2.BatchAck:
        batch = ingest_pb2.ResultBatch(
            sequence=sequence,
            results=[throughput_result(ward_code=NINH_KIEU, probe_id=probe.probe_id)],
        )
        call = ingest_pb2_grpc.IngestStub(ingest).Upload(iter([batch]))
        (ack,) = [ack async for ack in call]
        return ack

    assert await status() == SERVING
    assert (await upload(1)).stored == 1
    # The registry's mirror into the store is a write too: done now, it has
    # nothing left to write, and cannot turn health SERVING again between the
    # failed upload and the check below (it did once, in a loaded CI run).
    await asyncio.to_thread(aggregator.sync_probes)
    real = aggregator.store.insert_new_results

    def full(*args: object, **kwargs: object) -> object:
        raise duckdb.IOException('Could not write file "wardprobe.duckdb.wal": No space left')

    monkeypatch.setattr(aggregator.store, "insert_new_results", full)
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await upload(2)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    await aggregator.health.settle()
    assert (await status(), await status(INGEST_SERVICE)) == (NOT_SERVING, NOT_SERVING)
    assert (await status(ENROLMENT_SERVICE), await status(CONFIG_SERVICE)) == (SERVING, SERVING)
    assert "No space left" in (aggregator.health.last_error or "")

    monkeypatch.setattr(aggregator.store, "insert_new_results", real)
    assert (await upload(3)).stored == 1
    await aggregator.health.settle()
    assert (await status(), await status(INGEST_SERVICE)) == (SERVING, SERVING)
    await enrol.close(None)
    await ingest.close(None)


@pytest.mark.parametrize("key", ["health_listen", "metrics_listen"])
def test_serve_on_a_taken_health_or_metrics_port_says_which(tmp_path: Path, key: str) -> None:
    state = tmp_path / "state"
    init_ca(state, ["localhost"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        config = tmp_path / "aggregator.toml"
        config.write_text(
            f'state_dir = "{state}"\nstore_path = "{state / "store.duckdb"}"\n'
            'ingest_listen = "127.0.0.1:0"\nenrol_listen = "127.0.0.1:0"\n'
            f'{key} = "{address}"\n'
        )
        done = run_module("serve", "--config", str(config))
    ours = done.stderr[done.stderr.index("error: ") :]  # after the log's lines
    lines = assert_plain_error(ours, 1, done.returncode, f"cannot listen on {address} ({key})")
    assert lines[1] == f"check {key} in aggregator.toml"
    assert "Traceback" not in done.stderr


async def test_probes_seen_and_silent_by_ward_and_their_spools(
    central: Central, tmp_path: Path
) -> None:
    metrics = central.aggregator.metrics
    await central.enrol_probe(tmp_path / "quiet", NINH_KIEU)  # never calls
    busy = await central.enrol_probe(tmp_path / "busy", NINH_KIEU)
    await central.enrol_probe(tmp_path / "school", CAI_KHE)  # never calls
    revoked = await central.enrol_probe(tmp_path / "revoked", CAI_KHE)
    central.aggregator.registry.revoke(revoked.probe_id)
    channel = busy.channel(central.ingest_address)
    batch = ingest_pb2.ResultBatch(
        sequence=1,
        results=[throughput_result(ward_code=NINH_KIEU, probe_id=busy.probe_id)],
        spool_depth=1,
        spool_dropped=7,
    )
    (ack,) = [a async for a in ingest_pb2_grpc.IngestStub(channel).Upload(iter([batch]))]
    await channel.close(None)
    assert ack.stored == 1
    now = time.time()

    def gauges(hours_later: float) -> Samples:
        metrics.clock = lambda: now + hours_later * 3600
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in metrics.collect_state()
            for sample in family.samples
        }

    ninh_kieu = {"ward_code": str(NINH_KIEU), "ward_name": "Phường Ninh Kiều"}
    cai_khe = {"ward_code": str(CAI_KHE), "ward_name": "Phường Cái Khế"}
    at = gauges(0)
    assert value(at, "wardprobe_probes_active") == 3  # not the revoked one
    assert value(at, "wardprobe_probes_seen", window="1h") == 1  # busy
    assert value(at, "wardprobe_probes_silent", **ninh_kieu) == 0
    assert value(at, "wardprobe_probes_silent", **cai_khe) == 0
    spool = {"probe_id": busy.probe_id, "ward_code": str(NINH_KIEU)}
    assert value(at, "wardprobe_probe_spool_depth_results", **spool) == 1
    assert value(at, "wardprobe_probe_spool_dropped_results", **spool) == 7
    later = gauges(2)
    assert value(later, "wardprobe_probes_seen", window="1h") == 0
    assert value(later, "wardprobe_probes_seen", window="24h") == 1
    # A day and an hour on: busy not heard from since, quiet and school never.
    next_day = gauges(25)
    assert value(next_day, "wardprobe_probes_seen", window="24h") == 0
    assert value(next_day, "wardprobe_probes_silent", **ninh_kieu) == 2
    assert value(next_day, "wardprobe_probes_silent", **cai_khe) == 1
    reported = {
        dict(labels)["probe_id"]
        for (name, labels) in next_day
        if name.startswith("wardprobe_probe_spool")
    }
    assert reported == {busy.probe_id}  # quiet and school sent no batch: no sample
