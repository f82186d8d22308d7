"""Ingest benchmark: how fast the aggregator takes a city's results.

Runs the real aggregator process (`python -m aggregator serve`) on loopback
with a fresh CA, enrols probes through the real enrolment RPC, then:

1. sustained ingest: N concurrent probes stream pre-serialised batches over
   mTLS gRPC as fast as acks come back; results/s from the first send to
   the last ack, and the aggregator's resident memory (peak and at the end);
2. backlog after an outage: M probes each with a day's results (100) in a
   real agent spool, delivered by the agent's own Uploader; time from
   reconnect to the last ack.

Usage: python tests/bench/ingest.py [--probes 100] [--results 600000]
           [--backlog-probes 1000] [--backlog-results 100]
Not part of the test suite; prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import grpc
import psutil
import uuid6

from agent.enrolment import enrol
from agent.identity import channel_credentials
from agent.spool import Spool
from agent.uploader import Uploader, UploadSettings
from aggregator.enrolment.ca import CertificateAuthority
from aggregator.enrolment.registry import ProbeRegistry, SiteClass
from analysis.wards import can_tho_wards, ward_name
from emulation.deployment import CentralPorts, Deployment
from wardprobe.v1 import ingest_pb2, results_pb2


def _result(ward_code: int, probe_id: str, at: datetime, rng: random.Random) -> results_pb2.Result:
    message = results_pb2.Result()
    env = message.envelope
    env.result_id = str(uuid6.uuid7())
    env.measured_at.FromDatetime(at)
    env.agent_version = "0.1.0"
    env.interface = "eth0"
    env.network_kind = results_pb2.NETWORK_KIND_FIXED
    env.ip_family = results_pb2.IP_FAMILY_IPV4
    env.clock_sync = results_pb2.CLOCK_SYNC_SYNCHRONISED
    env.method.tool = "iperf3"
    env.method.tool_version = "iperf 3.12"
    env.method.server = "198.18.0.1"
    env.method.server_port = 5201
    env.method.duration_s = 10
    env.method.streams = 4
    env.status = results_pb2.STATUS_OK
    env.ward_code = ward_code
    env.probe_id = probe_id
    if rng.random() < 0.5:
        message.throughput.direction = results_pb2.DIRECTION_DOWNLOAD
        message.throughput.mbps = rng.uniform(20, 950)
        message.throughput.bytes_transferred = 10**8
        message.throughput.measured_s = 8.0
        message.throughput.retransmits = 3
        message.throughput.omitted_s = 2.0
    else:
        lat = message.latency
        lat.protocol = "icmp"
        lat.target = "198.18.0.1"
        lat.packets_sent = lat.packets_received = 10
        lat.rtt_min_ms, lat.rtt_median_ms = 4.0, rng.uniform(5, 40)
        lat.rtt_p95_ms = lat.rtt_max_ms = 60.0
        lat.jitter_ms, lat.loss_pct = 1.5, 0.0
    return message


def _enrol_all(dep: Deployment, count: int, root: Path) -> list[tuple[str, int, Path]]:
    """Enrol `count` probes through the real enrolment RPC (8 at a time),
    spread over the city's wards."""
    wards = sorted(can_tho_wards())
    registry = ProbeRegistry.in_state_dir(dep.aggregator_dir, ward_name)
    pin = CertificateAuthority.load(dep.aggregator_dir).pin

    def one(i: int) -> tuple[str, int, Path]:
        ward = wards[i % len(wards)]
        state = root / f"p{i:04d}"
        token = registry.create_token(ward, SiteClass.HOUSEHOLD, timedelta(hours=1), pin)
        record = enrol(f"127.0.0.1:{dep.ports.enrol}", token, state, f"bench-{i}", "0.1.0")
        return record.probe_id, ward, state

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


async def _sustained(
    address: str, probes: list[tuple[str, int, Path]], total: int, batch_size: int
) -> tuple[float, int]:
    per_probe = total // len(probes)
    rng = random.Random(1)
    now = datetime.now(UTC) - timedelta(hours=1)
    # Serialise everything up front: this measures the aggregator, not the client.
    work = []
    for probe_id, ward, state in probes:
        batches = []
        for seq, start in enumerate(range(0, per_probe, batch_size), start=1):
            n = min(batch_size, per_probe - start)
            batch = ingest_pb2.ResultBatch(
                sequence=seq, results=[_result(ward, probe_id, now, rng) for _ in range(n)]
            )
            batches.append(batch.SerializeToString())
        work.append((state, batches))

    async def stream(state: Path, batches: list[bytes]) -> int:
        async with grpc.aio.secure_channel(address, channel_credentials(state)) as channel:
            upload = channel.stream_stream(
                "/wardprobe.v1.Ingest/Upload",
                request_serializer=None,
                response_deserializer=ingest_pb2.BatchAck.FromString,
            )
            stored = 0
            async for ack in upload(iter(batches)):
                stored += ack.stored
            return stored

    # Open the channels first: TLS handshakes are not ingest.
    started = time.perf_counter()
    stored = sum(await asyncio.gather(*(stream(s, b) for s, b in work)))
    return time.perf_counter() - started, stored


