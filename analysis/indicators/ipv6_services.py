"""ipv6_service_ready_share: the share of the city's own services that are
fully IPv6-ready, overall and per department, against 100 % (235/KH-UBND:
all the city's IT application systems move to IPv6; 87/KH-UBND: the
departments' information systems, by 2030).

Where each part is defined:
- what a check finds: agent/measurements/ipv6_services.py (AAAA; the web
  service over IPv6 with a verified TLS handshake; the zone's name servers
  over IPv6; the mail exchangers' AAAA), run by probes and at the central
  site;
- each service's verdict over the period: the view ipv6_service_readiness,
  its last decided check from whichever site made it (a check the site could
  not decide, e.g. from a box without IPv6, does not count; a box without NTP
  counts, its check timed by its arrival at the aggregator);
- the shares, here and only here: ready services over decided services, per
  department and for the whole list. The list is the city's own, not a
  sample: there is no interval and no floor of probes; services never decided
  in the period are counted apart, not as not ready.

`service_readiness` gives the city's share for the comparison with APNIC's and
the provinces' figures (analysis/indicators/ipv6_reference.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb

from analysis.indicators.context import Context
from analysis.indicators.figures import INSUFFICIENT, Figure, targets
from analysis.indicators.ipv6_reference import ServiceReadiness
from analysis.periods import Period, set_period

NAME = "ipv6_service_ready_share"
METHOD = (
    "each service of the city's list checked from the probes and the central site: AAAA "
    "records, TCP to port 443 over IPv6 and a verified TLS handshake to the same name, every "
    "authoritative name server with AAAA answering over IPv6, every mail exchanger with AAAA; "
    "a service counts as ready when its last decided check passed all that apply to its kind"
)
NOTE = "services of the city's list fully IPv6-ready (AAAA, web over IPv6 with TLS, NS, MX)"
APART = "services without a decided check in the period"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ServiceIpv6:
    """One service of the city's list and its last decided check in the
    period (None: not decided, or the check does not apply to its kind)."""

    hostname: str
    kind: str
    department: str
    checks: int  # its checks in the period, decided or not
    ready: bool | None
    checked_at: datetime | None  # its last decided check
    checked_by: str | None  # the probe (or central site) that made it
    aaaa_ok: bool | None
    web_ok: bool | None
    ns_ok: bool | None
    mx_ok: bool | None
    why_not: str | None  # the reasons of its checks that did not pass, "; "-free


def services(
    con: duckdb.DuckDBPyConnection, period: Period | None, synthetic: bool = False
) -> list[ServiceIpv6]:
    """Every service checked in the period (None: all time), by department and
    name, from the view ipv6_service_readiness (install_views must have run)."""
    set_period(con, period, synthetic)
    rows = con.execute(
        "select hostname, kind, department, checks, ready, epoch_us(checked_at), checked_by, "
        "aaaa_ok, web_ok, ns_ok, mx_ok, why_not from ipv6_service_readiness"
    ).fetchall()
    return [
        ServiceIpv6(
            hostname=str(r[0]),
            kind=str(r[1]),
            department=str(r[2]),
            checks=int(r[3]),
            ready=r[4],
            # As microseconds since the epoch: a timestamptz would need pytz to be fetched.
            checked_at=None if r[5] is None else _EPOCH + timedelta(microseconds=int(r[5])),
            checked_by=r[6],
            aaaa_ok=r[7],
            web_ok=r[8],
            ns_ok=r[9],
            mx_ok=r[10],
            why_not=r[11],
        )
        for r in rows
    ]


def service_readiness(
    con: duckdb.DuckDBPyConnection, period: Period | None, synthetic: bool = False
) -> ServiceReadiness:
    """The city's share (0..1) of its services fully IPv6-ready in the period
    (None when none was decided), for the provinces' comparison."""
    return readiness_of(services(con, period, synthetic))


def readiness_of(service_list: list[ServiceIpv6]) -> ServiceReadiness:
    """ServiceReadiness of services already read."""
    decided = [s for s in service_list if s.ready is not None]
    share = sum(1 for s in decided if s.ready) / len(decided) if decided else None
    return ServiceReadiness(ready_share=share, services=len(decided), method=METHOD)


def figures(ctx: Context, service_list: list[ServiceIpv6]) -> list[Figure]:
    """ipv6_service_ready_share for the city's whole list and per department
    (group "department=..."); none when a ward was asked for: the services
    are the city's, not a ward's."""
    if ctx.calc.ward is not None or not service_list:
        return []
    groups: dict[str | None, list[ServiceIpv6]] = defaultdict(list)
    for service in service_list:
        groups[None].append(service)
        groups[f"department={service.department}"].append(service)
    out = []
    for group in sorted(groups, key=lambda g: (g is not None, g or "")):
        members = groups[group]
        decided = [s for s in members if s.ready is not None]
        ready = sum(1 for s in decided if s.ready)
        share = ready / len(decided) if decided else None
        vantage = {s.checked_by for s in decided if s.checked_by}
        note = f"{NOTE}: {ready} of {len(decided)}; {APART}: {len(members) - len(decided)}"
        out.append(
            Figure(
                indicator=NAME,
                scope="city",
                group=group,
                unit="share",
                value=share,
                ci_low=None,
                ci_high=None,
                interval="none",  # the whole list, not a sample of it
                mean=share,
                median=None,
                probes=len(vantage),  # the sites whose checks decided
                tests=len(decided),  # the services decided
                probe_limited=0,
                status="ok" if decided else INSUFFICIENT,
                targets=targets(NAME, share),
                note=note,
            )
        )
    return out
