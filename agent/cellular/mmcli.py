"""The ModemManager backend: `mmcli` with JSON output (`-J`).

Four calls per observation: `mmcli -m N -J` (state, registration,
operator, access technologies, model and capabilities), `--signal-get`
(RSRP/RSRQ/SNR per technology), `--location-get` (3GPP cell id and TAC)
and `--get-cell-info` (the serving cells' channels, ModemManager 1.20 and
later). mmcli prints "--" for anything it does not know, and ModemManager
reports capabilities as one string per combination ("gsm-umts, lte"), so
both are taken apart here. The modem index comes from `mmcli -L -J` when
it is not configured: ModemManager gives a re-enumerated modem a new index.

Cell info is one string per cell under `modem.generic.cell-info`, as
libmm-glib's mm_cell_info_build_string() writes it ("cell type: lte,
serving: yes, operator id: 20201, tac: 11D1, ci: 19E4A2B, physical ci: 20,
earfcn: 500, rsrp: -104.000000, ..."): a field the modem did not give is
left out, ids are upper-case hex. It carries no band, so the band is read
off the EARFCN / NR-ARFCN (`bands.py`). A ModemManager older than 1.20
refuses the option ("error: no actions specified") and a plugin without
the method answers "operation not supported": the observation is then made
without band and channel, and is not a problem.

Signal figures are read for the technology the modem is on: RSRP, RSRQ
and SNR for LTE and 5G, RSSI for GSM, RSSI, RSCP and Ec/Io for UMTS.
mmcli prints numbers with the locale's decimal separator ("-75,00" under a
comma locale): it is run with LC_ALL=C, and a decimal comma in an output
recorded elsewhere is read as a point all the same. ModemManager gives SNR
in dB: it is kept as printed (`sinr_conversion` as_printed).

Identities in the output (IMEI as `equipment-identifier`, IMSI, ICCID and
`own-numbers` on the SIM object) are never read.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.cellular.bands import lte_band, nr_band
from agent.cellular.observe import (
    AccessTech,
    ModemProblem,
    ProblemKind,
    RadioObservation,
    Registration,
    SinrConversion,
    as_recorded,
)
from agent.cellular.operators import area_code, hex_id, normalise_plmn

BACKEND = "modemmanager"
UNKNOWN = "--"

_REGISTRATION = {
    "home": Registration.HOME,
    "home-sms-only": Registration.HOME,
    "home-csfb-not-preferred": Registration.HOME,
    "roaming": Registration.ROAMING,
    "roaming-sms-only": Registration.ROAMING,
    "roaming-csfb-not-preferred": Registration.ROAMING,
    "searching": Registration.SEARCHING,
    "denied": Registration.DENIED,
    "idle": Registration.NOT_REGISTERED,
    "emergency-services": Registration.NOT_REGISTERED,
    "unknown": Registration.UNKNOWN,
}
_UMTS = {"umts", "hsdpa", "hsupa", "hspa", "hspa-plus"}
_GSM = {"gsm", "gsm-compact", "gprs", "edge"}
_LTE = {"lte", "lte-cat-m", "lte-nb-iot"}


def _text(value: object) -> str:
    text = str(value).strip() if value is not None else ""
    return "" if text == UNKNOWN else text


# A number printed with a decimal comma ("-75,00"): a C library's %f under
# a locale such as de_DE or vi_VN.
_DECIMAL_COMMA = re.compile(r"^([+-]?\d+),(\d+)$")


def _number(value: object) -> float | None:
    text = _DECIMAL_COMMA.sub(r"\1.\2", _text(value))
    try:
        return float(text)
    except ValueError:
        return None


def _sinr(prefix: str, value: float | None) -> dict[str, object]:
    """An SNR as ModemManager gives it (dB) in the <prefix>sinr_* fields."""
    return {
        f"{prefix}sinr_db": value,
        f"{prefix}sinr_raw": value,
        f"{prefix}sinr_conversion": None if value is None else SinrConversion.AS_PRINTED,
    }


def _section(data: Mapping[str, Any], *path: str) -> Mapping[str, Any]:
    for key in path:
        inner = data.get(key)
        if not isinstance(inner, Mapping):
            return {}
        data = inner
    return data


def _words(values: object) -> set[str]:
    """["gsm-umts, lte", "5gnr"] → {"gsm-umts", "lte", "5gnr"}."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list):
        return set()
    return {word.strip() for item in values for word in str(item).split(",") if word.strip()}


