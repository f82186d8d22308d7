"""The reference server's DNS as the emulated city's authoritative server:
a zone's SOA and NS at its apex, MX records, NXDOMAIN with the SOA for an
unknown name in the zone, and an empty answer with the SOA for a type a name
lacks (what the services' checks read)."""

from __future__ import annotations

import dns.message
import dns.rcode
import dns.rdatatype
import pytest
from pydantic import ValidationError

from aggregator.reference.server import DnsName, DnsZone, dns_response

ZONE = DnsZone(name="cantho.wardprobe.test", name_servers=("ns1.cantho.wardprobe.test",))
NAMES = (
    DnsName.model_validate(
        {"name": "cantho.wardprobe.test", "ipv4": ["198.18.1.2"], "ipv6": ["fd00:5752:1::2"],
         "mx": ["mail.cantho.wardprobe.test"]}
    ),
    DnsName.model_validate({"name": "sokhcn.cantho.wardprobe.test", "ipv4": ["198.18.2.2"]}),
    DnsName.model_validate({"name": "mail-only.wardprobe.test", "mx": ["mx.wardprobe.test"]}),
)  # fmt: skip


def _ask(name: str, rdtype: str) -> dns.message.Message:
    wire = dns_response(dns.message.make_query(name, rdtype).to_wire(), NAMES, 60, (ZONE,))
    assert wire is not None
    return dns.message.from_wire(wire)


def _records(answer: dns.message.Message) -> list[str]:
    return [r.to_text() for rrset in answer.answer for r in rrset]


def test_the_apex_has_its_soa_ns_and_mx() -> None:
    assert _records(_ask("cantho.wardprobe.test", "NS")) == ["ns1.cantho.wardprobe.test."]
    (soa,) = _records(_ask("cantho.wardprobe.test", "SOA"))
    assert soa.startswith("ns1.cantho.wardprobe.test. hostmaster.cantho.wardprobe.test. 1 ")
    assert _records(_ask("cantho.wardprobe.test", "MX")) == ["10 mail.cantho.wardprobe.test."]
    assert _records(_ask("cantho.wardprobe.test", "AAAA")) == ["fd00:5752:1::2"]


def test_inside_the_zone_a_missing_type_or_name_carries_the_soa() -> None:
    empty = _ask("sokhcn.cantho.wardprobe.test", "AAAA")
    assert (empty.rcode(), empty.answer) == (dns.rcode.NOERROR, [])
    assert [r.name.to_text() for r in empty.authority] == ["cantho.wardprobe.test."]
    assert empty.authority[0].rdtype == dns.rdatatype.SOA
    missing = _ask("gone.cantho.wardprobe.test", "SOA")
    assert missing.rcode() == dns.rcode.NXDOMAIN
    assert missing.authority[0].rdtype == dns.rdatatype.SOA
    # Outside every zone: NXDOMAIN alone, as before zones existed.
    outside = _ask("gone.example.test", "A")
    assert (outside.rcode(), outside.authority) == (dns.rcode.NXDOMAIN, [])


def test_a_name_needs_an_address_or_an_mx() -> None:
    assert _records(_ask("mail-only.wardprobe.test", "MX")) == ["10 mx.wardprobe.test."]
    with pytest.raises(ValidationError, match="no address or MX"):
        DnsName(name="nothing.wardprobe.test")
    with pytest.raises(ValidationError):
        DnsZone(name="cantho.wardprobe.test", name_servers=())
