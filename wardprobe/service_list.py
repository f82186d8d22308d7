"""The city's service list: the names whose IPv6 readiness is checked
(agent/measurements/ipv6_services.py), as a file the operator edits.

A CSV file with the header `name,department,kind`, one service a line:

    name,department,kind
    cantho.gov.vn,Văn phòng UBND thành phố,portal
    dichvucong.cantho.gov.vn,Văn phòng UBND thành phố,public_service
    sotttt.cantho.gov.vn,Sở Khoa học và Công nghệ,department_site
    cantho.gov.vn,Văn phòng UBND thành phố,mail_domain

Blank lines and lines starting with `#` are ignored. The file is validated
once, as it is loaded: a name that is not a host name (letters, digits and
hyphens, at least two labels), an unknown kind, an empty department or a
(name, kind) given twice is refused with its line number. The same name may
be listed twice with different kinds: a domain is both the portal and the
mail domain.

Shared by the agent (the list arrives in its config) and the aggregator
(which reads the file): nothing here imports either.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

# What each kind of service is checked for: a web service answers on 443; a
# mail domain's mail exchangers need AAAA (the domain itself need not have one).
KINDS: tuple[str, ...] = ("portal", "public_service", "department_site", "mail_domain")
WEB_KINDS = frozenset({"portal", "public_service", "department_site"})
HEADER: tuple[str, ...] = ("name", "department", "kind")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class ServiceListError(ValueError):
    """A service list that cannot be used; the message names the line."""


@dataclass(frozen=True)
class CityService:
    """One service of the city: its DNS name, who runs it and what it is."""

    name: str  # lower case, without a trailing dot
    department: str
    kind: str  # one of KINDS

    @property
    def is_web(self) -> bool:
        """Whether it is a web service (checked on port 443)."""
        return self.kind in WEB_KINDS


def host_name(text: str) -> str:
    """`text` as a host name (lower case, no trailing dot); ValueError saying why not."""
    name = text.strip().lower().removesuffix(".")
    if not name:
        raise ValueError("the name is empty")
    if len(name) > 253:
        raise ValueError(f"{text!r} is longer than 253 characters")
    labels = name.split(".")
    if len(labels) < 2:
        raise ValueError(f"{text!r} is not a full domain name (one label)")
    bad = [label for label in labels if not _LABEL.match(label)]
    if bad:
        raise ValueError(
            f"{text!r} is not a host name: label {bad[0]!r} (letters, digits, inner hyphens)"
        )
    return name


def parse_services(text: str, source: str = "service list") -> tuple[CityService, ...]:
    """The services of a list's text; ServiceListError naming `source` and the line."""
    services: list[CityService] = []
    seen: dict[tuple[str, str], int] = {}
    header_seen = False
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        cells = tuple(cell.strip() for cell in row)
        if not header_seen:
            if tuple(c.lower() for c in cells) != HEADER:
                raise ServiceListError(
                    f"{source}, line {number}: the header must be {','.join(HEADER)}, "
                    f"got {','.join(cells)}"
                )
            header_seen = True
            continue
        where = f"{source}, line {number}"
        if len(cells) != len(HEADER):
            raise ServiceListError(f"{where}: {len(cells)} fields, expected {len(HEADER)}")
        raw_name, department, kind = cells
        try:
            name = host_name(raw_name)
        except ValueError as exc:
            raise ServiceListError(f"{where}: {exc}") from None
        if not department:
            raise ServiceListError(f"{where}: {name} has no department")
        if kind not in KINDS:
            raise ServiceListError(
                f"{where}: unknown kind {kind!r} (expected one of {', '.join(KINDS)})"
            )
        if (name, kind) in seen:
            raise ServiceListError(
                f"{where}: {name} ({kind}) is already listed on line {seen[(name, kind)]}"
            )
        seen[(name, kind)] = number
        services.append(CityService(name=name, department=department, kind=kind))
    if not header_seen:
        raise ServiceListError(f"{source}: empty (no {','.join(HEADER)} header)")
    return tuple(services)


def load_services(path: Path) -> tuple[CityService, ...]:
    """The services of the list file at `path` (ServiceListError when unusable)."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ServiceListError(f"{path}: cannot be read ({exc})") from None
    return parse_services(text, str(path))
