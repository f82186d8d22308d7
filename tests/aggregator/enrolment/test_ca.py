"""The private CA: files on disk, the server certificate, signing probe CSRs."""

from __future__ import annotations

import hashlib
import ipaddress
import math
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aggregator.enrolment.ca import (
    CaAlreadyExists,
    CaNotInitialised,
    CertificateAuthority,
    CsrRejected,
    ca_pin,
    init_ca,
    is_server_name,
    server_credentials,
    server_names_of,
)

SERVER_NAMES = ["aggregator.cantho.internal", "localhost", "127.0.0.1", "::1"]


def _csr(
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey,
    common_name: str = "box-ninh-kieu",
) -> bytes:
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, algorithm)
    )
    return csr.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "aggregator"


@pytest.fixture
def authority(state_dir: Path) -> CertificateAuthority:
    return init_ca(state_dir, SERVER_NAMES)


def test_init_writes_keys_private_and_certificates_readable(
    state_dir: Path, authority: CertificateAuthority
) -> None:
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in state_dir.iterdir()}
    assert modes == {"ca.key": 0o600, "ca.crt": 0o644, "server.key": 0o600, "server.crt": 0o644}


def test_ca_is_a_leaf_only_ca_and_signed_the_server_certificate(
    state_dir: Path, authority: CertificateAuthority
) -> None:
    ca_cert = x509.load_pem_x509_certificate((state_dir / "ca.crt").read_bytes())
    constraints = ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is True and constraints.path_length == 0

    server_cert = x509.load_pem_x509_certificate((state_dir / "server.crt").read_bytes())
    server_cert.verify_directly_issued_by(ca_cert)
    assert server_names_of(server_cert) == SERVER_NAMES
    san = server_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("::1") in san.get_values_for_type(x509.IPAddress)
    usage = server_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    key_usage = server_cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert key_usage.critical and key_usage.value.digital_signature
    assert not (key_usage.value.key_encipherment or key_usage.value.key_cert_sign)


def test_pin_is_sha256_of_the_certificate_der(
    state_dir: Path, authority: CertificateAuthority
) -> None:
    # Computed independently, the way an operator would: PEM -> DER -> sha256.
    der = ssl.PEM_cert_to_DER_cert((state_dir / "ca.crt").read_text())
    expected = hashlib.sha256(der).hexdigest()
    assert authority.pin == expected
    assert ca_pin((state_dir / "ca.crt").read_bytes()) == expected
    assert CertificateAuthority.load(state_dir).pin == expected


def test_init_refuses_to_replace_a_ca_unless_forced(
    state_dir: Path, authority: CertificateAuthority
) -> None:
    with pytest.raises(CaAlreadyExists):
        init_ca(state_dir, SERVER_NAMES)
    assert CertificateAuthority.load(state_dir).pin == authority.pin

    replaced = init_ca(state_dir, SERVER_NAMES, force=True)
    assert replaced.pin != authority.pin
    assert CertificateAuthority.load(state_dir).pin == replaced.pin


def test_init_without_server_names_writes_nothing(state_dir: Path) -> None:
    with pytest.raises(ValueError):
        init_ca(state_dir, [])
    assert not state_dir.exists()


@pytest.mark.parametrize(
    "name",
    ["localhost", "aggregator.cantho.internal", "agg-1.example.", "127.0.0.1", "::1", "[fd00::1]"],
)
def test_dns_names_and_ip_addresses_are_server_names(name: str) -> None:
    assert is_server_name(name)


@pytest.mark.parametrize(
    "name", ["bad name!", "a_b.example", "-a.example", "a-.example", "a..b", "x" * 64, "", "."]
)
def test_other_text_is_no_server_name(name: str) -> None:
    assert not is_server_name(name)


def test_init_with_a_bad_server_name_writes_nothing(state_dir: Path) -> None:
    with pytest.raises(ValueError, match="not a DNS name"):
        init_ca(state_dir, ["localhost", "bad name!"])
    assert not state_dir.exists()


