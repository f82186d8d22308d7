"""Ingest benchmark: how fast the aggregator takes a city's results, into an
empty store and into one that holds a year of a city (50 M results).

Runs the real aggregator process (`python -m aggregator serve`) on loopback
with a fresh CA, twice side by side: one on an empty store, one on a store of
`--big-store-results` synthetic results (analysis/synthetic.py, generated
inside DuckDB into the store file, as tests/bench/indicators.py does; kept at
`--big-store` and reused by later runs). Probes are enrolled through the real
enrolment RPC on both, then, in `--rounds` interleaved pairs (empty, big,
empty, big, ...: the machine is shared, so its load moves between runs):

1. sustained ingest: N concurrent probes stream pre-serialised batches over
   mTLS gRPC as fast as acks come back; results/s from the first send to
   the last ack; the longest time without any ack while the streams wait
   (a stall: a checkpoint, a slow commit); the aggregator's resident memory
   sampled every 50 ms through the burst (its peak) and 2 s after it;
2. (once, on the empty store) backlog after an outage: M probes each with a
   day's results (100) in a real agent spool, delivered by the agent's own
   Uploader; time from reconnect to the last ack.

At the end both stores are counted: every result acked as stored is there
once.

Usage: python tests/bench/ingest.py [--probes 100] [--results 600000]
           [--big-store-results 50000000] [--big-store PATH] [--rounds 2]
           [--backlog-probes 1000] [--backlog-results 100] [--empty-only]
           [--set KEY=VALUE ...]
       --empty-only: only the sustained runs into an empty store (no 50 M
       store, no backlog): the quick loop for the aggregator's memory.
Not part of the test suite; prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import grpc
import psutil

from agent.enrolment import enrol
from agent.identity import channel_credentials
from agent.spool import Spool
from agent.uploader import Uploader, UploadSettings
from aggregator.enrolment.ca import CertificateAuthority
from aggregator.enrolment.registry import ProbeRegistry, SiteClass
from aggregator.ingest.store import Store
from analysis.synthetic import city_spec, generate
from analysis.wards import can_tho_wards, ward_name
from emulation.deployment import CentralPorts, Deployment
from wardprobe.v1 import ingest_pb2, results_pb2


def _uuid7(at: datetime, rng: random.Random) -> str:
    """A UUIDv7 of the time `at` (unix ms) with random bits, as a probe makes
    one. Not uuid6.uuid7(): made 600,000 times in one process within seconds,
    its ids run ahead of the clock by a millisecond each (it keeps them
    increasing), ten minutes and more: ids the aggregator refuses as from the
    future."""
    ms = int(at.timestamp() * 1000)
    bits = rng.getrandbits(74)
    value = (ms << 80) | (0x7 << 76) | ((bits >> 62) << 64) | (0b10 << 62) | (bits & (2**62 - 1))
    return str(uuid.UUID(int=value))


def _result(ward_code: int, probe_id: str, at: datetime, rng: random.Random) -> results_pb2.Result:
    message = results_pb2.Result()
    env = message.envelope
    env.result_id = _uuid7(at, rng)
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


def _serialised(
    probes: list[tuple[str, int, Path]],
    total: int,
    batch_size: int,
    seed: int,
    age: timedelta = timedelta(minutes=5),
) -> list[tuple[Path, list[bytes]]]:
    """Every probe's batches, serialised up front (new ids each call), its
    results measured `age` ago: the run measures the aggregator, not the
    client."""
    per_probe = total // len(probes)
    rng = random.Random(seed)
    now = datetime.now(UTC) - age
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
    return work


@dataclass
class Run:
    """One sustained run's figures."""

    store: str
    results_in_store: int
    stored: int
    seconds: float
    longest_gap_s: float  # the longest time without an ack, first to last
    rss_before: int
    rss_peak: int
    rss_after: int
    cpu_s: float
    load: tuple[float, float]  # the load average (1 min) before and after

    @property
    def rate(self) -> float:
        return self.stored / self.seconds


