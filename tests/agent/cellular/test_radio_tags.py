"""How the runtime puts the radio into mobile results and into `status`."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.cellular.observe import AccessTech
from agent.measurements.base import Method, ReasonKind, Status
from agent.measurements.cellular import CellularObservationResult
from agent.runtime import _tag_radio, modem_status
from wardprobe.v1 import results_pb2

NOW = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)


def _obs(
    tech: AccessTech | None, status: Status = Status.OK, **fields: object
) -> CellularObservationResult:
    return CellularObservationResult(
        measured_at=NOW,
        status=status,
        method=Method(tool="at"),
        access_tech=tech,
        **fields,  # type: ignore[arg-type]
    )


def test_handover_during_a_throughput_test_shows_in_start_and_end() -> None:
    message = results_pb2.Result()
    message.throughput.SetInParent()
    start = _obs(AccessTech.LTE, mcc_mnc="45204", operator_name="Viettel")
    end = _obs(AccessTech.NR5G_NSA, mcc_mnc="45204", operator_name="Viettel")
    _tag_radio(message, start, end)
    assert message.throughput.access_tech == results_pb2.ACCESS_TECH_LTE
    assert message.throughput.access_tech_end == results_pb2.ACCESS_TECH_NR5G_NSA
    assert (message.throughput.mcc_mnc, message.throughput.operator_name) == ("45204", "Viettel")


def test_a_failed_observation_leaves_the_radio_unknown() -> None:
    message = results_pb2.Result()
    message.latency.SetInParent()
    timed_out = _obs(
        None, Status.FAILED, status_reason="timeout: ...", status_reason_kind=ReasonKind.TIMEOUT
    )
    _tag_radio(message, timed_out, None)
    assert message.latency.access_tech == results_pb2.ACCESS_TECH_UNSPECIFIED  # NULL in store
    assert message.latency.mcc_mnc == ""
    fixed = results_pb2.Result()
    fixed.ipv6.SetInParent()
    _tag_radio(fixed, _obs(AccessTech.LTE), None)  # no radio fields there: untouched
    assert fixed.ipv6 == results_pb2.Ipv6Result()


def test_modem_status_in_words() -> None:
    ok = modem_status(
        _obs(
            AccessTech.NR5G_NSA,
            mcc_mnc="45202",
            operator_name="VinaPhone",
            band=3,
            rsrp_dbm=-95.0,
            modem_model="RM500Q-GL",
            modem_5g_capable=True,
            backend="at",
        )
    )
    assert ok["state"] == "nr5g_nsa on VinaPhone (45202), band 3, RSRP -95 dBm"
    assert (ok["model"], ok["5g_capable"], ok["backend"]) == ("RM500Q-GL", "yes", "at")
    none = modem_status(_obs(AccessTech.NONE, registration_state="searching"))
    assert none["state"] == "no service (registration searching)"
    failed = modem_status(
        _obs(
            None,
            Status.FAILED,
            status_reason="sim-locked: SIM is locked (SIM PIN)",
            status_reason_kind=ReasonKind.MODEM_UNAVAILABLE,
            modem_model="EC25",
            modem_5g_capable=False,
        )
    )
    assert failed["state"] == "failed: sim-locked: SIM is locked (SIM PIN)"
    assert str(failed["5g_capable"]).startswith("no (4G-only modem")
