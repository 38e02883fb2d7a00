"""`govpulse serve`: the sink and the dashboard in the one process that owns the store.

A chdb directory can be open in one process only, so on the embedded stack this process is
the only one that touches ClickHouse: the sink inserts from a thread, the dashboard answers
HTTP on the event loop, each through its own client on the same engine (separate locks, so
page loads do not queue behind inserts). `govpulse audit` reaches the store through
POST /api/audit/stored. Against a ClickHouse server the same command works unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from aiohttp import web

from govpulse.clickhouse import make_client
from govpulse.settings import Settings
from govpulse.topics import ensure_topics

log = logging.getLogger("govpulse.serve")
SINK_STOP_TIMEOUT_S = 90.0


def build(settings: Settings, echo: Callable[[str], None]) -> tuple[web.Application, Callable]:
    """The dashboard app with the sink attached to its lifecycle, and a cleanup callable."""
    from dashboard.app import build_app
    from govpulse.kafka_config import client_config
    from sinks import audit
    from sinks.faults import crash_after_from_env, with_faults
    from sinks.migrations import migrate
    from sinks.sink import Sink

    sink_client = make_client(settings.clickhouse_dsn)
    for name in migrate(
        sink_client,
        raw_ttl_days=settings.raw_ttl_days,
        dead_letter_ttl_days=settings.dead_letter_ttl_days,
        replicated=settings.clickhouse_replicated,
        cluster=settings.clickhouse_cluster or None,
    ):
        echo(f"applied migration {name}")
    ensure_topics(settings.bootstrap_servers, settings.topic_partitions)
    dashboard_client = make_client(settings.dashboard_clickhouse_dsn or settings.clickhouse_dsn)
    sink = Sink(
        with_faults(sink_client),
        settings.bootstrap_servers,
        settings.registry_url,
        max_rows=settings.sink_max_rows,
        max_wait_ms=settings.sink_max_wait_ms,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        crash_after_inserts=crash_after_from_env(),
        consumer_config=client_config(settings),
    )
    stop = threading.Event()
    thread = threading.Thread(target=sink.run, args=(stop,), name="sink", daemon=True)

    async def stored_counts(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            counts = await asyncio.get_running_loop().run_in_executor(
                None, audit.stored_counts_request, dashboard_client, body
            )
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": str(exc), "status": 400}, status=400)
        return web.json_response(counts)

    async def start_sink(_: web.Application) -> None:
        thread.start()

    async def stop_sink(_: web.Application) -> None:
        stop.set()
        await asyncio.get_running_loop().run_in_executor(None, thread.join, SINK_STOP_TIMEOUT_S)

    app = build_app(dashboard_client)
    app.router.add_post(audit.STORED_PATH, stored_counts)
    app.on_startup.append(start_sink)
    app.on_shutdown.append(stop_sink)

    def close() -> None:
        dashboard_client.close()
        sink_client.close()

    return app, close
