"""The probe registry: bootstrap tokens, probes, certificate identity, revocation."""

from __future__ import annotations

import itertools
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from vietnam_provinces import Ward, WardCode

from aggregator.enrolment.ca import CertificateAuthority, init_ca
from aggregator.enrolment.registry import (
    REGISTRY_FILE,
    ProbeRegistry,
    ProbeRevoked,
    ProbeState,
    SiteClass,
    TokenExpired,
    TokenMalformed,
    TokenUnknown,
    TokenUsed,
    UnknownCertificate,
    UnknownIsp,
    UnknownProbe,
    UnknownWard,
    WardPeriod,
    canonical_isp,
    known_isps,
    parse_token,
)
from aggregator.enrolment.registry_db import PG_SCHEMA
from emulation.postgres import PostgresCluster

CAN_THO = 92
NINH_KIEU = 31135  # Phường Ninh Kiều
HANOI_WARD = int(next(c for c in WardCode if Ward.from_code(c).province_code == 1))


def can_tho_ward_name(ward_code: int) -> str | None:
    """Ward lookup backed by the `vietnam-provinces` data, as the aggregator's."""
    try:
        ward = Ward.from_code(WardCode(ward_code))
    except ValueError:
        return None
    return ward.name if ward.province_code == CAN_THO else None


class MovableClock:
    """A clock the test sets; the registry reads "now" from it."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def authority(tmp_path: Path) -> CertificateAuthority:
    return init_ca(tmp_path / "state", ["localhost"])


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


_pg_databases = itertools.count(1)


@pytest.fixture(params=["sqlite", "postgres"])
def registry_location(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where the registry under test lives: registry.sqlite in a state
    directory, or a new database of the session's PostgreSQL (replicas on
    several hosts share one): every test runs on both."""
    if request.param == "sqlite":
        return tmp_path / "state" / REGISTRY_FILE
    postgres: PostgresCluster = request.getfixturevalue("postgres")
    database = f"registry_{next(_pg_databases)}"
    postgres.create_database(database)
    return postgres.uri_of(database)


@pytest.fixture
def registry(registry_location: str | Path, clock: MovableClock) -> ProbeRegistry:
    return ProbeRegistry(registry_location, can_tho_ward_name, clock)


def _token_rows(location: str | Path) -> str:
    """Every stored value of the bootstrap tokens, as text, read past the registry."""
    sql = f"SELECT * FROM {PG_SCHEMA}.bootstrap_tokens"
    if isinstance(location, Path):
        return "\n".join(sqlite3.connect(location).iterdump())
    with psycopg.connect(location) as conn:
        return "\n".join(str(row) for row in conn.execute(sql).fetchall())


def _probe_csr() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "box")]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def _enrol(
    registry: ProbeRegistry, authority: CertificateAuthority, ward_code: int = NINH_KIEU
) -> tuple[str, bytes]:
    """Token -> redeem -> sign -> record, as the enrolment service does."""
    token = registry.create_token(ward_code, SiteClass.SCHOOL, timedelta(days=1), authority.pin)
    grant = registry.redeem_token(token)
    probe_id = registry.new_probe_id()
    issued = authority.sign_probe_csr(_probe_csr(), probe_id)
    registry.record_probe(
        probe_id, grant, "pi-school-1", "0.1.0", issued.serial_hex, issued.not_after
    )
    return probe_id, issued.certificate_pem


def test_site_classes_are_the_designed_set() -> None:
    assert [c.value for c in SiteClass] == [
        "household",
        "ward_office",
        "city_department",
        "school",
        "health_facility",
        "high_tech_park",
        "it_park",
        "industrial_zone",
        "rd_centre",
        "other",
    ]


def test_token_carries_the_ca_pin_and_grants_its_ward(
    registry: ProbeRegistry, authority: CertificateAuthority
) -> None:
    token = registry.create_token(
        NINH_KIEU, SiteClass.WARD_OFFICE, timedelta(days=7), authority.pin, "UBND phường"
    )
    assert token.startswith("wpt1.")
    assert parse_token(token).ca_pin_prefix == authority.pin[:16]

    grant = registry.redeem_token(token)
    assert (grant.ward_code, grant.ward_name, grant.site_class) == (
        NINH_KIEU,
        "Phường Ninh Kiều",
        SiteClass.WARD_OFFICE,
    )