def test_probe_certificate_names_the_probe_not_what_the_csr_asked(
    authority: CertificateAuthority,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    issued = authority.sign_probe_csr(_csr(key, common_name="aggregator-admin"), "wp-0123456789")
    cert = x509.load_pem_x509_certificate(issued.certificate_pem)

    cert.verify_directly_issued_by(authority.certificate)
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [
        "wp-0123456789"
    ]
    assert format(cert.serial_number, "x") == issued.serial_hex
    assert cert.not_valid_after_utc == issued.not_after
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert key_usage.critical and key_usage.value.digital_signature
    # an EC key needs no key encipherment; no probe may sign certificates
    assert not (key_usage.value.key_encipherment or key_usage.value.key_cert_sign)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_each_probe_certificate_gets_its_own_serial(authority: CertificateAuthority) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    serials = {authority.sign_probe_csr(_csr(key), f"wp-{i:010d}").serial_hex for i in range(5)}
    assert len(serials) == 5


def test_rsa_2048_is_accepted(authority: CertificateAuthority) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issued = authority.sign_probe_csr(_csr(key), "wp-rsa0000001")
    x509.load_pem_x509_certificate(issued.certificate_pem).verify_directly_issued_by(
        authority.certificate
    )


def test_weak_rsa_key_is_rejected(authority: CertificateAuthority) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(CsrRejected, match="1024 bits is too weak") as caught:
        authority.sign_probe_csr(_csr(key), "wp-0000000001")
    assert caught.value.field == "csr_pem"


@pytest.mark.parametrize("exponent", [3, 17, 257])
def test_rsa_keys_whose_public_exponent_is_not_65537_are_rejected(
    authority: CertificateAuthority, exponent: int
) -> None:
    # cryptography generates only 3 and 65537; build the others from primes.
    if exponent == 3:
        key = rsa.generate_private_key(public_exponent=3, key_size=2048)
    else:
        key = _rsa_key_with_exponent(exponent)
    with pytest.raises(CsrRejected) as caught:
        authority.sign_probe_csr(_csr(key), "wp-0000000001")
    assert str(caught.value) == (
        f"RSA public exponent {exponent} is not accepted; use 65537 (or EC P-256)"
    )


def _rsa_key_with_exponent(exponent: int) -> rsa.RSAPrivateKey:
    """A 2048-bit RSA key with public exponent `exponent` (from two random primes)."""
    while True:
        base = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_numbers()
        p, q = base.p, base.q
        phi = (p - 1) * (q - 1)
        if math.gcd(exponent, phi) != 1:
            continue
        d = pow(exponent, -1, phi)
        return rsa.RSAPrivateNumbers(
            p=p,
            q=q,
            d=d,
            dmp1=rsa.rsa_crt_dmp1(d, p),
            dmq1=rsa.rsa_crt_dmq1(d, q),
            iqmp=rsa.rsa_crt_iqmp(p, q),
            public_numbers=rsa.RSAPublicNumbers(exponent, p * q),
        ).private_key()


def test_unsupported_key_types_are_rejected(authority: CertificateAuthority) -> None:
    with pytest.raises(CsrRejected, match="Ed25519"):
        authority.sign_probe_csr(_csr(ed25519.Ed25519PrivateKey.generate()), "wp-0000000001")
    with pytest.raises(CsrRejected, match="secp521r1"):
        authority.sign_probe_csr(_csr(ec.generate_private_key(ec.SECP521R1())), "wp-0000000001")


def test_garbage_and_empty_csr_are_rejected(authority: CertificateAuthority) -> None:
    with pytest.raises(CsrRejected) as garbage:
        authority.sign_probe_csr(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n", "wp-1")
    # the parser's own words stay in the cause, for the server log
    assert str(garbage.value) == "the CSR is not a PEM-encoded PKCS#10 request"
    assert garbage.value.__cause__ is not None
    with pytest.raises(CsrRejected, match="no CSR"):
        authority.sign_probe_csr(b"", "wp-1")


def test_csr_with_a_forged_signature_is_rejected(authority: CertificateAuthority) -> None:
    # The CSR carries one key but is signed by another: the sender does not
    # hold the key it wants certified.
    holder = ec.generate_private_key(ec.SECP256R1())
    victim = ec.generate_private_key(ec.SECP256R1())
    good = x509.load_pem_x509_csr(_csr(holder))
    forged_der = bytearray(good.public_bytes(serialization.Encoding.DER))
    holder_spki = holder.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    victim_spki = victim.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    start = bytes(forged_der).index(holder_spki)
    forged_der[start : start + len(holder_spki)] = victim_spki
    forged_pem = x509.load_der_x509_csr(bytes(forged_der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(CsrRejected, match="signature does not match"):
        authority.sign_probe_csr(forged_pem, "wp-0000000001")


def test_reissued_server_certificate_keeps_the_ca(
    state_dir: Path, authority: CertificateAuthority
) -> None:
    cert = authority.issue_server_certificate(state_dir, ["aggregator.cantho.internal"])
    assert server_names_of(cert) == ["aggregator.cantho.internal"]
    cert.verify_directly_issued_by(CertificateAuthority.load(state_dir).certificate)
    assert CertificateAuthority.load(state_dir).pin == authority.pin


def test_missing_ca_is_reported(tmp_path: Path) -> None:
    with pytest.raises(CaNotInitialised):
        CertificateAuthority.load(tmp_path)
    with pytest.raises(CaNotInitialised):
        server_credentials(tmp_path, require_client_auth=True)
