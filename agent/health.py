"""Is this probe box healthy? The answer `wardprobe-agent status` gives a
technician, in plain words, and its reasons.

Healthy means the box is doing its job: enrolled, its certificate valid,
its clock synchronised (results measured otherwise are kept, but the
indicators do not count them), a recent test that did not fail, results
reaching the aggregator, room in the spool, and (with a mobile line) a
modem in service. Each failed check is one reason, in words a technician can
act on; `status` prints them on its first line and exits 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from agent.clock import ClockState, clock_state
from agent.config import AgentSettings
from agent.identity import EnrolmentRecord
from agent.runtime import CONFIG_CACHE_FILE
from agent.spool import Spool
from agent.uploader import IN_USE_STATE

# A spool this full is near dropping results (the oldest go first).
SPOOL_NEARLY_FULL_SHARE = 0.9
# No test for this many of the shortest scheduled intervals: the service is
# probably not running.
STALE_INTERVALS = 3
# Without a schedule to judge by (none cached, none in agent.toml).
STALE_WITHOUT_SCHEDULE = timedelta(days=1)
# Where the values start in `status`'s lines (the longest label, 'upload error:', and a space).
LABEL_WIDTH = 14


@dataclass
class Health:
    """The verdict, its reasons, the lines to print and the JSON report."""

    reasons: list[str] = field(default_factory=list)
    lines: list[tuple[str, str]] = field(default_factory=list)
    report: dict[str, object] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """No check failed."""
        return not self.reasons

    def headline(self) -> str:
        """`healthy`, or `not healthy: ` and every reason."""
        return "healthy" if self.healthy else "not healthy: " + "; ".join(self.reasons)

    def text(self) -> str:
        """The headline, then one line per fact, values in one column."""
        return "\n".join(
            [
                self.headline(),
                *(f"{label + ':':<{LABEL_WIDTH}}{value}" for label, value in self.lines),
            ]
        )


def _ago(when: datetime, now: datetime) -> str:
    seconds = (now - when).total_seconds()
    if seconds < -60:
        return "in the future (was the clock wrong then, or is it now?)"
    seconds = max(seconds, 0)
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172_800:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86_400:.0f} days ago"


def _parse_time(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def shortest_interval_s(settings: AgentSettings) -> int | None:
    """The shortest test interval of the schedule the agent runs: agent.toml's,
    else the aggregator's as last cached; None when there is neither."""
    if settings.schedule:
        return min(entry.interval_s for entry in settings.schedule)
    cache = settings.state_dir / CONFIG_CACHE_FILE
    try:
        schedule = json.loads(cache.read_text("utf-8")).get("schedule", [])
        intervals = [int(entry.get("intervalS", 0)) for entry in schedule]
    except (OSError, ValueError, AttributeError):
        return None
    return min((i for i in intervals if i > 0), default=None)


def check(
    settings: AgentSettings,
    enrolment: EnrolmentRecord | None,
    spool: Spool | None,
    measurements: list[str],
    agent_version: str,
    now: datetime | None = None,
    clock: Callable[[], ClockState] | None = None,
) -> Health:
    """Every check `status` makes. `spool` is None when the box is not enrolled;
    `measurements` are the tests whose last result the spool may hold; `clock`
    defaults to the kernel's answer (agent.clock.clock_state)."""
    now = now or datetime.now(UTC)
    clock = clock or clock_state
    health = Health()
    health.report.update(agent_version=agent_version, state_dir=str(settings.state_dir))
    if enrolment is None or spool is None:
        health.reasons.append("not enrolled (run `wardprobe-agent enroll`)")
        health.report["enrolled"] = False
        health.lines.append(("enrolled", f"no (nothing in {settings.state_dir})"))
        _check_clock(health, clock)
        health.lines.append(("agent", agent_version))
        return health

    aggregator = " or ".join(settings.aggregator_addresses(enrolment.ingest_address))
    health.report.update(
        enrolled=True,
        probe_id=enrolment.probe_id,
        ward=f"{enrolment.ward_name} ({enrolment.ward_code})",
        site_class=enrolment.site_class,
        aggregator=aggregator,
        certificate_valid_until=enrolment.certificate_not_after.isoformat(),
    )
    health.lines.append(
        ("enrolled", f"ward {enrolment.ward_name} ({enrolment.ward_code}), {enrolment.site_class}")
    )
    health.lines.append(("probe", f"{enrolment.probe_id} (agent {agent_version})"))
    _check_clock(health, clock)
    _check_tests(health, settings, spool, measurements, now)
    _check_upload(health, settings, spool, aggregator, now)
    _check_modem(health, settings, spool)
    if enrolment.certificate_not_after <= now:
        health.reasons.append(
            f"the probe's certificate expired on {enrolment.certificate_not_after:%Y-%m-%d} "
            "(ask the operator for a new token and enrol with --force)"
        )
    health.lines.append(("certificate", f"valid until {enrolment.certificate_not_after:%Y-%m-%d}"))
    return health