async def _sustained(
    address: str, work: list[tuple[Path, list[bytes]]]
) -> tuple[float, int, float]:
    """Stream every probe's batches at once; (seconds, stored, longest gap
    between two acks of any stream)."""
    acks: list[float] = []
    refused = [0]  # refused or duplicate: none in a sound run

    async def stream(state: Path, batches: list[bytes]) -> int:
        async with grpc.aio.secure_channel(address, channel_credentials(state)) as channel:
            upload = channel.stream_stream(
                "/wardprobe.v1.Ingest/Upload",
                request_serializer=None,
                response_deserializer=ingest_pb2.BatchAck.FromString,
            )
            stored = 0
            async for ack in upload(iter(batches)):
                acks.append(time.perf_counter())
                stored += ack.stored
                refused[0] += len(ack.rejected) + ack.duplicates
            return stored

    started = time.perf_counter()
    stored = sum(await asyncio.gather(*(stream(s, b) for s, b in work)))
    elapsed = time.perf_counter() - started
    times = sorted(acks)
    gap = max((b - a for a, b in itertools.pairwise(times)), default=0.0)
    # the wait for the first ack counts too: a stall can come first
    gap = max(gap, times[0] - started) if times else gap
    if refused[0]:
        raise RuntimeError(f"{refused[0]} results refused or duplicates: not a sound run")
    return elapsed, stored, gap


def _measured_run(
    name: str,
    dep: Deployment,
    probes: list[tuple[str, int, Path]],
    args: argparse.Namespace,
    seed: int,
    in_store: int,
) -> Run:
    """One sustained run against `dep`, with its memory sampled through it."""
    server = psutil.Process(dep._processes["aggregator"].pid)
    work = _serialised(probes, args.results, args.batch_size, seed)
    rss_before = server.memory_info().rss
    peak = [rss_before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], server.memory_info().rss)

    sampler = threading.Thread(target=sample)
    load_before = os.getloadavg()[0]
    cpu = _cpu_seconds(server)
    sampler.start()
    seconds, stored, gap = asyncio.run(_sustained(f"127.0.0.1:{dep.ports.ingest}", work))
    cpu = _cpu_seconds(server) - cpu
    time.sleep(2.0)
    done.set()
    sampler.join()
    return Run(
        name, in_store, stored, seconds, gap, rss_before, peak[0], server.memory_info().rss,
        cpu, (load_before, os.getloadavg()[0]),
    )  # fmt: skip


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


def _big_store(path: Path, rows: int) -> float:
    """The store of `rows` synthetic results at `path`, generated inside
    DuckDB the first time (seconds it took; 0 when it was there)."""
    if path.exists():
        return 0.0
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    started = time.perf_counter()
    store = Store(partial)
    generate(store._con, city_spec(rows))
    store.checkpoint()
    store.close()
    partial.rename(path)
    return time.perf_counter() - started


