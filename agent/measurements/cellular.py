"""One observation of the radio by the probe's cellular modem.

Runs the configured backend (agent/cellular/: ModemManager's mmcli or AT
commands over the serial port) once. A modem that answers is an OK result,
also when it has no service (access technology `none`: the availability
shares count that time). A modem that cannot be observed (unplugged,
timing out, talking garbage, without SIM, PIN-locked, ModemManager absent)
is a FAILED result whose reason starts with the problem's kind, e.g.
`sim-missing: no SIM in the modem (+CME ERROR: 10)`, with the reason kind
`modem_unavailable` (`timeout` and `malformed_output` for those problems),
and that still carries what the modem said of itself (model, 5G
capability). No modem configured at all is SKIPPED (`not_configured`). The
next observation opens the port or asks ModemManager again, so the agent
recovers by itself when the modem returns.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime

from agent.cellular.backends import make_backend
from agent.cellular.observe import (
    AccessTech,
    ModemProblem,
    ModemSettings,
    ProblemKind,
    RadioFigures,
    RadioObservation,
)
from agent.measurements.base import (
    MeasurementContext,
    MeasurementResult,
    Method,
    ReasonKind,
    Status,
)

_TOOL_BY_BACKEND = {"at": "at", "modemmanager": "mmcli"}
# The modem's problems, as the kinds every result's reason has; the problem
# itself stays at the start of the reason's text ("sim-missing: ...").
_REASON_KIND_BY_PROBLEM = {
    ProblemKind.NOT_CONFIGURED: ReasonKind.NOT_CONFIGURED,
    ProblemKind.TIMEOUT: ReasonKind.TIMEOUT,
    ProblemKind.GARBAGE: ReasonKind.MALFORMED_OUTPUT,
    ProblemKind.UNPLUGGED: ReasonKind.MODEM_UNAVAILABLE,
    ProblemKind.SIM_MISSING: ReasonKind.MODEM_UNAVAILABLE,
    ProblemKind.SIM_LOCKED: ReasonKind.MODEM_UNAVAILABLE,
    ProblemKind.MODEMMANAGER_ABSENT: ReasonKind.MODEM_UNAVAILABLE,
    ProblemKind.MODEM_FAILED: ReasonKind.MODEM_UNAVAILABLE,
}


@dataclass(frozen=True, kw_only=True)
class CellularParams:
    """Which modem to observe, and the line (interface) it serves."""

    modem: ModemSettings
    interface: str = ""


@dataclass(frozen=True, kw_only=True)
class CellularObservationResult(MeasurementResult, RadioFigures):
    """What the modem saw (proto: wardprobe.v1.CellularObservation)."""

    access_tech: AccessTech | None = None  # None: the modem could not be observed


_RADIO_FIELDS = tuple(f.name for f in fields(RadioFigures))


def params_from(ctx: MeasurementContext) -> CellularParams:
    """Observation params from what the scheduler knows (the mobile line's modem)."""
    return CellularParams(modem=ctx.modem or ModemSettings(), interface=ctx.interface)


def run(params: CellularParams) -> CellularObservationResult:
    """Observe the radio once; never raises for a modem problem (see module doc)."""
    measured_at = datetime.now(UTC)
    backend = make_backend(params.modem)
    status, reason, kind = Status.OK, "", ReasonKind.NONE
    obs: RadioObservation | None
    try:
        obs = backend.observe()
    except ModemProblem as problem:
        obs = problem.partial
        status = Status.SKIPPED if problem.kind == ProblemKind.NOT_CONFIGURED else Status.FAILED
        kind = _REASON_KIND_BY_PROBLEM[problem.kind]
        reason = problem.reason
        if problem.kind is not ProblemKind.GARBAGE:  # its text says "malformed output:" already
            reason = f"{problem.kind}: {reason}"
    copied = {name: getattr(obs, name) for name in _RADIO_FIELDS} if obs is not None else {}
    copied["backend"] = backend.name if backend.name != "auto" else copied.get("backend", "")
    return CellularObservationResult(
        measured_at=measured_at,
        status=status,
        status_reason=reason,
        status_reason_kind=kind,
        method=Method(
            tool=_TOOL_BY_BACKEND.get(backend.name, backend.name),
            tool_version=obs.tool_version if obs is not None else "",
        ),
        interface=params.interface,
        access_tech=obs.access_tech if obs is not None and status == Status.OK else None,
        **copied,
    )