def access_tech_of(technologies: object) -> AccessTech:
    """ModemManager's access technologies to ours. EN-DC (NSA) shows as both
    "lte" and "5gnr"; SA as "5gnr" alone."""
    words = _words(technologies)
    if "5gnr" in words:
        return AccessTech.NR5G_NSA if words & _LTE else AccessTech.NR5G_SA
    if words & _LTE:
        return AccessTech.LTE
    if words & _UMTS:
        return AccessTech.UMTS
    if words & _GSM:
        return AccessTech.GSM
    return AccessTech.NONE


def parse_modem(document: Mapping[str, Any]) -> RadioObservation:
    """`mmcli -m N -J` to an observation (no signal, no cell yet).

    Raises ModemProblem for the states in which the modem cannot observe the
    network: failed (SIM missing), locked (PIN/PUK), disabled.
    """
    modem = _section(document, "modem")
    generic = _section(modem, "generic")
    threegpp = _section(modem, "3gpp")
    if not generic:
        raise ModemProblem(ProblemKind.GARBAGE, "malformed output: no modem.generic in mmcli -J")
    supported = _words(generic.get("supported-capabilities")) | _words(
        generic.get("current-capabilities")
    )
    base = RadioObservation(
        backend=BACKEND,
        modem_model=_text(generic.get("model")),
        modem_5g_capable="5gnr" in supported if supported else None,
        tool_version=_text(generic.get("revision")),
    )
    state = _text(generic.get("state"))
    if state == "failed":
        reason = _text(generic.get("state-failed-reason"))
        kind = (
            ProblemKind.SIM_MISSING
            if reason in ("sim-missing", "sim-error")
            else ProblemKind.MODEM_FAILED
        )
        raise ModemProblem(kind, f"ModemManager reports the modem failed ({reason or state})", base)
    if state == "locked":
        lock = _text(generic.get("unlock-required")) or "sim-pin"
        raise ModemProblem(ProblemKind.SIM_LOCKED, f"SIM is locked ({lock})", base)
    if state in ("disabled", "disabling", "enabling", "initializing", "unknown", ""):
        raise ModemProblem(
            ProblemKind.MODEM_FAILED,
            f"modem is {state or 'in an unknown state'} (ModemManager enables it; "
            "`mmcli -m N -e` by hand)",
            base,
        )
    registration = _REGISTRATION.get(
        _text(threegpp.get("registration-state")), Registration.UNKNOWN
    )
    return as_recorded(
        base.with_(
            registration_state=str(registration),
            access_tech=access_tech_of(generic.get("access-technologies")),
            mcc_mnc=normalise_plmn(_text(threegpp.get("operator-code"))),
        )
    )


def apply_signal(obs: RadioObservation, document: Mapping[str, Any]) -> RadioObservation:
    """`mmcli -m N --signal-get -J`: the figures of the technology the modem
    is on (an NSA connection's 5G figures are its NR leg's): LTE and 5G RSRP,
    RSRQ and SNR (and LTE RSSI), GSM RSSI, UMTS RSSI, RSCP and Ec/Io."""
    signal = _section(document, "modem", "signal")
    lte, nr = _section(signal, "lte"), _section(signal, "5g")
    if obs.access_tech == AccessTech.NR5G_SA:
        return obs.with_(
            rsrp_dbm=_number(nr.get("rsrp")),
            rsrq_db=_number(nr.get("rsrq")),
            **_sinr("", _number(nr.get("snr"))),
        )
    if obs.access_tech in (AccessTech.LTE, AccessTech.NR5G_NSA):
        obs = obs.with_(
            rsrp_dbm=_number(lte.get("rsrp")),
            rsrq_db=_number(lte.get("rsrq")),
            rssi_dbm=_number(lte.get("rssi")),
            **_sinr("", _number(lte.get("snr"))),
        )
    if obs.access_tech == AccessTech.NR5G_NSA:
        obs = obs.with_(nr_rsrp_dbm=_number(nr.get("rsrp")), **_sinr("nr_", _number(nr.get("snr"))))
    if obs.access_tech == AccessTech.UMTS:
        umts = _section(signal, "umts")
        obs = obs.with_(
            rssi_dbm=_number(umts.get("rssi")),
            rscp_dbm=_number(umts.get("rscp")),
            ecio_db=_number(umts.get("ecio")),
        )
    if obs.access_tech == AccessTech.GSM:
        obs = obs.with_(rssi_dbm=_number(_section(signal, "gsm").get("rssi")))
    return obs


