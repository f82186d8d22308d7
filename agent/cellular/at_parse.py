"""Pure parsers of AT responses: text the modem printed to typed values.

No serial port here (that is `at_port.py`) and no choice of what to ask
(that is the backend, `at.py`): each function takes the lines or payload of
one answer and returns what it means, so every response form is tested on
the manuals' and real modems' lines alone.

Response formats are Quectel's (EC2x/EG9x/EM05 and RG50xQ/RM5xxQ/RM520N AT
manuals) for `AT+QENG="servingcell"` and `AT+QNWINFO`, and 3GPP TS 27.007
for the rest (`+COPS`, `+CSQ`, `+CPIN`, `+CREG`/`+CEREG`/`+C5GREG`).
Fields the modem marks as unavailable (`-`, empty) are None, never a number;
a reserved area code (LAC/TAC FFFE, 5GS TAC FFFFFE) is no area. The
serving-cell state of `+QENG` counts: SEARCH (no cell found) and LIMSRV
(camping without registration: emergency calls only) are no service even
when a cell's technology and figures are printed; NOCONN (registered, idle)
and CONNECT (registered, in a call or data session) are service. The SINR
is kept as printed beside its value in dB, with the conversion applied.
ATI's IMEI line, which some modules print, is not kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.cellular.observe import (
    AccessTech,
    ProblemKind,
    RadioObservation,
    Registration,
    SinrConversion,
    sinr_db_of,
)
from agent.cellular.operators import area_code, hex_id, normalise_mcc_mnc, normalise_plmn

# +CME ERROR codes of 3GPP TS 27.007 §9.2.1 that mean "no usable SIM".
_CME_SIM_MISSING = {"10", "SIM NOT INSERTED"}
_CME_SIM_FAILURE = {"13", "SIM FAILURE"}
_CME_SIM_LOCKED = {"11", "12", "SIM PIN REQUIRED", "SIM PUK REQUIRED"}

# <stat> of +CREG/+CEREG/+C5GREG (TS 27.007 §7.2, §10.1.22, §10.1.38).
_REG_STAT = {
    "0": Registration.NOT_REGISTERED,
    "1": Registration.HOME,
    "2": Registration.SEARCHING,
    "3": Registration.DENIED,
    "4": Registration.UNKNOWN,
    "5": Registration.ROAMING,
    "6": Registration.HOME,  # SMS only, home network
    "7": Registration.ROAMING,  # SMS only, roaming
    # Attached for emergency bearer services only: limited service, no service
    # for the probe (as ModemManager's "emergency-services").
    "8": Registration.NOT_REGISTERED,
    "9": Registration.HOME,  # CSFB not preferred, home network
    "10": Registration.ROAMING,  # CSFB not preferred, roaming
    "11": Registration.NOT_REGISTERED,  # attached for access to RLOS only
}
# <AcT> of +COPS (TS 27.007 §7.3).
_COPS_ACT = {
    "0": AccessTech.GSM,
    "1": AccessTech.GSM,  # GSM compact
    "2": AccessTech.UMTS,
    "3": AccessTech.GSM,  # GSM w/EGPRS
    "4": AccessTech.UMTS,  # UTRAN w/HSDPA
    "5": AccessTech.UMTS,  # UTRAN w/HSUPA
    "6": AccessTech.UMTS,  # UTRAN w/HSDPA and HSUPA
    "7": AccessTech.LTE,
    "8": AccessTech.GSM,  # EC-GSM-IoT
    "9": AccessTech.LTE,  # E-UTRAN (NB-S1)
    "10": AccessTech.LTE,  # E-UTRA connected to a 5GCN
    "11": AccessTech.NR5G_SA,  # NR connected to a 5GCN
    "12": AccessTech.NR5G_SA,  # NG-RAN
    "13": AccessTech.NR5G_NSA,  # E-UTRA-NR dual connectivity (EN-DC)
}
# <state> of AT+QENG="servingcell" (Quectel EC2x and RG50xQ/RM5xxQ manuals)
# that mean no service: SEARCH (searching, no suitable cell yet) and LIMSRV
# (camping on a cell without registration). NOCONN and CONNECT are registered.
_QENG_UNREGISTERED = {"SEARCH": Registration.SEARCHING, "LIMSRV": Registration.NOT_REGISTERED}
# Modules documented in Quectel's "EC2x&EG9x&EM05" manual report the LTE
# <SINR> of +QENG as 0..250 in 1/5 dB steps from -20 dB; the 5G modules
# (RG50xQ/RM5xxQ/RM520N manuals) report it in dB.
_FIFTH_DB_SINR_MODELS = ("EC2", "EG2", "EG9", "EM05")


@dataclass(frozen=True)
class AtResponse:
    """One command's answer as text: its information lines and final result code."""

    lines: list[str]  # information lines, echo and blank lines removed
    final: str  # OK, ERROR, +CME ERROR: n, ...

    @property
    def ok(self) -> bool:
        """The command succeeded (final result code OK)."""
        return self.final == "OK"

    def prefixed(self, prefix: str) -> list[str]:
        """The payload of each line starting with `prefix` (e.g. "+COPS:")."""
        return [line[len(prefix) :].strip() for line in self.lines if line.startswith(prefix)]


