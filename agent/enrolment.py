"""Enrolling a probe box with the aggregator (agent side).

The technician runs one command with the aggregator's enrolment address and
the bootstrap token printed for this ward. The token ends in the first 16
hex digits of the SHA-256 of the aggregator's CA certificate (its "pin"), so
the box can tell the real aggregator from an impostor before it hands the
token over, as kubeadm does:

1. fetch the server's leaf certificate (unverified, it is only a candidate);
2. over a channel that trusts exactly that leaf, ask for the CA certificate;
3. accept the CA only if its pin matches the token and it signed the leaf;
4. over a channel that trusts that CA, send the token and a CSR;
5. save probe.key (0600), probe.crt, ca.crt and enrolment.json.

The private key never leaves the box. Only the standard library, grpc and
cryptography are used here: this runs on the probe.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
import ssl
from datetime import UTC, datetime
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.protobuf import any_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from agent.config import split_host_port
from agent.identity import (
    CA_CERT_FILE,
    ENROLMENT_FILE,
    PROBE_CERT_FILE,
    PROBE_KEY_FILE,
    EnrolmentError,
    EnrolmentRecord,
)
from wardprobe.files import write_private, write_public
from wardprobe.v1 import enrolment_pb2, enrolment_pb2_grpc

DEFAULT_TIMEOUT_S = 15.0
_TOKEN_RE = re.compile(r"^wpt1\.[0-9a-f]+\.[0-9a-f]+\.([0-9a-f]{16})$")


class TokenMalformed(EnrolmentError):
    """The text given is not a wardprobe bootstrap token (nothing was sent)."""


class AlreadyEnrolled(EnrolmentError):
    """The state directory already holds an enrolment."""


class AggregatorUnreachable(EnrolmentError):
    """No TLS connection to the aggregator's enrolment port."""


class PinMismatch(EnrolmentError):
    """The server's CA is not the one the token names; the token was not sent."""


class TokenRefused(EnrolmentError):
    """The aggregator refused the token (unknown, used or expired)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # e.g. TOKEN_USED, from the server's ErrorInfo


class EnrolmentRefused(EnrolmentError):
    """The aggregator refused the request for another reason (e.g. the CSR)."""


def token_pin_prefix(token: str) -> str:
    """The CA pin prefix a bootstrap token carries (16 lower-case hex)."""
    match = _TOKEN_RE.match(token.strip().lower())
    if match is None:
        raise TokenMalformed(
            "this is not a wardprobe bootstrap token (it looks like wpt1.<id>.<secret>.<pin>)"
        )
    return match[1]


def _target_name(leaf: x509.Certificate, host: str) -> str:
    """The name to check the server certificate against: the address's host
    when the certificate carries it, else the first name in its SAN (the
    technician may have typed an address the certificate does not list)."""
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as exc:
        raise EnrolmentRefused("the server certificate has no subject alternative names") from exc
    dns_names = list(san.get_values_for_type(x509.DNSName))
    ip_names = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    try:
        host_key = str(ipaddress.ip_address(host))
        if host_key in ip_names:
            return host_key
    except ValueError:
        if host.lower() in (name.lower() for name in dns_names):
            return host
    names = dns_names + ip_names
    if not names:
        raise EnrolmentRefused("the server certificate names no DNS name or IP address")
    return names[0]


def _fetch_leaf(host: str, port: int, timeout_s: float) -> x509.Certificate:
    try:
        pem = ssl.get_server_certificate((host, port), timeout=timeout_s)
    except (OSError, ssl.SSLError) as exc:
        raise AggregatorUnreachable(
            f"cannot open a TLS connection to {host}:{port}: {exc}"
        ) from exc
    return x509.load_pem_x509_certificate(pem.encode("ascii"))


def _rpc_error(exc: grpc.RpcError, address: str) -> EnrolmentError:
    """Turn a failed call into the error a technician can act on."""
    code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return AggregatorUnreachable(f"aggregator at {address} unreachable: {details}")
    status = rpc_status.from_call(exc) if isinstance(exc, grpc.Call) else None
    status_details: list[any_pb2.Any] = list(status.details) if status is not None else []
    if code == grpc.StatusCode.UNAUTHENTICATED:
        reason = "TOKEN_REFUSED"
        for detail in status_details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                reason = info.reason
        return TokenRefused(f"the aggregator refused the token: {details}", reason)
    for detail in status_details:
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            fields = "; ".join(f"{v.field}: {v.description}" for v in bad_request.field_violations)
            return EnrolmentRefused(f"the aggregator refused the request: {fields}")
    return EnrolmentRefused(f"the aggregator refused the request ({code.name}): {details}")


def _generate_key_and_csr(hostname: str) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    # The aggregator replaces the subject with the probe id; the hostname
    # here only helps someone reading the CSR in a log.
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname or "probe")]))
        .sign(key, hashes.SHA256())
    )
    return key, csr.public_bytes(serialization.Encoding.PEM)


def _check_issued(
    cert_pem: bytes, ca_cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, probe_id: str
) -> x509.Certificate:
    """The certificate must be for our key, signed by the pinned CA, and name
    the probe id the aggregator reported."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise EnrolmentRefused(
            f"the certificate received is not from the pinned CA: {exc}"
        ) from exc
    ours = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    theirs = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if ours != theirs:
        raise EnrolmentRefused("the certificate received is not for this box's key")
    names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if names != [probe_id]:
        raise EnrolmentRefused(f"the certificate names {names}, not probe {probe_id}")
    return cert