def test_only_a_hash_of_the_secret_is_stored(
    registry: ProbeRegistry, registry_location: str | Path, authority: CertificateAuthority
) -> None:
    token = registry.create_token(NINH_KIEU, SiteClass.HOUSEHOLD, timedelta(hours=1), authority.pin)
    secret = parse_token(token).secret
    dump = _token_rows(registry_location)
    assert secret not in dump
    assert parse_token(token).token_id in dump


def test_registry_file_is_in_wal_mode(tmp_path: Path) -> None:
    registry = ProbeRegistry.in_state_dir(tmp_path / "state", can_tho_ward_name)
    path = tmp_path / "state" / REGISTRY_FILE
    assert registry.location == str(path)
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_token_is_one_time(registry: ProbeRegistry, authority: CertificateAuthority) -> None:
    token = registry.create_token(NINH_KIEU, SiteClass.SCHOOL, timedelta(days=1), authority.pin)
    registry.redeem_token(token)
    with pytest.raises(TokenUsed):
        registry.redeem_token(token)
    with pytest.raises(TokenUsed):
        registry.check_token(token)


def test_token_expires(
    registry: ProbeRegistry, authority: CertificateAuthority, clock: MovableClock
) -> None:
    token = registry.create_token(NINH_KIEU, SiteClass.SCHOOL, timedelta(hours=2), authority.pin)
    clock.now += timedelta(hours=1, minutes=59)
    registry.check_token(token)  # still fine, and not used up by checking
    clock.now += timedelta(minutes=1)
    with pytest.raises(TokenExpired):
        registry.redeem_token(token)


def test_unknown_tokens_and_wrong_secrets_are_refused_alike(
    registry: ProbeRegistry, authority: CertificateAuthority
) -> None:
    token = registry.create_token(NINH_KIEU, SiteClass.SCHOOL, timedelta(days=1), authority.pin)
    prefix, token_id, secret, pin = token.split(".")
    wrong_secret = ".".join([prefix, token_id, "0" * len(secret), pin])
    with pytest.raises(TokenUnknown):
        registry.redeem_token(wrong_secret)
    unknown_id = ".".join([prefix, "f" * len(token_id), secret, pin])
    with pytest.raises(TokenUnknown):
        registry.redeem_token(unknown_id)
    registry.redeem_token(token)  # the failed attempts did not use it up


@pytest.mark.parametrize(
    "text", ["", "wpt1.abc", "wpt2.0011aabbccdd.00.0011223344556677", "x" * 80]
)
def test_malformed_tokens_are_refused(registry: ProbeRegistry, text: str) -> None:
    with pytest.raises(TokenMalformed):
        registry.redeem_token(text)


def test_tokens_only_for_wards_of_can_tho(
    registry: ProbeRegistry, authority: CertificateAuthority
) -> None:
    with pytest.raises(UnknownWard):
        registry.create_token(HANOI_WARD, SiteClass.SCHOOL, timedelta(days=1), authority.pin)
    with pytest.raises(UnknownWard):
        registry.create_token(99999, SiteClass.SCHOOL, timedelta(days=1), authority.pin)


def test_token_needs_a_positive_ttl_and_a_real_pin(
    registry: ProbeRegistry, authority: CertificateAuthority
) -> None:
    with pytest.raises(ValueError, match="positive"):
        registry.create_token(NINH_KIEU, SiteClass.SCHOOL, timedelta(0), authority.pin)
    with pytest.raises(ValueError, match="SHA-256"):
        registry.create_token(NINH_KIEU, SiteClass.SCHOOL, timedelta(days=1), "abc")
    with pytest.raises(ValueError):
        registry.create_token(NINH_KIEU, "data_centre", timedelta(days=1), authority.pin)  # type: ignore[arg-type]


