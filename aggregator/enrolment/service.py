"""gRPC Enrolment service: a bootstrap token and a CSR in, a certificate out.

Served on the TLS-only enrolment port (`server_credentials(state_dir,
require_client_auth=False)`). Refusals carry a google.rpc rich status, so the
agent can show the technician exactly what is wrong:

- UNAUTHENTICATED + ErrorInfo(reason=TOKEN_UNKNOWN|TOKEN_USED|TOKEN_EXPIRED|
  TOKEN_MALFORMED) when the token cannot be used;
- INVALID_ARGUMENT + BadRequest field violation (field csr_pem) when the CSR
  is unreadable, badly signed or its key is too weak or not accepted (EC
  P-256/P-384, or RSA of 2048 bits or more with public exponent 65537).

The token is checked first, then the CSR, and only then used up, so a
probe that sent a bad CSR can retry with the same token.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
from google.rpc import code_pb2, error_details_pb2

from aggregator.enrolment.ca import DEFAULT_PROBE_VALID_DAYS, CertificateAuthority, CsrRejected
from aggregator.enrolment.registry import ProbeRegistry, TokenRefused
from aggregator.rich_status import abort, bad_request, rich_status
from wardprobe.v1 import enrolment_pb2, enrolment_pb2_grpc

_log = logging.getLogger(__name__)

ERROR_DOMAIN = "wardprobe.enrolment"
# Hostnames and versions are free text from the box; keep the registry tidy.
MAX_HOSTNAME_CHARS = 253
MAX_AGENT_VERSION_CHARS = 64


def _token_refused_status(exc: TokenRefused) -> grpc.Status:
    return rich_status(
        code_pb2.UNAUTHENTICATED,
        str(exc),
        error_details_pb2.ErrorInfo(reason=exc.reason, domain=ERROR_DOMAIN),
    )


def _bad_request_status(field: str, description: str) -> grpc.Status:
    return rich_status(
        code_pb2.INVALID_ARGUMENT, f"{field}: {description}", bad_request(field, description)
    )


class EnrolmentServicer(enrolment_pb2_grpc.EnrolmentServicer):
    """Enrols probes against `registry`, signing with `ca`; tells each probe
    to send its results to `ingest_address` (host:port of the mTLS port)."""

    def __init__(
        self,
        registry: ProbeRegistry,
        ca: CertificateAuthority,
        ingest_address: str,
        probe_valid_days: int = DEFAULT_PROBE_VALID_DAYS,
    ) -> None:
        self._registry = registry
        self._ca = ca
        self._ingest_address = ingest_address
        self._probe_valid_days = probe_valid_days

    async def GetCaCertificate(
        self,
        request: enrolment_pb2.CaCertificateRequest,
        context: grpc.aio.ServicerContext[
            enrolment_pb2.CaCertificateRequest, enrolment_pb2.CaCertificateResponse
        ],
    ) -> enrolment_pb2.CaCertificateResponse:
        """The CA certificate, for the probe to check against its token's pin."""
        return enrolment_pb2.CaCertificateResponse(ca_certificate_pem=self._ca.certificate_pem)

    async def Enrol(
        self,
        request: enrolment_pb2.EnrolRequest,
        context: grpc.aio.ServicerContext[enrolment_pb2.EnrolRequest, enrolment_pb2.EnrolResponse],
    ) -> enrolment_pb2.EnrolResponse:
        """Redeem the token, sign the CSR, record the probe."""
        # SQLite and signing block; keep them off the event loop.
        try:
            await asyncio.to_thread(self._registry.check_token, request.bootstrap_token)
        except TokenRefused as exc:
            _log.warning("enrolment refused from %s: %s", context.peer(), exc)
            await abort(context, _token_refused_status(exc))
        if len(request.hostname) > MAX_HOSTNAME_CHARS:
            await abort(
                context,
                _bad_request_status("hostname", f"longer than {MAX_HOSTNAME_CHARS} characters"),
            )
        if len(request.agent_version) > MAX_AGENT_VERSION_CHARS:
            await abort(
                context,
                _bad_request_status(
                    "agent_version", f"longer than {MAX_AGENT_VERSION_CHARS} characters"
                ),
            )
        probe_id = self._registry.new_probe_id()
        try:
            issued = await asyncio.to_thread(
                self._ca.sign_probe_csr, request.csr_pem, probe_id, self._probe_valid_days
            )
        except CsrRejected as exc:
            # The parser's own text (the cause), if any, is for this log only.
            _log.warning(
                "CSR refused from %s: %s", context.peer(), exc, exc_info=exc.__cause__ is not None
            )
            await abort(context, _bad_request_status(exc.field, exc.description))
        try:
            # Only now is the token used up; a concurrent enrolment with the
            # same token that got here first wins and this one is refused.
            grant = await asyncio.to_thread(self._registry.redeem_token, request.bootstrap_token)
        except TokenRefused as exc:
            await abort(context, _token_refused_status(exc))
        record = await asyncio.to_thread(
            self._registry.record_probe,
            probe_id,
            grant,
            request.hostname,
            request.agent_version,
            issued.serial_hex,
            issued.not_after,
        )
        _log.info(
            "enrolled probe %s (%s) in ward %d %s as %s",
            record.probe_id,
            record.hostname,
            grant.ward_code,
            grant.ward_name,
            grant.site_class.value,
        )
        return enrolment_pb2.EnrolResponse(
            probe_id=probe_id,
            certificate_pem=issued.certificate_pem,
            ca_certificate_pem=self._ca.certificate_pem,
            ward_code=grant.ward_code,
            ward_name=grant.ward_name,
            site_class=grant.site_class.value,
            ingest_address=self._ingest_address,
        )