def signal_refresh_off(document: Mapping[str, Any]) -> bool:
    """True when ModemManager is not polling extended signal (rate 0 or unknown)."""
    rate = _number(_section(document, "modem", "signal", "refresh").get("rate"))
    return rate is None or rate == 0


def apply_location(obs: RadioObservation, document: Mapping[str, Any]) -> RadioObservation:
    """`mmcli -m N --location-get -J`: the 3GPP cell id and TAC (hex); the
    LAC on GSM and UMTS, which have no TAC. A reserved area code is none."""
    cell = _section(document, "modem", "location", "3gpp")
    if obs.access_tech in (AccessTech.GSM, AccessTech.UMTS):
        area = area_code(_text(cell.get("lac")))
    else:
        area = area_code(_text(cell.get("tac")), _area_bits(obs.access_tech))
    return obs.with_(cell_id=hex_id(_text(cell.get("cid"))), tac=area)


def _area_bits(tech: AccessTech) -> int:
    # A 5GS TAC has 24 bits, a LAC and an EPS TAC 16: their reserved values differ.
    return 24 if tech == AccessTech.NR5G_SA else 16


# MMServingCellType (ModemManager 1.22): which serving cell a cell-info entry is.
_PCELL, _PSCELL = 1, 3
# The channel's key in each cell type's string (mm-cell-info-*.c).
_CHANNEL_KEY = {
    "lte": "earfcn",
    "5gnr": "nrarfcn",
    "umts": "uarfcn",
    "tdscdma": "uarfcn",
    "gsm": "arfcn",
}


@dataclass(frozen=True)
class Cell:
    """One cell of `mmcli --get-cell-info`; what the string left out is "" or None."""

    kind: str  # "lte", "5gnr", "umts", "gsm", "tdscdma", "cdma"
    serving: bool
    operator_id: str = ""  # MCC-MNC
    tac: str = ""  # hex; the LAC for GSM and UMTS cells
    cell_id: str = ""  # hex
    pci: int | None = None  # physical cell id (printed in hex)
    channel: int | None = None  # EARFCN / NR-ARFCN / UARFCN / ARFCN
    rsrp_dbm: float | None = None
    rsrq_db: float | None = None
    sinr_db: float | None = None  # 5GNR cells only: LTE cell info has no SINR
    serving_cell_type: int | None = None  # MMServingCellType, when the modem tells


def _int(text: str, base: int = 10) -> int | None:
    try:
        return int(text, base)
    except ValueError:
        return None


# "key: value" pairs of a cell-info string; a value runs to the next ", key:"
# so that a decimal comma ("rsrp: -104,500000") stays inside its value.
_CELL_FIELD = re.compile(r"([a-z][a-z ]*?)\s*:\s*(.*?)\s*(?=,\s*[a-z][a-z ]*:|$)")


def parse_cell(text: str) -> Cell:
    """One cell-info string ("cell type: lte, serving: yes, earfcn: 500, ...")."""
    fields = {key.strip(): value for key, value in _CELL_FIELD.findall(text)}
    kind = fields.get("cell type", "")
    lac_or_tac = fields.get("tac") or fields.get("lac") or ""
    pci = fields.get("physical ci", "")
    return Cell(
        kind=kind,
        serving=fields.get("serving") == "yes",
        operator_id=normalise_plmn(fields.get("operator id", "")),
        tac=area_code(lac_or_tac, 24 if kind == "5gnr" else 16),
        cell_id=hex_id(fields.get("ci", "")),
        pci=_int(pci, 16) if pci else None,
        channel=_int(fields.get(_CHANNEL_KEY.get(kind, "earfcn"), "")),
        rsrp_dbm=_number(fields.get("rsrp")),
        rsrq_db=_number(fields.get("rsrq")),
        sinr_db=_number(fields.get("sinr")),
        serving_cell_type=_int(fields.get("serving cell type", "")),
    )