def test_concurrent_redemption_has_exactly_one_winner(
    registry: ProbeRegistry,
    registry_location: str | Path,
    authority: CertificateAuthority,
    clock: MovableClock,
) -> None:
    token = registry.create_token(NINH_KIEU, SiteClass.SCHOOL, timedelta(days=1), authority.pin)
    contenders = 8
    start = threading.Barrier(contenders)
    outcomes: list[str] = []
    lock = threading.Lock()

    def redeem() -> None:
        # Each thread has its own registry object, as separate processes would.
        own = ProbeRegistry(registry_location, can_tho_ward_name, clock)
        start.wait()
        try:
            own.redeem_token(token)
            outcome = "granted"
        except TokenUsed:
            outcome = "used"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=redeem) for _ in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["granted"] + ["used"] * (contenders - 1)


def test_enrolled_probe_is_identified_by_its_certificate(
    registry: ProbeRegistry, authority: CertificateAuthority
) -> None:
    probe_id, cert_pem = _enrol(registry, authority)
    identity = registry.identify(cert_pem)
    assert (identity.probe_id, identity.ward_code, identity.site_class) == (
        probe_id,
        NINH_KIEU,
        SiteClass.SCHOOL,
    )
    [probe] = registry.list_probes()
    assert probe.probe_id == probe_id
    assert probe.hostname == "pi-school-1"
    assert probe.state is ProbeState.ACTIVE
    assert probe.cert_serial == format(x509.load_pem_x509_certificate(cert_pem).serial_number, "x")


def test_revoked_probe_is_refused(
    registry: ProbeRegistry, authority: CertificateAuthority, clock: MovableClock
) -> None:
    probe_id, cert_pem = _enrol(registry, authority)
    other_id, other_pem = _enrol(registry, authority)
    record = registry.revoke(probe_id)
    assert record.state is ProbeState.REVOKED
    assert record.revoked_at == clock.now

    with pytest.raises(ProbeRevoked):
        registry.identify(cert_pem)
    assert registry.identify(other_pem).probe_id == other_id
    assert [p.probe_id for p in registry.list_probes(ProbeState.REVOKED)] == [probe_id]
    assert [p.probe_id for p in registry.list_probes(ProbeState.ACTIVE)] == [other_id]


def test_certificate_not_issued_here_is_unknown(
    tmp_path: Path, registry: ProbeRegistry, authority: CertificateAuthority
) -> None:
    probe_id, _ = _enrol(registry, authority)
    # Same probe id in the subject, but from another CA: the serial is unknown.
    stranger = init_ca(tmp_path / "other", ["localhost"])
    forged = stranger.sign_probe_csr(_probe_csr(), probe_id)
    with pytest.raises(UnknownCertificate):
        registry.identify(forged.certificate_pem)
    with pytest.raises(UnknownCertificate):
        registry.identify(b"not a certificate")


def test_moved_probe_is_identified_in_its_new_ward(
    registry: ProbeRegistry, authority: CertificateAuthority
) -> None:
    probe_id, cert_pem = _enrol(registry, authority)
    other_ward = next(
        int(c) for c in WardCode if Ward.from_code(c).province_code == CAN_THO and c != NINH_KIEU
    )
    registry.move_probe(probe_id, other_ward)
    assert registry.identify(cert_pem).ward_code == other_ward
    with pytest.raises(UnknownWard):
        registry.move_probe(probe_id, HANOI_WARD)


CAI_KHE = 31120  # Phường Cái Khế


def test_a_move_keeps_the_ward_each_time_was_measured_in(
    registry: ProbeRegistry, authority: CertificateAuthority, clock: MovableClock
) -> None:
    enrolled = clock.now
    probe_id, cert_pem = _enrol(registry, authority)
    clock.now = enrolled + timedelta(days=30)
    registry.move_probe(probe_id, CAI_KHE)
    clock.now = enrolled + timedelta(days=31)
    registry.move_probe(probe_id, CAI_KHE)  # already there: nothing new

    identity = registry.identify(cert_pem)
    assert identity.ward_code == CAI_KHE
    assert identity.ward_history == (
        WardPeriod(NINH_KIEU, enrolled),
        WardPeriod(CAI_KHE, enrolled + timedelta(days=30)),
    )
    assert registry.ward_history(probe_id) == identity.ward_history
    assert identity.ward_at(enrolled + timedelta(days=29, hours=23)) == NINH_KIEU
    assert identity.ward_at(enrolled + timedelta(days=30)) == CAI_KHE
    # a clock a little behind at enrolment: the first ward
    assert identity.ward_at(enrolled - timedelta(minutes=5)) == NINH_KIEU


