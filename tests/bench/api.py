"""API benchmark: the city's whole indicator set over HTTPS from the API,
on the analysts' snapshot of a big store (50 million results by default).

1. Generates the synthetic results inside DuckDB (tests/bench/indicators.py's
   machinery: analysis/synthetic.py into a real store) unless --dir already
   holds store.duckdb, and publishes the snapshot from it
   (aggregator/ingest/snapshot.py) unless snapshot.duckdb is there.
2. Starts `wardprobe-aggregator api serve` on loopback (TLS, the CA of a
   fresh state directory, a read token) reading that snapshot.
3. Times, as a client sees them (request sent to body read):
   /indicators for 2026 over all wards, first (computed: what the API
   does once per snapshot, in the background for the default set) and then
   answered from what it keeps; the same by operator; /wards; a GeoJSON
   and an HTML map; /sampling; /health.

Usage: python tests/bench/api.py [--rows 50000000] [--dir DIR] [--repeat 5]
Not part of the test suite; prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import httpx

from aggregator.api.tokens import ApiTokenStore
from aggregator.enrolment.ca import init_ca
from aggregator.ingest.snapshot import publish_snapshot
from aggregator.ingest.store import Store
from analysis.synthetic import city_spec, generate
from emulation.deployment import free_tcp_port


def _timed(client: httpx.Client, path: str, params: dict[str, str]) -> tuple[float, int]:
    t0 = time.perf_counter()
    answer = client.get(path, params=params)
    elapsed = time.perf_counter() - t0
    answer.raise_for_status()
    return elapsed, len(answer.content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="wardprobe-api-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    store_path, snapshot = work / "store.duckdb", work / "snapshot.duckdb"
    figures: list[tuple[str, str]] = []
    if not store_path.exists():
        store = Store(store_path)
        t0 = time.perf_counter()
        generate(store._con, city_spec(args.rows))
        store.checkpoint()
        store.close()
        figures.append(("generate the results inside DuckDB", f"{time.perf_counter() - t0:.0f} s"))
    if not snapshot.exists():
        store = Store(store_path)
        stats = publish_snapshot(store, snapshot)
        store.close()
        figures.append(("publish the snapshot", f"{stats.total_s:.0f} s"))
    with duckdb.connect(str(snapshot), read_only=True) as con:
        counts = con.execute(
            "select (select count(*) from throughput) + (select count(*) from latency)"
            " + (select count(*) from cellular) + (select count(*) from ipv6)"
        ).fetchone()
    assert counts is not None
    figures.append(("results in the store", f"{int(counts[0]):,}"))
    figures.append(("snapshot file", f"{snapshot.stat().st_size / 2**30:.2f} GiB"))

    state = work / "state"
    if not (state / "server.crt").exists():
        init_ca(state, ["127.0.0.1"])
    _, token = ApiTokenStore.in_state_dir(state).create("benchmark")
    port = free_tcp_port()
    config = work / "aggregator.toml"
    config.write_text(
        f'state_dir = "{state}"\nstore_path = "{store_path}"\n'
        f'snapshot_path = "{snapshot}"\napi_listen = "127.0.0.1:{port}"\n'
    )
    log = (work / "api.log").open("wb")  # the server's own log, for a failure
    server = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "api", "serve", "--config", str(config)],
        stderr=log,
    )
    url = f"https://127.0.0.1:{port}/api/v1"
    tls = ssl.create_default_context(cafile=state / "ca.crt")
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=url, verify=tls, headers=headers, timeout=3600) as client:
            while True:
                try:
                    client.get("/health")
                    break
                except httpx.TransportError:
                    if server.poll() is not None:
                        raise SystemExit("the API did not start") from None
                    time.sleep(0.2)
            year = {"period": "2026", "synthetic": "true"}
            for label, params in (
                ("all indicators for 2026, city + every ward", year),
                ("the same by operator", {**year, "by": "operator"}),
            ):
                first, size = _timed(client, "/indicators", params)
                runs = [_timed(client, "/indicators", params)[0] for _ in range(args.repeat)]
                figures.append(
                    (
                        f"{label}: first request (computed from the snapshot)",
                        f"{first:.2f} s ({size / 1024:.0f} KiB of JSON)",
                    )
                )
                figures.append(
                    (
                        f"{label}: later requests (kept answer)",
                        f"**{statistics.median(runs) * 1000:.0f} ms** median of "
                        f"{args.repeat}, longest {max(runs) * 1000:.0f} ms",
                    )
                )
            for label, path in (
                ("/wards", "/wards"),
                ("GeoJSON map of gigabit_capable_share", "/maps/gigabit_capable_share.geojson"),
                ("HTML map of mobile_download_by_tech (3 layers)",
                 "/maps/mobile_download_by_tech.html"),
                ("/sampling (where more probes would settle it)", "/sampling"),
            ):  # fmt: skip
                first, _ = _timed(client, path, year)
                again, _ = _timed(client, path, year)
                figures.append((label, f"first {first:.2f} s, then {again * 1000:.0f} ms"))
            health = [_timed(client, "/health", {})[0] for _ in range(args.repeat)]
            figures.append(("/health", f"{statistics.median(health) * 1000:.0f} ms median"))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
        log.close()
    print("| figure | value |\n|---|---|")
    for name, value in figures:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
