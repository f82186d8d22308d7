"""The aggregator's private certificate authority.

One CA per deployment, kept in the aggregator's state directory:

    ca.key      CA private key (EC P-256), mode 0600
    ca.crt      CA certificate; its SHA-256 (the "pin") is baked into every
                bootstrap token so a probe can check it before trusting it
    server.key  TLS key of the aggregator's gRPC ports, mode 0600
    server.crt  server certificate, signed by the CA, SAN = the server names

Probes send a PKCS#10 CSR at enrolment; the CA signs it with the probe id as
the subject common name (whatever the CSR asked for) and client-auth usage
only. EC P-256 throughout: gRPC's BoringSSL, Python's ssl module and small
ARM boards all handle it well.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from wardprobe.files import write_private, write_public

CA_KEY_FILE = "ca.key"
CA_CERT_FILE = "ca.crt"
SERVER_KEY_FILE = "server.key"
SERVER_CERT_FILE = "server.crt"

DEFAULT_CA_VALID_DAYS = 20 * 365
DEFAULT_SERVER_VALID_DAYS = 5 * 365
# There is no renewal RPC yet; a probe keeps its certificate until it is
# revoked or re-enrolled, so it lives about as long as the box in the field.
DEFAULT_PROBE_VALID_DAYS = 10 * 365
# Probe boxes may boot with a clock that is a little behind before NTP syncs.
CLOCK_SKEW_ALLOWANCE = timedelta(minutes=10)

CA_COMMON_NAME = "wardprobe enrolment CA"
ORGANISATION = "wardprobe"

# Keys a probe may present: what BoringSSL and the probe boxes handle, and
# strong enough for a certificate that lives for years.
ACCEPTED_EC_CURVES: tuple[type[ec.EllipticCurve], ...] = (ec.SECP256R1, ec.SECP384R1)
MIN_RSA_KEY_BITS = 2048
# The one public exponent accepted: small ones (3) open RSA to the low-exponent
# attacks, odd large ones are what a crafted key looks like; every normal
# generator (OpenSSL, cryptography, the agent) uses 65537.
RSA_PUBLIC_EXPONENT = 65537


class CaError(Exception):
    """Base of the errors raised by this module."""


class CaAlreadyExists(CaError):
    """init_ca found an existing CA and was not told to replace it."""


class CaNotInitialised(CaError):
    """The state directory holds no CA (run `ca init` first)."""


class CsrRejected(CaError):
    """A probe's CSR cannot be signed; the enrolment service answers
    INVALID_ARGUMENT with a field violation naming `field`."""

    def __init__(self, description: str, field: str = "csr_pem") -> None:
        super().__init__(description)
        self.description = description
        self.field = field


@dataclass(frozen=True)
class IssuedCertificate:
    """A probe certificate just signed by the CA."""

    certificate_pem: bytes
    serial_hex: str  # lower-case hex, as stored in the registry
    not_after: datetime  # timezone-aware UTC


def ca_pin(ca_cert: x509.Certificate | bytes) -> str:
    """Hex SHA-256 of the CA certificate's DER encoding (accepts the
    certificate or its PEM)."""
    cert = x509.load_pem_x509_certificate(ca_cert) if isinstance(ca_cert, bytes) else ca_cert
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def serial_hex(serial_number: int) -> str:
    """The form in which certificate serial numbers are stored and compared."""
    return format(serial_number, "x")


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


# A host name label (RFC 1123): letters, digits and inner hyphens, 1-63 of them.
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def is_server_name(name: str) -> bool:
    """Whether `name` can be a server certificate's name: an IP address
    (IPv6 in brackets too) or a DNS host name (labels of letters, digits
    and inner hyphens; 253 characters at most; one trailing dot allowed)."""
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True
    except ValueError:
        pass
    host = name.removesuffix(".")
    return 0 < len(host) <= 253 and all(_LABEL.match(label) for label in host.split("."))


def _subject_alternative_names(server_names: list[str]) -> list[x509.GeneralName]:
    """DNS names and IP addresses for the server certificate's SAN."""
    names: list[x509.GeneralName] = []
    for raw in server_names:
        name = raw.strip()
        if not name:
            raise ValueError("empty server name")
        if not is_server_name(name):
            raise ValueError(f"server name {name!r} is not a DNS name or an IP address")
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name.strip("[]"))))
        except ValueError:
            names.append(x509.DNSName(name))
    if not names:
        raise ValueError("at least one server name (DNS name or IP address) is needed")
    return names


