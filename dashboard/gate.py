"""A bounded, prioritised queue in front of the dashboard's ClickHouse executor.

The dashboard shares the machine with the sink and the stream workers, and its own work is
cheap only while it is bounded: a hundred screens asking faster than the engine answers must
not queue for thirty seconds (the clients time out and ask again, each waiting request holds
a socket, and the engine computes answers nobody reads). So:

- at most `workers` blocking calls run at once (the executor's size);
- at most `max_queued` wait; one more is refused at once (`Shed`, reason `queue_full`), and
  the API answers 503 with Retry-After — or, where it has one, the last answer marked stale;
- a call that waited `max_wait` seconds is dropped before it starts (`waited_too_long`): its
  client has most likely given up;
- a waiting call whose caller is cancelled (its HTTP client went away, see
  `handler_cancellation` in the server) leaves the queue and never runs;
- the queue is ordered by priority, then arrival: the data-age badge first, shared panels
  next, one viewer's filtered question last.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from govpulse.monitoring.metrics import DASHBOARD_SHED

T = TypeVar("T")

# Priorities: lower runs first.
URGENT = 0  # the data-age badge: one small query every page needs every second
SHARED = 1  # a panel answer cut for many screens
SINGLE = 2  # one viewer's filtered question (agency filter)


class Shed(Exception):
    """The dashboard refused work to stay responsive; retry after `retry_after` seconds."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(f"dashboard busy ({reason}); retry after {retry_after} s")
        self.reason = reason
        self.retry_after = retry_after


class QueryGate:
    """`await gate.run(function, *args, priority=SHARED)` runs `function` in `executor`."""

    def __init__(
        self,
        executor: Executor,
        workers: int,
        max_queued: int,
        max_wait: float,
        retry_after: int = 2,
    ) -> None:
        if workers < 1 or max_queued < 0 or max_wait <= 0:
            raise ValueError("workers ≥ 1, max_queued ≥ 0 and max_wait > 0 expected")
        self.executor = executor
        self.workers = workers
        self.max_queued = max_queued
        self.max_wait = max_wait
        self.retry_after = retry_after
        self.running = 0
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def queued(self) -> int:
        return sum(1 for _, _, future in self._waiting if not future.done())

    def _shed(self, reason: str) -> Shed:
        DASHBOARD_SHED.labels(reason).inc()
        return Shed(reason, self.retry_after)

    async def run(self, function: Callable[..., T], *args: Any, priority: int = SHARED) -> T:
        await self._acquire(priority)
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(self.executor, function, *args)
        except BaseException:  # the executor is shut down (the server is stopping)
            self._release()
            raise
        try:
            # shielded: a caller that leaves does not stop a call already running, and the
            # slot stays taken until it has finished
            return await asyncio.shield(future)
        finally:
            future.add_done_callback(lambda _: self._release())

    async def _acquire(self, priority: int) -> None:
        if self.running < self.workers and not self.queued:
            self.running += 1
            return
        if self.queued >= self.max_queued:
            raise self._shed("queue_full")
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._order), turn))
        try:
            async with asyncio.timeout(self.max_wait):
                await turn
        except BaseException as error:
            if turn.done() and not turn.cancelled():  # handed the slot as we left: pass it on
                self._release()
            if isinstance(error, TimeoutError):
                raise self._shed("waited_too_long") from None
            raise

    def _release(self) -> None:
        """Hand the slot to the first live waiter, or free it."""
        while self._waiting:
            _, _, turn = heapq.heappop(self._waiting)
            if not turn.done():
                turn.set_result(None)  # `running` stays: the slot changes hands
                return
        self.running -= 1
