"""Aggregator replicas on one lake (DuckLake, PostgreSQL catalogue).

Real `wardprobe-aggregator serve` processes on loopback sharing one state
directory (CA, registry) and one lake; a throwaway PostgreSQL cluster from
Debian's packages (emulation/postgres.py, fsync on, as in production);
probes enrolled through the real enrolment RPC.

1. Ingest with 1, 2 and 3 replicas: `--probes` concurrent probes stream
   pre-serialised batches of `--batch-size` (half throughput, half latency
   results), probe i to replica i mod n, as fast as acks come back; results/s
   from the first send to the last ack, each replica's CPU, the lake's
   commits and data files, and every result counted once.
2. A day of `--sim-probes` probes (10,000): what one probe sends a day comes
   from the default schedule (aggregator/config.py) and the measurement
   table (results per run, radio observations around mobile tests). That
   load is offered at its real rate for `--sim-seconds` to two replicas with
   the default commit groups (lake_flush_s = 1 s): one batch per test (the
   agent uploads after each test), over `--sim-streams` long-lived streams.
   Measured: results/s acked, ack latency (when a result becomes visible to
   analysts), commits, data files and catalogue size, before and after a
   compaction; then extrapolated to files per hour and catalogue and data
   per month.

Usage: python -m tests.bench.replicas [--results 200000] [--probes 24]
           [--sim-probes 10000] [--sim-seconds 120]
Not part of the test suite; prints Markdown for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import psutil

from agent.enrolment import enrol
from agent.identity import channel_credentials
from agent.measurements import MEASUREMENTS, RadioFraming
from aggregator.config import AggregatorConfig, ScheduleItem
from aggregator.enrolment.ca import CertificateAuthority, init_ca
from aggregator.enrolment.registry import ProbeRegistry, SiteClass
from aggregator.ingest.lake import LAKE, LakeStore, connect_lake, lake_schema
from aggregator.ingest.stores import LakeSpec, parse_store_spec
from aggregator.ingest.tables import RESULT_TABLES
from analysis.wards import can_tho_wards, ward_name
from emulation.postgres import PostgresCluster, postgres_bindir, throwaway_root
from emulation.replica import Replica, start_replica
from tests.bench.ingest import _result, _serialised
from tests.integration.conftest import raw_upload
from wardprobe.v1 import ingest_pb2

DAY_S = 86_400
MONTH_S = 30 * DAY_S
# Tests whose one run gives a result per target or resolver: with the
# reference server's IPv6-only name and DNS handed out (as the city's
# deployment does), two each.
RESULTS_PER_RUN = {"traceroute": 2, "dns": 2}
OBSERVATION_INTERVAL_S = 300  # agent.toml's [modem] observation_interval_s default


@dataclass(frozen=True)
class DailyLoad:
    """What one probe box sends a day under the default schedule."""

    tests: float  # runs, one upload (batch) after each
    results: float


def daily_load(schedule: Sequence[ScheduleItem], *, mobile: bool) -> DailyLoad:
    """One box's tests and results a day: the fixed line's schedule, and with
    `mobile` the mobile line's too, its radio observations every 5 minutes
    and the observations framing each mobile test."""
    tests = results = 0.0
    for item in schedule:
        if item.network_kind == "mobile" and not mobile:
            continue
        runs = DAY_S / item.interval_s
        tests += runs
        results += runs * RESULTS_PER_RUN.get(item.measurement, 1)
        if item.network_kind == "mobile":
            framing = MEASUREMENTS[item.measurement].radio
            results += (
                runs
                * {
                    RadioFraming.NONE: 0,
                    RadioFraming.BEFORE: 1,
                    RadioFraming.BEFORE_AND_AFTER: 2,
                }[framing]
            )
    if mobile:
        observations = DAY_S / OBSERVATION_INTERVAL_S
        tests += observations
        results += observations
    return DailyLoad(tests, results)


def _cpu_s(replica: Replica) -> float:
    """CPU seconds of a replica and its read workers."""
    total = 0.0
    try:
        root = psutil.Process(replica.process.pid)
        for each in (root, *root.children(recursive=True)):
            times = each.cpu_times()
            total += float(times.user + times.system)
    except psutil.NoSuchProcess:
        pass
    return total


def enrol_probes(
    state: Path, enrol_address: str, count: int, root: Path
) -> list[tuple[str, int, Path]]:
    """`count` probes spread over the city's wards, 8 enrolments at a time."""
    wards = sorted(can_tho_wards())
    registry = ProbeRegistry.in_state_dir(state, ward_name)
    pin = CertificateAuthority.load(state).pin

    def one(i: int) -> tuple[str, int, Path]:
        ward = wards[i % len(wards)]
        token = registry.create_token(ward, SiteClass.HOUSEHOLD, timedelta(hours=1), pin)
        record = enrol(enrol_address, token, root / f"p{i:05d}", f"bench-{i}", "0.1.0")
        return record.probe_id, ward, root / f"p{i:05d}"

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


