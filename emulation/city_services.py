"""The emulated city's own services, for the IPv6-readiness checks
(agent/measurements/ipv6_services.py): web hosts in namespaces of their own,
their records served by the reference server's DNS, in every state a check
can find.

    with City() as city:
        services = CityServices(workdir)
        services.start(city)  # host namespaces, TLS servers, the drop rule
        reference = ReferenceServiceConfig(dns_names=services.dns_names(city),
                                           dns_zones=services.dns_zones())

The hosts (each a namespace joined to the core like a probe's, on
198.18.0.0/15 and fd00::/8 only):

- `portal`, dual-stack: the city portal, the public-service portal and Ninh
  Kiều's site answer TLS on 443 over both families (one certificate naming
  the three); the city's mail exchanger's AAAA points here too;
- `sotc`, dual-stack: answers TLS, but its certificate names another host
  (`tls_failed:hostname_mismatch`);
- `soyte`, dual-stack: answers TLS over IPv4 only, so its AAAA is refused
  (`tcp_refused`);
- `soxd`, dual-stack: port 443 over IPv6 is dropped by the host's firewall
  (`tcp_timeout`);
- `sokhcn`, IPv4-only: no AAAA (`no_aaaa`); its mail domain's exchanger
  has only an A record (`mx_no_aaaa`).

Two zones: `cantho.wardprobe.test`, whose name server is the reference
server itself (AAAA, answers over IPv6), and `ninhkieu.wardprobe.test`,
whose name server has only an A record (`ns_no_ipv6`).

The certificates come from a test CA made here (`ca.pem`); the checks are
pointed at it as a city would point them at its own or a public CA.
`python -m emulation.city_services serve-tls ADDRESS... --cert C --key K`
is the TLS server a host runs.
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from aggregator.enrolment.ca import self_signed_ca, server_certificate
from aggregator.reference.server import DnsName, DnsZone
from emulation.city import City, ProbeHost
from emulation.routed import _nft
from emulation.shaping import LinkProfile
from wardprobe.files import write_private, write_public

ZONE = "cantho.wardprobe.test"
WARD_ZONE = "ninhkieu.wardprobe.test"
CITY_NS = f"ns1.{ZONE}"
WARD_NS = f"ns1.{WARD_ZONE}"
WEB_PORT = 443
CA_NAME = "wardprobe emulated city CA"  # the services' own CA, not the aggregator's
CERT_VALID_DAYS = 30
_REPO = Path(__file__).resolve().parents[1]  # where `python -m emulation...` finds its package
# The service hosts' lines: fast enough never to be what a check measures.
_LINE = LinkProfile(name="service-host", down_mbps=1000.0, up_mbps=1000.0)
_LINE_V4 = LinkProfile(name="service-host-v4", down_mbps=1000.0, up_mbps=1000.0, ipv6=False)


@dataclass(frozen=True)
class EmulatedService:
    """One entry of the emulated city's service list, and the host behind it."""

    name: str
    department: str
    kind: str
    host: str  # the key of HOSTS
    expect: str  # the check it should fail ("" = fully ready), for the demo's reader


@dataclass(frozen=True)
class ServiceHostSpec:
    """A host of the city's services: its line and how it answers on 443."""

    ipv6: bool
    tls_names: tuple[str, ...]  # the names its certificate carries
    listen_ipv6: bool = True  # False: TLS over IPv4 only (its AAAA is refused)
    drop_ipv6: bool = False  # its firewall drops 443 over IPv6 (a timeout)


HOSTS: dict[str, ServiceHostSpec] = {
    "portal": ServiceHostSpec(
        ipv6=True, tls_names=(ZONE, f"dichvucong.{ZONE}", WARD_ZONE, f"mail.{ZONE}")
    ),
    "sotc": ServiceHostSpec(ipv6=True, tls_names=(f"www.{ZONE}",)),
    "soyte": ServiceHostSpec(ipv6=True, tls_names=(f"soyte.{ZONE}",), listen_ipv6=False),
    "soxd": ServiceHostSpec(ipv6=True, tls_names=(f"soxd.{ZONE}",), drop_ipv6=True),
    "sokhcn": ServiceHostSpec(ipv6=False, tls_names=(f"sokhcn.{ZONE}",)),
}

