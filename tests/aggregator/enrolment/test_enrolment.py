"""Enrolment end to end: a real grpc.aio aggregator on 127.0.0.1 with TLS on
the enrolment port and mTLS on the ingest port, and the agent's `enrol`."""

from __future__ import annotations

import asyncio
import socket
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from vietnam_provinces import Ward, WardCode

from agent.enrolment import (
    AggregatorUnreachable,
    AlreadyEnrolled,
    PinMismatch,
    TokenRefused,
    enrol,
)
from agent.identity import channel_credentials, load_enrolment
from aggregator.enrolment.ca import CertificateAuthority, init_ca, server_credentials
from aggregator.enrolment.registry import (
    IdentityRefused,
    ProbeRegistry,
    ProbeRevoked,
    ProbeState,
    SiteClass,
)
from aggregator.enrolment.service import EnrolmentServicer
from wardprobe.v1 import enrolment_pb2, enrolment_pb2_grpc

# Deadlines of calls that succeed: guards against a hang, far beyond what any
# call takes, so that no test fails because this machine is busy.
RPC_GUARD_S = 60.0

CAN_THO = 92
NINH_KIEU = 31135  # Phường Ninh Kiều
AGENT_VERSION = "0.1.0"


def can_tho_ward_name(ward_code: int) -> str | None:
    try:
        ward = Ward.from_code(WardCode(ward_code))
    except ValueError:
        return None
    return ward.name if ward.province_code == CAN_THO else None


if TYPE_CHECKING:
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:  # generic only in the type stubs
    _ServerInterceptor = grpc.aio.ServerInterceptor