def sim_problem(cpin: AtResponse) -> tuple[ProblemKind, str] | None:
    """What keeps the SIM from use, from the answer to AT+CPIN? (TS 27.007
    §8.3; +CME ERROR codes of §9.2.1): None when it is READY, else the
    problem's kind and a reason for people."""
    if cpin.ok:
        state = (cpin.prefixed("+CPIN:") or [""])[0].strip()
        if state == "READY":
            return None
        if "PIN" in state or "PUK" in state:
            return ProblemKind.SIM_LOCKED, f"SIM is locked ({state}): enter or remove its PIN"
        return ProblemKind.SIM_MISSING, f"SIM not ready ({state})"
    code = cpin.final.partition(":")[2].strip().upper()
    if code in _CME_SIM_MISSING:
        return ProblemKind.SIM_MISSING, f"no SIM in the modem ({cpin.final})"
    if code in _CME_SIM_LOCKED:
        return ProblemKind.SIM_LOCKED, f"SIM is locked ({cpin.final})"
    if code in _CME_SIM_FAILURE:
        return ProblemKind.SIM_MISSING, f"SIM failure ({cpin.final})"
    return ProblemKind.MODEM_FAILED, f"AT+CPIN? answered {cpin.final}"


def _fields(payload: str) -> list[str]:
    return [part.strip().strip('"').strip() for part in payload.split(",")]


def _int(text: str, base: int = 10) -> int | None:
    try:
        return int(text, base)
    except ValueError:
        return None  # "-", "" or anything else the modem marks as unavailable


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _hex(text: str) -> str:
    return hex_id(text)


@dataclass(frozen=True)
class ModemIdentity:
    """Who the modem says it is (ATI); never its IMEI."""

    manufacturer: str
    model: str
    revision: str


def parse_ati(lines: list[str]) -> ModemIdentity:
    """ATI. Quectel: "Quectel" / model / "Revision: ...". Others print
    "Manufacturer: ..." / "Model: ..." lines; IMEI lines are dropped."""
    keyed = {}
    plain = []
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("manufacturer", "model", "revision"):
            keyed[key.strip().lower()] = value.strip()
        elif not sep:
            plain.append(line.strip())
    manufacturer = keyed.get("manufacturer") or (plain[0] if plain else "")
    model = keyed.get("model") or (plain[1] if len(plain) > 1 else "")
    return ModemIdentity(manufacturer, model, keyed.get("revision", ""))


def parse_cgmm(lines: list[str]) -> str:
    """AT+CGMM: the bare model, or "+CGMM: model" on some firmware."""
    for line in lines:
        if line.startswith("+") and not line.startswith("+CGMM:"):
            continue  # an unsolicited result code (+QIND: ...) read before the answer
        return line.removeprefix("+CGMM:").strip().strip('"')
    return ""


def parse_cops(payload: str) -> tuple[str, AccessTech | None]:
    """+COPS: <mode>[,<format>,<oper>[,<AcT>]]: (numeric operator or "", AcT).
    "+COPS: 0" alone means no operator selected (no service). A numeric
    operator printed without padding ("4524") is normalised ("45204")."""
    parts = _fields(payload)
    if len(parts) < 3:
        return "", AccessTech.NONE
    oper = normalise_plmn(parts[2]) if parts[1] == "2" else ""
    act = _COPS_ACT.get(parts[3]) if len(parts) > 3 else None
    return oper, act


def parse_reg(payload: str, area_bits: int = 16) -> tuple[Registration, str, str]:
    """+CREG/+CEREG/+C5GREG read form: <n>,<stat>[,<lac|tac>,<ci>[,<AcT>...]]:
    (registration, tac hex, cell id hex). `area_bits` is 24 for +C5GREG's
    5GS TAC, whose reserved values differ from a LAC's or EPS TAC's."""
    parts = _fields(payload)
    if len(parts) < 2:
        raise ValueError(f"registration answer without <stat>: {payload!r}")
    stat = _REG_STAT.get(parts[1])
    if stat is None:
        raise ValueError(f"unknown registration <stat> {parts[1]!r}")
    tac = area_code(parts[2], area_bits) if len(parts) > 2 else ""
    cell = _hex(parts[3]) if len(parts) > 3 else ""
    return stat, tac, cell


