"""The live operations dashboard: one HTML page, a JSON API and a push stream over ClickHouse.

`build_app(client)` returns an aiohttp application that anything can serve: `govpulse serve`
mounts it next to the sink on the one chdb client of the embedded stack, `govpulse dashboard`
serves it alone against a ClickHouse server (as a read-only user; see dashboard/README.md).

Why the pieces are as they are:

- Cost per refresh tick, not per viewer. A hundred wall screens (one per province, the
  national room, analysts) ask ~10 panels every 2 s; asked one province at a time that is
  ~850 different questions per tick. A panel with a province filter is computed for every
  province at once and each screen's answer cut from it; every answer is shared within its
  tick and, once computed, served at once while the next tick is computed (`Dashboard`,
  `dashboard.cache`). Pages subscribe to `/api/stream` (Server-Sent Events: one connection
  per screen, one serialisation per view and tick, `dashboard.stream`) and fall back to
  polling the endpoints, which answer from the same ticks.
- The pipeline first. ClickHouse calls are blocking, so they run in a thread executor with
  one worker by default (measured on clickhouse-connect 1.12's chdb client, two threads
  sharing one client run no faster than one), behind a bounded, prioritised queue
  (`dashboard.gate`) that sheds with 503 + Retry-After instead of queueing, and each query
  runs on one engine thread (`DashboardQueries(max_threads=1)`; optionally niced): the
  dashboard's engine work is at most one core whatever the viewers ask, and while it is
  busy the screens get the last answers, marked with their age.
- Parameters are validated (`govpulse.dashboard.params`) before a query exists; errors are
  JSON with the HTTP status, the parameter and what was expected.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp import web
from clickhouse_connect.driver.client import Client

from govpulse.dashboard import stream as push
from govpulse.dashboard.board import Dashboard, Limits, dumps
from govpulse.dashboard.gate import QueryGate, Shed
from govpulse.dashboard.meta import build_meta
from govpulse.dashboard.params import (
    RANGES,
    ParameterError,
    Query,
    parse,
    province_code,
)
from govpulse.dashboard.queries import DEFAULT_NICE, DashboardQueries, bucket_seconds
from govpulse.monitoring.metrics import (
    DASHBOARD_REQUEST_SECONDS,
    DASHBOARD_REQUESTS,
)
from govpulse.settings import Settings

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
FILTERS = frozenset({"range", "province", "agency"})
# Endpoint path → (DashboardQueries method, accepted query parameters).
WINDOWED: dict[str, tuple[str, frozenset[str]]] = {
    "/api/overview": ("overview", FILTERS),
    "/api/timeseries": ("timeseries", FILTERS),
    "/api/ministries": ("ministries", FILTERS),
    "/api/provinces": ("provinces", frozenset({"range", "agency"})),
    "/api/service-requests": ("service_requests", FILTERS),
    "/api/complaints": ("complaints", FILTERS),
    "/api/net-pracharat": ("net_pracharat", FILTERS),
    "/api/digital-centers": ("digital_centers", FILTERS),
    "/api/breakdown": ("breakdown", FILTERS | {"by"}),
}
# Any segment reaches the handler (the default pattern excludes braces), so every malformed
# code gets the same 400 from validation.
PROVINCE_PATH = "/api/province/{code:[^/]+}"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'"
    ),
}


def options_from(settings: Settings) -> dict[str, Any]:
    """`build_app` keywords from the GOVPULSE_DASHBOARD_* settings (serve and dashboard)."""
    return {
        "limits": Limits(
            settings.dashboard_max_queued,
            settings.dashboard_max_wait_seconds,
            settings.dashboard_max_subscribers,
        ),
        "max_threads": settings.dashboard_query_threads or None,
        "nice": settings.dashboard_query_nice or None,
    }


def _json(body: Any, status: int = 200) -> web.Response:
    response = web.json_response(body, status=status, dumps=dumps)
    response.headers["Cache-Control"] = "no-store"
    return response


DASHBOARD = web.AppKey("dashboard", Dashboard)
# How the dashboard is served (`web.run_app`/`web.AppRunner` keywords): the handler of a
# client that hung up is cancelled, so its queued query never runs (dashboard.gate); idle
# keep-alive sockets are closed after 15 s rather than 75, so sockets follow the viewers.
SERVER_OPTIONS: dict[str, Any] = {"handler_cancellation": True, "keepalive_timeout": 15.0}
STREAM_PATH = "/api/stream"


def _json_text(text: str) -> web.Response:
    """An answer already serialised (shared by every screen that asks it this tick)."""
    response = web.Response(text=text, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def shed_response(error: Shed) -> web.Response:
    """503 with Retry-After: the client comes back later instead of waiting in a queue."""
    response = _json({"error": str(error), "status": 503, "reason": error.reason}, 503)
    response.headers["Retry-After"] = str(error.retry_after)
    return response


def _endpoint_label(request: web.Request) -> str:
    """The route template for metrics (never the raw path: unbounded label values)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def _api_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """JSON errors for the API, metrics for every request, security headers for the page."""
    started = time.perf_counter()
    endpoint = _endpoint_label(request)
    api = request.path.startswith("/api/")
    try:
        response = await handler(request)
    except ParameterError as error:
        response = _json(error.body(), error.status)
    except Shed as error:
        response = shed_response(error)
    except web.HTTPException as error:
        if not api:
            raise
        response = _json({"error": error.reason, "status": error.status}, error.status)
    except Exception:  # ClickHouse down, query failed: say so, keep serving
        log.exception("dashboard request %s failed", request.path_qs[:200])
        if not api:
            raise
        response = _json(
            {"error": "the data store did not answer; see the dashboard log", "status": 503},
            503,
        )
    if not api:
        response.headers.update(SECURITY_HEADERS)
    DASHBOARD_REQUEST_SECONDS.labels(endpoint).observe(time.perf_counter() - started)
    DASHBOARD_REQUESTS.labels(endpoint, str(response.status)).inc()
    return response


