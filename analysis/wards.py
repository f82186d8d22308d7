"""The ward registry: the official GSO codes of Cần Thơ's communes and wards.

The codes come from the `vietnam-provinces` package (the July 2025
reorganisation: Cần Thơ is province 92 with 103 units). Nothing here is
copied by hand; a newer package release is the way to update them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from vietnam_provinces import Ward

CAN_THO_PROVINCE_CODE = 92


@dataclass(frozen=True)
class WardInfo:
    ward_code: int
    name: str  # Vietnamese, with the division type: "Phường Ninh Kiều"
    division_type: str  # "phường" or "xã"


@cache
def can_tho_wards() -> dict[int, WardInfo]:
    """All communes and wards of Cần Thơ, by GSO code (read once, then cached:
    the package's data does not change while a process runs)."""
    return {
        int(ward.code): WardInfo(int(ward.code), ward.name, ward.division_type.value)
        for ward in Ward.iter_all()
        if int(ward.province_code) == CAN_THO_PROVINCE_CODE
    }


def ward_name(ward_code: int) -> str | None:
    """The ward's official name, or None when the code is not a Cần Thơ ward."""
    info = can_tho_wards().get(ward_code)
    return info.name if info else None


def data_version() -> str:
    """Which release of the administrative-units data the registry comes from."""
    import vietnam_provinces

    return str(vietnam_provinces.__data_version__)
