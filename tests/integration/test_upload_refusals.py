"""A result the aggregator cannot take at all must not stop a probe's uploads:
the agent narrows it down, sets it aside with the reason, and delivers the rest.
And the agent's own texts are never a reason to refuse one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.clock import ClockState
from agent.identity import channel_credentials
from agent.measurements.base import Method, ReasonKind, Status
from agent.measurements.throughput import Direction, ThroughputResult
from agent.spool import Spool
from agent.uploader import Uploader, UploadSettings
from agent.wire import ProbeContext, to_proto
from tests.integration.conftest import Central, throughput_result
from wardprobe.text import MAX_TEXT_CHARS


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


async def test_a_failure_reason_quoting_an_exception_is_stored_flattened(
    central: Central, tmp_path: Path
) -> None:
    probe = await central.enrol_probe(tmp_path / "probe")
    spool = Spool(tmp_path / "spool.sqlite")
    # What the speedtest backend writes when speedtest-cli raises: the
    # exception's own text, with its line breaks, tab and a stray NUL.
    failed = ThroughputResult(
        measured_at=datetime.now(UTC) - timedelta(minutes=1),
        status=Status.FAILED,
        status_reason=(
            "speedtest-cli failed: URLError: <urlopen error\n\t[Errno 111]\x00 refused>\n"
        ),
        status_reason_kind=ReasonKind.TOOL_FAILED,
        method=Method(tool="speedtest-cli"),
        interface="eth0",
        direction=Direction.DOWNLOAD,
    )
    context = ProbeContext(probe.probe_id, probe.ward_code, "0.1.0", "fixed")
    message = to_proto("speedtest_download", failed, context, ClockState.SYNCHRONISED)
    spool.add(message.envelope.result_id, "speedtest_download", message.SerializeToString())
    uploader = Uploader(
        spool, central.ingest_address, channel_credentials(probe.state_dir), UploadSettings()
    )

    report = await uploader.drain()

    assert (report.stored, report.rejected) == (1, 0)
    assert central.aggregator.store.query(
        "select result_id::varchar, status, status_reason, status_reason_kind from throughput"
    ) == [
        (
            message.envelope.result_id,
            "failed",
            "speedtest-cli failed: URLError: <urlopen error [Errno 111] refused>",
            "tool_failed",
        )
    ]
    # The agent cuts a text to the very length the aggregator takes.
    assert central.aggregator.limits.max_text_chars == MAX_TEXT_CHARS