def parse_cell_info(document: Mapping[str, Any]) -> list[Cell]:
    """`mmcli -m N --get-cell-info -J`: every cell, serving and neighbouring."""
    entries = _section(document, "modem", "generic").get("cell-info")
    if not isinstance(entries, list):
        return []
    return [parse_cell(str(entry)) for entry in entries]


def _serving_cell(cells: list[Cell], kind: str, preferred_type: int) -> Cell | None:
    """The serving cell of one type. With carrier aggregation several are
    serving: the one ModemManager marks primary (PCell, or the NR PSCell of
    an EN-DC connection), else the one with a cell id (QMI gives the id to the
    cell it camps on only), else the first."""
    serving = [cell for cell in cells if cell.serving and cell.kind == kind]
    for cell in serving:
        if cell.serving_cell_type == preferred_type:
            return cell
    for cell in serving:
        if cell.cell_id:
            return cell
    return serving[0] if serving else None


def _or(known: Any, fallback: Any) -> Any:
    """The figure already known (from --signal-get / --location-get), else the cell's."""
    return fallback if known is None or known == "" else known


def apply_cell_info(obs: RadioObservation, document: Mapping[str, Any]) -> RadioObservation:
    """The serving cell's band and channel (and what --signal-get and
    --location-get left unknown), placed as the AT backend places +QENG's:
    LTE and NSA take the LTE anchor's band, channel, cell id and TAC, and an
    NSA connection's NR leg gives nr_band, nr_channel and nr_pci (and the NR
    figures when --signal-get had none); SA takes the NR cell's."""
    cells = parse_cell_info(document)
    tech = obs.access_tech
    if tech in (AccessTech.LTE, AccessTech.NR5G_NSA):
        lte = _serving_cell(cells, "lte", _PCELL)
        if lte is not None:
            obs = obs.with_(
                band=lte_band(lte.channel),
                channel=lte.channel,
                pci=lte.pci,
                cell_id=_or(obs.cell_id, lte.cell_id),
                tac=_or(obs.tac, lte.tac),
                rsrp_dbm=_or(obs.rsrp_dbm, lte.rsrp_dbm),
                rsrq_db=_or(obs.rsrq_db, lte.rsrq_db),
            )
        if tech == AccessTech.NR5G_NSA:
            leg = _serving_cell(cells, "5gnr", _PSCELL)
            if leg is not None:
                obs = obs.with_(
                    nr_band=nr_band(leg.channel),
                    nr_channel=leg.channel,
                    nr_pci=leg.pci,
                    nr_rsrp_dbm=_or(obs.nr_rsrp_dbm, leg.rsrp_dbm),
                )
                if obs.nr_sinr_db is None:
                    obs = obs.with_(**_sinr("nr_", leg.sinr_db))
    elif tech == AccessTech.NR5G_SA:
        nr = _serving_cell(cells, "5gnr", _PCELL)
        if nr is not None:
            obs = obs.with_(
                band=nr_band(nr.channel),
                channel=nr.channel,
                pci=nr.pci,
                cell_id=_or(obs.cell_id, nr.cell_id),
                tac=_or(obs.tac, nr.tac),
                rsrp_dbm=_or(obs.rsrp_dbm, nr.rsrp_dbm),
                rsrq_db=_or(obs.rsrq_db, nr.rsrq_db),
            )
            if obs.sinr_db is None:
                obs = obs.with_(**_sinr("", nr.sinr_db))
    elif tech in (AccessTech.UMTS, AccessTech.GSM):
        # As the AT backend: the UARFCN / ARFCN, no band table for them.
        kinds = ("umts", "tdscdma") if tech == AccessTech.UMTS else ("gsm",)
        legacy = next((c for c in cells if c.serving and c.kind in kinds), None)
        if legacy is not None:
            obs = obs.with_(
                channel=legacy.channel,
                cell_id=_or(obs.cell_id, legacy.cell_id),
                tac=_or(obs.tac, legacy.tac),
            )
    return obs