def test_the_registry_is_asked_again_by_serial(
    registry: ProbeRegistry, authority: CertificateAuthority
) -> None:
    probe_id, cert_pem = _enrol(registry, authority)
    serial = registry.identify(cert_pem).cert_serial
    assert registry.identify_serial(serial).probe_id == probe_id

    registry.revoke(probe_id)
    with pytest.raises(ProbeRevoked):
        registry.identify_serial(serial)
    with pytest.raises(UnknownCertificate):
        registry.identify_serial("abc123")


def test_a_client_certificate_that_cannot_be_read_is_refused_in_fixed_words(
    registry: ProbeRegistry,
) -> None:
    with pytest.raises(UnknownCertificate) as refused:
        registry.identify(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert str(refused.value) == "the client certificate cannot be read"
    assert refused.value.__cause__ is not None  # the parser's text, for the log


def test_unknown_probe_cannot_be_revoked_or_moved(registry: ProbeRegistry) -> None:
    with pytest.raises(UnknownProbe):
        registry.revoke("wp-doesnotexist")
    with pytest.raises(UnknownProbe):
        registry.move_probe("wp-doesnotexist", NINH_KIEU)


def test_cli_and_service_see_the_same_registry(
    registry: ProbeRegistry, registry_location: str | Path, authority: CertificateAuthority
) -> None:
    # A second registry object on the same file or database, as the admin CLI
    # (or another replica) opens it while the aggregator runs: a revocation
    # there is seen here at once.
    probe_id, cert_pem = _enrol(registry, authority)
    admin = ProbeRegistry(registry_location, can_tho_ward_name)
    admin.revoke(probe_id)
    with pytest.raises(ProbeRevoked):
        registry.identify(cert_pem)


# --- the fixed line's ISP ----------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("VNPT", "VNPT"),
        ("vnpt", "VNPT"),
        ("  Viettel ", "Viettel"),
        ("fpt   telecom", "FPT Telecom"),
        ("FPT", "FPT Telecom"),
        ("cmc", "CMC Telecom"),
        ("sctv", "SCTV"),
    ],
)
def test_isp_names_are_normalised_to_the_canonical_spelling(spelling: str, canonical: str) -> None:
    assert canonical_isp(spelling) == canonical


def test_the_isp_list_is_data_and_names_the_big_ones() -> None:
    assert {"VNPT", "Viettel", "FPT Telecom", "SCTV", "CMC Telecom"} <= set(known_isps())


def test_an_unknown_isp_is_refused_naming_the_known_ones(
    registry: ProbeRegistry, authority: CertificateAuthority
) -> None:
    with pytest.raises(UnknownIsp) as refused:
        registry.create_token(
            NINH_KIEU, SiteClass.HOUSEHOLD, timedelta(days=1), authority.pin, isp="Comcast"
        )
    message = str(refused.value)
    assert "'Comcast'" in message and "VNPT" in message and "FPT Telecom" in message
    assert "fixed_isps.csv" in message
    assert isinstance(refused.value, ValueError)


def test_the_token_isp_is_carried_to_the_enrolled_probe(
    registry: ProbeRegistry, authority: CertificateAuthority
) -> None:
    token = registry.create_token(
        NINH_KIEU, SiteClass.HOUSEHOLD, timedelta(days=1), authority.pin, "nhà 12", isp="fpt"
    )
    assert registry.check_token(token).isp == "FPT Telecom"
    grant = registry.redeem_token(token)
    assert grant.isp == "FPT Telecom"
    probe_id = registry.new_probe_id()
    issued = authority.sign_probe_csr(_probe_csr(), probe_id)
    record = registry.record_probe(
        probe_id, grant, "pi-home", "0.1.0", issued.serial_hex, issued.not_after
    )
    assert record.isp == "FPT Telecom"
    # without --isp: not recorded
    other_id, _ = _enrol(registry, authority)
    assert registry.get_probe(other_id).isp is None


