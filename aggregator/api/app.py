"""The read-only HTTP API for the city's Department of Science and
Technology: FastAPI routes under /api/v1, every one a GET, every one behind
a read token (docs/api.md).

Every figure comes from compute_indicators, as the command line's: the
indicators in the JSON of `indicators --format json` (analysis.indicators.
report_json), the maps from analysis.maps (request_layers, map_bytes), the
report from analysis.report, the sampling table from analysis.sampling.
What a request may ask for is checked by the CLI's own checks
(analysis/requests.py and the map's): an unknown thing in the path (an
indicator, a format, a year) is 404, in the query (a period, ward,
grouping, group, language) 422, each with the CLI's words and the accepted
list.

Nothing here writes to the store, the snapshot or the lake: each is attached
read only (source.py). The one write is a token's last use (tokens.py).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar

import anyio
import duckdb
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer

from aggregator.api.source import Answers, DataSource, LakeSource, NoData, Version
from aggregator.api.tokens import ApiTokenStore
from analysis import constants as k
from analysis.constants import BASELINE_PREFERENCE
from analysis.indicators import (
    TZ,
    IndicatorReport,
    Period,
    StoreTooOld,
    compute_indicators,
    jsonable,
    report_json,
)
from analysis.requests import (
    RequestRefused,
    check_baseline,
    check_grouping,
    check_lang,
    check_period,
    check_ward,
    check_year,
)
from wardprobe import __version__

log = logging.getLogger(__name__)
T = TypeVar("T")

PREFIX: Final = "/api/v1"
JSON: Final = "application/json"
# Probes the synthetic generator writes carry this agent version (analysis/synthetic.py).
SYNTHETIC_AGENT_VERSION: Final = "synthetic"
_UNAUTHORIZED: Final = b'{"detail":"unauthorized"}'

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


@dataclass(frozen=True)
class ApiSettings:
    """What the app reads and how much it keeps."""

    source: DataSource | LakeSource  # a file, or the lake itself (source.py)
    tokens: ApiTokenStore
    cache_entries: int = 64
    # Seconds between looks for a new snapshot; None: no background look
    # (the default set is then computed on the first request).
    poll_s: float | None = 5.0
    # The doubling ratio's order of 2024 baselines where a request names
    # none (aggregator.toml's baseline_order).
    baselines: tuple[str, ...] = BASELINE_PREFERENCE


# Query parameters several routes share (module level: FastAPI resolves the
# annotations by name).
Synthetic = Annotated[
    bool, Query(description="The synthetic generator's rows instead of the probes' results.")
]
PeriodQuery = Annotated[
    str | None,
    Query(description="2026, 2026Q3 or 2026-01-01..2026-04-01 (default: this year)."),
]
LangQuery = Annotated[str, Query(description="vi (default) or en.")]


class Refusal(Exception):
    """A request refused with `status` and a JSON body."""

    def __init__(self, status: int, detail: str, accepted: tuple[str, ...] = ()) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.accepted = accepted


def _refused(err: RequestRefused, status: int) -> Refusal:
    return Refusal(status, str(err), err.accepted)


class BearerAuth:
    """Every request, whatever its path (the OpenAPI description and unknown
    paths too), needs `Authorization: Bearer <token>` of an active token;
    else 401 with a body that says only that, and WWW-Authenticate: Bearer."""

    def __init__(self, app: ASGIApp, tokens: ApiTokenStore) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        presented = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, credentials = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer":
                    presented = credentials.strip()
        # in a worker thread: the check reads (and now and then writes) SQLite,
        # which may wait on a lock the event loop must not wait on
        token = (
            None
            if presented is None
            else await anyio.to_thread.run_sync(self.tokens.check, presented)
        )
        if token is None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", JSON.encode()),
                        (b"www-authenticate", b"Bearer"),
                        (b"content-length", str(len(_UNAUTHORIZED)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": _UNAUTHORIZED})
            return
        scope.setdefault("state", {})["token_id"] = token.token_id
        await self.app(scope, receive, send)


def default_period() -> str:
    """The period asked for when none is: this year, Cần Thơ time."""
    return str(datetime.now(TZ).year)


class Service:
    """The answers behind the routes, kept per version of the data file."""

    def __init__(self, settings: ApiSettings) -> None:
        self.source = settings.source
        self.answers = Answers(settings.cache_entries)
        self.poll_s = settings.poll_s
        self.baselines = settings.baselines
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.warmed: Version | None = None

    # -- the figures ---------------------------------------------------------

    def identity(self) -> Version:
        """The data's version now (the file's, or the pinned lake snapshot);
        answers of older ones are dropped."""
        identity = self.source.identity()
        self.answers.keep_only(identity)
        return identity

    def _compute(
        self, work: Callable[[duckdb.DuckDBPyConnection], T], version: Version | None = None
    ) -> T:
        """`work` on a read-only connection to the data (on a lake: as of
        `version`, the key its answer is kept under), its failures as 503s."""
        with self.source.connect(version) as (con, _):
            try:
                return work(con)
            except StoreTooOld as err:
                raise Refusal(
                    503, f"the {self.source.kind} is from an older release: {err}"
                ) from None
            except duckdb.Error as err:
                log.exception("reading the %s failed", self.source.kind)
                raise Refusal(
                    503, f"the {self.source.kind} cannot be read (details in the API's log)"
                ) from err

    def report(
        self,
        identity: Version,
        period: Period,
        *,
        ward: int | None = None,
        by: Any = None,
        synthetic: bool = False,
        baselines: tuple[str, ...] = BASELINE_PREFERENCE,
    ) -> IndicatorReport:
        """compute_indicators for these parameters, once per data version."""
        key = (identity, "report", period.label, ward, by, synthetic, baselines)
        return self.answers.get(
            key,
            lambda: self._compute(
                lambda con: compute_indicators(
                    con, period, ward=ward, by=by, synthetic=synthetic, baselines=baselines
                ),
                identity,
            ),
        )

    def indicators(
        self,
        identity: Version,
        period: Period,
        *,
        ward: int | None,
        by: Any,
        synthetic: bool,
        city_only: bool,
        baselines: tuple[str, ...] = BASELINE_PREFERENCE,
    ) -> bytes:
        """The JSON of `wardprobe-aggregator indicators --format json`."""
        key = (identity, "indicators", period.label, ward, by, synthetic, city_only, baselines)
        return self.answers.get(
            key,
            lambda: report_json(
                self.report(
                    identity, period, ward=ward, by=by, synthetic=synthetic, baselines=baselines
                ),
                city_only=city_only,
            ).encode("utf-8"),
        )

    def warm(self) -> Version | None:
        """Compute the default set (this year, every ward, not grouped) for
        the data file there now, if not done yet."""
        try:
            identity = self.identity()
        except NoData:
            return None
        if self.warmed != identity:
            period = check_period(default_period())
            self.indicators(
                identity,
                period,
                ward=None,
                by=None,
                synthetic=False,
                city_only=False,
                baselines=self.baselines,
            )
            self.warmed = identity
        return identity

    # -- the background look for a new snapshot ------------------------------

    def start(self) -> None:
        """Look for a new snapshot every poll_s and compute its default set."""
        if self.poll_s is None:
            return
        self._thread = threading.Thread(target=self._watch, name="api-warm", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the background look."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _watch(self) -> None:
        assert self.poll_s is not None
        while not self._stop.is_set():
            try:
                self.warm()
            except Exception:
                log.exception("computing the default indicator set failed; will retry")
            self._stop.wait(self.poll_s)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(jsonable(value), indent=1, ensure_ascii=False).encode("utf-8")


def _json(value: Any) -> Response:
    return Response(_json_bytes(value), media_type=JSON)


def _split(name: str) -> tuple[str, str]:
    """ "gigabit_capable_share.png" -> ("gigabit_capable_share", "png")."""
    stem, dot, fmt = name.rpartition(".")
    if not dot or not stem:
        return name, ""
    return stem, fmt


def create_app(settings: ApiSettings) -> FastAPI:
    """The API's application, reading `settings.source`."""
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        yield
        service.stop()

    app = FastAPI(
        title="wardprobe: Cần Thơ's broadband figures by ward",
        description=(
            "Read-only figures of the city's digital-infrastructure plans, measured by "
            "wardprobe's probes: the indicators, the ward maps, the yearly report and where "
            "more probes would settle an answer. Every request needs "
            "`Authorization: Bearer <token>` (`wardprobe-aggregator api-token create`)."
        ),
        version=__version__,
        openapi_url=f"{PREFIX}/openapi.json",
        # the documentation pages load their scripts from a CDN: not served
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        lifespan=lifespan,
    )
    app.state.service = service
    # Declared for the OpenAPI description; BearerAuth is what enforces it.
    bearer = Depends(HTTPBearer(auto_error=False, description="A read token (api-token create)"))
    app.add_middleware(BearerAuth, tokens=settings.tokens)

    @app.exception_handler(Refusal)
    async def refusal(request: Request, err: Refusal) -> JSONResponse:
        body: dict[str, Any] = {"detail": err.detail}
        if err.accepted:
            body["accepted"] = list(err.accepted)
        return JSONResponse(body, status_code=err.status)

    @app.exception_handler(NoData)
    async def no_data(request: Request, err: NoData) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=503)

    def period_of(text: str | None) -> Period:
        try:
            return check_period(text if text is not None else default_period())
        except RequestRefused as err:
            raise _refused(err, 422) from None

    @app.get(f"{PREFIX}/health", dependencies=[bearer])
    def health() -> Response:
        """Whether the API can read its data, and how old that is."""
        identity = service.identity()
        return _json(
            {
                "status": "ok",
                "version": __version__,
                "source": service.source.kind,
                "data_written_at": identity.modified,
                "default_set_ready": service.warmed == identity,
            }
        )

    @app.get(f"{PREFIX}/wards", dependencies=[bearer])
    def wards(synthetic: Synthetic = False) -> Response:
        """The city's 103 wards and communes (GSO code, Vietnamese name) and
        the active probes in each."""
        identity = service.identity()

        def compute() -> bytes:
            from analysis.maps.boundaries import display_name
            from analysis.wards import can_tho_wards

            rows = service._compute(
                lambda con: con.execute(
                    "select ward_code, count(*) from probes where cert_state = 'active' "
                    "and (coalesce(agent_version, '') = ?) = ? group by ward_code",
                    [SYNTHETIC_AGENT_VERSION, synthetic],
                ).fetchall(),
                identity,
            )
            probes = {int(code): int(n) for code, n in rows}
            listed = [
                {
                    "ward_code": code,
                    "name": display_name(info.name),
                    "division_type": info.division_type,
                    "probes": probes.get(code, 0),
                    "has_probes": probes.get(code, 0) > 0,
                }
                for code, info in sorted(can_tho_wards().items())
            ]
            return _json_bytes({"count": len(listed), "synthetic": synthetic, "wards": listed})

        body = service.answers.get((identity, "wards", synthetic), compute)
        return Response(body, media_type=JSON)

    @app.get(f"{PREFIX}/indicators", dependencies=[bearer])
    def indicators(
        period: PeriodQuery = None,
        ward: Annotated[int | None, Query(description="Only this ward (GSO code).")] = None,
        by: Annotated[str | None, Query(description="operator, access_tech or site_class.")] = None,
        synthetic: Synthetic = False,
        city_only: Annotated[bool, Query(description="Only the city's figures.")] = False,
        baseline: Annotated[
            str | None,
            Query(
                description="The 2024 baseline the doubling ratio uses first: probes, "
                "ookla_tiles or imported (default: the aggregator's baseline_order)."
            ),
        ] = None,
    ) -> Response:
        """Every indicator for a period: the JSON of `wardprobe-aggregator
        indicators --format json` with the same options."""
        parsed = period_of(period)
        try:
            grouping = check_grouping(by)
            baselines = check_baseline(baseline, service.baselines)
            code = None if ward is None else check_ward(ward)
        except RequestRefused as err:
            raise _refused(err, 422) from None
        identity = service.identity()
        body = service.indicators(
            identity,
            parsed,
            ward=code,
            by=grouping,
            synthetic=synthetic,
            city_only=city_only,
            baselines=baselines,
        )
        return Response(body, media_type=JSON)

    @app.get(f"{PREFIX}/maps/{{name}}", dependencies=[bearer])
    def ward_map(
        name: str,
        period: PeriodQuery = None,
        by: Annotated[str | None, Query(description="operator or access_tech.")] = None,
        group: Annotated[
            str | None,
            Query(description="The group to draw (lte, Viettel, access_tech=fixed, ...)."),
        ] = None,
        lang: LangQuery = "vi",
        synthetic: Synthetic = False,
    ) -> Response:
        """One indicator's ward map, `{indicator}.{geojson|csv|png|html}`: the
        file `wardprobe-aggregator map` writes with the same options."""
        from analysis.maps import (
            FORMATS,
            check_by,
            check_indicator,
            map_bytes,
            map_format,
            request_layers,
        )
        from analysis.maps.layers import report_grouping

        indicator, fmt = _split(name)
        try:
            grouping = check_by(by)
        except RequestRefused as err:
            raise _refused(err, 422) from None
        try:
            check_indicator(indicator)
            map_format(Path(name))
        except RequestRefused as err:
            raise _refused(err, 404) from None
        parsed = period_of(period)
        try:
            language = check_lang(lang)
        except RequestRefused as err:
            raise _refused(err, 422) from None
        identity = service.identity()
        report = service.report(
            identity,
            parsed,
            by=report_grouping(indicator, grouping),
            synthetic=synthetic,
            baselines=service.baselines,
        )
        try:
            layers = request_layers(report, indicator, group, fmt)
        except RequestRefused as err:
            raise _refused(err, 422) from None
        key = (identity, "map", indicator, fmt, parsed.label, grouping, group, language, synthetic)
        body = service.answers.get(key, lambda: map_bytes(layers, fmt, language))
        return Response(
            body,
            media_type=FORMATS[fmt],
            headers={"content-disposition": f'inline; filename="{indicator}_{parsed.label}.{fmt}"'},
        )

    @app.get(f"{PREFIX}/report/{{name}}", dependencies=[bearer])
    def yearly_report(
        name: str,
        lang: LangQuery = "vi",
        synthetic: Synthetic = False,
    ) -> Response:
        """The yearly report, `{year}.{html|pdf}`: what `wardprobe-aggregator
        report` writes with the same options."""
        from analysis.report import SUFFIXES, build_report_html, check_suffix, html_to_pdf

        stem, fmt = _split(name)
        try:
            year = check_year(stem)
            check_suffix(Path(name))
        except RequestRefused as err:
            raise _refused(err, 404) from None
        except ValueError as err:
            raise Refusal(404, str(err), SUFFIXES) from None
        try:
            language = check_lang(lang)
        except RequestRefused as err:
            raise _refused(err, 422) from None
        identity = service.identity()

        def html() -> str:
            return str(
                service.answers.get(
                    (identity, "yearly", year, "html", language, synthetic),
                    lambda: service._compute(
                        lambda con: build_report_html(
                            con, year, language, synthetic, baselines=service.baselines
                        ),
                        identity,
                    ),
                )
            )

        if fmt == "pdf":
            body = service.answers.get(
                (identity, "yearly", year, "pdf", language, synthetic),
                lambda: html_to_pdf(html()),
            )
            media = "application/pdf"
        else:
            body = html().encode("utf-8")
            media = "text/html; charset=utf-8"
        return Response(
            body,
            media_type=media,
            headers={"content-disposition": f'inline; filename="report_{year}_{language}.{fmt}"'},
        )

    def sampling_plan_of(identity: Version, period: Period, synthetic: bool) -> Any:
        """compute_indicators with the per-probe values, and the plan from it,
        once per snapshot: the table and every layer read the same plan."""
        from analysis.sampling import sampling_plan

        def compute() -> tuple[IndicatorReport, Any]:
            report = service._compute(
                lambda con: compute_indicators(
                    con,
                    period,
                    synthetic=synthetic,
                    keep_probe_values=True,
                    baselines=service.baselines,
                ),
                identity,
            )
            return report, sampling_plan(report)

        return service.answers.get((identity, "plan", period.label, synthetic), compute)

    @app.get(f"{PREFIX}/sampling", dependencies=[bearer])
    def sampling(period: PeriodQuery = None, synthetic: Synthetic = False) -> Response:
        """Where more probes would settle the answer: per indicator, the
        wards below the floor and the probes each needs at today's test rate,
        and the figures whose 95 % interval straddles a target with the
        probes that would settle it (analysis/sampling.py)."""
        parsed = period_of(period)
        identity = service.identity()

        def compute() -> bytes:
            _, plan = sampling_plan_of(identity, parsed, synthetic)
            return _json_bytes(
                {"floor": {"probes": k.FLOOR_PROBES, "tests": k.FLOOR_TESTS}, **jsonable(plan)}
            )

        body = service.answers.get((identity, "sampling", parsed.label, synthetic), compute)
        return Response(body, media_type=JSON)

    @app.get(f"{PREFIX}/sampling/{{name}}", dependencies=[bearer])
    def sampling_layer(
        name: str,
        period: PeriodQuery = None,
        group: Annotated[
            str | None,
            Query(description="The group of an indicator in groups (access_tech=lte, ...)."),
        ] = None,
        synthetic: Synthetic = False,
    ) -> Response:
        """The "more probes" map layer of one indicator, `{indicator}.geojson`:
        every ward with its status (below floor, unsettled, settled) and the
        probes to add (analysis/sampling.py, needs_geojson)."""
        from analysis.sampling import needs_geojson

        indicator, fmt = _split(name)
        parsed = period_of(period)
        identity = service.identity()
        report, plan = sampling_plan_of(identity, parsed, synthetic)
        series = sorted({(f.indicator, f.group or "") for f in report.figures})
        indicators = list(dict.fromkeys(i for i, _ in series))
        if indicator not in indicators:
            raise _refused(RequestRefused("indicator", indicator, indicators), 404)
        if fmt != "geojson":
            raise _refused(
                RequestRefused("sampling layer format", f".{fmt}" if fmt else name, [".geojson"]),
                404,
            )
        groups = [g for i, g in series if i == indicator]
        chosen = next(
            (g for g in groups if group in (g, g.partition("=")[2]) or (group is None and not g)),
            None,
        )
        if chosen is None:
            given = [g for g in groups if g]
            said = f"{indicator} comes in groups: give one (group=)" if group is None else ""
            raise _refused(
                RequestRefused(f"group of {indicator}", group or "", given, problem=said), 422
            )
        layer = needs_geojson(plan, indicator, chosen or None)
        return Response(
            json.dumps(layer, ensure_ascii=False).encode("utf-8"),
            media_type="application/geo+json",
            headers={
                "content-disposition": (
                    f'inline; filename="more_probes_{indicator}_{parsed.label}.geojson"'
                )
            },
        )

    return app
