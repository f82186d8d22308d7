"""The daemon's workers: one short-lived process per job.

`wardprobe-agent run` is a small scheduler (agent/daemon.py) that imports
neither gRPC nor pydantic nor the measurement code, so the box's memory
between tests is the scheduler's alone. Each job runs here, in a process of
its own that exits when the job is done:

    python -m agent.worker [--config F] [--state-dir D] [-v] plan
        Ask the aggregator for the config (cached for when it is down), merge
        agent.toml, print the schedule as one JSON object.
    python -m agent.worker ... measure [--held-on-stdin] MEASUREMENT NETWORK_KIND
        Run one scheduled test (framed by radio observations on the mobile
        line) with the cached config, spool its result, print a JSON line.
    python -m agent.worker ... upload
        Deliver the spool; exit 0 when it is empty, 2 when the aggregator
        could not take it (the daemon backs off and tries again).

Results the spool cannot take (a full disk) are printed back to the daemon
as `{"held": ...}` lines; it keeps them in memory and hands them to the next
`measure` worker on standard input, which writes them first.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import sys

from agent.backoff import Backoff
from agent.config import ConfigError, load_settings
from agent.measurements import MEASUREMENTS
from agent.plan import Plan, PlannedLine, PlannedTest
from agent.process import agent_parser, log_to_stderr
from agent.runtime import AgentRuntime, EffectiveConfig, NotEnrolled
from agent.uploader import UploadError
from wardprobe.v1 import results_pb2

log = logging.getLogger(__name__)

# Exit codes the daemon reads.
EXIT_OK = 0
EXIT_UPLOAD_FAILED = 2
EXIT_CANNOT_START = 3  # not enrolled, or agent.toml invalid


def planned_tests(config: EffectiveConfig) -> tuple[PlannedTest, ...]:
    """The schedule's tests on the enabled lines, each with what the daemon
    needs to know of it (whether it waits for the server slot)."""
    return tuple(
        PlannedTest(
            measurement=t.measurement,
            interval_s=t.interval_s,
            jitter_s=t.jitter_s,
            network_kind=t.network_kind,
            needs_slot=MEASUREMENTS[t.measurement].needs_slot,
        )
        for t in config.schedule
        if t.network_kind in config.contexts
    )


def plan_of(runtime: AgentRuntime, config: EffectiveConfig) -> Plan:
    """What the daemon needs to schedule, in plain types (no gRPC or pydantic)."""
    settings = runtime.settings
    return Plan(
        probe_id=runtime.enrolment.probe_id,
        ward_code=runtime.enrolment.ward_code,
        source=config.source,
        schedule=planned_tests(config),
        lines={
            kind: PlannedLine(
                timeout_s=ctx.timeout_s,
                slot_period_s=ctx.throughput_slot_period_s,
                slot_offset_s=ctx.throughput_slot_offset_s,
                slot_length_s=ctx.throughput_slot_length_s,
            )
            for kind, ctx in config.contexts.items()
        },
        deferred_retry_after_s=settings.preflight.retry_after_s,
        upload_backoff=Backoff(settings.upload.backoff_base_s, settings.upload.backoff_cap_s),
        clock_wait_s=settings.clock.wait_for_sync_s,
    )


async def _plan(runtime: AgentRuntime) -> int:
    try:
        config = runtime.effective_config(await runtime.fetch_config())
    except RuntimeError as err:  # no schedule or no server: neither fetched nor configured
        log.error("%s", err)
        return EXIT_CANNOT_START
    print(plan_of(runtime, config).to_json(), flush=True)
    return EXIT_OK


def _take_held(runtime: AgentRuntime) -> None:
    """Write the results the daemon held for us (one JSON object a line on stdin)."""
    for line in sys.stdin:
        if line.strip():
            held = json.loads(line)
            runtime.spool_or_hold(
                held["result_id"], held["measurement"], base64.b64decode(held["payload"])
            )


def _give_back_held(runtime: AgentRuntime) -> None:
    for result_id, measurement, payload in runtime.held:
        item = {
            "result_id": result_id,
            "measurement": measurement,
            "payload": base64.b64encode(payload).decode(),
        }
        print(json.dumps({"held": item}), flush=True)


async def _measure(
    runtime: AgentRuntime, measurement: str, network_kind: str, held_on_stdin: bool
) -> int:
    if held_on_stdin:
        _take_held(runtime)
    try:
        # The config the `plan` worker fetched: no RPC before every test.
        config = runtime.effective_config(runtime.cached_config())
        test = next(
            t
            for t in config.schedule
            if t.measurement == measurement and t.network_kind == network_kind
        )
        messages = await runtime.measure(test, config.contexts[network_kind])
    finally:
        _give_back_held(runtime)
    # One line per result (a traceroute gives one per target); the daemon reads the last.
    for message in messages:
        print(json.dumps(summary_of(message, runtime.results_lost)), flush=True)
    return EXIT_OK


def summary_of(message: results_pb2.Result, results_lost: int) -> dict[str, object]:
    """The line a `measure` worker prints for the daemon."""
    return {
        "result_id": message.envelope.result_id,
        "status_reason": message.envelope.status_reason,
        # A busy line: the daemon tries again sooner than the test's interval.
        "deferred": message.envelope.status_reason_kind == results_pb2.REASON_KIND_DEFERRED,
        "results_lost": results_lost,
    }


async def _upload(runtime: AgentRuntime) -> int:
    try:
        report = await runtime.uploader.drain()
    except UploadError as err:
        log.warning("upload failed: %s; %d results wait in the spool", err, runtime.spool.depth())
        return EXIT_UPLOAD_FAILED
    log.info(
        "uploaded: %d stored, %d already stored, %d refused",
        report.stored,
        report.duplicates,
        report.rejected,
    )
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run one job; the exit code tells the daemon how it went."""
    parser = agent_parser("agent.worker", __doc__)
    jobs = parser.add_subparsers(dest="job", required=True)
    jobs.add_parser("plan")
    measure = jobs.add_parser("measure")
    measure.add_argument("--held-on-stdin", action="store_true")
    measure.add_argument("measurement")
    measure.add_argument("network_kind", choices=("fixed", "mobile"))
    jobs.add_parser("upload")
    args = parser.parse_args(argv)
    log_to_stderr(args.verbose)
    try:
        runtime = AgentRuntime(load_settings(args.config, args.state_dir))
    except (NotEnrolled, ConfigError) as err:
        log.error("%s", err)
        return EXIT_CANNOT_START
    try:
        if args.job == "plan":
            return asyncio.run(_plan(runtime))
        if args.job == "measure":
            return asyncio.run(
                _measure(runtime, args.measurement, args.network_kind, args.held_on_stdin)
            )
        return asyncio.run(_upload(runtime))
    finally:
        runtime.close()


if __name__ == "__main__":
    sys.exit(main())
