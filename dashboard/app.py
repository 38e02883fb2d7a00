"""The live operations dashboard: one HTML page and a JSON API over ClickHouse.

`build_app(client)` returns an aiohttp application that anything can serve: `govpulse serve`
mounts it next to the sink on the one chdb client of the embedded stack, `govpulse dashboard`
serves it alone against a ClickHouse server (as a read-only user; see dashboard/README.md).

Why the pieces are as they are:

- ClickHouse calls are blocking, so every query runs in a thread executor and the event loop
  keeps serving. The executor has one worker by default, which serialises the dashboard's
  use of the client: measured on clickhouse-connect 1.12's chdb client, two threads sharing
  one client run no faster than one (the client already holds a per-handle lock around every
  call, and one query uses both cores), and an HTTP client with a session id refuses
  concurrent queries in its session. Raise `workers` only with a client that allows it.
- Identical requests within `cache_seconds` share one answer (and one in-flight query), so
  ten wall screens polling every two seconds cost ClickHouse what one does.
- Parameters are validated (`govpulse.dashboard.params`) before a query exists; errors are JSON with
  the HTTP status, the parameter and what was expected.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web
from clickhouse_connect.driver.client import Client

from govpulse.dashboard.meta import build_meta
from govpulse.dashboard.params import RANGES, ParameterError, Query, parse, province_code
from govpulse.dashboard.queries import DashboardQueries, bucket_seconds, window_of
from govpulse.monitoring.metrics import DASHBOARD_REQUEST_SECONDS, DASHBOARD_REQUESTS

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


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _json(body: Any, status: int = 200) -> web.Response:
    response = web.json_response(body, status=status, dumps=_dumps)
    response.headers["Cache-Control"] = "no-store"
    return response


class ResponseCache:
    """Answers by key; concurrent requests for a key share one computation.

    Entries hold the task, not the value, so a burst of identical requests that arrives while
    the first is still querying waits for that query instead of starting its own. An answer
    younger than its `ttl` is shared. With `serve_stale`, an older answer (up to
    STALE_FACTOR × ttl) is returned at once while one background task recomputes it: the
    day and week views, whose queries merge a day of hourly and up to six days of daily
    rollup rows (10-30 ms at 10M events, see dashboard/README.md), then never keep a
    request waiting after their first computation.
    """

    MAX_ENTRIES = 2048
    STALE_FACTOR = 10

    def __init__(self) -> None:
        self._entries: dict[Any, tuple[float, asyncio.Future[Any]]] = {}
        self._refreshing: dict[Any, asyncio.Future[Any]] = {}

    async def get(
        self,
        key: Any,
        compute: Callable[[], Awaitable[Any]],
        ttl: float,
        serve_stale: bool = False,
    ) -> Any:
        if ttl <= 0:
            return await compute()
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None:
            born, future = entry
            age = now - born
            if age < ttl:
                return await asyncio.shield(future)
            usable = future.done() and not future.cancelled() and future.exception() is None
            if serve_stale and usable and age < ttl * self.STALE_FACTOR:
                if key not in self._refreshing:
                    self._refresh(key, compute, now)
                return future.result()
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries = {
                k: v for k, v in self._entries.items() if now - v[0] < ttl * self.STALE_FACTOR
            }
        future = asyncio.ensure_future(compute())
        self._entries[key] = (now, future)
        future.add_done_callback(partial(self._forget_failure, key))
        return await asyncio.shield(future)

    def _refresh(self, key: Any, compute: Callable[[], Awaitable[Any]], born: float) -> None:
        """Recompute in the background; the stale answer is replaced only on success."""
        future = asyncio.ensure_future(compute())
        self._refreshing[key] = future

        def done(task: asyncio.Future[Any]) -> None:
            self._refreshing.pop(key, None)
            if not task.cancelled() and task.exception() is None:
                self._entries[key] = (born, task)
            elif not task.cancelled():
                # the old answer is not served again: the next request computes, and shows
                # ClickHouse's error rather than figures that silently stopped moving
                self._entries.pop(key, None)
                log.warning("background refresh of %s failed: %s", key, task.exception())

        future.add_done_callback(done)

    def cancel_refreshes(self) -> None:
        """At shutdown: background refreshes would find the executor gone."""
        for future in list(self._refreshing.values()):
            future.cancel()

    def _forget_failure(self, key: Any, future: asyncio.Future[Any]) -> None:
        """A failed query is not cached: the next request tries again."""
        if future.cancelled() or future.exception() is not None:
            entry = self._entries.get(key)
            if entry is not None and entry[1] is future:
                del self._entries[key]


class Dashboard:
    """Per-application state: the queries, the executor, the cache, the page metadata."""

    def __init__(
        self,
        queries: DashboardQueries,
        meta: dict[str, Any],
        cache_seconds: float,
        workers: int,
    ) -> None:
        self.queries = queries
        self.meta = meta
        self.cache = ResponseCache()
        self.cache_seconds = cache_seconds
        self.workers = workers
        self.executor: ThreadPoolExecutor | None = None

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking ClickHouse read in the executor."""
        if self.executor is None:
            raise web.HTTPServiceUnavailable(reason="dashboard is not started")
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    async def windowed(self, name: str, query: Query) -> Any:
        method = getattr(self.queries, name)

        async def compute() -> Any:
            return await self.run(method, query, window_of(query.range))

        # Live ranges share answers for `cache_seconds`; the day and week views for their
        # range's max_age, served stale while recomputed (see ResponseCache).
        live = query.range.max_age <= self.cache_seconds
        ttl = self.cache_seconds if live or self.cache_seconds <= 0 else query.range.max_age
        return await self.cache.get((name, *query.key()), compute, ttl, serve_stale=not live)

    async def freshness(self) -> Any:
        async def compute() -> Any:
            result = await self.run(self.queries.freshness)
            thresholds = self.meta["thresholds"]
            age = result["data_age_seconds"]
            result["freshness_threshold_seconds"] = thresholds["freshness_seconds"]
            result["fresh"] = age is not None and age <= thresholds["freshness_seconds"]
            result["dead_letter_threshold"] = thresholds["dead_letter_rate"]
            result["dead_letter_ok"] = result["dead_letter_rate"] <= thresholds["dead_letter_rate"]
            return result

        return await self.cache.get(("freshness",), compute, self.cache_seconds)


