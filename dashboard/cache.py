"""Answers shared by every screen that asks the same question within a refresh tick.

Entries hold the task, not the value, so a burst of identical requests that arrives while
the first is still querying waits for that query instead of starting its own. An answer
younger than its `ttl` is shared as it is. An older one, up to `max_stale` seconds, is
returned at once while one background task recomputes it, so after a key's first
computation no request waits for ClickHouse: a screen gets the last tick's answer (with its
age) and the next tick is computed once, whatever the number of screens.

A computation whose every waiter has gone (clients that hung up) is cancelled: if it is
still queued (`dashboard.gate`), it never runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from govpulse.dashboard.gate import Shed

log = logging.getLogger(__name__)


class ResponseCache:
    """`value, age = await cache.answer(key, compute, ttl, max_stale)`."""

    MAX_ENTRIES = 2048
    STALE_FACTOR = 10

    def __init__(self) -> None:
        self._entries: dict[Any, tuple[float, asyncio.Future[Any]]] = {}
        self._waiters: dict[asyncio.Future[Any], int] = {}
        self._refreshing: dict[Any, asyncio.Future[Any]] = {}

    async def answer(
        self,
        key: Any,
        compute: Callable[[], Awaitable[Any]],
        ttl: float,
        max_stale: float = 0.0,
    ) -> tuple[Any, float]:
        """The answer for `key` and its age in seconds (0 when computed for this call)."""
        if ttl <= 0:
            return await compute(), 0.0
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None:
            born, future = entry
            age = now - born
            if age < ttl:
                return await self._wait(key, future), max(0.0, time.monotonic() - born)
            usable = future.done() and not future.cancelled() and future.exception() is None
            if usable and age < max_stale:
                if key not in self._refreshing:
                    self._refresh(key, compute, now)
                return future.result(), age
        if len(self._entries) >= self.MAX_ENTRIES:
            keep = max(ttl, max_stale)
            self._entries = {k: v for k, v in self._entries.items() if now - v[0] < keep}
        future = asyncio.ensure_future(compute())
        self._entries[key] = (now, future)
        future.add_done_callback(partial(self._forget_failure, key))
        return await self._wait(key, future), 0.0

    async def _wait(self, key: Any, future: asyncio.Future[Any]) -> Any:
        """Await a shared computation; the last waiter to leave cancels it."""
        if future.done():
            return future.result()
        self._waiters[future] = self._waiters.get(future, 0) + 1
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if self._waiters.get(future) == 1 and not future.done():
                future.cancel()
            raise
        finally:
            left = self._waiters.pop(future, 1) - 1
            if left:
                self._waiters[future] = left

    def _refresh(self, key: Any, compute: Callable[[], Awaitable[Any]], born: float) -> None:
        """Recompute in the background; the stale answer is replaced only on success."""
        future = asyncio.ensure_future(compute())
        self._refreshing[key] = future

        def done(task: asyncio.Future[Any]) -> None:
            self._refreshing.pop(key, None)
            if task.cancelled():
                return
            error = task.exception()
            if error is None:
                self._entries[key] = (born, task)
            elif isinstance(error, Shed):
                # busy: the last answer is served (older, marked stale) until max_stale
                log.debug("refresh of %s shed: %s", key, error)
            else:
                # the old answer is not served again: the next request computes, and shows
                # ClickHouse's error rather than figures that silently stopped moving
                self._entries.pop(key, None)
                log.warning("background refresh of %s failed: %s", key, error)

        future.add_done_callback(done)

    def cancel_refreshes(self) -> None:
        """At shutdown: background refreshes would find the executor gone."""
        for future in list(self._refreshing.values()):
            future.cancel()

    def _forget_failure(self, key: Any, future: asyncio.Future[Any]) -> None:
        """A failed or abandoned query is not cached: the next request tries again."""
        if future.cancelled() or future.exception() is not None:
            entry = self._entries.get(key)
            if entry is not None and entry[1] is future:
                del self._entries[key]
