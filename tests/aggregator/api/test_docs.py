"""docs/api.md matches the code: every route the app serves is in its table
and no other; the query parameters it names are the routes' own."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.routing import APIRoute

from aggregator.api.app import PREFIX, ApiSettings, create_app
from aggregator.api.source import DataSource
from aggregator.api.tokens import ApiTokenStore

DOC = Path(__file__).resolve().parents[3] / "docs" / "api.md"


def _routes(tmp_path: Path) -> dict[str, set[str]]:
    app = create_app(
        ApiSettings(
            DataSource(tmp_path / "none.duckdb", "snapshot"),
            ApiTokenStore(tmp_path / "t.sqlite"),
            poll_s=None,
        )
    )
    out = {}
    for route in app.routes:
        if isinstance(route, APIRoute):
            path = route.path.removeprefix(PREFIX)
            out[path] = {p.alias for p in route.dependant.query_params}
    return out


def test_the_route_table_is_the_apps(tmp_path: Path) -> None:
    text = DOC.read_text("utf-8")
    documented: dict[str, set[str]] = {}
    for cell in re.findall(r"^\| `(/[^`]+)` \|", text, flags=re.MULTILINE):
        path, _, query = cell.partition("?")
        # "/maps/{indicator}.{geojson,csv,png,html}" is the route "/maps/{name}"
        path = re.sub(r"/\{[a-z]+\}\.\{[a-z,]+\}$", "/{name}", path)
        documented[path] = {p.partition("=")[0] for p in query.split("&") if p}
    routes = _routes(tmp_path)
    assert set(documented) == set(routes) | {"/openapi.json"}
    for path, params in routes.items():
        assert documented[path] == params, path
