"""Read tokens: only a hash of the secret is kept (file mode 0600), a token
works until revoked, a wrong secret of a known id does not, the last use
is recorded at most once a minute; and the `api-token` commands."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aggregator.api.tokens import TOKENS_FILE, ApiTokenStore, TokenError
from aggregator.cli import app


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_only_a_hash_is_kept(tmp_path: Path) -> None:
    store = ApiTokenStore.in_state_dir(tmp_path)
    token, text = store.create("GIS team")
    secret = text.split(".")[2]
    data = (tmp_path / TOKENS_FILE).read_bytes()
    assert secret.encode() not in data
    assert stat.S_IMODE((tmp_path / TOKENS_FILE).stat().st_mode) == 0o600
    assert store.check(text) == token


def test_wrong_malformed_and_revoked_tokens(tmp_path: Path) -> None:
    store = ApiTokenStore(tmp_path / "t.sqlite")
    assert store.check("wpapi.0123456789ab." + "A" * 43) is None  # no file yet
    token, text = store.create("report desk")
    other, other_text = store.create("GIS team")
    prefix, token_id, _ = text.split(".")
    assert store.check(f"{prefix}.{token_id}.{other_text.split('.')[2]}") is None
    assert store.check(text + "x") is None
    assert store.check(text.upper()) is None
    store.revoke(token.token_id)
    assert store.check(text) is None
    assert store.check(other_text) == other  # the other goes on working
    with pytest.raises(TokenError, match="no API token 'ffffffffffff'"):
        store.revoke("ffffffffffff")


def test_last_use_is_recorded_at_most_once_a_minute(tmp_path: Path) -> None:
    clock = Clock()
    store = ApiTokenStore(tmp_path / "t.sqlite", clock)
    _, text = store.create("desk")
    first = clock.now
    clock.now += timedelta(seconds=5)
    store.check(text)
    assert store.list()[0].last_used_at == first + timedelta(seconds=5)
    clock.now += timedelta(seconds=30)
    store.check(text)  # within the minute: not written again
    assert store.list()[0].last_used_at == first + timedelta(seconds=5)
    clock.now += timedelta(minutes=2)
    # a new process (no memory of the last write) reads it from the file
    ApiTokenStore(tmp_path / "t.sqlite", clock).check(text)
    assert store.list()[0].last_used_at == clock.now.replace(microsecond=0)


def test_api_token_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    state = ["--state-dir", str(tmp_path)]
    listed = runner.invoke(app, ["api-token", "list", *state])
    assert listed.exit_code == 0 and "no API token" in listed.output
    created = runner.invoke(app, ["api-token", "create", "--name", "Sở KH&CN", *state])
    assert created.exit_code == 0, created.output
    text = created.output.strip().splitlines()[-1]
    token_id = text.split(".")[1]
    listed = runner.invoke(app, ["api-token", "list", *state])
    assert token_id in listed.output and "Sở KH&CN" in listed.output
    assert text.split(".")[2] not in listed.output  # the secret is shown once only
    revoked = runner.invoke(app, ["api-token", "revoke", token_id, *state])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    unknown = runner.invoke(app, ["api-token", "revoke", "ffffffffffff", *state])
    assert unknown.exit_code == 1 and "no API token" in unknown.output
    empty = runner.invoke(app, ["api-token", "create", "--name", " ", *state])
    assert empty.exit_code == 1 and "name" in empty.output
