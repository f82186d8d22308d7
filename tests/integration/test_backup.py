"""`wardprobe-aggregator backup` and `restore`, as an operator runs them:
a backup taken while a probe's stream is being ingested holds every result
acked before it began, and once restored into a fresh state directory the
CA and the registry still know the probe (its certificate is accepted, its
results are recognised, a token issued before still enrols); a damaged
backup, a live state and a running aggregator are refused."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner, Result

from agent.enrolment import enrol
from aggregator.backup import MANIFEST_FILE
from aggregator.central import Aggregator
from aggregator.cli import app
from aggregator.config import AggregatorConfig
from aggregator.enrolment.ca import init_ca
from aggregator.enrolment.registry import ProbeRegistry, SiteClass
from aggregator.ingest.store import Store
from analysis.wards import ward_name
from emulation.deployment import free_tcp_port
from tests.integration.conftest import CAI_KHE, NINH_KIEU, Central, throughput_result
from wardprobe.v1 import ingest_pb2, ingest_pb2_grpc

runner = CliRunner()


def _config_file(path: Path, state: Path, store: Path) -> Path:
    path.write_text(f'state_dir = "{state}"\nstore_path = "{store}"\n', "utf-8")
    return path


def _cli(*args: str) -> Result:
    return runner.invoke(app, list(args))


def _stored_ids(store: Path) -> set[str]:
    with duckdb.connect(str(store), read_only=True) as con:
        rows = con.execute("select result_id::varchar from throughput").fetchall()
    return {str(r[0]) for r in rows}


async def test_a_backup_taken_while_ingesting_restores_every_acked_result(
    central: Central, tmp_path: Path
) -> None:
    live = central.aggregator
    probe = await central.enrol_probe(tmp_path / "probe")
    # Issued before the backup, used after the restore.
    spare_token = live.registry.create_token(
        CAI_KHE, SiteClass.SCHOOL, timedelta(hours=1), live.ca.pin
    )
    config = _config_file(
        tmp_path / "aggregator.toml", live.config.state_dir, live.config.store_path
    )
    sent: dict[int, list[str]] = {}
    acked: list[str] = []
    stop = asyncio.Event()

    async def batches() -> AsyncIterator[ingest_pb2.ResultBatch]:
        sequence = 0
        while not stop.is_set():
            sequence += 1
            results = [throughput_result(probe_id=probe.probe_id) for _ in range(50)]
            sent[sequence] = [r.envelope.result_id for r in results]
            yield ingest_pb2.ResultBatch(sequence=sequence, results=results)
            await asyncio.sleep(0)

    channel = probe.channel(central.ingest_address)
    call = ingest_pb2_grpc.IngestStub(channel).Upload(batches())
    acks = aiter(call)

    async def ack_until(count: int) -> None:
        while len(acked) < count:
            ack = await anext(acks)
            assert ack.stored == len(sent[ack.sequence]), ack
            acked.extend(sent[ack.sequence])

    await ack_until(200)
    acked_before = set(acked)
    # The command in a thread: the aggregator (this event loop) copies its
    # store while the stream goes on.
    backup_run = asyncio.create_task(
        asyncio.to_thread(
            _cli, "backup", "--out", str(tmp_path / "backup"), "--config", str(config)
        )
    )
    while not backup_run.done():
        await ack_until(len(acked) + 50)
    done = await backup_run
    await ack_until(len(acked) + 200)  # ingest went on
    stop.set()
    async for ack in acks:
        acked.extend(sent[ack.sequence])
    await channel.close(None)

    assert done.exit_code == 0, done.output
    manifest = json.loads((tmp_path / "backup" / MANIFEST_FILE).read_text("utf-8"))
    assert manifest["store_taken"] == "from the running aggregator"
    assert done.output.startswith(f"backed up {manifest['results']} results")
    assert manifest["probes"] == 1
    assert (tmp_path / "backup").stat().st_mode & 0o777 == 0o700

    # A live state, and its aggregator running: refused, even with --force.
    backup = str(tmp_path / "backup")
    refused = await asyncio.to_thread(
        _cli, "restore", "--from", backup, "--config", str(config), "--force"
    )
    assert refused.exit_code == 1
    assert refused.output.startswith(f"error: an aggregator is running on {live.config.state_dir}")

    fresh_state = tmp_path / "restored" / "state"
    fresh_config = _config_file(
        tmp_path / "restored.toml", fresh_state, tmp_path / "restored" / "store.duckdb"
    )
    restored = await asyncio.to_thread(
        _cli, "restore", "--from", str(tmp_path / "backup"), "--config", str(fresh_config)
    )
    assert restored.exit_code == 0, restored.output
    assert restored.output.startswith(f"restored {manifest['results']} results, 1 probes")

    ids = _stored_ids(tmp_path / "restored" / "store.duckdb")
    assert acked_before <= ids  # every result acked before the backup began
    assert len(ids) == manifest["results"] == manifest["store_rows"]["throughput"]
    assert ids <= set(acked)  # and nothing that was not sent
    assert len(acked) > len(ids)  # the stream went on after the copy

    # The restored CA and registry: the probe's certificate is accepted and
    # its results known; the token issued before the backup still enrols.
    settings = AggregatorConfig(
        state_dir=fresh_state,
        store_path=tmp_path / "restored" / "store.duckdb",
        ingest_listen=f"127.0.0.1:{free_tcp_port()}",
        enrol_listen=f"127.0.0.1:{free_tcp_port()}",
        grace_period_s=1.0,
    )
    async with Aggregator(settings) as again:
        target = f"127.0.0.1:{again.ingest_port}"
        channel = probe.channel(target)
        old = throughput_result(probe_id=probe.probe_id, result_id=sorted(acked_before)[0])
        new = throughput_result(probe_id=probe.probe_id)
        call = ingest_pb2_grpc.IngestStub(channel).Upload(
            iter([ingest_pb2.ResultBatch(sequence=1, results=[old, new])])
        )
        (ack,) = [a async for a in call]
        await channel.close(None)
        assert (ack.stored, ack.duplicates, list(ack.rejected)) == (1, 1, [])
        record = await asyncio.to_thread(
            enrol,
            f"127.0.0.1:{again.enrol_port}",
            spare_token,
            tmp_path / "second-probe",
            "box-2",
            "0.1.0",
        )
        assert record.ward_code == CAI_KHE


@pytest.fixture
def offline(tmp_path: Path) -> tuple[Path, Path, str]:
    """A central site's state with no aggregator running: its config file,
    a backup of it, and the one result id stored."""
    state = tmp_path / "state"
    authority = init_ca(state, ["localhost"])
    ProbeRegistry.in_state_dir(state, ward_name).create_token(
        NINH_KIEU, SiteClass.HOUSEHOLD, timedelta(hours=1), authority.pin
    )
    store = Store(state / "wardprobe.duckdb")
    result = throughput_result(probe_id="wp-offline")
    store.query("insert into result_ids values (?, 'throughput')", [result.envelope.result_id])
    store.close()
    config = _config_file(tmp_path / "aggregator.toml", state, store.path)
    done = _cli("backup", "--out", str(tmp_path / "backup"), "--config", str(config))
    assert done.exit_code == 0, done.output
    assert "(offline)" in done.output
    return config, tmp_path / "backup", result.envelope.result_id


def test_restore_refuses_a_live_state_unless_forced(
    offline: tuple[Path, Path, str], tmp_path: Path
) -> None:
    config, backup, _ = offline
    refused = _cli("restore", "--from", str(backup), "--config", str(config))
    assert refused.exit_code == 1
    lines = refused.output.splitlines()
    assert lines[0].startswith(f"error: {tmp_path / 'state'} already holds ")
    assert "ca.key" in lines[0] and "wardprobe.duckdb" in lines[0]
    assert lines[1] == "restore --force moves them aside and restores over them"

    forced = _cli("restore", "--from", str(backup), "--config", str(config), "--force")
    assert forced.exit_code == 0, forced.output
    (aside,) = (tmp_path / "state").glob("before-restore-*")
    assert {"ca.key", "ca.crt", "registry.sqlite", "wardprobe.duckdb"} <= {
        p.name for p in aside.iterdir()
    }
    assert f"what was there before is in {aside}" in forced.output
    with duckdb.connect(str(tmp_path / "state" / "wardprobe.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from result_ids").fetchone() == (1,)
    assert (tmp_path / "state" / "ca.key").stat().st_mode & 0o777 == 0o600


def test_a_damaged_or_incomplete_backup_is_refused(
    offline: tuple[Path, Path, str], tmp_path: Path
) -> None:
    _, backup, _ = offline
    fresh = _config_file(tmp_path / "fresh.toml", tmp_path / "fresh", tmp_path / "fresh.duckdb")
    registry = backup / "registry.sqlite"
    data = bytearray(registry.read_bytes())
    data[-1] ^= 0xFF
    registry.write_bytes(bytes(data))
    damaged = _cli("restore", "--from", str(backup), "--config", str(fresh))
    assert damaged.exit_code == 2
    assert damaged.output == (
        f"error: {registry} does not match its checksum in manifest.json: the backup is damaged\n"
    )
    (backup / "ca.key").unlink()
    missing = _cli("restore", "--from", str(backup), "--config", str(fresh))
    assert (missing.exit_code, missing.output) == (
        2,
        f"error: {backup / 'ca.key'} is missing from the backup\n",
    )
    assert not (tmp_path / "fresh").exists()  # nothing was put in place
    not_one = _cli("restore", "--from", str(tmp_path), "--config", str(fresh))
    assert (not_one.exit_code, not_one.output) == (
        2,
        f"error: {tmp_path} is not a backup: no manifest.json\n",
    )


def test_backup_wants_a_new_or_empty_directory(offline: tuple[Path, Path, str]) -> None:
    config, backup, _ = offline
    again = _cli("backup", "--out", str(backup), "--config", str(config))
    assert (again.exit_code, again.output) == (
        2,
        f"error: {backup} exists and is not an empty directory\n",
    )


async def test_a_state_directory_too_long_for_a_socket_address_still_answers(
    tmp_path: Path,
) -> None:
    # A Unix socket's address holds 107 bytes; this state directory is longer.
    state = tmp_path / ("state-of-the-central-site-" * 5)
    assert len(str(state / "control.sock")) > 107
    init_ca(state, ["localhost", "127.0.0.1"])
    settings = AggregatorConfig(
        state_dir=state,
        store_path=state / "wardprobe.duckdb",
        ingest_listen=f"127.0.0.1:{free_tcp_port()}",
        enrol_listen=f"127.0.0.1:{free_tcp_port()}",
        grace_period_s=1.0,
    )
    config = _config_file(tmp_path / "aggregator.toml", state, settings.store_path)
    async with Aggregator(settings):
        done = await asyncio.to_thread(
            _cli, "backup", "--out", str(tmp_path / "backup"), "--config", str(config)
        )
    assert done.exit_code == 0, done.output
    assert done.output.startswith("backed up 0 results (from the running aggregator)")


def test_backup_refuses_an_aggregator_whose_registry_is_in_postgres(
    offline: tuple[Path, Path, str], tmp_path: Path
) -> None:
    config, _, _ = offline
    with config.open("a", encoding="utf-8") as out:
        out.write("registry = 'postgres://wardprobe@db.example/wardprobe'\n")
    refused = _cli("backup", "--out", str(tmp_path / "second"), "--config", str(config))
    assert refused.exit_code == 2
    lines = refused.output.splitlines()
    assert lines[0].startswith("error: the probe registry is in PostgreSQL")
    assert "pg_dump" in lines[1]
    assert not (tmp_path / "second").exists()