class CallLog(_ServerInterceptor):
    """Records every RPC that got past TLS to the server's handlers."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        self.methods.append(handler_call_details.method.rsplit("/", 1)[-1])
        return await continuation(handler_call_details)


class IdentifyingConfigServicer(enrolment_pb2_grpc.ProbeConfigServicer):
    """Stands in for the ingest side: identifies the caller from its client
    certificate with the registry, as every mTLS handler must."""

    def __init__(self, registry: ProbeRegistry) -> None:
        self._registry = registry

    async def GetConfig(
        self,
        request: enrolment_pb2.ConfigRequest,
        context: grpc.aio.ServicerContext[enrolment_pb2.ConfigRequest, enrolment_pb2.AgentConfig],
    ) -> enrolment_pb2.AgentConfig:
        [peer_pem] = context.auth_context()["x509_pem_cert"]
        try:
            probe = self._registry.identify(peer_pem)
        except IdentityRefused as exc:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        return enrolment_pb2.AgentConfig(
            probe_id=probe.probe_id, ward_code=probe.ward_code, site_class=probe.site_class
        )


@dataclass
class Aggregator:
    state_dir: Path
    ca: CertificateAuthority
    registry: ProbeRegistry
    enrol_address: str
    ingest_address: str
    enrol_calls: CallLog
    ingest_calls: CallLog
    servers: list[grpc.aio.Server] = field(default_factory=list)

    def token(self, ttl: timedelta = timedelta(days=1), pin: str | None = None) -> str:
        return self.registry.create_token(
            NINH_KIEU, SiteClass.HEALTH_FACILITY, ttl, pin or self.ca.pin, "trạm y tế"
        )


async def _start_aggregator(
    state_dir: Path, tls_dir: Path | None = None, host: str = "127.0.0.1"
) -> Aggregator:
    """Enrolment (TLS) and ingest (mTLS) servers on ephemeral loopback ports.
    `tls_dir`: serve the enrolment port with another directory's server
    certificate (an impostor relaying the real CA)."""
    ca = init_ca(state_dir, ["localhost", "127.0.0.1", "::1"])
    bracketed = f"[{host}]" if ":" in host else host
    registry = ProbeRegistry.in_state_dir(state_dir, can_tho_ward_name)

    ingest_calls = CallLog()
    ingest = grpc.aio.server(interceptors=[ingest_calls])
    enrolment_pb2_grpc.add_ProbeConfigServicer_to_server(
        IdentifyingConfigServicer(registry), ingest
    )
    ingest_port = ingest.add_secure_port(
        f"{bracketed}:0", server_credentials(state_dir, require_client_auth=True)
    )
    ingest_address = f"{bracketed}:{ingest_port}"

    enrol_calls = CallLog()
    enrol_server = grpc.aio.server(interceptors=[enrol_calls])
    enrolment_pb2_grpc.add_EnrolmentServicer_to_server(
        EnrolmentServicer(registry, ca, ingest_address), enrol_server
    )
    enrol_port = enrol_server.add_secure_port(
        f"{bracketed}:0", server_credentials(tls_dir or state_dir, require_client_auth=False)
    )
    for server in (ingest, enrol_server):
        await server.start()
    return Aggregator(
        state_dir=state_dir,
        ca=ca,
        registry=registry,
        enrol_address=f"{bracketed}:{enrol_port}",
        ingest_address=ingest_address,
        enrol_calls=enrol_calls,
        ingest_calls=ingest_calls,
        servers=[ingest, enrol_server],
    )


@pytest.fixture
async def aggregator(tmp_path: Path) -> AsyncIterator[Aggregator]:
    agg = await _start_aggregator(tmp_path / "aggregator")
    yield agg
    for server in agg.servers:
        await server.stop(None)


async def _enrol(agg: Aggregator, token: str, probe_dir: Path) -> Any:
    # enrol() is the agent's blocking call; keep the servers' loop running.
    return await asyncio.to_thread(
        enrol,
        agg.enrol_address,
        token,
        probe_dir,
        "pi-tram-y-te",
        AGENT_VERSION,
        timeout_s=RPC_GUARD_S,
    )


def _csr(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "box")]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def _rich_status(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    # An AioRpcError carries code, details and trailing metadata, which is all
    # from_call reads; the stubs only type it for the sync grpc.Call.
    status: status_pb2.Status = rpc_status.from_call(cast(grpc.Call, error))
    return status


def _enrol_request(token: str, csr_pem: bytes | None = None) -> enrolment_pb2.EnrolRequest:
    return enrolment_pb2.EnrolRequest(
        bootstrap_token=token,
        csr_pem=csr_pem if csr_pem is not None else _csr(ec.generate_private_key(ec.SECP256R1())),
        hostname="pi-direct",
        agent_version=AGENT_VERSION,
    )


def _enrolment_channel(agg: Aggregator) -> grpc.aio.Channel:
    return grpc.aio.secure_channel(
        agg.enrol_address, grpc.ssl_channel_credentials(root_certificates=agg.ca.certificate_pem)
    )


async def _get_config(address: str, credentials: grpc.ChannelCredentials) -> str:
    async with grpc.aio.secure_channel(address, credentials) as channel:
        config = await enrolment_pb2_grpc.ProbeConfigStub(channel).GetConfig(
            enrolment_pb2.ConfigRequest(agent_version=AGENT_VERSION), timeout=RPC_GUARD_S
        )
    return config.probe_id


async def test_full_enrolment_round_trip(aggregator: Aggregator, tmp_path: Path) -> None:
    probe_dir = tmp_path / "probe"
    before = datetime.now(UTC)
    record = await _enrol(aggregator, aggregator.token(), probe_dir)

    assert record.ward_code == NINH_KIEU
    assert record.ward_name == "Phường Ninh Kiều"
    assert record.site_class == "health_facility"
    assert record.ingest_address == aggregator.ingest_address
    assert record.enrolled_at >= before
    assert load_enrolment(probe_dir) == record

    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in probe_dir.iterdir()}
    assert modes == {
        "probe.key": 0o600,
        "probe.crt": 0o644,
        "ca.crt": 0o644,
        "enrolment.json": 0o644,
    }
    cert = x509.load_pem_x509_certificate((probe_dir / "probe.crt").read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == record.probe_id
    assert (probe_dir / "ca.crt").read_bytes() == aggregator.ca.certificate_pem

    [probe] = aggregator.registry.list_probes()
    assert (probe.probe_id, probe.hostname, probe.agent_version, probe.state) == (
        record.probe_id,
        "pi-tram-y-te",
        AGENT_VERSION,
        ProbeState.ACTIVE,
    )
    # The agent checked the CA before it sent the token.
    assert aggregator.enrol_calls.methods == ["GetCaCertificate", "Enrol"]

    # The new certificate opens the mTLS port, and names the probe there.
    probe_id = await _get_config(record.ingest_address, channel_credentials(probe_dir))
    assert probe_id == record.probe_id


async def test_the_tokens_fixed_line_isp_follows_the_probe(
    aggregator: Aggregator, tmp_path: Path
) -> None:
    token = aggregator.registry.create_token(
        NINH_KIEU, SiteClass.HOUSEHOLD, timedelta(days=1), aggregator.ca.pin, isp="viettel"
    )
    record = await _enrol(aggregator, token, tmp_path / "probe")
    probe = aggregator.registry.get_probe(record.probe_id)
    assert (probe.site_class, probe.isp) == (SiteClass.HOUSEHOLD, "Viettel")


async def test_the_tokens_plan_follows_the_probe_into_the_store(
    aggregator: Aggregator, tmp_path: Path
) -> None:
    token = aggregator.registry.create_token(
        NINH_KIEU,
        SiteClass.HOUSEHOLD,
        timedelta(days=1),
        aggregator.ca.pin,
        isp="VNPT",
        plan_mbps=(300.0, 100.0),
    )
    record = await _enrol(aggregator, token, tmp_path / "probe")
    probe = aggregator.registry.get_probe(record.probe_id)
    assert (probe.plan_down_mbps, probe.plan_up_mbps) == (300.0, 100.0)
    # the aggregator's probe sync (Aggregator.sync_probes: these rows into
    # Store.replace_probes) mirrors it into the store the indicators read
    from aggregator.central import _probe_row
    from aggregator.ingest.store import Store

    store = Store(tmp_path / "store.duckdb")
    store.replace_probes([_probe_row(r) for r in aggregator.registry.list_probes()])
    assert store.query(
        "select isp, plan_down_mbps, plan_up_mbps from probes where probe_id = ?",
        [record.probe_id],
    ) == [("VNPT", 300.0, 100.0)]
    aggregator.registry.set_probe_plan(record.probe_id, (1000.0, 1000.0))
    store.replace_probes([_probe_row(r) for r in aggregator.registry.list_probes()])
    assert store.query(
        "select plan_down_mbps, plan_up_mbps from probes where probe_id = ?", [record.probe_id]
    ) == [(1000.0, 1000.0)]
    store.close()


async def test_revoked_probe_is_refused_on_the_mtls_port(
    aggregator: Aggregator, tmp_path: Path
) -> None:
    probe_dir = tmp_path / "probe"
    record = await _enrol(aggregator, aggregator.token(), probe_dir)
    aggregator.registry.revoke(record.probe_id)

    with pytest.raises(ProbeRevoked):
        aggregator.registry.identify((probe_dir / "probe.crt").read_bytes())
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _get_config(record.ingest_address, channel_credentials(probe_dir))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in (refused.value.details() or "")


async def test_reused_token_is_unauthenticated(aggregator: Aggregator, tmp_path: Path) -> None:
    token = aggregator.token()
    await _enrol(aggregator, token, tmp_path / "first")

    async with _enrolment_channel(aggregator) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await enrolment_pb2_grpc.EnrolmentStub(channel).Enrol(
                _enrol_request(token), timeout=RPC_GUARD_S
            )
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    status = _rich_status(refused.value)
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.reason == "TOKEN_USED"

    # What the technician sees on the box.
    with pytest.raises(TokenRefused, match="already been used") as on_box:
        await _enrol(aggregator, token, tmp_path / "second")
    assert on_box.value.reason == "TOKEN_USED"
    assert not (tmp_path / "second").exists()
    assert len(aggregator.registry.list_probes()) == 1


async def test_expired_token_is_unauthenticated(aggregator: Aggregator, tmp_path: Path) -> None:
    # Made three days ago with a two-day life, through a registry whose clock
    # is set back, on the same file the service reads.
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    past = ProbeRegistry.in_state_dir(
        aggregator.state_dir, can_tho_ward_name, lambda: three_days_ago
    )
    token = past.create_token(NINH_KIEU, SiteClass.SCHOOL, timedelta(days=2), aggregator.ca.pin)

    with pytest.raises(TokenRefused, match="expired") as on_box:
        await _enrol(aggregator, token, tmp_path / "probe")
    assert on_box.value.reason == "TOKEN_EXPIRED"
    assert not (tmp_path / "probe").exists()

    async with _enrolment_channel(aggregator) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await enrolment_pb2_grpc.EnrolmentStub(channel).Enrol(
                _enrol_request(token), timeout=RPC_GUARD_S
            )
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_token_for_another_ca_is_never_sent(aggregator: Aggregator, tmp_path: Path) -> None:
    # A token valid at this aggregator but pinned to another CA, as if the
    # technician were talking to the wrong server.
    other = init_ca(tmp_path / "other-ca", ["localhost"])
    token = aggregator.token(pin=other.pin)

    with pytest.raises(PinMismatch, match="not sent"):
        await _enrol(aggregator, token, tmp_path / "probe")
    assert aggregator.enrol_calls.methods == ["GetCaCertificate"]
    aggregator.registry.check_token(token)  # still unused
    assert not (tmp_path / "probe").exists()


async def test_impostor_relaying_the_real_ca_is_refused(tmp_path: Path) -> None:
    # The impostor serves its own TLS certificate but hands out the real CA
    # certificate, whose pin matches the token: the leaf is not signed by it.
    impostor_tls = tmp_path / "impostor"
    init_ca(impostor_tls, ["localhost", "127.0.0.1"])
    agg = await _start_aggregator(tmp_path / "aggregator", tls_dir=impostor_tls)
    try:
        token = agg.token()
        with pytest.raises(PinMismatch, match="not signed by the pinned CA"):
            await _enrol(agg, token, tmp_path / "probe")
        assert "Enrol" not in agg.enrol_calls.methods
        agg.registry.check_token(token)
    finally:
        for server in agg.servers:
            await server.stop(None)


async def test_bad_csr_is_invalid_argument_and_keeps_the_token(
    aggregator: Aggregator, tmp_path: Path
) -> None:
    token = aggregator.token()
    async with _enrolment_channel(aggregator) as channel:
        stub = enrolment_pb2_grpc.EnrolmentStub(channel)
        for csr_pem, expected in [
            (b"-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n", "PKCS#10"),
            (_csr(rsa.generate_private_key(public_exponent=65537, key_size=1024)), "too weak"),
            (
                _csr(rsa.generate_private_key(public_exponent=3, key_size=2048)),
                "RSA public exponent 3 is not accepted",
            ),
        ]:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Enrol(_enrol_request(token, csr_pem), timeout=RPC_GUARD_S)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            bad_request = error_details_pb2.BadRequest()
            assert _rich_status(refused.value).details[0].Unpack(bad_request)
            [violation] = bad_request.field_violations
            assert violation.field == "csr_pem"
            assert expected in violation.description

    # A CSR mistake does not cost the technician the token.
    record = await _enrol(aggregator, token, tmp_path / "probe")
    assert record.ward_code == NINH_KIEU


async def test_concurrent_enrolments_with_one_token_have_one_winner(
    aggregator: Aggregator,
) -> None:
    token = aggregator.token()
    async with _enrolment_channel(aggregator) as channel:
        stub = enrolment_pb2_grpc.EnrolmentStub(channel)
        outcomes = await asyncio.gather(
            *(stub.Enrol(_enrol_request(token), timeout=RPC_GUARD_S) for _ in range(6)),
            return_exceptions=True,
        )
    granted = [o for o in outcomes if isinstance(o, enrolment_pb2.EnrolResponse)]
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(granted) == 1
    assert [r.code() for r in refused] == [grpc.StatusCode.UNAUTHENTICATED] * 5
    assert [p.probe_id for p in aggregator.registry.list_probes()] == [granted[0].probe_id]


async def test_mtls_port_refuses_clients_without_our_certificate(
    aggregator: Aggregator, tmp_path: Path
) -> None:
    ca_only = grpc.ssl_channel_credentials(root_certificates=aggregator.ca.certificate_pem)
    with pytest.raises(grpc.aio.AioRpcError) as no_cert:
        await _get_config(aggregator.ingest_address, ca_only)

    stranger = init_ca(tmp_path / "stranger", ["localhost"])
    key = ec.generate_private_key(ec.SECP256R1())
    foreign = stranger.sign_probe_csr(_csr(key), "wp-0000000000")
    foreign_credentials = grpc.ssl_channel_credentials(
        root_certificates=aggregator.ca.certificate_pem,
        private_key=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        certificate_chain=foreign.certificate_pem,
    )
    with pytest.raises(grpc.aio.AioRpcError) as foreign_cert:
        await _get_config(aggregator.ingest_address, foreign_credentials)

    # The TLS handshake fails, so the client sees the connection as unusable.
    assert no_cert.value.code() == grpc.StatusCode.UNAVAILABLE
    assert foreign_cert.value.code() == grpc.StatusCode.UNAVAILABLE
    assert aggregator.ingest_calls.methods == []


async def test_unreachable_aggregator(tmp_path: Path) -> None:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        closed_port = probe_socket.getsockname()[1]
    ca = init_ca(tmp_path / "aggregator", ["localhost"])
    token = f"wpt1.{'a' * 12}.{'b' * 32}.{ca.pin[:16]}"
    with pytest.raises(AggregatorUnreachable, match=str(closed_port)):
        await asyncio.to_thread(
            enrol, f"127.0.0.1:{closed_port}", token, tmp_path / "probe", "pi", AGENT_VERSION
        )


async def test_enrolled_box_is_not_re_enrolled_by_accident(
    aggregator: Aggregator, tmp_path: Path
) -> None:
    probe_dir = tmp_path / "probe"
    first = await _enrol(aggregator, aggregator.token(), probe_dir)
    with pytest.raises(AlreadyEnrolled):
        await _enrol(aggregator, aggregator.token(), probe_dir)
    assert load_enrolment(probe_dir) == first

    second = await asyncio.to_thread(
        enrol,
        aggregator.enrol_address,
        aggregator.token(),
        probe_dir,
        "pi-tram-y-te",
        AGENT_VERSION,
        force=True,
        timeout_s=RPC_GUARD_S,
    )
    assert second.probe_id != first.probe_id
    assert load_enrolment(probe_dir) == second


def _ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback_available(), reason="no IPv6 loopback (::1) here")
async def test_enrolment_over_ipv6_loopback(tmp_path: Path) -> None:
    agg = await _start_aggregator(tmp_path / "aggregator", host="::1")
    try:
        probe_dir = tmp_path / "probe"
        record = await _enrol(agg, agg.token(), probe_dir)
        assert record.ingest_address.startswith("[::1]:")
        assert await _get_config(record.ingest_address, channel_credentials(probe_dir)) == (
            record.probe_id
        )
    finally:
        for server in agg.servers:
            await server.stop(None)


def test_agent_side_stays_light() -> None:
    # The probe box has no DuckDB or pyarrow, and no aggregator code.
    code = (
        "import sys, agent.enrolment; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'duckdb', 'pyarrow', 'aggregator', 'vietnam_provinces'}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