def read_regs(payloads: list[str], area_bits: int = 16) -> list[tuple[Registration, str, str]]:
    """The read-form answers among `payloads`. An unsolicited result code that
    arrived in between (`+CEREG: <stat>[,<tac>,<ci>,<AcT>]`: no <n>, so one
    field alone or a quoted TAC second) is not the answer and is passed over; a
    registration answer that fits no form at all is garbage (ValueError)."""
    answers = []
    for payload in payloads:
        parts = payload.split(",")
        if len(parts) == 1 or parts[1].strip().startswith('"'):
            continue  # URC: <stat> alone (n=1) or <stat>,"<tac>",... (n=2)
        answers.append(parse_reg(payload, area_bits))
    return answers


def parse_csq(payload: str) -> float | None:
    """+CSQ: <rssi>,<ber> to dBm (TS 27.007 §8.5: 0 → -113 dBm, 2 dBm steps,
    31 → -51 dBm or more, 99 not known)."""
    parts = _fields(payload)
    value = _int(parts[0]) if parts else None
    if value is None or not 0 <= value <= 31:
        return None
    return -113.0 + 2.0 * value


@dataclass(frozen=True)
class Qnwinfo:
    """One line of +QNWINFO: the network of one radio access technology."""

    act: str  # "FDD LTE", "TDD NR5G", "No Service", ...
    mcc_mnc: str
    band: str  # "LTE BAND 3", "NR5G BAND 78"
    channel: int | None


def parse_qnwinfo(lines: list[str]) -> list[Qnwinfo]:
    """+QNWINFO: <Act>,<oper>,<band>,<channel>, one line per RAT (an EN-DC
    connection prints its LTE and NR lines); "+QNWINFO: No Service"."""
    result = []
    for payload in (line[len("+QNWINFO:") :] for line in lines if line.startswith("+QNWINFO:")):
        parts = _fields(payload)
        if len(parts) < 4:
            result.append(Qnwinfo(parts[0] if parts else "", "", "", None))
            continue
        result.append(Qnwinfo(parts[0], parts[1], parts[2], _int(parts[3])))
    return result


def _sinr(prefix: str, raw: float | None, conversion: SinrConversion) -> dict[str, object]:
    """The <prefix>sinr_db, _raw and _conversion fields of one printed SINR."""
    if raw is None:
        return {f"{prefix}sinr_db": None, f"{prefix}sinr_raw": None,
                f"{prefix}sinr_conversion": None}  # fmt: skip
    return {
        f"{prefix}sinr_db": sinr_db_of(raw, conversion),
        f"{prefix}sinr_raw": raw,
        f"{prefix}sinr_conversion": conversion,
    }


def _lte_sinr(raw: float | None, model: str) -> dict[str, object]:
    fifths = model.upper().startswith(_FIFTH_DB_SINR_MODELS)
    return _sinr("", raw, SinrConversion.FIFTHS_MINUS_20 if fifths else SinrConversion.AS_PRINTED)


def _nr_leg_sinr(raw: float | None) -> dict[str, object]:
    # Early RM500Q firmware printed the NSA leg's SINR in tenths of a dB
    # (180 where qmicli read 18.5 dB; libqmi merge request of June 2020);
    # later firmware prints dB. No NR SINR is above 60 dB.
    tenths = raw is not None and abs(raw) > 60
    return _sinr("nr_", raw, SinrConversion.TENTHS if tenths else SinrConversion.AS_PRINTED)