def enrol(
    aggregator_address: str,
    token: str,
    state_dir: Path,
    hostname: str,
    agent_version: str,
    *,
    force: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> EnrolmentRecord:
    """Enrol this box with the aggregator's enrolment port (host:port).

    Raises TokenMalformed, AlreadyEnrolled (unless `force`), AggregatorUnreachable,
    PinMismatch (the token was not sent), TokenRefused (with the server's
    message and reason) or EnrolmentRefused. Writes nothing unless it succeeds.
    """
    pin_prefix = token_pin_prefix(token)
    if not force and (state_dir / ENROLMENT_FILE).exists():
        raise AlreadyEnrolled(
            f"{state_dir} already holds an enrolment; re-enrolling replaces the "
            "probe's identity (force it to do so)"
        )
    host, port = split_host_port(aggregator_address)

    leaf = _fetch_leaf(host, port, timeout_s)
    target_name = _target_name(leaf, host)
    options = [("grpc.ssl_target_name_override", target_name)]
    leaf_pem = leaf.public_bytes(serialization.Encoding.PEM)
    with grpc.secure_channel(
        aggregator_address, grpc.ssl_channel_credentials(root_certificates=leaf_pem), options
    ) as channel:
        try:
            ca_response = enrolment_pb2_grpc.EnrolmentStub(channel).GetCaCertificate(
                enrolment_pb2.CaCertificateRequest(), timeout=timeout_s
            )
        except grpc.RpcError as exc:
            raise _rpc_error(exc, aggregator_address) from exc

    try:
        ca_cert = x509.load_pem_x509_certificate(ca_response.ca_certificate_pem)
    except ValueError as exc:
        raise PinMismatch(f"the server sent no readable CA certificate: {exc}") from exc
    pin = hashlib.sha256(ca_cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    if not pin.startswith(pin_prefix):
        raise PinMismatch(
            f"the aggregator's CA (pin {pin[:16]}) is not the one this token was made "
            f"for (pin {pin_prefix}); the token was not sent. Check the address, "
            "or whether the token belongs to another aggregator"
        )
    try:
        # Without this an impostor could relay the real CA certificate.
        leaf.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise PinMismatch(
            "the server's certificate is not signed by the pinned CA; the token was not sent"
        ) from exc
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)

    key, csr_pem = _generate_key_and_csr(hostname)
    request = enrolment_pb2.EnrolRequest(
        bootstrap_token=token.strip(),
        csr_pem=csr_pem,
        hostname=hostname,
        agent_version=agent_version,
    )
    with grpc.secure_channel(
        aggregator_address, grpc.ssl_channel_credentials(root_certificates=ca_pem), options
    ) as channel:
        try:
            response = enrolment_pb2_grpc.EnrolmentStub(channel).Enrol(request, timeout=timeout_s)
        except grpc.RpcError as exc:
            raise _rpc_error(exc, aggregator_address) from exc

    cert = _check_issued(response.certificate_pem, ca_cert, key, response.probe_id)
    record = EnrolmentRecord(
        probe_id=response.probe_id,
        ward_code=response.ward_code,
        ward_name=response.ward_name,
        site_class=response.site_class,
        ingest_address=response.ingest_address,
        enrolled_at=datetime.now(UTC),
        certificate_not_after=cert.not_valid_after_utc,
    )
    state_dir.mkdir(parents=True, exist_ok=True)
    write_private(
        state_dir / PROBE_KEY_FILE,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    write_public(state_dir / PROBE_CERT_FILE, response.certificate_pem)
    write_public(state_dir / CA_CERT_FILE, ca_pem)
    # Written last: its presence means the files above are complete.
    write_public(state_dir / ENROLMENT_FILE, record.to_json().encode("utf-8"))
    return record


def hostname_of_this_box() -> str:
    """The box's host name, the default name it enrols under."""
    return socket.gethostname()
