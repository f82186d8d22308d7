"""Operator names by MCC-MNC, from the table in `operators.csv` (data, not code).

The stored name comes from this table, never from the modem's free text
(`+COPS` long names vary by firmware and SIM: "Viettel", "VIETTEL",
"Viettel Mobile", "452 04"). A code not in the table has no name ("").
Vietnam is MCC 452. The codes follow the ITU E.212 assignments as the
public MCC-MNC lists carry them (e.g. the Wikipedia-derived plmn_list.h of
Android's libsamsung-ril); later changes (closures, rebrands, MVNOs) are in
the table's `note` column. An MVNO riding a host network (Wintel, Local,
VNSKY) registers with the host's code and is named as the host.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from types import MappingProxyType

_MCC_MNC = re.compile(r"^\d{5,6}$")


@cache
def operator_table() -> Mapping[str, str]:
    """The table as {mcc_mnc: operator_name}, read once from the package data."""
    text = resources.files("agent.cellular").joinpath("operators.csv").read_text("utf-8")
    table: dict[str, str] = {}
    for row in csv.DictReader(text.splitlines()):
        code = row["mcc_mnc"].strip()
        if not _MCC_MNC.match(code):
            raise ValueError(f"operators.csv: {code!r} is not a 5- or 6-digit MCC-MNC")
        table[code] = row["operator_name"].strip()
    return MappingProxyType(table)


def normalise_mcc_mnc(mcc: str, mnc: str) -> str:
    """MCC and MNC as the modem printed them, to one 5/6-digit code.

    Quectel's `+QENG` prints the MNC as a number ("4" or "04" for Viettel,
    depending on firmware); a two-digit MNC is the rule in MCC 452 and most
    of the world, so a one-digit MNC is padded to two. A three-digit MNC is
    kept as printed. Returns "" when either part is not digits.
    """
    mcc, mnc = mcc.strip().strip('"'), mnc.strip().strip('"')
    if not (mcc.isdigit() and mnc.isdigit()) or len(mcc) != 3 or not 1 <= len(mnc) <= 3:
        return ""
    return mcc + mnc.zfill(2)


def operator_name(mcc_mnc: str) -> str:
    """The operator's name for a code, "" when the table does not know it."""
    return operator_table().get(mcc_mnc, "")


def hex_id(text: str) -> str:
    """A cell id or TAC as one spelling: upper-case hex without leading zeros
    (+CEREG quotes "01A2D001", +QENG prints 1A2D001, mmcli "01A2D001").
    "" for anything that is not hex ("-", "--", "FFFFFFF" stays as it is)."""
    text = text.strip().strip('"')
    if not re.fullmatch(r"[0-9A-Fa-f]+", text):
        return ""
    return text.upper().lstrip("0") or "0"
