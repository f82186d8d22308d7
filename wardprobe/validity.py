"""When a throughput transfer counts: the one statement of the rule.

The probe applies it to every result it makes (agent/measurements/
throughput.py and speedtest.py turn an OK result that breaks it into FAILED
with a reason starting "invalid transfer:"), and the aggregator's
indicators apply the same figures to what is stored (`THROUGHPUT_RULE_SQL`
is the SQL form of `check_throughput`, over the store's column names), so
a probe and the indicators never disagree about what counts.

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


def check_throughput(transfer: Transfer) -> Verdict:
    """Apply the rule (see the module docstring) to one transfer."""
    if transfer.bytes_transferred is None or transfer.measured_s is None:
        return Verdict(False, f"{INVALID_PREFIX}{transfer.tool} reported no bytes or duration")
    if transfer.bytes_transferred < MIN_BYTES_TRANSFERRED:
        return Verdict(
            False,
            f"{INVALID_PREFIX}{transfer.bytes_transferred} bytes moved, "
            f"fewer than {MIN_BYTES_TRANSFERRED}",
        )
    if transfer.measured_s < MIN_MEASURED_S:
        return Verdict(
            False,
            f"{INVALID_PREFIX}measured over {transfer.measured_s:.2f} s, "
            f"shorter than {MIN_MEASURED_S:g} s",
        )
    if transfer.measured_s > MAX_MEASURED_S:
        return Verdict(
            False,
            f"{INVALID_PREFIX}measured over {transfer.measured_s:.1f} s, "
            f"longer than {MAX_MEASURED_S:g} s",
        )
    if transfer.mbps is not None:
        moved_mbps = transfer.bytes_transferred * 8 / transfer.measured_s / 1e6
        if abs(moved_mbps - transfer.mbps) > RATE_TOLERANCE * transfer.mbps:
            return Verdict(
                False,
                f"{INVALID_PREFIX}{transfer.mbps:.2f} Mb/s reported but "
                f"{moved_mbps:.2f} Mb/s moved",
            )
    return Verdict(True)


# The same rule over the store's `throughput` columns (NULL when valid), for the
# aggregator's views: `select ..., {THROUGHPUT_RULE_SQL} as invalid_because from throughput t`.
THROUGHPUT_RULE_SQL: Final = f"""case
    when t.bytes_transferred is null or t.measured_s is null then 'figures missing'
    when t.bytes_transferred < {MIN_BYTES_TRANSFERRED} then 'too little data'
    when t.measured_s < {MIN_MEASURED_S} then 'too short'
    when t.measured_s > {MAX_MEASURED_S} then 'too long'
    when t.mbps is not null
        and abs(t.bytes_transferred * 8.0 / t.measured_s / 1e6 - t.mbps) > {RATE_TOLERANCE} * t.mbps
        then 'rate disagrees with bytes/duration'
end"""