# -- 1. ingest with 1, 2 and 3 replicas ------------------------------------


async def sustained(
    replicas: list[Replica], probes: list[tuple[str, int, Path]], total: int, batch_size: int
) -> tuple[float, int, int]:
    """(seconds, stored, duplicates) of every probe streaming its share at once."""
    work = [
        (replicas[index % len(replicas)].address, state, batches)
        for index, (state, batches) in enumerate(
            _serialised(probes, total, batch_size, seed=1, age=timedelta(hours=1))
        )
    ]

    async def stream(address: str, state: Path, batches: list[bytes]) -> tuple[int, int]:
        async with grpc.aio.secure_channel(address, channel_credentials(state)) as channel:
            stored = duplicates = 0
            async for ack in raw_upload(channel)(iter(batches)):
                stored += ack.stored
                duplicates += ack.duplicates
            return stored, duplicates

    started = time.perf_counter()
    counts = await asyncio.gather(*(stream(*w) for w in work))
    seconds = time.perf_counter() - started
    return seconds, sum(c[0] for c in counts), sum(c[1] for c in counts)


@dataclass(frozen=True)
class LakeState:
    commits: int
    data_files: int
    rows: int
    distinct_ids: int
    catalogue_bytes: int
    data_bytes: int


def lake_state(spec: LakeSpec, cluster: PostgresCluster, database: str) -> LakeState:
    """Commits (the fence), data files, result rows and ids, sizes."""
    con = connect_lake(spec, read_only=True)
    try:
        union = " union all ".join(f"select result_id from {t}" for t in RESULT_TABLES)
        files = " union all ".join(
            f"select data_file from ducklake_list_files('{LAKE}', '{t.name}')"
            for t in lake_schema()
        )
        row = con.execute(
            f"select (select commits from commit_fence), (select count(*) from ({files})),"
            f" count(*), count(distinct result_id) from ({union})"
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    data_bytes = sum(p.stat().st_size for p in Path(spec.data_path).rglob("*") if p.is_file())
    return LakeState(
        int(row[0]), int(row[1]), int(row[2]), int(row[3]), catalogue_bytes(cluster, database),
        data_bytes,
    )  # fmt: skip


def catalogue_bytes(cluster: PostgresCluster, database: str) -> int:
    """The catalogue database's size on disk (pg_database_size)."""
    done = subprocess.run(
        [
            str(postgres_bindir() / "psql"), "--host", str(cluster.socket_dir), "--port", "5432",
            "--username", "postgres", "--dbname", database, "--no-align", "--tuples-only",
            "--command", "select pg_database_size(current_database())",
        ],
        capture_output=True, text=True, check=True, cwd="/",
    )  # fmt: skip
    return int(done.stdout.strip())


def vacuum(cluster: PostgresCluster, database: str) -> None:
    """VACUUM FULL: the catalogue's live size, without the dead rows compaction left."""
    subprocess.run(
        [
            str(postgres_bindir() / "psql"), "--host", str(cluster.socket_dir), "--port", "5432",
            "--username", "postgres", "--dbname", database, "--command", "vacuum full",
        ],
        capture_output=True, check=True, cwd="/",
    )  # fmt: skip


# -- 2. a day of 10,000 probes ----------------------------------------------


def _test_results(probe_id: str, ward: int, rng: random.Random, per_test: float) -> bytes:
    """One upload: the results of one test (1 or 2; the day's average per test)."""
    count = int(per_test) + (1 if rng.random() < per_test - int(per_test) else 0)
    now = datetime.now(UTC)
    messages = [_result(ward, probe_id, now, rng) for _ in range(max(1, count))]
    return ingest_pb2.ResultBatch(sequence=1, results=messages).SerializeToString()


async def simulate(
    replicas: list[Replica],
    probes: list[tuple[str, int, Path]],
    tests_per_s: float,
    results_per_test: float,
    seconds: float,
) -> tuple[int, list[float]]:
    """Offer `tests_per_s` uploads a second (Poisson) over one stream per
    probe for `seconds`; (results acked, each batch's ack latency in s)."""
    latencies: list[float] = []
    stored = 0
    per_stream = tests_per_s / len(probes)

    async def stream(index: int, probe_id: str, ward: int, state: Path) -> None:
        nonlocal stored
        rng = random.Random(index)
        address = replicas[index % len(replicas)].address
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        sent_at: list[float] = []

        async def requests() -> AsyncIterator[bytes]:
            while (item := await queue.get()) is not None:
                yield item

        async with grpc.aio.secure_channel(address, channel_credentials(state)) as channel:
            call = raw_upload(channel)(requests())

            async def produce() -> None:
                sequence = 0
                end = time.monotonic() + seconds
                while (wait := rng.expovariate(per_stream)) < end - time.monotonic():
                    await asyncio.sleep(wait)
                    sequence += 1
                    message = ingest_pb2.ResultBatch.FromString(
                        _test_results(probe_id, ward, rng, results_per_test)
                    )
                    message.sequence = sequence
                    sent_at.append(time.monotonic())
                    await queue.put(message.SerializeToString())
                await queue.put(None)

            producer = asyncio.create_task(produce())
            async for ack in call:
                latencies.append(time.monotonic() - sent_at[ack.sequence - 1])
                stored += ack.stored
            await producer

    await asyncio.gather(*(stream(i, *p) for i, p in enumerate(probes)))
    return stored, latencies


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--probes", type=int, default=24)
    parser.add_argument("--results", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--replicas", default="1,2,3")
    parser.add_argument("--sim-probes", type=int, default=10_000)
    parser.add_argument("--sim-seconds", type=float, default=120.0)
    parser.add_argument("--sim-streams", type=int, default=48)
    args = parser.parse_args()

    schedule = AggregatorConfig().schedule
    fixed = daily_load(schedule, mobile=False)
    both = daily_load(schedule, mobile=True)
    print(
        f"one box a day, default schedule: fixed line only {fixed.tests:.0f} tests, "
        f"{fixed.results:.0f} results; with a mobile line {both.tests:.0f} tests, "
        f"{both.results:.0f} results"
    )

    root = Path(tempfile.mkdtemp(prefix="wardprobe-bench-replicas-"))
    cluster = PostgresCluster(throwaway_root(), fsync=True)
    rows_md: list[tuple[str, str]] = []
    try:
        run(args, root, cluster, rows_md, both)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(cluster.root, ignore_errors=True)
    print()
    print("| figure | value |")
    print("|---|---|")
    for figure, value in rows_md:
        print(f"| {figure} | {value} |")


def run(
    args: argparse.Namespace,
    root: Path,
    cluster: PostgresCluster,
    rows_md: list[tuple[str, str]],
    both: DailyLoad,
) -> None:
    """Both parts, their figures appended to `rows_md`."""
    with cluster:
        state = root / "aggregator"
        init_ca(state, ["localhost", "127.0.0.1"])
        probes: list[tuple[str, int, Path]] = []
        for count in (int(n) for n in args.replicas.split(",")):
            database = f"ingest_{count}"
            cluster.create_database(database)
            location = cluster.lake(root / f"lake-{count}", database)
            spec = parse_store_spec(location.store_spec)
            assert isinstance(spec, LakeSpec)
            replicas = [
                start_replica(state, location.store_spec, f"ingest{count}-{i}")
                for i in range(count)
            ]
            try:
                if not probes:
                    probes = enrol_probes(
                        state, replicas[0].enrol_address, max(args.probes, args.sim_streams),
                        root / "probes",
                    )  # fmt: skip
                cpu_before = [_cpu_s(r) for r in replicas]
                seconds, stored, duplicates = asyncio.run(
                    sustained(replicas, probes[: args.probes], args.results, args.batch_size)
                )
                cpu = [_cpu_s(r) - b for r, b in zip(replicas, cpu_before, strict=True)]
            finally:
                for replica in replicas:
                    replica.stop()
            after = lake_state(spec, cluster, database)
            rate = stored / seconds
            print(
                f"load average {os.getloadavg()[0]:.1f}; "
                f"{count} replica(s): {stored} stored ({duplicates} duplicates) in "
                f"{seconds:.1f} s = {rate:,.0f} results/s; CPU s per replica "
                f"{', '.join(f'{c:.1f}' for c in cpu)}; lake: {after.commits} commits, "
                f"{after.data_files} data files, {after.rows} rows, "
                f"{after.distinct_ids} distinct ids"
            )
            assert after.rows == after.distinct_ids == stored, "lost or doubled"
            rows_md.append(
                (
                    f"ingest, {count} replica{'s' if count > 1 else ''}, {args.probes} probes "
                    f"× batches of {args.batch_size}",
                    f"{rate:,.0f} results/s ({after.commits} commits, "
                    f"{sum(cpu) / stored * 1e6:.0f} µs CPU per result)",
                )
            )

        # -- a day of 10,000 probes, at its real rate -----------------------
        database = "day"
        cluster.create_database(database)
        location = cluster.lake(root / "lake-day", database)
        spec = parse_store_spec(location.store_spec)
        assert isinstance(spec, LakeSpec)
        replicas = [start_replica(state, location.store_spec, f"day-{i}") for i in range(2)]
        load = both  # every box with a mobile line: the upper bound
        tests_per_s = args.sim_probes * load.tests / DAY_S
        results_per_test = load.results / load.tests
        try:
            vacuum(cluster, database)  # sizes compared without dead rows
            before = lake_state(spec, cluster, database)
            stored, latencies = asyncio.run(
                simulate(
                    replicas, probes[: args.sim_streams], tests_per_s, results_per_test,
                    args.sim_seconds,
                )
            )  # fmt: skip
        finally:
            for replica in replicas:
                replica.stop()
        vacuum(cluster, database)
        after = lake_state(spec, cluster, database)
        store = LakeStore(spec)
        try:
            compaction = store.compact(keep_snapshots_s=0)
        finally:
            store.close()
        vacuum(cluster, database)
        compacted = lake_state(spec, cluster, database)
        hours = args.sim_seconds / 3600
        files_per_hour = (after.data_files - before.data_files) / hours
        commits_per_hour = (after.commits - before.commits) / hours
        commits = after.commits - before.commits
        catalogue_per_commit = (after.catalogue_bytes - before.catalogue_bytes) / commits
        # What stays once compaction has folded the files and expired the
        # snapshots: per simulated hour, an upper bound for a month of
        # hourly compactions (a later one merges earlier hours' files too).
        # (Less than before is the vacuum reclaiming pages the lake's creation left: none kept.)
        kept_per_hour = max(0, compacted.catalogue_bytes - before.catalogue_bytes) / hours
        data_per_result = (compacted.data_bytes - before.data_bytes) / max(1, stored)
        month_results = args.sim_probes * load.results * 30
        print(
            f"day of {args.sim_probes} probes: offered {tests_per_s:.1f} uploads/s, "
            f"{tests_per_s * results_per_test:.1f} results/s; acked {stored} in "
            f"{args.sim_seconds:.0f} s ({stored / args.sim_seconds:.1f}/s); ack latency p50 "
            f"{_quantile(latencies, 0.5):.2f} s, p99 {_quantile(latencies, 0.99):.2f} s, "
            f"max {max(latencies):.2f} s; {after.commits - before.commits} commits, "
            f"{after.data_files - before.data_files} data files; load average "
            f"{os.getloadavg()[0]:.1f}; catalogue "
            f"{before.catalogue_bytes} -> {after.catalogue_bytes} bytes, compacted "
            f"({compaction.files_before} -> {compaction.files_after} files, "
            f"{compaction.seconds:.1f} s) and vacuumed {compacted.catalogue_bytes}; "
            f"data {compacted.data_bytes} bytes"
        )
        mib = 2**20
        rows_md += [
            (f"a day of {args.sim_probes:,} probes (mobile line too): offered",
             f"{tests_per_s:.1f} uploads/s, {tests_per_s * results_per_test:.1f} results/s"),
            ("acked, 2 replicas", f"{stored / args.sim_seconds:.1f} results/s"),
            ("ack latency (send to visible) p50 / p99 / max",
             f"{_quantile(latencies, 0.5):.2f} / {_quantile(latencies, 0.99):.2f} / "
             f"{max(latencies):.2f} s"),
            ("commits per hour (2 replicas)", f"{commits_per_hour:,.0f}"),
            ("data files per hour before compaction", f"{files_per_hour:,.0f}"),
            (f"after compaction ({args.sim_seconds:.0f} s of data)",
             f"{compaction.files_before} → {compaction.files_after} files"),
            ("catalogue growth per commit, before compaction (vacuumed)",
             f"{catalogue_per_commit / 1024:.1f} KiB"),
            ("catalogue kept per hour of load after compaction",
             f"{kept_per_hour / mib:.2f} MiB"),
            ("Parquet per result after compaction", f"{data_per_result:.0f} bytes"),
            (f"a month of {args.sim_probes:,} probes",
             f"{month_results / 1e6:.0f} M results; the catalogue grows by about "
             f"{kept_per_hour * 720 / mib:,.1f} MiB with hourly compaction "
             f"({catalogue_per_commit * commits_per_hour * 720 / mib:,.0f} MiB without); "
             f"Parquet ≈ {data_per_result * month_results / mib:,.0f} MiB"),
        ]  # fmt: skip


if __name__ == "__main__":
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    main()
