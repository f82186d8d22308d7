"""Read tokens of the HTTP API: `wardprobe-aggregator api-token create|list|revoke`.

A token is `wpapi.<id>.<secret>`: the id (12 hex digits) names it in
`list` and `revoke`, the secret (32 random bytes, URL-safe base64) is what
proves it. Only the secret's SHA-256 is stored, so a copy of the file
gives no token; a presented secret is hashed and compared in constant time
(hmac.compare_digest). A high-entropy secret needs no slow hash: there is
nothing to guess.

The tokens live in a file of their own in the state directory,
api_tokens.sqlite (mode 0600), not in the probe registry: an API host of
its own (`api serve` on another machine) needs the tokens and the server
certificate, never the registry of probes and bootstrap tokens.

What is written: a token's creation and revocation (by the command) and its
last use (by the API, at most once a minute per token: the one write the
API makes, never to the store).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import re
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

TOKENS_FILE: Final = "api_tokens.sqlite"
TOKEN_PREFIX: Final = "wpapi"
# A token's last use is written at most this often (the API reads the file
# on every request; a write per request would be a write per request).
LAST_USED_RESOLUTION: Final = timedelta(minutes=1)
_TOKEN = re.compile(rf"^{TOKEN_PREFIX}\.([0-9a-f]{{12}})\.([A-Za-z0-9_-]{{43}})$")
_SCHEMA = """
create table if not exists api_tokens (
    token_id      text primary key,
    name          text not null,
    secret_sha256 text not null,
    created_at    text not null,
    last_used_at  text,
    revoked_at    text
)
"""
# Compared against when the id is unknown, so that an unknown id and a
# wrong secret take the same path.
_NO_DIGEST: Final = hashlib.sha256(b"no such token").hexdigest()


class TokenError(Exception):
    """A token command that cannot be done (unknown id, empty name)."""


@dataclass(frozen=True)
class ApiToken:
    """One read token, as `api-token list` shows it (never its secret)."""

    token_id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        """Not revoked."""
        return self.revoked_at is None


def _now() -> datetime:
    return datetime.now(UTC)


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _moment(text: object) -> datetime | None:
    return None if text is None else datetime.fromisoformat(str(text))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _row_token(row: tuple[object, ...]) -> ApiToken:
    return ApiToken(
        token_id=str(row[0]),
        name=str(row[1]),
        created_at=datetime.fromisoformat(str(row[2])),
        last_used_at=_moment(row[3]),
        revoked_at=_moment(row[4]),
    )


class ApiTokenStore:
    """The API's read tokens in `path` (created on the first token)."""

    def __init__(self, path: Path, clock: Callable[[], datetime] = _now) -> None:
        self.path = path
        self._clock = clock
        self._written: dict[str, datetime] = {}

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> ApiTokenStore:
        """The tokens of the aggregator whose state directory is `state_dir`."""
        return cls(state_dir / TOKENS_FILE)

    @contextlib.contextmanager
    def _connect(self, *, create: bool = False) -> Iterator[sqlite3.Connection]:
        if create and not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # made 0600 before anything is in it
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        con = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            if create:
                con.execute(_SCHEMA)
            yield con
        finally:
            con.close()

    def create(self, name: str) -> tuple[ApiToken, str]:
        """A new token named `name` (who or what it is for): the token and
        its text, which is shown once and never stored."""
        name = name.strip()
        if not name:
            raise TokenError("give the token a name (who or what it is for)")
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        created = self._clock()
        with self._connect(create=True) as con:
            con.execute(
                "insert into api_tokens (token_id, name, secret_sha256, created_at) "
                "values (?, ?, ?, ?)",
                (token_id, name, _digest(secret), _text(created)),
            )
        token = ApiToken(token_id, name, datetime.fromisoformat(_text(created)), None, None)
        return token, f"{TOKEN_PREFIX}.{token_id}.{secret}"

    def list(self) -> list[ApiToken]:
        """Every token, revoked ones too, oldest first."""
        if not self.path.exists():
            return []
        with self._connect() as con:
            rows = con.execute(
                "select token_id, name, created_at, last_used_at, revoked_at "
                "from api_tokens order by created_at, token_id"
            ).fetchall()
        return [_row_token(r) for r in rows]

    def revoke(self, token_id: str) -> ApiToken:
        """Revoke the token `token_id`: the API refuses it from its next request on."""
        if not self.path.exists():
            raise TokenError(f"no API token {token_id!r} (none has been created)")
        with self._connect() as con:
            con.execute(
                "update api_tokens set revoked_at = coalesce(revoked_at, ?) where token_id = ?",
                (_text(self._clock()), token_id),
            )
            row = con.execute(
                "select token_id, name, created_at, last_used_at, revoked_at "
                "from api_tokens where token_id = ?",
                (token_id,),
            ).fetchone()
        if row is None:
            raise TokenError(f"no API token {token_id!r} (`api-token list` shows them)")
        return _row_token(row)

    def check(self, presented: str) -> ApiToken | None:
        """The active token whose text is `presented`, or None (malformed,
        unknown, wrong secret, revoked). Records its use (LAST_USED_RESOLUTION)."""
        match = _TOKEN.match(presented)
        if match is None or not self.path.exists():
            return None
        token_id, secret = match[1], match[2]
        with self._connect() as con:
            row = con.execute(
                "select token_id, name, created_at, last_used_at, revoked_at, secret_sha256 "
                "from api_tokens where token_id = ?",
                (token_id,),
            ).fetchone()
        stored = _NO_DIGEST if row is None else str(row[5])
        if not hmac.compare_digest(_digest(secret), stored) or row is None:
            return None
        token = _row_token(row[:5])
        if not token.active:
            return None
        self._record_use(token)
        return token

    def _record_use(self, token: ApiToken) -> None:
        now = self._clock()
        last = self._written.get(token.token_id) or token.last_used_at
        if last is not None and now - last < LAST_USED_RESOLUTION:
            return
        self._written[token.token_id] = now
        try:
            with self._connect() as con:
                con.execute(
                    "update api_tokens set last_used_at = ? where token_id = ?",
                    (_text(now), token.token_id),
                )
        except sqlite3.Error as err:
            # A read-only copy of the file on an API host: the token still works.
            log.warning("cannot record the use of API token %s: %s", token.token_id, err)