async def _index(request: web.Request) -> web.StreamResponse:
    response = web.FileResponse(STATIC_DIR / "index.html")
    response.headers["Cache-Control"] = "no-cache"
    return response


async def _meta(request: web.Request) -> web.Response:
    parse(request.query, frozenset())
    return _json(request.app[DASHBOARD].meta)


async def _freshness(request: web.Request) -> web.Response:
    parse(request.query, frozenset())
    return _json(await request.app[DASHBOARD].freshness())


def _windowed_handler(
    name: str, allowed: frozenset[str]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        query = parse(request.query, allowed)
        return _json_text((await request.app[DASHBOARD].windowed(name, query)).json())

    handler.__name__ = f"api_{name}"
    return handler


async def _province(request: web.Request) -> web.Response:
    code = province_code(request.match_info["code"], "code")
    query = parse(request.query, frozenset({"range", "agency"}))
    query = Query(query.range, code, query.agency)
    return _json_text((await request.app[DASHBOARD].windowed("province", query)).json())


async def _stream(request: web.Request) -> web.StreamResponse:
    query = parse(request.query, frozenset({"range", "province"}))
    return await push.serve(request, request.app[DASHBOARD], query)


async def _start_executor(app: web.Application) -> None:
    dashboard = app[DASHBOARD]
    dashboard.executor = ThreadPoolExecutor(dashboard.workers, thread_name_prefix="dashboard-ch")
    limits = dashboard.limits
    dashboard.gate = QueryGate(
        dashboard.executor,
        dashboard.workers,
        limits.max_queued,
        limits.max_wait_seconds,
    )


async def _end_streams(app: web.Application) -> None:
    app[DASHBOARD].closing.set()


async def _stop_executor(app: web.Application) -> None:
    dashboard = app[DASHBOARD]
    dashboard.cache.cancel_refreshes()
    if dashboard.executor is not None:
        dashboard.executor.shutdown(wait=True, cancel_futures=True)
        dashboard.executor = None
        dashboard.gate = None


def build_app(
    client: Client,
    database: str | None = None,
    *,
    refresh_seconds: float = 2.0,
    freshness_threshold_seconds: float = 30.0,
    dead_letter_threshold: float = 0.05,
    cache_seconds: float = 1.0,
    workers: int = 1,
    limits: Limits | None = None,
    max_threads: int | None = 1,
    nice: int | None = DEFAULT_NICE,
) -> web.Application:
    """The dashboard as an aiohttp application reading `database` through `client`.

    `database` defaults to the client's, like migrate(), so the sink and the dashboard built
    from one DSN agree. Thresholds decide when the data age (now - the newest stored event's
    produced_at) and the dead-letter rate (share of the last five minutes) turn red on the page.
    `cache_seconds=0` disables response sharing (benchmarks measure every query). `limits`
    bound the queue and the push subscribers; `max_threads` the engine threads per query and
    `nice` their niceness
    (None: the engine's default).
    """
    if not 0.5 <= refresh_seconds <= 2.0:
        raise ValueError(f"refresh_seconds={refresh_seconds}: the page must refresh every 0.5-2 s")
    if workers < 1:
        raise ValueError(f"workers={workers}: expected at least 1")
    meta = build_meta(
        refresh_seconds=refresh_seconds,
        freshness_threshold_seconds=freshness_threshold_seconds,
        dead_letter_threshold=dead_letter_threshold,
    )
    # The bucket width the API answers with: whole hours where a range reads hourly rollups.
    for entry in meta["ranges"]:
        entry["step_seconds"] = bucket_seconds(RANGES[entry["name"]])
    app = web.Application(middlewares=[_api_middleware])
    queries = DashboardQueries(client, database, max_threads=max_threads, nice=nice)
    app[DASHBOARD] = Dashboard(queries, meta, cache_seconds, workers, limits or Limits())
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
    app.router.add_get("/api/meta", _meta)
    app.router.add_get("/api/freshness", _freshness)
    for path, (name, allowed) in WINDOWED.items():
        app.router.add_get(path, _windowed_handler(name, allowed))
    app.router.add_get(PROVINCE_PATH, _province)
    app.router.add_get(STREAM_PATH, _stream)
    app.on_startup.append(_start_executor)
    app.on_shutdown.append(_end_streams)
    app.on_cleanup.append(_stop_executor)
    return app
