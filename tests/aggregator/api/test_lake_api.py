"""The API on a lake (no snapshot file): it reads the lake read-only, as of
one committed snapshot pinned for a while, and answers what it answers from
the embedded file holding the same data; the token check is the same."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from aggregator.api.app import PREFIX, ApiSettings, create_app
from aggregator.api.server import STORE_ENV, data_source
from aggregator.api.source import DataSource, LakeSource, LakeVersion
from aggregator.api.tokens import ApiTokenStore
from aggregator.cli import app
from aggregator.config import AggregatorConfig, LakeSpec, parse_store_spec
from aggregator.enrolment.ca import init_ca
from aggregator.ingest.lake import connect_lake
from emulation.deployment import free_tcp_port
from tests.aggregator.api.conftest import ApiData, create_token, wait_until_up
from tests.aggregator.conftest import assert_close
from tests.conftest import lake_copy

QUERY = {"period": "2026", "synthetic": "true"}


@pytest.fixture(scope="module")
def lake(
    request: pytest.FixtureRequest, small_city: Path, tmp_path_factory: pytest.TempPathFactory
) -> LakeSpec:
    """A lake holding what `city` holds (skips only without PostgreSQL)."""
    spec = lake_copy(
        request.getfixturevalue("postgres"), small_city, tmp_path_factory.mktemp("lake")
    )
    parsed = parse_store_spec(spec)
    assert isinstance(parsed, LakeSpec)
    return parsed


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> tuple[ApiTokenStore, str]:
    store = ApiTokenStore(tmp_path_factory.mktemp("tokens") / "api_tokens.sqlite")
    _, token = store.create("tests")
    return store, token


def _client(source: DataSource | LakeSource, tokens: tuple[ApiTokenStore, str]) -> TestClient:
    app = create_app(ApiSettings(source, tokens[0], poll_s=None))
    return TestClient(app, headers={"Authorization": f"Bearer {tokens[1]}"})


@pytest.fixture(scope="module")
def on_lake(
    lake: LakeSpec, tokens: tuple[ApiTokenStore, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """The API of a config whose store is the lake (what `api serve` builds)."""
    config = AggregatorConfig(state_dir=tmp_path_factory.mktemp("state"))
    source = data_source(
        config.with_store(f"ducklake:{lake.catalogue_uri}&data_path={lake.data_path}")
    )
    assert isinstance(source, LakeSource)
    with _client(source, tokens) as client:
        yield client


@pytest.fixture(scope="module")
def on_file(small_city: Path, tokens: tuple[ApiTokenStore, str]) -> Iterator[TestClient]:
    with _client(DataSource(small_city, "store"), tokens) as client:
        yield client


def test_indicators_on_the_lake_equal_those_on_the_file(
    on_lake: TestClient, on_file: TestClient
) -> None:
    from_lake = on_lake.get(f"{PREFIX}/indicators", params=QUERY)
    from_file = on_file.get(f"{PREFIX}/indicators", params=QUERY)

    assert from_lake.status_code == 200, from_lake.text
    assert from_file.status_code == 200, from_file.text
    body = from_lake.json()
    assert any(f["value"] is not None for f in body["figures"])
    assert_close(body, from_file.json())


def test_a_ward_map_on_the_lake_equals_the_one_on_the_file(
    on_lake: TestClient, on_file: TestClient
) -> None:
    path = f"{PREFIX}/maps/fixed_download_mean.geojson"
    from_lake = on_lake.get(path, params=QUERY)
    from_file = on_file.get(path, params=QUERY)

    assert from_lake.status_code == 200, from_lake.text
    assert from_lake.headers["content-type"] == "application/geo+json"
    assert_close(json.loads(from_lake.content), json.loads(from_file.content))


def test_health_says_lake_and_the_token_is_checked_as_ever(
    on_lake: TestClient, lake: LakeSpec
) -> None:
    health = on_lake.get(f"{PREFIX}/health")
    refused = on_lake.get(f"{PREFIX}/health", headers={"Authorization": "Bearer wpapi.x.y"})

    assert health.status_code == 200, health.text
    assert health.json()["source"] == "lake"
    assert health.json()["data_written_at"] is not None
    assert refused.status_code == 401
    assert refused.json() == {"detail": "unauthorized"}


def test_a_pinned_snapshot_is_read_until_refresh_then_the_newest(
    tmp_path: Path, lake_spec: str
) -> None:
    spec = parse_store_spec(lake_spec)
    assert isinstance(spec, LakeSpec)
    writer = connect_lake(spec)
    writer.execute("create table lake.main.t (v integer)")
    writer.execute("insert into t values (1)")
    pinned, fresh = LakeSource(spec, refresh_s=3600), LakeSource(spec, refresh_s=0)
    first = pinned.identity()
    assert isinstance(first, LakeVersion)

    writer.execute("insert into t values (2)")  # committed after the pin

    assert pinned.identity() == first
    with pinned.connect(first) as (con, version):
        assert version == first
        assert con.execute("select count(*) from t").fetchone() == (1,)
    newest = fresh.identity()
    assert newest.snapshot_id > first.snapshot_id
    with fresh.connect(newest) as (con, _):
        assert con.execute("select count(*) from t").fetchone() == (2,)
    writer.close()


def test_an_unreachable_lake_is_no_data_without_its_address(tmp_path: Path) -> None:
    from aggregator.api.source import NoData

    spec = parse_store_spec(
        f"ducklake:postgres://nobody@/none?host={tmp_path}&data_path={tmp_path / 'data'}"
    )
    assert isinstance(spec, LakeSpec)
    with pytest.raises(NoData, match=r"^the lake cannot be read \(details in the API's log\)$"):
        LakeSource(spec, refresh_s=300).identity()


def test_api_serve_reads_the_lake_serve_hands_it(
    lake: LakeSpec, small_city: Path, tmp_path: Path
) -> None:
    # `serve --store LAKE` hands the lake to its API child in the environment
    # (not on the command line, where a password in it would show).
    state_dir = tmp_path / "state"
    init_ca(state_dir, ["localhost", "127.0.0.1"])
    data = ApiData(small_city, tmp_path / "no-snapshot", state_dir, create_token(state_dir, "t"))
    port = free_tcp_port()
    config = tmp_path / "aggregator.toml"
    config.write_text(f'state_dir = "{state_dir}"\napi_listen = "127.0.0.1:{port}"\n', "utf-8")
    spec = f"ducklake:{lake.catalogue_uri}&data_path={lake.data_path}"
    process = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "api", "serve", "--config", str(config)],
        env=dict(os.environ, **{STORE_ENV: spec}),
    )
    url = f"https://127.0.0.1:{port}/api/v1"
    try:
        wait_until_up(url, data, process)
        headers = {"Authorization": f"Bearer {data.token}"}
        # a generous timeout: a guard against a hung server, not a claim about speed
        with httpx.Client(base_url=url, verify=data.tls(), headers=headers, timeout=600) as client:
            health = client.get("/health")
            assert health.status_code == 200, health.text
            assert health.json()["source"] == "lake"
            assert client.get("/indicators", params=QUERY).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)


def test_serve_does_not_ask_a_lake_for_a_snapshot(tmp_path: Path) -> None:
    # The API reads a lake itself; only the embedded store needs snapshot_path.
    # (This lake is unreachable: serve then stops, saying so.)
    config = tmp_path / "aggregator.toml"
    lake = f"ducklake:postgres://nobody@/none?host={tmp_path}&data_path={tmp_path / 'data'}"
    config.write_text(
        f'state_dir = "{tmp_path}"\nstore = "{lake}"\napi_listen = "127.0.0.1:{free_tcp_port()}"\n',
        "utf-8",
    )
    result = CliRunner().invoke(app, ["serve", "--config", str(config)])

    assert "snapshot_path" not in result.output
    assert result.exit_code == 1, result.output
    assert "cannot use the lake" in result.output


def test_wards_on_the_lake_equal_those_on_the_file(
    on_lake: TestClient, on_file: TestClient
) -> None:
    from_lake = on_lake.get(f"{PREFIX}/wards", params={"synthetic": "true"})

    assert from_lake.status_code == 200, from_lake.text
    assert sum(w["probes"] for w in from_lake.json()["wards"]) > 0
    assert from_lake.json() == on_file.get(f"{PREFIX}/wards", params={"synthetic": "true"}).json()