def _check_clock(health: Health, clock: Callable[[], ClockState]) -> None:
    state = clock()
    health.report["clock"] = str(state)
    if state is ClockState.SYNCHRONISED:
        health.lines.append(("clock", "synchronised"))
        return
    if state is ClockState.UNSYNCHRONISED:
        health.reasons.append("the clock is not synchronised (results measured now will not count)")
        health.lines.append(
            (
                "clock",
                "NOT synchronised: results measured now are kept but do not count in the "
                "indicators; check the box reaches an NTP server (timedatectl timesync-status)",
            )
        )
    else:
        health.reasons.append("the clock's synchronisation cannot be read")
        health.lines.append(("clock", "unknown (adjtimex cannot be read)"))


def _check_tests(
    health: Health,
    settings: AgentSettings,
    spool: Spool,
    measurements: list[str],
    now: datetime,
) -> None:
    last: dict[str, dict[str, object]] = {}
    for name in measurements:
        text = spool.get_state(f"last_result:{name}")
        if text:
            last[name] = json.loads(text)
    health.report["last_results"] = last
    dated = [
        (when, name)
        for name, result in last.items()
        if (when := _parse_time(str(result.get("measured_at", "")))) is not None
    ]
    if not dated:
        health.reasons.append("no test has run yet")
        health.lines.append(("last test", "none yet (the service starts testing within minutes)"))
        return
    when, name = max(dated)
    result = last[name]
    status = str(result.get("status", ""))
    reason = str(result.get("reason") or "")
    health.lines.append(
        (
            "last test",
            f"{name} {status}{': ' + reason if reason else ''}, "
            f"{when:%Y-%m-%d %H:%M} UTC, {_ago(when, now)}",
        )
    )
    if status == "failed":
        health.reasons.append(f"the last test failed ({name}: {reason or 'no reason given'})")
    interval_s = shortest_interval_s(settings)
    stale_after = (
        timedelta(seconds=STALE_INTERVALS * interval_s) if interval_s else STALE_WITHOUT_SCHEDULE
    )
    if now - when > stale_after:
        health.reasons.append(
            f"no test for {_ago(when, now).removesuffix(' ago')} "
            "(is the service running? systemctl status wardprobe-agent)"
        )
    for other, item in sorted(last.items()):
        if other != name and item.get("status") == "failed":
            health.lines.append(
                (f"  {other}", f"failed at {item.get('measured_at')}: {item.get('reason')}")
            )


def _check_upload(
    health: Health, settings: AgentSettings, spool: Spool, aggregator: str, now: datetime
) -> None:
    depth = spool.depth()
    dropped = spool.counter("dropped_results")
    uploaded = spool.get_state("last_upload_at")
    error = spool.get_state("last_upload_error")
    # Which replica (and which of a name's records) the last upload went to.
    in_use = spool.get_state(IN_USE_STATE)
    refused = [{"result_id": rid, "reason": why} for rid, why, _ in spool.rejected(5)]
    health.report.update(
        aggregator_in_use=in_use,
        spool_depth=depth,
        dropped_results=dropped,
        last_upload_at=uploaded,
        last_upload_error=error,
        recently_refused=refused,
    )
    uploaded_at = _parse_time(uploaded) if uploaded else None
    # The uploader writes its error as "<ISO time> <what went wrong>".
    error_at, _, error_text = (error or "").partition(" ")
    failed_at = _parse_time(error_at) if error else None
    failing = failed_at is not None and (uploaded_at is None or failed_at > uploaded_at)
    if uploaded_at is None:
        health.lines.append(("last upload", f"never (to {aggregator})"))
    else:
        health.lines.append(
            ("last upload", f"{uploaded_at:%Y-%m-%d %H:%M} UTC, {_ago(uploaded_at, now)}")
        )
    health.lines.append(
        ("aggregator", f"{in_use} (of {aggregator})" if in_use else f"none yet (of {aggregator})")
    )
    if failing and depth > 0:
        health.reasons.append(f"uploads fail ({error_text}); {depth} results wait")
        health.lines.append(("upload error", f"{error_text} ({failed_at:%Y-%m-%d %H:%M} UTC)"))
    health.lines.append(("spool", f"{depth} results waiting to be uploaded"))
    if depth >= SPOOL_NEARLY_FULL_SHARE * settings.spool.max_rows:
        health.reasons.append(
            f"the spool is nearly full ({depth} of {settings.spool.max_rows}): "
            "the oldest results will be dropped"
        )
    health.lines.append(
        ("dropped", f"{dropped} results (the spool was full)" if dropped else "none")
    )
    if refused:
        health.lines.append(("refused", f"{len(refused)} recently: {refused[0]['reason']}"))


def _check_modem(health: Health, settings: AgentSettings, spool: Spool) -> None:
    if not settings.mobile.enabled:
        health.report["modem"] = "mobile line disabled"
        health.lines.append(("modem", "mobile line disabled"))
        return
    saved = spool.get_state("modem")
    if not saved:
        health.report["modem"] = "not observed yet"
        health.lines.append(("modem", "not observed yet"))
        return
    modem: dict[str, object] = json.loads(saved)
    health.report["modem"] = modem
    state = str(modem.get("state", "unknown"))
    health.lines.append(
        (
            "modem",
            f"{state} (model {modem.get('model', 'unknown')}, "
            f"5G capable: {modem.get('5g_capable', 'unknown')}, "
            f"seen {modem.get('observed_at', '?')})",
        )
    )
    if state.startswith(("failed", "skipped", "no service")):
        health.reasons.append(f"modem: {state}")
