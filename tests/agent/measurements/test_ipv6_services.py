"""IPv6 readiness of the city's services (agent/measurements/ipv6_services.py)
against the emulated city's service hosts (emulation/city_services.py): each
host in its own namespace, the records served by the real reference server's
DNS in the core, checked from the central site (the core) and from an
IPv4-only probe, which cannot decide the IPv6 checks."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.measurements.base import MeasurementContext, ReasonKind, Status
from agent.measurements.ipv6_services import Ipv6ServicesParams, params_from, run
from emulation.city import City, have_netns
from emulation.city_services import SERVICES, CityServices, service_list_csv
from emulation.shaping import IPV4_ONLY
from wardprobe.service_list import CityService, parse_services

NETNS_OK, NETNS_REASON = have_netns()
REPO = Path(__file__).resolve().parents[3]


def test_nothing_listed_is_skipped_not_failed() -> None:
    result = run(Ipv6ServicesParams(services=(), resolver="127.0.0.1"))
    assert (result.status, result.status_reason_kind) == (Status.SKIPPED, ReasonKind.NOT_CONFIGURED)
    assert result.status_reason == "no services listed"


def test_params_take_the_list_and_ca_from_the_config() -> None:
    services = (CityService(name="cantho.gov.vn", department="VP", kind="portal"),)
    ctx = MeasurementContext(
        server_host="198.18.0.1", city_services=services, services_ca_pem=b"PEM",
        dns_resolvers=("198.18.0.53",), dns_port=5353,
    )  # fmt: skip
    params = params_from(ctx)
    assert (params.services, params.ca_pem) == (services, b"PEM")
    assert (params.resolver, params.resolver_port) == ("198.18.0.53", 5353)
    # Without agent.toml's resolvers: the box's own (a citizen's view).
    assert params_from(MeasurementContext(server_host="x")).resolver == ""


# Run inside a namespace: the checks of the emulated list, as JSON.
CHECK = textwrap.dedent(
    """
    import dataclasses, json, pathlib, sys
    from agent.measurements.ipv6_services import Ipv6ServicesParams, run
    from wardprobe.service_list import parse_services
    services = parse_services(pathlib.Path(sys.argv[1]).read_text())
    result = run(Ipv6ServicesParams(services=services, resolver=sys.argv[2],
                                    ca_pem=pathlib.Path(sys.argv[3]).read_bytes(),
                                    timeout_s=1.0))
    print(json.dumps({"status": result.status.value, "ready": result.services_ready,
                      "checks": [dataclasses.asdict(c) for c in result.checks]}))
    """
)


@pytest.fixture(scope="module")
def city_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[City, Path, Path]]:
    if not NETNS_OK:
        pytest.skip(NETNS_REASON)
    workdir = tmp_path_factory.mktemp("city-services")
    with City() as city:
        services = CityServices(workdir)
        services.start(city)
        config = workdir / "reference.toml"
        config.write_text(
            f'listen_addresses = ["{city.core.reference_ipv4}", "{city.core.reference_ipv6}"]\n'
            "iperf3_ports = [5299]\ndns_port = 53\ntcp_echo_port = 7007\n"
            + services.reference_toml(city),
            "utf-8",
        )
        server = city.run_in(
            city.core.netns,
            [sys.executable, "-m", "aggregator", "reference-server", "serve", "--config",
             str(config)],
            cwd=REPO,
        )  # fmt: skip
        _wait_for_dns(city)
        assert server.poll() is None
        listing = workdir / "services.csv"
        listing.write_text(service_list_csv(), "utf-8")
        yield city, listing, services.ca_path


def _wait_for_dns(city: City) -> None:
    code = textwrap.dedent(
        f"""
        import time, dns.message, dns.query
        deadline = time.monotonic() + 30
        while True:
            try:
                dns.query.udp(dns.message.make_query("cantho.wardprobe.test", "SOA"),
                              "{city.core.reference_ipv4}", timeout=0.5)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        """
    )
    done = city.run(city.core.netns, [sys.executable, "-c", code], timeout_s=40.0)
    assert done.returncode == 0, done.stderr


def _checks(city: City, netns: str, listing: Path, ca: Path) -> dict[str, Any]:
    out = city.run(
        netns,
        [sys.executable, "-c", CHECK, str(listing), city.core.reference_ipv4, str(ca)],
        timeout_s=60.0,
    )
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


@pytest.mark.netns
def test_every_state_of_the_emulated_services_from_the_central_site(
    city_services: tuple[City, Path, Path],
) -> None:
    city, listing, ca = city_services
    result = _checks(city, city.core.netns, listing, ca)
    assert result["status"] == "ok"
    checks = {(c["hostname"], c["kind"]): c for c in result["checks"]}
    assert len(checks) == len(SERVICES)
    for service in SERVICES:
        check = checks[(service.name, service.kind)]
        reasons = [check[k] for k in ("aaaa_reason", "web_reason", "ns_reason", "mx_reason")]
        if service.expect:
            assert check["ready"] is False, check
            assert service.expect in reasons, check
        else:
            assert check["ready"] is True, check
            assert reasons == ["", "", "", ""]
    portal = checks[("cantho.wardprobe.test", "portal")]
    assert portal["aaaa_ok"] and portal["web_ok"] and portal["ns_ok"]
    assert portal["mx_ok"] is None  # not a mail domain
    assert portal["connect_ms"] >= 0 and portal["tls_ms"] >= 0
    mail = checks[("cantho.wardprobe.test", "mail_domain")]
    assert (mail["mx_ok"], mail["web_ok"], mail["aaaa_ok"]) == (True, None, None)
    refused = checks[("soyte.cantho.wardprobe.test", "department_site")]
    assert (refused["aaaa_ok"], refused["web_ok"]) == (True, False)
    no_aaaa = checks[("sokhcn.cantho.wardprobe.test", "department_site")]
    assert (no_aaaa["aaaa_ok"], no_aaaa["aaaa"], no_aaaa["web_reason"]) == (False, [], "no_aaaa")
    assert result["ready"] == sum(1 for s in SERVICES if not s.expect)


@pytest.mark.netns
def test_an_ipv4_only_probe_cannot_decide_the_ipv6_checks(
    city_services: tuple[City, Path, Path],
) -> None:
    city, listing, ca = city_services
    probe = city.add_probe("v4probe", IPV4_ONLY)
    result = _checks(city, probe.netns, listing, ca)
    checks = {(c["hostname"], c["kind"]): c for c in result["checks"]}
    portal = checks[("cantho.wardprobe.test", "portal")]
    # The names resolve (over IPv4), but whether the service answers over
    # IPv6 is not the service's failure when the box has no IPv6 at all.
    assert portal["aaaa_ok"] is True
    assert (portal["web_ok"], portal["web_reason"]) == (None, "probe_no_ipv6")
    assert (portal["ns_ok"], portal["ns_reason"]) == (None, "probe_no_ipv6")
    assert portal["ready"] is None
    # A check that fails whatever the vantage point still fails.
    assert checks[("sokhcn.cantho.wardprobe.test", "department_site")]["ready"] is False
    assert result["ready"] == 0


def test_the_emulated_list_is_a_valid_service_list() -> None:
    assert len(parse_services(service_list_csv())) == len(SERVICES)


@pytest.mark.netns
def test_services_check_at_the_central_site_finds_the_same(
    city_services: tuple[City, Path, Path],
) -> None:
    city, listing, ca = city_services
    toml = listing.parent / "aggregator.toml"
    toml.write_text(f'services_list = "{listing}"\nservices_ca_file = "{ca}"\n', "utf-8")
    done = city.run(
        city.core.netns,
        [sys.executable, "-m", "aggregator", "services", "check", "--config", str(toml),
         "--resolver", city.core.reference_ipv4, "--timeout-s", "1", "--format", "json"],
        timeout_s=60.0,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # not every service is ready
    found = {(c["hostname"], c["kind"]): c["ready"] for c in json.loads(done.stdout)}
    assert found == {(s.name, s.kind): not s.expect for s in SERVICES}