_CITY_OFFICE = "Văn phòng UBND thành phố"
SERVICES: tuple[EmulatedService, ...] = (
    EmulatedService(ZONE, _CITY_OFFICE, "portal", "portal", ""),
    EmulatedService(f"dichvucong.{ZONE}", _CITY_OFFICE, "public_service", "portal", ""),
    EmulatedService(ZONE, _CITY_OFFICE, "mail_domain", "portal", ""),
    EmulatedService(f"sotc.{ZONE}", "Sở Tài chính", "department_site", "sotc",
                    "tls_failed:hostname_mismatch"),
    EmulatedService(f"soyte.{ZONE}", "Sở Y tế", "department_site", "soyte", "tcp_refused"),
    EmulatedService(f"soxd.{ZONE}", "Sở Xây dựng", "department_site", "soxd", "tcp_timeout"),
    EmulatedService(f"sokhcn.{ZONE}", "Sở Khoa học và Công nghệ", "department_site", "sokhcn",
                    "no_aaaa"),
    EmulatedService(f"sokhcn.{ZONE}", "Sở Khoa học và Công nghệ", "mail_domain", "sokhcn",
                    f"mx_no_aaaa:mx.sokhcn.{ZONE}"),
    EmulatedService(WARD_ZONE, "UBND phường Ninh Kiều", "department_site", "portal",
                    f"ns_no_ipv6:{WARD_NS}"),
)  # fmt: skip


def service_list_csv() -> str:
    """The emulated city's service list, as the operator's file holds it."""
    lines = ["# The emulated city's services (emulation/city_services.py).", "name,department,kind"]
    lines += [f"{s.name},{s.department},{s.kind}" for s in SERVICES]
    return "\n".join(lines) + "\n"


class CityServices:
    """The service hosts of one city, their certificates under `workdir`."""

    def __init__(self, workdir: Path) -> None:
        """Nothing is made until `start()`."""
        self.workdir = workdir
        self.hosts: dict[str, ProbeHost] = {}
        self._servers: list[subprocess.Popen[bytes]] = []

    @property
    def ca_path(self) -> Path:
        """The test CA's certificate (PEM), the bundle the checks verify against."""
        return self.workdir / "ca.pem"

    def write_list(self) -> Path:
        """The service list file (services.csv under `workdir`), written."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        listing = self.workdir / "services.csv"
        listing.write_text(service_list_csv(), "utf-8")
        return listing

    def start(self, city: City) -> None:
        """Make each host's namespace, its certificate and its TLS server."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
        ca_key, ca_cert = self_signed_ca(ca_name, CERT_VALID_DAYS)
        self.ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        for name, spec in HOSTS.items():
            # A host is joined to the core as a probe's box is (City.add_probe,
            # not a routed city's home network): one link, its own addresses.
            host = City.add_probe(city, f"svc-{name}", _LINE if spec.ipv6 else _LINE_V4)
            self.hosts[name] = host
            cert, key = self.workdir / f"{name}.crt", self.workdir / f"{name}.key"
            leaf_key, leaf = server_certificate(
                ca_key, ca_cert, list(spec.tls_names), CERT_VALID_DAYS
            )
            write_public(cert, leaf.public_bytes(serialization.Encoding.PEM))
            write_private(
                key,
                leaf_key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
            )
            listen = [host.ipv4]
            if spec.ipv6 and spec.listen_ipv6 and host.ipv6:
                listen.append(host.ipv6)
            if spec.drop_ipv6:
                _nft(
                    host.netns,
                    "table inet svc {\n chain input {\n  type filter hook input priority 0;\n"
                    f"  ip6 daddr {host.ipv6} tcp dport {WEB_PORT} drop\n }}\n}}\n",
                )
            argv = [sys.executable, "-m", "emulation.city_services", "serve-tls", *listen,
                    "--cert", str(cert), "--key", str(key)]  # fmt: skip
            self._servers.append(city.run_in(host.netns, argv, cwd=_REPO))
        for name, host in self.hosts.items():
            _wait_listening(city, host.netns, host.ipv4)
            if HOSTS[name].ipv6 and HOSTS[name].listen_ipv6 and host.ipv6:
                _wait_listening(city, host.netns, host.ipv6)

    def dns_names(self, city: City) -> tuple[DnsName, ...]:
        """The records of the services' names, for the reference server's DNS."""

        def address_of(host: str) -> dict[str, tuple[str, ...]]:
            made = self.hosts[host]
            return {"ipv4": (made.ipv4,), "ipv6": (made.ipv6,) if made.ipv6 else ()}

        portal = address_of("portal")
        names = [
            DnsName.model_validate({"name": ZONE, **portal, "mx": (f"mail.{ZONE}",)}),
            DnsName.model_validate({"name": f"dichvucong.{ZONE}", **portal}),
            DnsName.model_validate({"name": f"mail.{ZONE}", **portal}),
            DnsName.model_validate({"name": WARD_ZONE, **portal}),
            DnsName.model_validate({"name": f"sotc.{ZONE}", **address_of("sotc")}),
            DnsName.model_validate({"name": f"soyte.{ZONE}", **address_of("soyte")}),
            DnsName.model_validate({"name": f"soxd.{ZONE}", **address_of("soxd")}),
            DnsName.model_validate(
                {"name": f"sokhcn.{ZONE}", **address_of("sokhcn"), "mx": (f"mx.sokhcn.{ZONE}",)}
            ),
            DnsName.model_validate({"name": f"mx.sokhcn.{ZONE}", **address_of("sokhcn")}),
            # The city's name server is the reference server; the ward's has IPv4 only.
            DnsName.model_validate(
                {
                    "name": CITY_NS,
                    "ipv4": (city.core.reference_ipv4,),
                    "ipv6": (city.core.reference_ipv6,),
                }
            ),
            DnsName.model_validate({"name": WARD_NS, "ipv4": (city.core.reference_ipv4,)}),
        ]
        return tuple(names)

    @staticmethod
    def dns_zones() -> tuple[DnsZone, ...]:
        """The two zones the reference server's DNS is authoritative for."""
        return (
            DnsZone(name=ZONE, name_servers=(CITY_NS,)),
            DnsZone(name=WARD_ZONE, name_servers=(WARD_NS,)),
        )

    def reference_toml(self, city: City) -> str:
        """The reference server's TOML keys serving these records."""
        lines: list[str] = []
        for zone in self.dns_zones():
            servers = ", ".join(f'"{s}"' for s in zone.name_servers)
            lines += ["[[dns_zones]]", f'name = "{zone.name}"', f"name_servers = [{servers}]"]
        for entry in self.dns_names(city):
            lines += ["[[dns_names]]", f'name = "{entry.name}"']
            for key in ("ipv4", "ipv6", "mx"):
                values = getattr(entry, key)
                if values:
                    lines.append(f"{key} = [{', '.join(repr(str(v)) for v in values)}]")
        return "\n".join(lines).replace("'", '"') + "\n"


