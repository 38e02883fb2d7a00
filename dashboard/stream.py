"""`/api/stream`: the page's panels pushed every refresh tick (Server-Sent Events).

Why push: a polling page asks ~10 panel requests every 2 s and the data-age badge every
second; a hundred screens are ~550 HTTP requests a second, each parsed, routed, counted and
serialised by Python on the machine the pipeline runs on. Subscribed, a screen holds one
connection and receives one message per tick, the same bytes as every other screen of its
view (the view's message is assembled and serialised once per tick, see
`view_message`). Polling stays: the page falls back to it when the stream is
refused (503 when `max_subscribers` pages already hold one) or breaks.

Messages: `event: panels` with `{"as_of_ms", "stale", "panels": {name: answer}}` every
`refresh_seconds`, the names being the page's (`PAGE_PANELS`; a panel that failed carries
`{"error", "status"}` instead of its answer), and `event: freshness` with the
`/api/freshness` answer every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiohttp import web

from govpulse.dashboard.board import Dashboard, dumps
from govpulse.dashboard.gate import Shed
from govpulse.dashboard.params import Query
from govpulse.monitoring.metrics import DASHBOARD_SHED, DASHBOARD_SUBSCRIBERS

log = logging.getLogger(__name__)

# The page's panels: its name for the answer → (endpoint method, breakdown dimension).
PAGE_PANELS: tuple[tuple[str, str, str | None], ...] = (
    ("overview", "overview", None),
    ("timeseries", "timeseries", None),
    ("provinces", "provinces", None),
    ("ministries", "ministries", None),
    ("serviceRequests", "service_requests", None),
    ("complaints", "complaints", None),
    ("netPracharat", "net_pracharat", None),
    ("digitalCenters", "digital_centers", None),
    ("channels", "breakdown", "channel"),
)
FRESHNESS_SECONDS = 1.0
# A screen that does not take a message within this long is dropped (its socket freed).
WRITE_TIMEOUT_SECONDS = 10.0
RETRY_MILLISECONDS = 2000


def event(name: str, value: Any) -> bytes:
    """One SSE message; compact JSON has no raw newline, so one `data:` line is enough."""
    return f"event: {name}\ndata: {dumps(value)}\n\n".encode()


def panel_queries(query: Query) -> list[tuple[str, str, Query]]:
    """(page name, endpoint method, query) of every panel a view shows."""
    panels = []
    for name, method, by in PAGE_PANELS:
        # the map shows every province, whichever one the view is on
        province = None if method == "provinces" else query.province
        panels.append((name, method, Query(query.range, province, None, by)))
    if query.province is not None:
        panels.append(("province", "province", Query(query.range, query.province)))
    return panels


async def panels_message(dashboard: Dashboard, query: Query) -> bytes:
    """The view's panels as one message, spliced from each answer's shared JSON text."""
    panels = panel_queries(query)
    answers = await asyncio.gather(
        *(dashboard.windowed(method, q) for _, method, q in panels), return_exceptions=True
    )
    parts = []
    stale = False
    for (name, _, _), answer in zip(panels, answers, strict=True):
        if isinstance(answer, asyncio.CancelledError):
            raise answer
        if isinstance(answer, Shed):
            text = dumps({"error": str(answer), "status": 503})
        elif isinstance(answer, BaseException):
            log.warning("stream panel %s failed: %s", name, answer)
            text = dumps({"error": "the data store did not answer", "status": 503})
        else:
            text = answer.json()
            stale = stale or answer.stale
        parts.append(f'"{name}":{text}')
    head = f'{{"as_of_ms":{int(time.time() * 1000)},"stale":{"true" if stale else "false"}'
    return f'event: panels\ndata: {head},"panels":{{{",".join(parts)}}}}}\n\n'.encode()


async def view_message(dashboard: Dashboard, query: Query) -> bytes:
    """The view's panels message, assembled and serialised once per tick for its screens."""

    async def compute() -> bytes:
        return await panels_message(dashboard, query)

    # Not served stale itself: its panels are (with their age), so assembling it waits for
    # ClickHouse only for a panel never computed yet; served stale, every screen got the
    # previous tick's message (bench.viewers: panels 2.0 s old at p50 instead of 25 ms).
    ttl = min(dashboard.ttl(query.range), dashboard.refresh_seconds / 2)
    return (await dashboard.cache.answer(("view", *query.key()), compute, ttl))[0]


async def freshness_message(dashboard: Dashboard) -> bytes:
    """The badge's message, serialised once per half second for every screen."""

    async def compute() -> bytes:
        try:
            return event("freshness", await dashboard.freshness())
        except Exception as error:  # the badge shows "?" until the next second
            return event("freshness", {"error": str(error), "status": 503})

    return (await dashboard.cache.answer(("freshness message",), compute, FRESHNESS_SECONDS / 2))[0]


async def serve(request: web.Request, dashboard: Dashboard, query: Query) -> web.StreamResponse:
    """Hold the connection and write the view's messages until the client goes."""
    if dashboard.subscribers >= dashboard.limits.max_subscribers:
        DASHBOARD_SHED.labels("subscribers").inc()
        raise Shed("subscribers", int(dashboard.refresh_seconds * 15))
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # a reverse proxy must not buffer the stream
        }
    )
    dashboard.subscribers += 1
    DASHBOARD_SUBSCRIBERS.inc()
    try:
        await response.prepare(request)
        await response.write(f"retry: {RETRY_MILLISECONDS}\n\n".encode())
        next_panels = next_freshness = time.monotonic()
        while True:
            if time.monotonic() >= next_freshness:
                await _write(response, await freshness_message(dashboard))
                next_freshness += FRESHNESS_SECONDS
            if time.monotonic() >= next_panels:
                await _write(response, await view_message(dashboard, query))
                next_panels += dashboard.refresh_seconds
            now = time.monotonic()
            # a screen that fell behind (slow tick) skips ahead rather than bursting
            next_freshness = max(next_freshness, now - FRESHNESS_SECONDS)
            next_panels = max(next_panels, now - dashboard.refresh_seconds)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, min(next_freshness, next_panels) - now)):
                    await dashboard.closing.wait()
            if dashboard.closing.is_set():
                break  # the server is stopping: it would wait for this handler otherwise
    except (ConnectionResetError, TimeoutError):
        pass  # the client went away or stopped reading
    except Exception:  # the stream is prepared: no error response can follow, so end it
        log.exception("push stream for %s ended", request.path_qs[:200])
    finally:
        dashboard.subscribers -= 1
        DASHBOARD_SUBSCRIBERS.dec()
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


async def _write(response: web.StreamResponse, message: bytes) -> None:
    async with asyncio.timeout(WRITE_TIMEOUT_SECONDS):
        await response.write(message)
