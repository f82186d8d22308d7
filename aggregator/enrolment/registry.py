"""The probe registry: bootstrap tokens, enrolled probes, issued certificates.

One SQLite file in the aggregator's state directory (registry.sqlite), in WAL
mode so the admin CLI can create tokens and revoke probes while the
aggregator is running and reading it; or, for replicas on several hosts,
tables in PostgreSQL (aggregator.toml's `registry`; registry_db.py says what
differs). Every operation opens its own short connection: the registry is
called from the CLI, from gRPC handlers and from worker threads, and
connections must not be shared across threads.

A bootstrap token is text a technician copies onto the probe box:

    wpt1.<token_id>.<secret>.<first 16 hex of the CA pin>

Only a SHA-256 of the secret is stored. The secret carries 128 random bits,
so a fast hash is enough: there is nothing to brute-force.
"""

from __future__ import annotations

import csv
import enum
import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path

from cryptography import x509

from aggregator.enrolment.ca import serial_hex
from aggregator.enrolment.registry_db import Connection, SqliteDatabase, open_database

WardLookup = Callable[[int], str | None]
"""Ward code -> official ward name, or None when the code is not a ward of
the city. The aggregator passes one backed by the `vietnam-provinces` data."""

Clock = Callable[[], datetime]

REGISTRY_FILE = "registry.sqlite"
TOKEN_PREFIX = "wpt1"
PIN_PREFIX_HEX_CHARS = 16
_TOKEN_ID_BYTES = 6
_SECRET_BYTES = 16
_TOKEN_RE = re.compile(
    rf"^{TOKEN_PREFIX}\.([0-9a-f]{{{2 * _TOKEN_ID_BYTES}}})\.([0-9a-f]{{{2 * _SECRET_BYTES}}})"
    rf"\.([0-9a-f]{{{PIN_PREFIX_HEX_CHARS}}})$"
)
# 2: the fixed line's ISP on tokens and probes; 3: its advertised plan; 4: each probe's wards
_SCHEMA_VERSION = 4
FIXED_ISPS_FILE = "fixed_isps.csv"


class SiteClass(enum.StrEnum):
    """Where a probe stands; zone and office targets are computed per class."""

    HOUSEHOLD = "household"
    WARD_OFFICE = "ward_office"  # a ward's or commune's People's Committee
    # a department of the city (Sở, Ban, Ngành): with the ward offices, the
    # government offices whose LANs 87/KH-UBND moves to IPv6
    CITY_DEPARTMENT = "city_department"
    SCHOOL = "school"
    HEALTH_FACILITY = "health_facility"
    HIGH_TECH_PARK = "high_tech_park"
    IT_PARK = "it_park"
    INDUSTRIAL_ZONE = "industrial_zone"
    RD_CENTRE = "rd_centre"  # the R&D centres the city's 5G target names
    OTHER = "other"


