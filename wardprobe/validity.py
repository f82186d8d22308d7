"""When a throughput transfer counts: the one statement of the rule.

The probe applies it to every result it makes (agent/measurements/
throughput/run.py and speedtest.py turn an OK result that breaks it into
FAILED, reason kind `invalid_transfer`, text "invalid transfer: ..."), and the aggregator's
indicators apply it to what is stored: `exclusion_reason` is the rule for a
stored test (the transfer rule after the status, the clock and the
cross-traffic), and `throughput_exclusion_sql` its SQL form, which
analysis/views/throughput_checked.sql takes from here when the views are
created (so the daily rollups, built from that view, apply it too). Both
forms sit side by side in this module and tests/wardprobe/test_validity.py
runs them on rows at every threshold, so a probe and the indicators never
disagree about what counts.

The rule, and why it differs from M-Lab's (NDT keeps a transfer if it moved
at least 8 KB and lasted 9 to 60 s):

- at least 8,192 bytes moved: M-Lab's floor, for the same reason (less is
  a connection that never really carried data);
- measured over at least 1.8 s (a 2-second test, with 10 % for the tools'
  own timers: libiperf's 2-s test reports 1.9998 s): NDT's 10-second test includes TCP slow start,
  so a short one is mostly ramp-up and M-Lab wants nearly the full 10 s.
  iperf3 drops its warm-up (`omit`) and measures only the steady state
  after it, and speedtest-cli fetches a fixed set of files and stops early
  on a fast line, so a floor of 9 s would throw away every correct
  speedtest-cli download above a few hundred Mb/s. Two seconds of steady
  state is 20 scheduler ticks of libiperf's and many round trips even at
  50 ms; a transfer much shorter than that was cut off;
- measured over at most 130 s: our longest configurable test is 120 s
  (agent.toml `throughput_duration_s`); a transfer that claims more was not
  timed by the clock it says it was (M-Lab's 60 s ceiling for NDT);
- the rate must agree with bytes × 8 / seconds within 5 %: the figure
  reported is the figure moved (a tool that mixes up its sums fails here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

INVALID_PREFIX: Final = "invalid transfer: "
MIN_BYTES_TRANSFERRED: Final = 8192
MIN_MEASURED_S: Final = 1.8
MAX_MEASURED_S: Final = 130.0
RATE_TOLERANCE: Final = 0.05
# Other traffic on the line before a throughput test, bytes per second (received
# and sent together), above which the test is not valid: SamKnows' default. The
# probe defers the test above it (agent/preflight.py); the indicators exclude a
# stored result that saw more.
MAX_CROSS_TRAFFIC_BYTES_PER_S: Final = 25_000.0


@dataclass(frozen=True, kw_only=True)
class Transfer:
    """The figures of one direction of one throughput test."""

    tool: str  # "iperf3" or "speedtest-cli"
    bytes_transferred: int | None
    measured_s: float | None
    mbps: float | None = None  # None: the rate check is skipped (not yet computed)


@dataclass(frozen=True)
class Verdict:
    """Whether the transfer counts, and if not why (reason starts INVALID_PREFIX)."""

    valid: bool
    reason: str = ""


# What the indicators call each way a stored test fails (throughput_checked's
# excluded_because, the report's exclusions); a failed status reads "status <it>".
CLOCK_NOT_SYNCHRONISED: Final = "clock not synchronised"
CROSS_TRAFFIC: Final = "cross-traffic"
FIGURES_MISSING: Final = "figures missing"
TOO_LITTLE_DATA: Final = "too little data"
TOO_SHORT: Final = "too short"
TOO_LONG: Final = "too long"
RATE_DISAGREES: Final = "rate disagrees with bytes/duration"


def _transfer_fault(transfer: Transfer) -> tuple[str, str] | None:
    """The first part of the rule the transfer breaks: (its label, what the
    probe's reason says after INVALID_PREFIX); None when it counts."""
    size, seconds = transfer.bytes_transferred, transfer.measured_s
    if size is None or seconds is None:
        return FIGURES_MISSING, f"{transfer.tool} reported no bytes or duration"
    if size < MIN_BYTES_TRANSFERRED:
        return TOO_LITTLE_DATA, f"{size} bytes moved, fewer than {MIN_BYTES_TRANSFERRED}"
    if seconds < MIN_MEASURED_S:
        return TOO_SHORT, f"measured over {seconds:.2f} s, shorter than {MIN_MEASURED_S:g} s"
    if seconds > MAX_MEASURED_S:
        return TOO_LONG, f"measured over {seconds:.1f} s, longer than {MAX_MEASURED_S:g} s"
    if transfer.mbps is not None:
        moved_mbps = size * 8 / seconds / 1e6
        if abs(moved_mbps - transfer.mbps) > RATE_TOLERANCE * transfer.mbps:
            return (
                RATE_DISAGREES,
                f"{transfer.mbps:.2f} Mb/s reported but {moved_mbps:.2f} Mb/s moved",
            )
    return None


def check_throughput(transfer: Transfer) -> Verdict:
    """Apply the rule (see the module docstring) to one transfer."""
    fault = _transfer_fault(transfer)
    return Verdict(True) if fault is None else Verdict(False, INVALID_PREFIX + fault[1])


def cross_traffic_flagged(cross_traffic_bytes_per_s: float | None) -> bool:
    """Whether the other traffic seen before a test makes it invalid (not
    measured, None, does not)."""
    return (
        cross_traffic_bytes_per_s is not None
        and cross_traffic_bytes_per_s > MAX_CROSS_TRAFFIC_BYTES_PER_S
    )


@dataclass(frozen=True, kw_only=True)
class StoredThroughput:
    """The columns of one stored throughput test that the rule reads."""

    status: str  # "ok", "failed", ...
    clock_sync: str  # "synchronised", ...
    cross_traffic_bytes_per_s: float | None
    bytes_transferred: int | None
    measured_s: float | None
    mbps: float | None


def exclusion_reason(test: StoredThroughput) -> str | None:
    """Why a stored throughput test does not count for the indicators (None: it
    counts). `throughput_exclusion_sql` is the same rule in SQL."""
    if test.status != "ok":
        return f"status {test.status}"
    if test.clock_sync != "synchronised":
        return CLOCK_NOT_SYNCHRONISED
    if cross_traffic_flagged(test.cross_traffic_bytes_per_s):
        return CROSS_TRAFFIC
    if test.mbps is None:
        # a stored test without its rate has nothing to count
        return FIGURES_MISSING
    fault = _transfer_fault(
        Transfer(
            tool="",
            bytes_transferred=test.bytes_transferred,
            measured_s=test.measured_s,
            mbps=test.mbps,
        )
    )
    return None if fault is None else fault[0]


def _sql_number(value: float) -> str:
    # repr is the shortest text that reads back as the same double; the cast
    # keeps DuckDB from taking "1.8" as a DECIMAL
    return f"{float(value)!r}::double"


def throughput_exclusion_sql(alias: str = "t") -> str:
    """`exclusion_reason` as a SQL CASE over the store's `throughput` columns of
    the table called `alias`: NULL for a test that counts, else the same label."""
    t = alias
    return f"""case
        when {t}.status <> 'ok' then 'status ' || {t}.status
        when {t}.clock_sync <> 'synchronised' then '{CLOCK_NOT_SYNCHRONISED}'
        -- not measured (NULL) is not flagged
        when {t}.cross_traffic_bytes_per_s > {_sql_number(MAX_CROSS_TRAFFIC_BYTES_PER_S)}
            then '{CROSS_TRAFFIC}'
        when {t}.mbps is null or {t}.bytes_transferred is null or {t}.measured_s is null
            then '{FIGURES_MISSING}'
        when {t}.bytes_transferred < {int(MIN_BYTES_TRANSFERRED)} then '{TOO_LITTLE_DATA}'
        when {t}.measured_s < {_sql_number(MIN_MEASURED_S)} then '{TOO_SHORT}'
        when {t}.measured_s > {_sql_number(MAX_MEASURED_S)} then '{TOO_LONG}'
        -- bytes -> megabits per second, to compare with the reported rate
        when abs({t}.bytes_transferred::double * 8 / {t}.measured_s / 1e6 - {t}.mbps)
            > {_sql_number(RATE_TOLERANCE)} * {t}.mbps then '{RATE_DISAGREES}'
    end"""