def _wait_listening(city: City, netns: str, address: str, timeout_s: float = 15.0) -> None:
    """Until something accepts on address:443 inside `netns`."""
    family = "-6" if ":" in address else "-4"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        listening = city.run(netns, ["ss", "-Htln", family, f"sport = :{WEB_PORT}"]).stdout
        if address in listening:
            return
        time.sleep(0.05)
    raise RuntimeError(f"no TLS server on {address}:{WEB_PORT} in {netns}")


def serve_tls(addresses: list[str], cert: Path, key: Path, port: int = WEB_PORT) -> None:
    """Accept TLS on each address until SIGTERM: handshake, then close."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    stop = threading.Event()
    listeners: list[socket.socket] = []
    for address in addresses:
        family = socket.AF_INET6 if ":" in str(ipaddress.ip_address(address)) else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((address, port))
        listener.listen(16)
        listeners.append(listener)

    def accept(listener: socket.socket) -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(5.0)
                try:
                    with context.wrap_socket(connection, server_side=True):
                        pass
                except (ssl.SSLError, OSError):
                    continue  # a client that refused our certificate: the point of `sotc`

    threads = [threading.Thread(target=accept, args=(s,), daemon=True) for s in listeners]
    for thread in threads:
        thread.start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    for listener in listeners:
        listener.close()


def main(argv: list[str] | None = None) -> int:
    """`serve-tls ADDRESS... --cert C --key K`: one host's TLS server."""
    parser = argparse.ArgumentParser(prog="python -m emulation.city_services")
    commands = parser.add_subparsers(dest="command", required=True)
    tls = commands.add_parser("serve-tls", help="answer TLS on port 443 of each address")
    tls.add_argument("addresses", nargs="+")
    tls.add_argument("--cert", type=Path, required=True)
    tls.add_argument("--key", type=Path, required=True)
    tls.add_argument("--port", type=int, default=WEB_PORT)
    args = parser.parse_args(argv)
    serve_tls(args.addresses, args.cert, args.key, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