def parse_qeng_servingcell(lines: list[str], model: str) -> RadioObservation:
    """AT+QENG="servingcell" in its forms:

    LTE:      "servingcell",<state>,"LTE",<is_tdd>,<MCC>,<MNC>,<cellID>,<PCID>,<earfcn>,
              <band>,<UL_bw>,<DL_bw>,<TAC>,<RSRP>,<RSRQ>,<RSSI>,<SINR>[,<CQI>,<tx_power>],<srxlev>
    NR5G-NSA: "servingcell",<state> / "LTE",<is_tdd>,<MCC>,... (as above) /
              "NR5G-NSA",<MCC>,<MNC>,<PCID>,<RSRP>,<SINR>,<RSRQ>[,<ARFCN>,<band>,<NR_DL_bw>,<scs>]
    NR5G-SA:  "servingcell",<state>,"NR5G-SA",<duplex>,<MCC>,<MNC>,<cellID>,<PCID>,<TAC>,
              <ARFCN>,<band>,<NR_DL_bw>,<RSRP>,<RSRQ>,<SINR>,<scs>,<srxlev>
    WCDMA:    "servingcell",<state>,"WCDMA",<MCC>,<MNC>,<LAC>,<cellID>,<uarfcn>,<PSC>,<RAC>,
              <RSCP>,<ecio>,...
    GSM:      "servingcell",<state>,"GSM",<MCC>,<MNC>,<LAC>,<cellid>,<bsic>,<arfcn>,...
    no cell:  "servingcell","SEARCH" (or "LIMSRV" with nothing after)

    <state> SEARCH or LIMSRV gives access technology `none` and the
    registration state it means (the camped cell's figures are kept); NOCONN
    and CONNECT leave the registration to +CREG/+CEREG/+C5GREG.
    Raises ValueError on a line that fits none of them.
    """
    records = [_fields(line[len("+QENG:") :]) for line in lines if line.startswith("+QENG:")]
    if not records or records[0][0] != "servingcell" or len(records[0]) < 2:
        raise ValueError(f"no servingcell line in {lines[:3]!r}")
    # Bring the NSA form's separate lines and the single-line forms to one shape:
    # a list of (rat, fields after the rat name).
    head = records[0]
    legs: list[tuple[str, list[str]]] = []
    if len(head) > 2:
        legs.append((head[2], head[3:]))
    legs += [(record[0], record[1:]) for record in records[1:]]
    obs = RadioObservation()
    for rat, f in legs:
        if rat == "LTE":
            if len(f) < 14:
                raise ValueError(f"LTE servingcell line with {len(f)} fields")
            obs = obs.with_(
                access_tech=AccessTech.LTE,
                mcc_mnc=normalise_mcc_mnc(f[1], f[2]),
                cell_id=_hex(f[3]),
                pci=_int(f[4]),
                channel=_int(f[5]),
                band=_int(f[6]),
                tac=area_code(f[9]),
                rsrp_dbm=_float(f[10]),
                rsrq_db=_float(f[11]),
                rssi_dbm=_float(f[12]),
                **_lte_sinr(_float(f[13]), model),
            )
        elif rat == "NR5G-NSA":
            if len(f) < 6:
                raise ValueError(f"NR5G-NSA servingcell line with {len(f)} fields")
            obs = obs.with_(
                access_tech=AccessTech.NR5G_NSA,
                nr_pci=_int(f[2]),
                nr_rsrp_dbm=_float(f[3]),
                **_nr_leg_sinr(_float(f[4])),
                nr_channel=_int(f[6]) if len(f) > 6 else None,
                nr_band=_int(f[7]) if len(f) > 7 else None,
            )
        elif rat == "NR5G-SA":
            if len(f) < 14:
                raise ValueError(f"NR5G-SA servingcell line with {len(f)} fields")
            obs = obs.with_(
                access_tech=AccessTech.NR5G_SA,
                mcc_mnc=normalise_mcc_mnc(f[1], f[2]),
                cell_id=_hex(f[3]),
                pci=_int(f[4]),
                tac=area_code(f[5], 24),
                channel=_int(f[6]),
                band=_int(f[7]),
                rsrp_dbm=_float(f[9]),
                rsrq_db=_float(f[10]),
                **_sinr("", _float(f[11]), SinrConversion.AS_PRINTED),
            )
        elif rat in ("WCDMA", "GSM"):
            if len(f) < 5:
                raise ValueError(f"{rat} servingcell line with {len(f)} fields")
            umts = rat == "WCDMA"
            obs = obs.with_(
                access_tech=AccessTech.UMTS if umts else AccessTech.GSM,
                mcc_mnc=normalise_mcc_mnc(f[0], f[1]),
                tac=area_code(f[2]),  # the LAC
                cell_id=_hex(f[3]),
                channel=_int(f[4]) if umts else (_int(f[5]) if len(f) > 5 else None),
                rscp_dbm=_float(f[7]) if umts and len(f) > 8 else None,
                ecio_db=_float(f[8]) if umts and len(f) > 8 else None,
            )
        else:
            raise ValueError(f"unknown servingcell access technology {rat!r}")
    unregistered = _QENG_UNREGISTERED.get(head[1])
    if unregistered is not None:
        obs = obs.with_(access_tech=AccessTech.NONE, registration_state=str(unregistered))
    return obs


def best_registration(states: list[Registration]) -> Registration:
    """Registered on any domain counts (5GS, EPS, CS); else the most telling state."""
    for wanted in (
        Registration.HOME,
        Registration.ROAMING,
        Registration.SEARCHING,
        Registration.DENIED,
        Registration.NOT_REGISTERED,
    ):
        if wanted in states:
            return wanted
    return Registration.UNKNOWN


def band_number(text: str) -> int | None:
    """The band number at the end of a +QNWINFO band ("NR5G BAND 78" → 78)."""
    match = re.search(r"(\d+)\s*$", text)
    return int(match.group(1)) if match else None