DASHBOARD = web.AppKey("dashboard", Dashboard)


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
        return _json(await request.app[DASHBOARD].windowed(name, query))

    handler.__name__ = f"api_{name}"
    return handler


async def _province(request: web.Request) -> web.Response:
    code = province_code(request.match_info["code"], "code")
    query = parse(request.query, frozenset({"range", "agency"}))
    query = Query(query.range, code, query.agency)
    return _json(await request.app[DASHBOARD].windowed("province", query))


async def _start_executor(app: web.Application) -> None:
    dashboard = app[DASHBOARD]
    dashboard.executor = ThreadPoolExecutor(dashboard.workers, thread_name_prefix="dashboard-ch")


async def _stop_executor(app: web.Application) -> None:
    dashboard = app[DASHBOARD]
    dashboard.cache.cancel_refreshes()
    if dashboard.executor is not None:
        dashboard.executor.shutdown(wait=True, cancel_futures=True)
        dashboard.executor = None


def build_app(
    client: Client,
    database: str | None = None,
    *,
    refresh_seconds: float = 2.0,
    freshness_threshold_seconds: float = 30.0,
    dead_letter_threshold: float = 0.05,
    cache_seconds: float = 1.0,
    workers: int = 1,
) -> web.Application:
    """The dashboard as an aiohttp application reading `database` through `client`.

    `database` defaults to the client's, like migrate(), so the sink and the dashboard built
    from one DSN agree. Thresholds decide when the data age (now - the newest stored event's
    produced_at) and the dead-letter rate (share of the last five minutes) turn red on the page.
    `cache_seconds=0` disables response sharing (benchmarks measure every query).
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
    app[DASHBOARD] = Dashboard(DashboardQueries(client, database), meta, cache_seconds, workers)
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
    app.router.add_get("/api/meta", _meta)
    app.router.add_get("/api/freshness", _freshness)
    for path, (name, allowed) in WINDOWED.items():
        app.router.add_get(path, _windowed_handler(name, allowed))
    app.router.add_get(PROVINCE_PATH, _province)
    app.on_startup.append(_start_executor)
    app.on_cleanup.append(_stop_executor)
    return app
