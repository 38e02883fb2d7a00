"""`govpulse serve`: the sink and the dashboard in the one process that owns the store.

A chdb directory can be open in one process only, so on the embedded stack this process is
the only one that touches ClickHouse: the sink inserts from a thread, the dashboard answers
HTTP on the event loop, each through its own client on the same engine (separate locks, so
page loads do not queue behind inserts). Other processes (more sinks, `govpulse audit`)
reach the engine through ClickHouse's HTTP interface, which serve offers on
GOVPULSE_CLICKHOUSE_HTTP_PORT (embedded/clickhouse_http.py). Against a ClickHouse server the
same command works unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from govpulse.clickhouse import chdb_directory, make_client, mark_served
from govpulse.settings import Settings, SettingsError
from govpulse.topics import ensure_topics

log = logging.getLogger("govpulse.serve")
SINK_STOP_TIMEOUT_S = 90.0


def build(
    settings: Settings, echo: Callable[[str], None]
) -> tuple[web.Application, Callable[[], None]]:
    """The dashboard app with the sink attached to its lifecycle, and a cleanup callable."""
    from govpulse.dashboard.app import build_app, options_from
    from govpulse.sinks.configured import ConfiguredSink
    from govpulse.sinks.migrations import migrate

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
    configured = ConfiguredSink(settings, sink_client)
    sink = configured.sink
    stop = threading.Event()
    thread = threading.Thread(target=sink.run, args=(stop,), name="sink", daemon=True)

    async def start_sink(_: web.Application) -> None:
        thread.start()
        configured.start_tiers()

    engine_dir = chdb_directory(settings.clickhouse_dsn) or ""  # "": not an embedded engine
    http_port = settings.clickhouse_http_port if engine_dir else 0
    runners = []
    markers: list[Path] = []

    async def start_clickhouse_http(_: web.Application) -> None:
        from govpulse.embedded import clickhouse_http

        try:
            runners.append(await clickhouse_http.start(engine_dir, http_port))
        except OSError as exc:
            raise SettingsError(
                f"GOVPULSE_CLICKHOUSE_HTTP_PORT={http_port}: cannot listen ({exc}); "
                "choose another port or 0 for none"
            ) from None
        markers.append(mark_served(engine_dir, http_port))
        echo(f"embedded ClickHouse over HTTP: http://127.0.0.1:{http_port}")

    async def stop_clickhouse_http(_: web.Application) -> None:
        for runner in runners:
            await runner.cleanup()
        for marker in markers:  # stopped cleanly: a sink may open the directory itself
            marker.unlink(missing_ok=True)

    async def stop_sink(_: web.Application) -> None:
        stop.set()
        if configured.tiers is not None:  # before the store may be handed to another process
            await asyncio.get_running_loop().run_in_executor(None, configured.tiers.stop)
        await asyncio.get_running_loop().run_in_executor(None, thread.join, SINK_STOP_TIMEOUT_S)

    app = build_app(dashboard_client, **options_from(settings))
    if http_port:
        app.on_startup.append(start_clickhouse_http)
    app.on_startup.append(start_sink)
    app.on_shutdown.append(stop_sink)
    app.on_cleanup.append(stop_clickhouse_http)

    def close() -> None:
        dashboard_client.close()
        configured.close_clients()
        sink_client.close()

    return app, close