class ProbeState(enum.StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


class RegistryError(Exception):
    """Base of the registry's errors."""


class TokenRefused(RegistryError):
    """A bootstrap token cannot be redeemed; the enrolment service answers
    UNAUTHENTICATED with this message."""

    reason = "TOKEN_REFUSED"


class TokenMalformed(TokenRefused):
    reason = "TOKEN_MALFORMED"


class TokenUnknown(TokenRefused):
    reason = "TOKEN_UNKNOWN"


class TokenUsed(TokenRefused):
    reason = "TOKEN_USED"


class TokenExpired(TokenRefused):
    reason = "TOKEN_EXPIRED"


class UnknownWard(RegistryError, ValueError):
    """The ward code is not a ward of the city."""


class UnknownIsp(RegistryError, ValueError):
    """The name is not one of the fixed-broadband ISPs in fixed_isps.csv."""


class BadPlan(RegistryError, ValueError):
    """An advertised plan speed that is not a positive number of Mb/s."""


class UnknownProbe(RegistryError, LookupError):
    """No probe with that id."""


class IdentityRefused(RegistryError):
    """A client certificate does not identify an active probe."""


class UnknownCertificate(IdentityRefused):
    """The certificate's serial was never issued by this registry's CA."""


class ProbeRevoked(IdentityRefused):
    """The certificate, or the probe it belongs to, has been revoked."""


@dataclass(frozen=True)
class ParsedToken:
    """The parts of a bootstrap token's text."""

    token_id: str
    secret: str
    ca_pin_prefix: str


@dataclass(frozen=True)
class TokenGrant:
    """What a redeemed token entitles the probe to."""

    token_id: str
    ward_code: int
    ward_name: str
    site_class: SiteClass
    isp: str | None = None  # the site's fixed-line ISP, canonical spelling
    # the fixed line's advertised plan speeds (QCVN 34's Vd, Vu); None: not recorded
    plan_down_mbps: float | None = None
    plan_up_mbps: float | None = None


@dataclass(frozen=True)
class WardPeriod:
    """From `since` until the probe's next period, it stood in `ward_code`."""

    ward_code: int
    since: datetime


@dataclass(frozen=True)
class ProbeIdentity:
    """Who is calling, from the client certificate (never from a message)."""

    probe_id: str
    ward_code: int  # where the probe is now
    site_class: SiteClass
    cert_serial: str = ""  # lower-case hex serial of the certificate it called with
    # every ward the probe has been in, oldest first (`ward_at`)
    ward_history: tuple[WardPeriod, ...] = ()

    def ward_at(self, moment: datetime) -> int:
        """The ward the probe was in at `moment`: the period that began last
        at or before it; before its first period (a clock a little behind at
        enrolment), the first ward."""
        ward = self.ward_history[0].ward_code if self.ward_history else self.ward_code
        for period in self.ward_history:
            if period.since > moment:
                break
            ward = period.ward_code
        return ward


@dataclass(frozen=True)
class ProbeRecord:
    """One enrolled probe as the registry holds it."""

    probe_id: str
    ward_code: int
    site_class: SiteClass
    hostname: str
    agent_version: str
    enrolled_at: datetime
    cert_serial: str  # lower-case hex
    cert_not_after: datetime
    state: ProbeState
    revoked_at: datetime | None
    isp: str | None = None  # the site's fixed-line ISP; None when not recorded
    # the fixed line's advertised plan speeds (QCVN 34's Vd, Vu); None: not recorded
    plan_down_mbps: float | None = None
    plan_up_mbps: float | None = None


def parse_plan_mbps(text: str) -> tuple[float, float]:
    """(download, upload) Mb/s of an advertised plan written "300/100" (down/up)
    or "300" (both); BadPlan unless both are positive finite numbers."""
    parts = [p.strip() for p in text.strip().split("/")]
    if len(parts) not in (1, 2) or not all(parts):
        raise BadPlan(
            f"plan {text!r}: give the advertised speeds in Mb/s as DOWN/UP (e.g. 300/100) "
            "or one number for both"
        )
    try:
        speeds = [float(p) for p in parts]
    except ValueError:
        raise BadPlan(
            f"plan {text!r}: {'/'.join(parts)} is not a number of Mb/s (e.g. 300/100)"
        ) from None
    down, up = speeds[0], speeds[-1]
    check_plan_mbps(down, up)
    return (down, up)


def check_plan_mbps(down_mbps: float | None, up_mbps: float | None) -> None:
    """BadPlan unless both speeds are given and positive and finite, or neither."""
    if (down_mbps is None) != (up_mbps is None):
        raise BadPlan("give both the plan's download and upload speeds, or neither")
    for what, value in (("download", down_mbps), ("upload", up_mbps)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise BadPlan(f"the plan's {what} speed must be a positive number of Mb/s, not {value}")


@cache
def _isp_spellings() -> tuple[tuple[str, ...], dict[str, str]]:
    """(canonical names in file order, {lower-case spelling: canonical name})."""
    text = resources.files("aggregator.enrolment").joinpath(FIXED_ISPS_FILE).read_text("utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    names: list[str] = []
    spellings: dict[str, str] = {}
    for row in csv.DictReader(lines):
        name = row["name"].strip()
        names.append(name)
        for spelling in [name, *(row.get("aliases") or "").split(";")]:
            if spelling.strip():
                spellings[" ".join(spelling.split()).casefold()] = name
    return tuple(names), spellings


def known_isps() -> tuple[str, ...]:
    """The canonical names of the fixed-broadband ISPs the registry accepts."""
    return _isp_spellings()[0]


def canonical_isp(name: str) -> str:
    """The canonical spelling of a fixed-broadband ISP's name ("fpt" -> "FPT
    Telecom"); case and repeated spaces do not matter, listed aliases are
    accepted. Raises UnknownIsp, naming the known ones, for any other name."""
    names, spellings = _isp_spellings()
    found = spellings.get(" ".join(name.split()).casefold())
    if found is None:
        raise UnknownIsp(
            f"{name!r} is not a known fixed-broadband ISP; known: {', '.join(names)}"
            f" (add it to aggregator/{FIXED_ISPS_FILE} if it is missing)"
        )
    return found


def parse_token(token: str) -> ParsedToken:
    """Split a token's text into id, secret and CA pin prefix.

    Raises TokenMalformed when it is not a wardprobe bootstrap token.
    """
    match = _TOKEN_RE.match(token.strip().lower())
    if match is None:
        raise TokenMalformed(
            f"not a wardprobe bootstrap token (expected {TOKEN_PREFIX}.<id>.<secret>.<pin>)"
        )
    return ParsedToken(token_id=match[1], secret=match[2], ca_pin_prefix=match[3])


def _secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _to_text(moment: datetime) -> str:
    """One fixed ISO 8601 UTC form, so stored times sort as text too."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _from_text(text: str) -> datetime:
    return datetime.fromisoformat(text)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS bootstrap_tokens (
    token_id          TEXT PRIMARY KEY,
    secret_sha256     TEXT NOT NULL,
    ward_code         INTEGER NOT NULL,
    site_class        TEXT NOT NULL,
    note              TEXT NOT NULL DEFAULT '',
    created_at        TEXT NOT NULL,
    expires_at        TEXT NOT NULL,
    used_at           TEXT,
    used_by_probe_id  TEXT,
    isp               TEXT,
    plan_down_mbps    DOUBLE PRECISION,
    plan_up_mbps      DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS probes (
    probe_id        TEXT PRIMARY KEY,
    ward_code       INTEGER NOT NULL,
    site_class      TEXT NOT NULL,
    hostname        TEXT NOT NULL,
    agent_version   TEXT NOT NULL,
    enrolled_at     TEXT NOT NULL,
    cert_serial     TEXT NOT NULL,
    cert_not_after  TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('active', 'revoked')),
    revoked_at      TEXT,
    token_id        TEXT REFERENCES bootstrap_tokens(token_id),
    isp             TEXT,
    plan_down_mbps  DOUBLE PRECISION,
    plan_up_mbps    DOUBLE PRECISION
);
CREATE TABLE IF NOT EXISTS issued_certificates (
    serial      TEXT PRIMARY KEY,
    probe_id    TEXT NOT NULL REFERENCES probes(probe_id),
    issued_at   TEXT NOT NULL,
    not_after   TEXT NOT NULL,
    revoked_at  TEXT
);
CREATE INDEX IF NOT EXISTS issued_certificates_probe ON issued_certificates(probe_id);
-- Every ward each probe has stood in: a row at enrolment and one per move.
-- A result counts in the ward of the period its measured_at falls in.
CREATE TABLE IF NOT EXISTS probe_wards (
    probe_id   TEXT NOT NULL REFERENCES probes(probe_id),
    since      TEXT NOT NULL,
    ward_code  INTEGER NOT NULL,
    PRIMARY KEY (probe_id, since)
);
"""

# The tables, each after those its rows refer to.
_TABLES_IN_ORDER = ("bootstrap_tokens", "probes", "issued_certificates", "probe_wards")

# Columns added after the first release: (table, column, SQL type). A file made
# by an older release gains them when it is opened; nothing stored changes.
_ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("bootstrap_tokens", "isp", "TEXT"),
    ("probes", "isp", "TEXT"),
    ("bootstrap_tokens", "plan_down_mbps", "DOUBLE PRECISION"),
    ("bootstrap_tokens", "plan_up_mbps", "DOUBLE PRECISION"),
    ("probes", "plan_down_mbps", "DOUBLE PRECISION"),
    ("probes", "plan_up_mbps", "DOUBLE PRECISION"),
)


class ProbeRegistry:
    """Tokens, probes and certificates, in a SQLite file or in PostgreSQL
    (`location`: a file's path, or a libpq URI; registry_db.py).

    `ward_lookup` validates ward codes and names them; `clock` is the source
    of "now" (tests move it to expire tokens).
    """

    def __init__(
        self, location: Path | str, ward_lookup: WardLookup, clock: Clock = _utc_now
    ) -> None:
        self._db = open_database(location)
        self.location = self._db.describe()
        self._ward_lookup = ward_lookup
        self._clock = clock
        self._db.create_schema(_SCHEMA)
        self._add_new_columns()

    def _add_new_columns(self) -> None:
        """Bring a registry made by an older release up to _SCHEMA. Inside one
        write transaction, so the aggregator and the admin CLI opening the
        same old registry at once do not both add a column."""
        with self._db.write_transaction() as conn:
            for table, column, type_ in _ADDED_COLUMNS:
                if column not in self._db.columns(conn, table):
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {type_}")
            # Before version 4 only the current ward was kept: a probe's history
            # starts as that ward since its enrolment (earlier moves are unknown).
            conn.execute(
                "INSERT INTO probe_wards (probe_id, since, ward_code)"
                " SELECT probe_id, enrolled_at, ward_code FROM probes p WHERE NOT EXISTS"
                " (SELECT 1 FROM probe_wards w WHERE w.probe_id = p.probe_id)"
            )
            if isinstance(self._db, SqliteDatabase):
                conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    def copy_into(self, target: ProbeRegistry) -> dict[str, int]:
        """Every row of this registry into `target`, in one transaction of
        `target`'s, which must hold no token and no probe yet (RegistryError
        otherwise): a city's registry.sqlite moved into PostgreSQL when its
        aggregator becomes replicas on several hosts. The rows copied, per table."""
        copied: dict[str, int] = {}
        with self._db.connect() as source, target._db.write_transaction() as conn:
            held = sum(
                int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                for table in ("bootstrap_tokens", "probes")
            )
            if held:
                raise RegistryError(
                    f"the probe registry {target.location} is not empty (it holds {held} "
                    "tokens and probes): copying into it could mix two registries' probes"
                )
            for table in _TABLES_IN_ORDER:
                columns = sorted(self._db.columns(source, table))
                names, marks = ", ".join(columns), ", ".join("?" * len(columns))
                rows = source.execute(f"SELECT {names} FROM {table}").fetchall()
                conn.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
                copied[table] = len(rows)
        return copied

    @classmethod
    def in_state_dir(
        cls, state_dir: Path, ward_lookup: WardLookup, clock: Clock = _utc_now
    ) -> ProbeRegistry:
        """The registry at `state_dir`/registry.sqlite."""
        return cls(state_dir / REGISTRY_FILE, ward_lookup, clock)

    @classmethod
    def at(
        cls,
        registry: str | None,
        state_dir: Path,
        ward_lookup: WardLookup,
        clock: Clock = _utc_now,
    ) -> ProbeRegistry:
        """The registry an aggregator is configured with: `registry` (a libpq
        URI: replicas on several hosts share it), else registry.sqlite in
        `state_dir`."""
        if registry is None:
            return cls.in_state_dir(state_dir, ward_lookup, clock)
        return cls(registry, ward_lookup, clock)

    def ward_name(self, ward_code: int) -> str:
        """The ward's name; UnknownWard when it is not a ward of the city."""
        name = self._ward_lookup(ward_code)
        if name is None:
            raise UnknownWard(f"{ward_code} is not a ward code of the city")
        return name

    # -- bootstrap tokens -------------------------------------------------

    def create_token(
        self,
        ward_code: int,
        site_class: SiteClass,
        ttl: timedelta,
        ca_pin: str,
        note: str = "",
        isp: str | None = None,
        plan_mbps: tuple[float, float] | None = None,
    ) -> str:
        """Create a one-time token that enrols one probe into `ward_code`.

        `ca_pin` is the CA's pin (`CertificateAuthority.pin`); its first 16
        hex characters go into the token so the probe can check the CA
        before it sends the token. `isp` is the site's fixed-broadband ISP
        (any spelling `canonical_isp` accepts; UnknownIsp otherwise); the
        probe enrolled with the token carries it, and the fixed line's
        advertised plan speeds `plan_mbps` (download, upload Mb/s; BadPlan
        unless positive). Returns the token text; it is not stored.
        """
        self.ward_name(ward_code)
        site_class = SiteClass(site_class)
        isp = None if isp is None else canonical_isp(isp)
        down, up = (None, None) if plan_mbps is None else plan_mbps
        check_plan_mbps(down, up)
        if ttl <= timedelta(0):
            raise ValueError("a token's time to live must be positive")
        pin = ca_pin.lower()
        if not re.fullmatch(r"[0-9a-f]{64}", pin):
            raise ValueError("ca_pin must be the 64-hex-digit SHA-256 of the CA certificate")
        token_id = secrets.token_hex(_TOKEN_ID_BYTES)
        secret = secrets.token_hex(_SECRET_BYTES)
        now = self._clock()
        with self._db.write_transaction() as conn:
            conn.execute(
                "INSERT INTO bootstrap_tokens (token_id, secret_sha256, ward_code, site_class,"
                " note, created_at, expires_at, isp, plan_down_mbps, plan_up_mbps)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    token_id,
                    _secret_digest(secret),
                    ward_code,
                    site_class.value,
                    note,
                    _to_text(now),
                    _to_text(now + ttl),
                    isp,
                    down,
                    up,
                ),
            )
        return f"{TOKEN_PREFIX}.{token_id}.{secret}.{pin[:PIN_PREFIX_HEX_CHARS]}"

    def _check_token_row(self, conn: Connection, parsed: ParsedToken, now: datetime) -> TokenGrant:
        row = conn.execute(
            "SELECT secret_sha256, ward_code, site_class, expires_at, used_at, isp,"
            " plan_down_mbps, plan_up_mbps FROM bootstrap_tokens WHERE token_id = ?",
            (parsed.token_id,),
        ).fetchone()
        # A wrong secret reads the same as an unknown id: no hint to a guesser.
        if row is None or not hmac.compare_digest(row[0], _secret_digest(parsed.secret)):
            raise TokenUnknown("the bootstrap token is not known to this aggregator")
        if row[4] is not None:
            raise TokenUsed("the bootstrap token has already been used; ask for a new one")
        if now >= _from_text(row[3]):
            raise TokenExpired("the bootstrap token has expired; ask for a new one")
        return TokenGrant(
            token_id=parsed.token_id,
            ward_code=int(row[1]),
            ward_name=self.ward_name(int(row[1])),
            site_class=SiteClass(row[2]),
            isp=None if row[5] is None else str(row[5]),
            plan_down_mbps=None if row[6] is None else float(row[6]),
            plan_up_mbps=None if row[7] is None else float(row[7]),
        )

    def check_token(self, token: str) -> TokenGrant:
        """What `token` would grant, without using it up.

        Raises TokenMalformed, TokenUnknown, TokenUsed or TokenExpired.
        """
        parsed = parse_token(token)
        with self._db.connect() as conn:
            return self._check_token_row(conn, parsed, self._clock())

    def redeem_token(self, token: str) -> TokenGrant:
        """Use up a token. Of concurrent redemptions of one token exactly one
        succeeds; the others get TokenUsed."""
        parsed = parse_token(token)
        now = self._clock()
        with self._db.write_transaction() as conn:
            grant = self._check_token_row(conn, parsed, now)
            conn.execute(
                "UPDATE bootstrap_tokens SET used_at = ? WHERE token_id = ? AND used_at IS NULL",
                (_to_text(now), parsed.token_id),
            )
        return grant

    # -- probes -----------------------------------------------------------

    def record_probe(
        self,
        probe_id: str,
        grant: TokenGrant,
        hostname: str,
        agent_version: str,
        cert_serial: str,
        cert_not_after: datetime,
    ) -> ProbeRecord:
        """Record a newly enrolled probe and its first certificate."""
        now = self._clock()
        with self._db.write_transaction() as conn:
            conn.execute(
                "INSERT INTO probes (probe_id, ward_code, site_class, hostname, agent_version,"
                " enrolled_at, cert_serial, cert_not_after, state, token_id, isp,"
                " plan_down_mbps, plan_up_mbps)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?)",
                (
                    probe_id,
                    grant.ward_code,
                    grant.site_class.value,
                    hostname,
                    agent_version,
                    _to_text(now),
                    cert_serial,
                    _to_text(cert_not_after),
                    grant.token_id,
                    grant.isp,
                    grant.plan_down_mbps,
                    grant.plan_up_mbps,
                ),
            )
            conn.execute(
                "INSERT INTO issued_certificates (serial, probe_id, issued_at, not_after)"
                " VALUES (?, ?, ?, ?)",
                (cert_serial, probe_id, _to_text(now), _to_text(cert_not_after)),
            )
            conn.execute(
                "INSERT INTO probe_wards (probe_id, since, ward_code) VALUES (?, ?, ?)",
                (probe_id, _to_text(now), grant.ward_code),
            )
            conn.execute(
                "UPDATE bootstrap_tokens SET used_by_probe_id = ? WHERE token_id = ?",
                (probe_id, grant.token_id),
            )
        return self.get_probe(probe_id)

    def new_probe_id(self) -> str:
        """A fresh probe id, e.g. "wp-3f9a1c2e7b"; not tied to a ward, since a
        probe can be moved."""
        return f"wp-{secrets.token_hex(5)}"

    def get_probe(self, probe_id: str) -> ProbeRecord:
        """One probe; UnknownProbe when there is none with that id."""
        with self._db.connect() as conn:
            row = conn.execute(
                f"SELECT {_PROBE_COLUMNS} FROM probes WHERE probe_id = ?", (probe_id,)
            ).fetchone()
        if row is None:
            raise UnknownProbe(f"no probe {probe_id!r}")
        return _probe_from_row(row)

    def list_probes(self, state: ProbeState | None = None) -> list[ProbeRecord]:
        """All probes (or those in `state`), oldest enrolment first."""
        with self._db.connect() as conn:
            if state is None:
                rows = conn.execute(
                    f"SELECT {_PROBE_COLUMNS} FROM probes ORDER BY enrolled_at, probe_id"
                ).fetchall()
            else:
                rows = conn.execute(
                    f"SELECT {_PROBE_COLUMNS} FROM probes WHERE state = ?"
                    " ORDER BY enrolled_at, probe_id",
                    (ProbeState(state).value,),
                ).fetchall()
        return [_probe_from_row(row) for row in rows]

    def revoke(self, probe_id: str) -> ProbeRecord:
        """Revoke a probe and every certificate issued to it. Its next call
        on the mTLS port is refused. Revoking twice keeps the first time."""
        now = _to_text(self._clock())
        with self._db.write_transaction() as conn:
            changed = conn.execute(
                "UPDATE probes SET state = 'revoked', revoked_at = COALESCE(revoked_at, ?)"
                " WHERE probe_id = ?",
                (now, probe_id),
            ).rowcount
            if changed == 0:
                raise UnknownProbe(f"no probe {probe_id!r}")
            conn.execute(
                "UPDATE issued_certificates SET revoked_at = ?"
                " WHERE probe_id = ? AND revoked_at IS NULL",
                (now, probe_id),
            )
        return self.get_probe(probe_id)

    def move_probe(self, probe_id: str, ward_code: int) -> ProbeRecord:
        """Assign a probe to another ward (the box was moved), from now on.

        The move is added to the probe's ward history: results measured
        before it keep the ward they were taken in, whenever they arrive;
        those measured from now on count in the new ward. Moving a probe to
        the ward it is in changes nothing."""
        self.ward_name(ward_code)
        now = _to_text(self._clock())
        with self._db.write_transaction() as conn:
            row = conn.execute(
                "SELECT ward_code FROM probes WHERE probe_id = ?", (probe_id,)
            ).fetchone()
            if row is None:
                raise UnknownProbe(f"no probe {probe_id!r}")
            if int(row[0]) != ward_code:
                conn.execute(
                    "UPDATE probes SET ward_code = ? WHERE probe_id = ?", (ward_code, probe_id)
                )
                # A second move within the same microsecond replaces the first.
                conn.execute(
                    "INSERT INTO probe_wards (probe_id, since, ward_code) VALUES (?, ?, ?)"
                    " ON CONFLICT (probe_id, since) DO UPDATE SET ward_code = excluded.ward_code",
                    (probe_id, now, ward_code),
                )
        return self.get_probe(probe_id)

    def ward_history(self, probe_id: str) -> tuple[WardPeriod, ...]:
        """Every ward the probe has stood in, oldest first; UnknownProbe if none."""
        with self._db.connect() as conn:
            history = _ward_history(conn, probe_id)
        if not history:
            raise UnknownProbe(f"no probe {probe_id!r}")
        return history

    def set_probe_isp(self, probe_id: str, isp: str | None) -> ProbeRecord:
        """Record the fixed-broadband ISP of a probe's site (None: not known).

        The indicators attribute every result of the probe, past ones too,
        to the ISP held here: use it to correct a wrong entry. When the
        household really changes ISP, enrol the box anew with a token for
        the new ISP, so results before and after stay apart."""
        canonical = None if isp is None else canonical_isp(isp)
        return self._update_probe(probe_id, "isp = ?", (canonical,))

    def set_probe_plan(self, probe_id: str, plan_mbps: tuple[float, float] | None) -> ProbeRecord:
        """Record the advertised (download, upload) Mb/s of the fixed line's
        plan at a probe's site (None: not known); BadPlan unless positive.

        Like the ISP, the indicators judge every result of the probe, past
        ones too, against the plan held here: use it to record or correct
        it. When the household changes plan, enrol the box anew with a token
        carrying the new plan, so results before and after stay apart."""
        down, up = (None, None) if plan_mbps is None else plan_mbps
        check_plan_mbps(down, up)
        return self._update_probe(probe_id, "plan_down_mbps = ?, plan_up_mbps = ?", (down, up))

    def _update_probe(
        self, probe_id: str, assignments: str, values: tuple[object, ...]
    ) -> ProbeRecord:
        """SET `assignments` (this module's literal SQL, `?` for `values`) on
        one probe; UnknownProbe if there is none."""
        with self._db.write_transaction() as conn:
            changed = conn.execute(
                f"UPDATE probes SET {assignments} WHERE probe_id = ?", (*values, probe_id)
            ).rowcount
            if changed == 0:
                raise UnknownProbe(f"no probe {probe_id!r}")
        return self.get_probe(probe_id)

    def identify(self, peer_cert_pem: bytes) -> ProbeIdentity:
        """The probe behind a client certificate already verified by TLS.

        Call it on every RPC of the mTLS port with the PEM from
        `context.auth_context()["x509_pem_cert"][0]`. Raises
        UnknownCertificate when the serial was never issued here (or the
        subject does not match the probe), ProbeRevoked when the certificate
        or its probe has been revoked.
        """
        try:
            cert = x509.load_pem_x509_certificate(peer_cert_pem)
        except ValueError as exc:
            # The parser's text stays in the log (its cause); the client gets these words.
            raise UnknownCertificate("the client certificate cannot be read") from exc
        serial = serial_hex(cert.serial_number)
        identity = self.identify_serial(serial)
        common_names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        if [attr.value for attr in common_names] != [identity.probe_id]:
            raise UnknownCertificate(
                f"certificate serial {serial} does not name probe {identity.probe_id}"
            )
        return identity

    def identify_serial(self, serial: str) -> ProbeIdentity:
        """The probe holding the certificate with this (hex) serial, as the
        registry has it now: its state, ward and ward history. `identify`
        checks a certificate once; an open stream calls this again for each
        batch, so a revocation or a move reaches streams already open.
        Raises UnknownCertificate or ProbeRevoked like `identify`."""
        conn = self._db.reader()
        rows = conn.execute(
            "SELECT c.probe_id, c.revoked_at, p.state, p.ward_code, p.site_class"
            " FROM issued_certificates c JOIN probes p ON p.probe_id = c.probe_id"
            " WHERE c.serial = ?",
            (serial,),
        ).fetchall()
        if not rows:
            raise UnknownCertificate(f"certificate serial {serial} was not issued here")
        probe_id, cert_revoked_at, state, ward_code, site_class = rows[0]
        history = _ward_history(conn, str(probe_id))
        if cert_revoked_at is not None or state == ProbeState.REVOKED:
            raise ProbeRevoked(f"probe {probe_id} has been revoked")
        return ProbeIdentity(
            probe_id=str(probe_id),
            ward_code=int(ward_code),
            site_class=SiteClass(site_class),
            cert_serial=serial,
            ward_history=history or (WardPeriod(int(ward_code), _EPOCH),),
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ward_history(conn: Connection, probe_id: str) -> tuple[WardPeriod, ...]:
    rows = conn.execute(
        "SELECT ward_code, since FROM probe_wards WHERE probe_id = ? ORDER BY since",
        (probe_id,),
    ).fetchall()
    return tuple(WardPeriod(int(ward), _from_text(str(since))) for ward, since in rows)


_PROBE_COLUMNS = (
    "probe_id, ward_code, site_class, hostname, agent_version, enrolled_at,"
    " cert_serial, cert_not_after, state, revoked_at, isp, plan_down_mbps, plan_up_mbps"
)


def _probe_from_row(row: tuple[object, ...]) -> ProbeRecord:
    (
        probe_id,
        ward_code,
        site_class,
        hostname,
        agent_version,
        enrolled_at,
        cert_serial,
        cert_not_after,
        state,
        revoked_at,
        isp,
        plan_down_mbps,
        plan_up_mbps,
    ) = row
    return ProbeRecord(
        probe_id=str(probe_id),
        ward_code=int(str(ward_code)),
        site_class=SiteClass(str(site_class)),
        hostname=str(hostname),
        agent_version=str(agent_version),
        enrolled_at=_from_text(str(enrolled_at)),
        cert_serial=str(cert_serial),
        cert_not_after=_from_text(str(cert_not_after)),
        state=ProbeState(str(state)),
        revoked_at=None if revoked_at is None else _from_text(str(revoked_at)),
        isp=None if isp is None else str(isp),
        plan_down_mbps=None if plan_down_mbps is None else float(str(plan_down_mbps)),
        plan_up_mbps=None if plan_up_mbps is None else float(str(plan_up_mbps)),
    )