@dataclass
class MmcliBackend:
    """Observes a modem through ModemManager's command line client."""

    command: str = "mmcli"
    index: int | None = None  # None: the first modem ModemManager lists
    timeout_s: float = 10.0
    name: str = BACKEND

    def _run(self, *args: str) -> Mapping[str, Any]:
        argv = [self.command, *args, "-J"]
        # The C locale: decimal points in the figures and English error
        # messages, which the checks below read.
        env = {**os.environ, "LC_ALL": "C"}
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=self.timeout_s, check=False, env=env
            )
        except FileNotFoundError as err:
            raise ModemProblem(
                ProblemKind.MODEMMANAGER_ABSENT, f"{self.command} is not installed"
            ) from err
        except subprocess.TimeoutExpired as err:
            raise ModemProblem(
                ProblemKind.TIMEOUT, f"{' '.join(argv)} gave no answer in {self.timeout_s:g} s"
            ) from err
        if done.returncode != 0:
            error = (done.stderr or done.stdout).strip().splitlines()
            message = error[-1] if error else f"exit {done.returncode}"
            lowered = message.lower()
            # mmcli's own words (cli/mmcli-common.c); a D-Bus error name
            # ("GDBus.Error:org.freedesktop.ModemManager1.Error...") is not absence.
            if "modemmanager process" in lowered or "couldn't create manager" in lowered:
                raise ModemProblem(
                    ProblemKind.MODEMMANAGER_ABSENT, f"ModemManager is not running ({message})"
                )
            if "couldn't find modem" in lowered or "no modem" in lowered:
                raise ModemProblem(ProblemKind.UNPLUGGED, f"ModemManager: {message}")
            raise ModemProblem(ProblemKind.MODEM_FAILED, f"{' '.join(argv)}: {message}")
        try:
            document = json.loads(done.stdout)
        except json.JSONDecodeError as err:
            raise ModemProblem(
                ProblemKind.GARBAGE,
                f"malformed output: {' '.join(argv)} printed no JSON ({err.msg})",
            ) from err
        if not isinstance(document, Mapping):
            raise ModemProblem(ProblemKind.GARBAGE, f"malformed output: {' '.join(argv)}")
        return document

    def _modem_index(self) -> str:
        listed = self._run("-L").get("modem-list")
        paths = [str(p) for p in listed] if isinstance(listed, list) else []
        indexes = [p.rsplit("/", 1)[-1] for p in paths]
        if not indexes:
            raise ModemProblem(ProblemKind.UNPLUGGED, "ModemManager sees no modem (unplugged?)")
        if self.index is None:
            return indexes[0]
        if str(self.index) not in indexes:
            raise ModemProblem(
                ProblemKind.UNPLUGGED,
                f"ModemManager has no modem {self.index} (it lists {', '.join(indexes)}: "
                "re-enumerated? leave modemmanager_index unset to take the first)",
            )
        return str(self.index)

    def observe(self) -> RadioObservation:
        """One observation (see module doc)."""
        index = self._modem_index()
        obs = parse_modem(self._run("-m", index))
        signal = self._run("-m", index, "--signal-get")
        if signal_refresh_off(signal):
            # Extended signal is polled only once asked for; ask, then read again.
            try:
                self._run("-m", index, "--signal-setup=30")
                signal = self._run("-m", index, "--signal-get")
            except ModemProblem:
                pass  # not allowed or not supported: observe without RSRP
        obs = apply_signal(obs, signal)
        # Location not enabled on this modem: observed without cell id and TAC.
        with contextlib.suppress(ModemProblem):
            obs = apply_location(obs, self._run("-m", index, "--location-get"))
        if obs.access_tech == AccessTech.NONE:
            return obs  # no serving cell to describe
        # ModemManager before 1.20, or a plugin without GetCellInfo: observed
        # without band and channel.
        with contextlib.suppress(ModemProblem):
            obs = apply_cell_info(obs, self._run("-m", index, "--get-cell-info"))
        return obs