async def _backlog(
    address: str, probes: list[tuple[str, int, Path]], per_probe: int
) -> tuple[float, int]:
    rng = random.Random(2)
    day_ago = datetime.now(UTC) - timedelta(days=1)
    uploaders = []
    for probe_id, ward, state in probes:
        spool = Spool(state / "spool.sqlite")
        for i in range(per_probe):
            at = day_ago + timedelta(seconds=864 * i)
            message = _result(ward, probe_id, at, rng)
            spool.add(message.envelope.result_id, "download", message.SerializeToString())
        uploaders.append(Uploader(spool, address, channel_credentials(state), UploadSettings()))
    started = time.perf_counter()
    reports = await asyncio.gather(*(u.drain() for u in uploaders))
    return time.perf_counter() - started, sum(r.stored for r in reports)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--results", type=int, default=600_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--backlog-probes", type=int, default=1000)
    parser.add_argument("--backlog-results", type=int, default=100)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="wardprobe-bench-") as tmp:
        root = Path(tmp)
        ports = CentralPorts.on_loopback(iperf3_pool=1)
        with Deployment(workdir=root / "central", ports=ports) as dep:
            dep.init_central()
            dep.start_aggregator()
            server = psutil.Process(dep._processes["aggregator"].pid)
            address = f"127.0.0.1:{ports.ingest}"

            t0 = time.perf_counter()
            probes = _enrol_all(dep, max(args.probes, args.backlog_probes), root / "probes")
            print(f"enrolled {len(probes)} probes in {time.perf_counter() - t0:.1f} s")

            rss_idle = server.memory_info().rss
            server_cpu = _cpu_seconds(server)
            client_cpu = time.process_time()
            seconds, stored = asyncio.run(
                _sustained(address, probes[: args.probes], args.results, args.batch_size)
            )
            server_cpu = _cpu_seconds(server) - server_cpu
            client_cpu = time.process_time() - client_cpu
            rss_after = server.memory_info().rss
            peak = _peak_rss(server.pid)
            rate = stored / seconds
            print(
                f"sustained: {stored} results from {args.probes} probes in {seconds:.2f} s "
                f"= {rate:,.0f} results/s; aggregator RSS idle {rss_idle / 2**20:.0f} MiB, "
                f"after {rss_after / 2**20:.0f} MiB, peak {peak / 2**20:.0f} MiB; CPU seconds: "
                f"aggregator with its read workers {server_cpu:.1f} "
                f"({server_cpu / stored * 1e6:.1f} µs/result), "
                f"load generator {client_cpu:.1f}"
            )

            backlog_probes = probes[: args.backlog_probes]
            backlog_s, backlog_stored = asyncio.run(
                _backlog(address, backlog_probes, args.backlog_results)
            )
            print(
                f"backlog: {backlog_stored} results from {len(backlog_probes)} probes "
                f"delivered in {backlog_s:.2f} s from reconnect to last ack "
                f"({backlog_stored / backlog_s:,.0f} results/s)"
            )
            assert dep.stop_aggregator() == 0
            with duckdb.connect(str(dep.store_path), read_only=True) as con:
                rows = con.execute(
                    "select (select count(*) from throughput) + (select count(*) from latency)"
                ).fetchone()
            print(
                f"rows in the store: {rows[0] if rows else 0} (expected {stored + backlog_stored})"
            )
            print()
            print("| figure | value |")
            print("|---|---|")
            mib = 2**20
            rows_md = [
                (f"sustained ingest, {args.probes} concurrent probes, batches of "
                 f"{args.batch_size}", f"{rate:,.0f} results/s"),
                ("aggregator resident memory: idle / after / peak",
                 f"{rss_idle / mib:.0f} / {rss_after / mib:.0f} / {peak / mib:.0f} MiB"),
                ("aggregator CPU (with read workers) per result",
                 f"{server_cpu / stored * 1e6:.1f} µs"),
                (f"backlog of {len(backlog_probes)} probes × {args.backlog_results} results, "
                 "reconnect to last ack", f"{backlog_s:.1f} s"),
            ]  # fmt: skip
            for figure, value in rows_md:
                print(f"| {figure} | {value} |")


def _cpu_seconds(process: psutil.Process) -> float:
    """CPU time of the aggregator and its read workers."""
    total = 0.0
    for each in (process, *process.children(recursive=True)):
        times = each.cpu_times()
        total += float(times.user + times.system)
    return total


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    main()