def server_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    server_names: list[str],
    valid_days: int,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new key and a TLS server certificate for `server_names` (DNS names
    or IP addresses, the first also its common name), signed by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    san = _subject_alternative_names(server_names)
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
                    x509.NameAttribute(NameOID.COMMON_NAME, server_names[0].strip()),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW_ALLOWANCE)
        .not_valid_after(now + timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(key_encipherment=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _check_probe_public_key(csr: x509.CertificateSigningRequest) -> None:
    """Refuse key types gRPC's TLS cannot use or that are too weak to last."""
    try:
        public_key = csr.public_key()
    except (ValueError, TypeError) as exc:
        # The library's text stays in the cause (the server log), not the answer.
        raise CsrRejected("the CSR's public key cannot be read") from exc
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if not isinstance(public_key.curve, ACCEPTED_EC_CURVES):
            raise CsrRejected(
                f"EC curve {public_key.curve.name} is not accepted; use P-256 (secp256r1)"
            )
        return
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_KEY_BITS:
            raise CsrRejected(
                f"RSA key of {public_key.key_size} bits is too weak; "
                f"at least {MIN_RSA_KEY_BITS} bits (or EC P-256) is needed"
            )
        exponent = public_key.public_numbers().e
        if exponent != RSA_PUBLIC_EXPONENT:
            raise CsrRejected(
                f"RSA public exponent {exponent} is not accepted; "
                f"use {RSA_PUBLIC_EXPONENT} (or EC P-256)"
            )
        return
    raise CsrRejected(
        f"key type {type(public_key).__name__} is not accepted; use EC P-256 (secp256r1)"
    )


def validate_probe_csr(csr_pem: bytes) -> x509.CertificateSigningRequest:
    """Parse a probe's CSR and check its self-signature and key.

    Raises CsrRejected with a description a technician can act on, in this
    module's words only (a parser's text stays in the exception's cause).
    """
    if not csr_pem:
        raise CsrRejected("no CSR was sent")
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise CsrRejected("the CSR is not a PEM-encoded PKCS#10 request") from exc
    _check_probe_public_key(csr)
    try:
        signature_ok = csr.is_signature_valid
    except (ValueError, InvalidSignature, TypeError) as exc:
        raise CsrRejected("the CSR's signature cannot be checked") from exc
    if not signature_ok:
        # Proves the sender holds the private key of the key it wants certified.
        raise CsrRejected("the CSR's signature does not match its public key")
    return csr


class CertificateAuthority:
    """The CA loaded from the aggregator's state directory."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> None:
        self._key = key
        self.certificate = certificate

    @classmethod
    def load(cls, state_dir: Path) -> CertificateAuthority:
        """Load ca.key and ca.crt from `state_dir`."""
        key_path = state_dir / CA_KEY_FILE
        cert_path = state_dir / CA_CERT_FILE
        if not key_path.exists() or not cert_path.exists():
            raise CaNotInitialised(f"no CA in {state_dir} (run `ca init` first)")
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CaError(f"{key_path} is not an EC private key")
        return cls(key, x509.load_pem_x509_certificate(cert_path.read_bytes()))

    @property
    def certificate_pem(self) -> bytes:
        """The CA certificate, PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def pin(self) -> str:
        """Hex SHA-256 of the CA certificate's DER (see `ca_pin`)."""
        return ca_pin(self.certificate)

    def sign_probe_csr(
        self, csr_pem: bytes, probe_id: str, valid_days: int = DEFAULT_PROBE_VALID_DAYS
    ) -> IssuedCertificate:
        """Sign a probe's CSR: subject CN = probe_id, client-auth usage only.

        Only the CSR's public key is used; its subject and extensions are
        ignored, so a probe cannot choose its own identity. Raises
        CsrRejected for an unparsable CSR, a bad signature or a weak key.
        """
        csr = validate_probe_csr(csr_pem)
        now = datetime.now(UTC)
        not_after = now + timedelta(days=valid_days)
        if not_after > self.certificate.not_valid_after_utc:
            # A leaf outliving its CA would be refused anyway; say so now.
            not_after = self.certificate.not_valid_after_utc
        public_key = csr.public_key()
        assert isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
                        x509.NameAttribute(NameOID.COMMON_NAME, probe_id),
                    ]
                )
            )
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW_ALLOWANCE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                # RSA key exchange in TLS 1.2 needs key encipherment; harmless for EC.
                _leaf_key_usage(key_encipherment=isinstance(public_key, rsa.RSAPublicKey)),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        return IssuedCertificate(
            certificate_pem=cert.public_bytes(serialization.Encoding.PEM),
            serial_hex=serial_hex(cert.serial_number),
            not_after=cert.not_valid_after_utc,
        )

    def issue_server_certificate(
        self,
        state_dir: Path,
        server_names: list[str],
        valid_days: int = DEFAULT_SERVER_VALID_DAYS,
    ) -> x509.Certificate:
        """(Re)issue server.key/server.crt for `server_names` (DNS names or IP
        addresses), e.g. when the aggregator gets a new name. Probes trust the
        CA, not this certificate, so they need nothing new."""
        key, cert = server_certificate(self._key, self.certificate, server_names, valid_days)
        write_private(state_dir / SERVER_KEY_FILE, _key_pem(key))
        write_public(state_dir / SERVER_CERT_FILE, cert.public_bytes(serialization.Encoding.PEM))
        return cert


