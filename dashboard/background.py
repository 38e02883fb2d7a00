"""Serve an aiohttp application from a background thread with its own event loop.

For code that is not itself asynchronous but needs the dashboard on a real socket: the API
and browser tests (a browser, urllib and Selenium are all blocking) and the benchmark. The
server binds a free loopback port unless told otherwise and stops cleanly on exit, running
the application's cleanup (the query executor's shutdown) in its own loop.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from aiohttp import web

from govpulse.dashboard.app import SERVER_OPTIONS


class BackgroundServer:
    """`with BackgroundServer(app) as server: urlopen(server.url + "/api/meta")`."""

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def _start(self) -> int:
        self._runner = web.AppRunner(self.app, access_log=None, **SERVER_OPTIONS)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        return int(self._runner.addresses[0][1])

    def start(self) -> BackgroundServer:
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(30)
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
