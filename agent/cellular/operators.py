"""Operator names by MCC-MNC, from the table in `operators.csv` (data, not code).

The stored name comes from this table, never from the modem's free text
(`+COPS` long names vary by firmware and SIM: "Viettel", "VIETTEL",
"Viettel Mobile", "452 04"). A code not in the table has no name ("").
Vietnam is MCC 452. The codes follow the ITU E.212 assignments as the
public MCC-MNC lists carry them (e.g. the Wikipedia-derived plmn_list.h of
Android's libsamsung-ril); later changes (closures, rebrands, MVNOs) are in
the table's `note` column. An MVNO riding a host network (Wintel, Local,
VNSKY) registers with the host's code and is named as the host.

The probes are in Vietnam: a network of another country (MCC other than
452; a border network, or a foreign SIM's home) keeps its code but is never
named, and a registration on it is recorded as roaming (`observe.py`).
Codes that name no operator at all are dropped: MCC 000 (what tools print
for a blanked or redacted code), 001 (ITU-T E.212 test networks: lab
callboxes) and 999 (E.212 internal / private networks).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from types import MappingProxyType

_MCC_MNC = re.compile(r"^\d{5,6}$")
VIETNAM_MCC = "452"
_NOT_OPERATOR_MCCS = frozenset({"000", "001", "999"})
# Area codes that mean "no valid area": 0000 and FFFE are reserved LAC and
# TAC values (3GPP TS 23.003 §4.1, §19.4.2.3), FFFE marking a deleted
# location or tracking area (TS 24.008 §10.5.1.3, TS 24.301), FFFFFE a
# deleted 5GS one and all zeros one read from a USIM with none (TS 24.501);
# all ones is what modules print with no area at all. 16-bit LACs and EPS
# TACs, 24-bit 5GS TACs.
_RESERVED_AREA = {
    16: frozenset({0x0000, 0xFFFE, 0xFFFF}),
    24: frozenset({0x000000, 0xFFFFFE, 0xFFFFFF}),
}


@cache
def operator_table() -> Mapping[str, str]:
    """The table as {mcc_mnc: operator_name}, read once from the package data."""
    text = resources.files("agent.cellular").joinpath("operators.csv").read_text("utf-8")
    table: dict[str, str] = {}
    for row in csv.DictReader(text.splitlines()):
        code = row["mcc_mnc"].strip()
        if not _MCC_MNC.match(code):
            raise ValueError(f"operators.csv: {code!r} is not a 5- or 6-digit MCC-MNC")
        if not code.startswith(VIETNAM_MCC):
            raise ValueError(f"operators.csv: {code} is not a Vietnamese network (MCC 452)")
        table[code] = row["operator_name"].strip()
    return MappingProxyType(table)


def normalise_mcc_mnc(mcc: str, mnc: str) -> str:
    """MCC and MNC as the modem printed them, to one 5/6-digit code.

    Quectel's `+QENG` prints both as numbers ("452","4" or "452","04" for
    Viettel, "1","1" for the test network 001-01, depending on firmware): the
    MCC is padded to three digits, and a one-digit MNC to two (two digits is
    the rule in MCC 452 and most of the world). A three-digit MNC is kept as
    printed. Returns "" when either part is not 1-3 digits.
    """
    mcc, mnc = mcc.strip().strip('"'), mnc.strip().strip('"')
    if not (mcc.isdigit() and mnc.isdigit()) or not (len(mcc) <= 3 and len(mnc) <= 3):
        return ""
    return mcc.zfill(3) + mnc.zfill(2)


def normalise_plmn(text: str) -> str:
    """A whole network code as printed (+COPS numeric, mmcli's operator-code,
    cell info's operator id) to one 5/6-digit code: "45204", "452 04" and
    "4524" (a one-digit MNC printed unpadded) are all "45204". "" for text
    that is no code."""
    text = text.strip().strip('"').strip()
    parts = text.split()
    if len(parts) == 2:
        return normalise_mcc_mnc(parts[0], parts[1])
    if not text.isdigit():
        return ""
    if len(text) == 4:
        return normalise_mcc_mnc(text[:3], text[3:])
    return text if _MCC_MNC.match(text) else ""


def operator_code(mcc_mnc: str) -> str:
    """The code when it can be an operator's, "" when it cannot: not 5/6 digits,
    or MCC 000 (blanked), 001 (test network) or 999 (private network)."""
    if not _MCC_MNC.match(mcc_mnc) or mcc_mnc[:3] in _NOT_OPERATOR_MCCS:
        return ""
    return mcc_mnc


def is_foreign(mcc_mnc: str) -> bool:
    """True for a network code of another country than Vietnam."""
    return bool(mcc_mnc) and not mcc_mnc.startswith(VIETNAM_MCC)


def operator_name(mcc_mnc: str) -> str:
    """The operator's name for a code, "" when the table does not know it
    (every network outside Vietnam among them)."""
    return operator_table().get(mcc_mnc, "")


def area_code(text: str, bits: int = 16) -> str:
    """A location or tracking area code as `hex_id` spells it, "" when missing
    or reserved: 0000/FFFE/FFFF for a 16-bit LAC or EPS TAC, 000000/FFFFFE/
    FFFFFF for a 24-bit 5GS TAC (a modem without a valid area prints those)."""
    code = hex_id(text)
    if code and int(code, 16) in _RESERVED_AREA[bits]:
        return ""
    return code


def hex_id(text: str) -> str:
    """A cell id or TAC as one spelling: upper-case hex without leading zeros
    (+CEREG quotes "01A2D001", +QENG prints 1A2D001, mmcli "01A2D001").
    "" for anything that is not hex ("-", "--", "FFFFFFF" stays as it is)."""
    text = text.strip().strip('"')
    if not re.fullmatch(r"[0-9A-Fa-f]+", text):
        return ""
    return text.upper().lstrip("0") or "0"
