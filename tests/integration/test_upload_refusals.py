"""A result the aggregator cannot take at all must not stop a probe's uploads:
the agent narrows it down, sets it aside with the reason, and delivers the rest."""

from __future__ import annotations

from pathlib import Path

from agent.identity import channel_credentials
from agent.spool import Spool
from agent.uploader import Uploader, UploadSettings
from tests.integration.conftest import Central, throughput_result


async def test_an_oversized_result_is_set_aside_and_the_rest_delivered(
    central: Central, tmp_path: Path
) -> None:
    probe = await central.enrol_probe(tmp_path / "probe")
    spool = Spool(tmp_path / "spool.sqlite")
    good = [throughput_result(probe_id=probe.probe_id) for _ in range(20)]
    giant = throughput_result(probe_id=probe.probe_id)
    # Larger than the aggregator's max_message_bytes (256 KiB in this fixture).
    giant.envelope.status_reason = "x" * (300 * 1024)
    for result in [*good[:10], giant, *good[10:]]:
        spool.add(result.envelope.result_id, "download", result.SerializeToString())
    uploader = Uploader(
        spool,
        central.ingest_address,
        channel_credentials(probe.state_dir),
        UploadSettings(batch_size=8, window=2),
    )

    report = await uploader.drain()

    assert (report.stored, report.rejected) == (20, 1)
    assert spool.depth() == 0
    ((result_id, reason, _),) = spool.rejected()
    assert result_id == giant.envelope.result_id
    assert "RESOURCE_EXHAUSTED" in reason
    assert central.aggregator.store.count("throughput") == 20