def test_set_isp_records_and_corrects_a_probes_isp(
    registry: ProbeRegistry, authority: CertificateAuthority
) -> None:
    probe_id, _ = _enrol(registry, authority)
    assert registry.set_probe_isp(probe_id, "viettel").isp == "Viettel"
    assert registry.set_probe_isp(probe_id, "VNPT").isp == "VNPT"
    [listed] = registry.list_probes()
    assert listed.isp == "VNPT"
    with pytest.raises(UnknownIsp):
        registry.set_probe_isp(probe_id, "no such isp")
    assert registry.get_probe(probe_id).isp == "VNPT"
    assert registry.set_probe_isp(probe_id, None).isp is None
    with pytest.raises(UnknownProbe):
        registry.set_probe_isp("wp-doesnotexist", "VNPT")


# The first release's registry schema, before the ISP columns.
_FIRST_RELEASE_SCHEMA = """
CREATE TABLE bootstrap_tokens (
    token_id TEXT PRIMARY KEY, secret_sha256 TEXT NOT NULL, ward_code INTEGER NOT NULL,
    site_class TEXT NOT NULL, note TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL, used_at TEXT, used_by_probe_id TEXT
);
CREATE TABLE probes (
    probe_id TEXT PRIMARY KEY, ward_code INTEGER NOT NULL, site_class TEXT NOT NULL,
    hostname TEXT NOT NULL, agent_version TEXT NOT NULL, enrolled_at TEXT NOT NULL,
    cert_serial TEXT NOT NULL, cert_not_after TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('active', 'revoked')), revoked_at TEXT,
    token_id TEXT REFERENCES bootstrap_tokens(token_id)
);
CREATE TABLE issued_certificates (
    serial TEXT PRIMARY KEY, probe_id TEXT NOT NULL REFERENCES probes(probe_id),
    issued_at TEXT NOT NULL, not_after TEXT NOT NULL, revoked_at TEXT
);
PRAGMA user_version=1;
"""


def test_an_older_registry_file_gains_the_isp_and_plan_columns_and_keeps_its_rows(
    tmp_path: Path, authority: CertificateAuthority, clock: MovableClock
) -> None:
    path = tmp_path / "old" / "registry.sqlite"
    path.parent.mkdir()
    old = sqlite3.connect(path)
    old.executescript(_FIRST_RELEASE_SCHEMA)
    old.execute(
        "INSERT INTO probes VALUES ('wp-0000000001', ?, 'household', 'pi-old', '0.1.0',"
        " '2026-01-05T03:00:00.000000+00:00', 'abc', '2027-01-05T03:00:00.000000+00:00',"
        " 'active', NULL, NULL)",
        (NINH_KIEU,),
    )
    old.commit()
    old.close()

    registry = ProbeRegistry(path, can_tho_ward_name, clock)
    [probe] = registry.list_probes()
    assert (probe.probe_id, probe.hostname, probe.isp) == ("wp-0000000001", "pi-old", None)
    assert registry.set_probe_isp(probe.probe_id, "SCTV").isp == "SCTV"
    token = registry.create_token(
        NINH_KIEU, SiteClass.HOUSEHOLD, timedelta(days=1), authority.pin, isp="CMC"
    )
    assert registry.check_token(token).isp == "CMC Telecom"
    assert probe.plan_down_mbps is None and probe.plan_up_mbps is None
    assert registry.set_probe_plan(probe.probe_id, (300.0, 100.0)).plan_up_mbps == 100.0
    # before version 4 only the current ward was kept: it counts since enrolment
    assert registry.ward_history(probe.probe_id) == (
        WardPeriod(NINH_KIEU, datetime(2026, 1, 5, 3, 0, tzinfo=UTC)),
    )
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (4,)
        for table in ("bootstrap_tokens", "probes"):
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            assert {"isp", "plan_down_mbps", "plan_up_mbps"} <= columns
    # opening it again (the admin CLI beside the aggregator) adds nothing twice
    reopened = ProbeRegistry(path, can_tho_ward_name, clock)
    again = reopened.get_probe(probe.probe_id)
    assert (again.isp, again.plan_down_mbps, again.plan_up_mbps) == ("SCTV", 300.0, 100.0)
    assert len(reopened.ward_history(probe.probe_id)) == 1