def _results_in(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        count = con.execute("select count(*) from result_ids").fetchone()
    return int(count[0]) if count else 0


def _start(root: Path, name: str, store: Path | None, keys: str = "") -> Deployment:
    """A deployment on loopback whose aggregator uses `store` (None: a new
    one), with `keys` (TOML lines) added to its aggregator.toml."""
    dep = Deployment(workdir=root / name, ports=CentralPorts.on_loopback(iperf3_pool=1))
    dep.init_central()
    if keys:
        config = dep.aggregator_config_path.read_text("utf-8")
        # top-level keys: before the first table
        head, table, rest = config.partition("\n[")
        dep.aggregator_config_path.write_text(f"{head}\n{keys}\n{table}{rest}", "utf-8")
    if store is not None:
        dep.store_path.symlink_to(store)
    dep.start_aggregator()
    return dep


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--results", type=int, default=600_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--big-store-results", type=int, default=50_000_000)
    parser.add_argument(
        "--big-store", type=Path, default=Path("/var/tmp/wardprobe-bench/store-50m.duckdb")
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backlog-probes", type=int, default=1000)
    parser.add_argument("--backlog-results", type=int, default=100)
    parser.add_argument(
        "--empty-only", action="store_true", help="only the empty store's runs, no backlog"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an aggregator.toml key for both aggregators (TOML value), e.g. "
        "--set store_checkpoint_threshold_mib=16; repeatable",
    )
    args = parser.parse_args()
    args.keys = "\n".join(args.set)
    if args.empty_only:
        _empty_only(args)
        return

    generated_s = _big_store(args.big_store, args.big_store_results)
    if generated_s:
        print(f"generated {args.big_store} in {generated_s:.0f} s")
    big_count = _results_in(args.big_store)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="wardprobe-bench-") as tmp:
        root = Path(tmp)
        with (
            _start(root, "empty", None, args.keys) as empty,
            _start(root, "big", args.big_store, args.keys) as big,
        ):
            t0 = time.perf_counter()
            enrolled = {
                "empty": _enrol_all(
                    empty, max(args.probes, args.backlog_probes), root / "probes-empty"
                ),
                "big": _enrol_all(big, args.probes, root / "probes-big"),
            }
            print(f"enrolled probes in {time.perf_counter() - t0:.1f} s")
            in_store = {"empty": 0, "big": big_count}
            for round_ in range(args.rounds):
                for name, dep in (("empty", empty), ("big", big)):
                    run = _measured_run(
                        name, dep, enrolled[name][: args.probes], args, round_ * 2 + len(name),
                        in_store[name],
                    )  # fmt: skip
                    in_store[name] += run.stored
                    runs.append(run)
                    print(
                        f"{name} store ({run.results_in_store:,} results): {run.stored} stored "
                        f"in {run.seconds:.2f} s = {run.rate:,.0f} results/s; longest gap "
                        f"between acks {run.longest_gap_s:.2f} s; RSS before / peak / after "
                        f"{run.rss_before / 2**20:.0f} / {run.rss_peak / 2**20:.0f} / "
                        f"{run.rss_after / 2**20:.0f} MiB; {run.cpu_s / run.stored * 1e6:.1f} "
                        f"µs CPU/result; load {run.load[0]:.1f}-{run.load[1]:.1f}",
                        flush=True,
                    )

            backlog_probes = enrolled["empty"][: args.backlog_probes]
            backlog_s, backlog_stored = asyncio.run(
                _backlog(f"127.0.0.1:{empty.ports.ingest}", backlog_probes, args.backlog_results)
            )
            in_store["empty"] += backlog_stored
            print(
                f"backlog: {backlog_stored} results from {len(backlog_probes)} probes "
                f"delivered in {backlog_s:.2f} s from reconnect to last ack "
                f"({backlog_stored / backlog_s:,.0f} results/s)"
            )
            assert empty.stop_aggregator() == 0
            assert big.stop_aggregator() == 0
            for name, dep in (("empty", empty), ("big", big)):
                with duckdb.connect(str(dep.store_path), read_only=True) as con:
                    row = con.execute(
                        "select count(*), count(distinct result_id) from result_ids"
                    ).fetchone()
                print(
                    f"{name} store: {row[0] if row else 0} ids, {row[1] if row else 0} "
                    f"distinct (expected {in_store[name]})"
                )

    print()
    print(
        "| run | store holds | results/s | longest gap between acks "
        "| RSS before / peak / after | CPU per result | load |"
    )
    print("|---|---|---|---|---|---|---|")
    mib = 2**20
    for run in runs:
        print(
            f"| {run.store} | {run.results_in_store:,} | {run.rate:,.0f} | "
            f"{run.longest_gap_s:.2f} s | {run.rss_before / mib:.0f} / {run.rss_peak / mib:.0f} / "
            f"{run.rss_after / mib:.0f} MiB | {run.cpu_s / run.stored * 1e6:.1f} µs | "
            f"{run.load[0]:.1f}-{run.load[1]:.1f} |"
        )
    pairs = [(a.rate, b.rate) for a, b in zip(runs[::2], runs[1::2], strict=True)]
    ratios = ", ".join(f"{b / a:.2f}" for a, b in pairs)
    print(f"\nbig / empty, pair by pair: {ratios}; backlog {backlog_s:.1f} s")


def _empty_only(args: argparse.Namespace) -> None:
    """`--rounds` bursts into one empty store, nothing else: the aggregator's
    resident memory idle, at its peak and 2 s after each burst."""
    with tempfile.TemporaryDirectory(prefix="wardprobe-bench-") as tmp:
        root = Path(tmp)
        with _start(root, "empty", None, args.keys) as dep:
            probes = _enrol_all(dep, args.probes, root / "probes")
            in_store = 0
            for round_ in range(args.rounds):
                run = _measured_run("empty", dep, probes, args, round_, in_store)
                in_store += run.stored
                print(
                    f"empty store ({run.results_in_store:,} results): {run.rate:,.0f} results/s; "
                    f"RSS before / peak / after {run.rss_before / 2**20:.0f} / "
                    f"{run.rss_peak / 2**20:.0f} / {run.rss_after / 2**20:.0f} MiB; "
                    f"load {run.load[0]:.1f}-{run.load[1]:.1f}",
                    flush=True,
                )
            assert dep.stop_aggregator() == 0
            if (count := _results_in(dep.store_path)) != in_store:
                raise RuntimeError(f"{count} results in the store, {in_store} acked")


def _cpu_seconds(process: psutil.Process) -> float:
    """CPU time of the aggregator and its read workers."""
    total = 0.0
    for each in (process, *process.children(recursive=True)):
        times = each.cpu_times()
        total += float(times.user + times.system)
    return total


if __name__ == "__main__":
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    main()