def init_ca(
    state_dir: Path,
    server_names: list[str],
    valid_days: int = DEFAULT_CA_VALID_DAYS,
    server_valid_days: int = DEFAULT_SERVER_VALID_DAYS,
    force: bool = False,
) -> CertificateAuthority:
    """Create the CA and a server certificate in `state_dir`.

    Refuses (CaAlreadyExists) when a CA is already there unless `force`:
    replacing it orphans every enrolled probe and every token issued.
    """
    if not force and ((state_dir / CA_KEY_FILE).exists() or (state_dir / CA_CERT_FILE).exists()):
        raise CaAlreadyExists(
            f"a CA already exists in {state_dir}; replacing it would cut off every "
            "enrolled probe (use --force to do it anyway)"
        )
    _subject_alternative_names(server_names)  # fail before writing anything
    state_dir.mkdir(parents=True, exist_ok=True)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, CA_COMMON_NAME),
        ]
    )
    key, cert = self_signed_ca(name, valid_days)
    write_private(state_dir / CA_KEY_FILE, _key_pem(key))
    write_public(state_dir / CA_CERT_FILE, cert.public_bytes(serialization.Encoding.PEM))
    authority = CertificateAuthority(key, cert)
    authority.issue_server_certificate(state_dir, server_names, server_valid_days)
    return authority


def self_signed_ca(
    name: x509.Name, valid_days: int
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new CA key and its self-signed certificate, which signs leaves only."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW_ALLOWANCE)
        .not_valid_after(now + timedelta(days=valid_days))
        # path_length=0: this CA signs leaves only, never another CA.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def server_names_of(cert: x509.Certificate) -> list[str]:
    """DNS names and IP addresses in a certificate's SAN, in order."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names: list[str] = list(san.get_values_for_type(x509.DNSName))
    names.extend(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return names


def server_credentials(state_dir: Path, require_client_auth: bool) -> grpc.ServerCredentials:
    """TLS credentials for the aggregator's gRPC ports.

    require_client_auth=True: mTLS for the ingest port; the client must show
    a certificate signed by this CA (revocation is then checked per call with
    `ProbeRegistry.identify`). False: server-authenticated TLS for the
    enrolment port, where the probe has no certificate yet.
    """
    key_path = state_dir / SERVER_KEY_FILE
    cert_path = state_dir / SERVER_CERT_FILE
    if not key_path.exists() or not cert_path.exists():
        raise CaNotInitialised(f"no server certificate in {state_dir} (run `ca init` first)")
    pair = [(key_path.read_bytes(), cert_path.read_bytes())]
    if require_client_auth:
        return grpc.ssl_server_credentials(
            pair,
            root_certificates=(state_dir / CA_CERT_FILE).read_bytes(),
            require_client_auth=True,
        )
    return grpc.ssl_server_credentials(pair, root_certificates=None, require_client_auth=False)


def _leaf_key_usage(*, key_encipherment: bool) -> x509.KeyUsage:
    """A TLS leaf's key usage (server or probe): it signs, and enciphers keys
    only when asked; it signs no certificate and no CRL."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
