"""Every request to the API needs an active read token, over real TLS:
none, a wrong one, a malformed one or a revoked one gets 401 with a body
that says nothing else and WWW-Authenticate: Bearer, whatever the path."""

from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from aggregator.cli import app
from tests.aggregator.api.conftest import RunningApi, create_token

PATHS = [
    "/health",
    "/wards",
    "/indicators?period=2026",
    "/maps/gigabit_capable_share.geojson",
    "/report/2026.html",
    "/sampling",
    "/openapi.json",
    "/no/such/path",
]


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": "unauthorized"}


@pytest.mark.parametrize("path", PATHS)
def test_no_token_is_refused_on_every_path(api: RunningApi, path: str) -> None:
    with api.anonymous() as client:
        assert_refused(client.get(path))


@pytest.mark.parametrize(
    "header",
    [
        "Bearer wpapi.000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  # unknown id
        "Bearer not-a-token",
        "Basic dXNlcjpwYXNz",
        "Bearer",
    ],
)
def test_wrong_tokens_are_refused(api: RunningApi, header: str) -> None:
    with api.anonymous() as client:
        assert_refused(client.get("/health", headers={"Authorization": header}))


def test_right_id_with_a_wrong_secret_is_refused(api: RunningApi) -> None:
    prefix, token_id, secret = api.data.token.split(".")
    forged = f"{prefix}.{token_id}.{'A' * len(secret)}"
    with api.client(forged) as client:
        assert_refused(client.get("/health"))
    with api.client() as client:
        assert client.get("/health").status_code == 200


def test_a_revoked_token_is_refused_from_its_next_request(api: RunningApi) -> None:
    token = create_token(api.data.state_dir, "revoked in a test")
    with api.client(token) as client:
        assert client.get("/health").status_code == 200
        token_id = token.split(".")[1]
        revoked = CliRunner().invoke(
            app, ["api-token", "revoke", token_id, "--state-dir", str(api.data.state_dir)]
        )
        assert revoked.exit_code == 0, revoked.output
        assert_refused(client.get("/health"))
    listed = CliRunner().invoke(app, ["api-token", "list", "--state-dir", str(api.data.state_dir)])
    row = next(line for line in listed.output.splitlines() if token_id in line)
    assert "never" not in row  # its use was recorded before it was revoked


def test_the_certificate_is_the_aggregators(api: RunningApi) -> None:
    # a client that does not trust the aggregator's CA does not get through
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{api.url}/health", verify=True)
