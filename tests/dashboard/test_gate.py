"""The dashboard's bounded query queue and shared answers: shed, never queue for long."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from govpulse.dashboard.cache import ResponseCache
from govpulse.dashboard.gate import SHARED, SINGLE, URGENT, QueryGate, Shed
from govpulse.monitoring.metrics import DASHBOARD_SHED


def shed_count(reason: str) -> float:
    return DASHBOARD_SHED.labels(reason)._value.get()


class Blocker:
    """A blocking call that holds the executor until released; records what ran."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.ran: list[str] = []

    def hold(self, name: str) -> str:
        self.ran.append(name)
        self.release.wait(5)
        return name

    def quick(self, name: str) -> str:
        self.ran.append(name)
        return name


async def busy(
    executor: ThreadPoolExecutor, blocker: Blocker, max_queued: int = 4, max_wait: float = 5
) -> tuple[QueryGate, asyncio.Future[str]]:
    """A one-worker gate whose worker is held by `blocker` ("slow") until released."""
    gate = QueryGate(executor, workers=1, max_queued=max_queued, max_wait=max_wait)
    running = asyncio.ensure_future(gate.run(blocker.hold, "slow"))
    await asyncio.sleep(0.02)
    return gate, running


def run(scenario, workers: int = 1):  # type: ignore[no-untyped-def]
    with ThreadPoolExecutor(workers) as executor:
        return asyncio.run(scenario(executor))


def test_a_full_queue_sheds_at_once_instead_of_queueing() -> None:
    blocker = Blocker()
    before = shed_count("queue_full")

    async def scenario(executor: ThreadPoolExecutor) -> float:
        gate, running = await busy(executor, blocker, max_queued=2, max_wait=5)
        waiting = [asyncio.ensure_future(gate.run(blocker.quick, f"w{i}")) for i in range(2)]
        await asyncio.sleep(0.01)
        started = time.monotonic()
        with pytest.raises(Shed) as refused:
            await gate.run(blocker.quick, "one too many")
        took = time.monotonic() - started
        assert refused.value.reason == "queue_full" and refused.value.retry_after > 0
        blocker.release.set()
        assert await running == "slow"
        assert [await w for w in waiting] == ["w0", "w1"]
        return took

    assert run(scenario) < 0.05
    assert "one too many" not in blocker.ran
    assert shed_count("queue_full") - before == 1


def test_a_call_that_waited_too_long_is_dropped_before_it_runs() -> None:
    blocker = Blocker()

    async def scenario(executor: ThreadPoolExecutor) -> None:
        gate, running = await busy(executor, blocker, max_queued=4, max_wait=0.1)
        with pytest.raises(Shed) as dropped:
            await gate.run(blocker.quick, "late")
        assert dropped.value.reason == "waited_too_long"
        blocker.release.set()
        await running
        assert await gate.run(blocker.quick, "after") == "after"  # the slot was handed back

    run(scenario)
    assert blocker.ran == ["slow", "after"]


def test_a_waiter_whose_client_left_never_runs() -> None:
    blocker = Blocker()

    async def scenario(executor: ThreadPoolExecutor) -> None:
        gate, running = await busy(executor, blocker, max_queued=4, max_wait=5)
        gone = asyncio.ensure_future(gate.run(blocker.quick, "gone"))
        await asyncio.sleep(0.01)
        gone.cancel()
        blocker.release.set()
        await running
        await gate.run(blocker.quick, "next")
        await asyncio.sleep(0.01)  # the slot is freed as the call's future completes
        assert gate.running == 0 and gate.queued == 0

    run(scenario)
    assert blocker.ran == ["slow", "next"]


def test_the_queue_runs_the_badge_first_and_single_viewer_questions_last() -> None:
    blocker = Blocker()

    async def scenario(executor: ThreadPoolExecutor) -> None:
        gate, running = await busy(executor, blocker, max_queued=8, max_wait=5)
        order = [("single", SINGLE), ("shared", SHARED), ("badge", URGENT), ("shared2", SHARED)]
        waiting = [
            asyncio.ensure_future(gate.run(blocker.quick, name, priority=p)) for name, p in order
        ]
        await asyncio.sleep(0.01)
        blocker.release.set()
        await running
        await asyncio.gather(*waiting)

    run(scenario)
    assert blocker.ran == ["slow", "badge", "shared", "shared2", "single"]


def test_a_shared_answer_is_abandoned_only_when_its_last_waiter_leaves() -> None:
    started: list[str] = []

    async def scenario() -> tuple[bool, bool]:
        cache = ResponseCache()
        release = asyncio.Event()

        async def compute() -> str:
            started.append("x")
            await release.wait()
            return "answer"

        first = asyncio.ensure_future(cache.answer("k", compute, ttl=5))
        second = asyncio.ensure_future(cache.answer("k", compute, ttl=5))
        await asyncio.sleep(0.01)
        first.cancel()  # one viewer left: the other still waits for the same computation
        await asyncio.sleep(0.01)
        release.set()
        kept = (await second)[0] == "answer"
        third = asyncio.ensure_future(cache.answer("other", compute, ttl=5))
        release.clear()
        await asyncio.sleep(0.01)
        third.cancel()  # its only viewer left: the computation is cancelled and not cached
        await asyncio.sleep(0.01)
        return kept, "other" not in cache._entries

    assert asyncio.run(scenario()) == (True, True)
    assert started == ["x", "x"]


def test_answers_older_than_their_tick_are_served_at_once_with_their_age() -> None:
    async def scenario() -> list[tuple[int, bool]]:
        cache = ResponseCache()
        computed: list[int] = []

        async def compute() -> int:
            computed.append(len(computed) + 1)
            await asyncio.sleep(0.02)
            return computed[-1]

        seen = []
        value, age = await cache.answer("k", compute, ttl=0.5, max_stale=5)
        seen.append((value, age >= 0.5))
        await asyncio.sleep(0.6)
        started = time.monotonic()
        value, age = await cache.answer("k", compute, ttl=0.5, max_stale=5)
        assert time.monotonic() - started < 0.015  # not waiting for the refresh
        seen.append((value, age >= 0.5))
        await asyncio.sleep(0.1)  # the refresh has landed
        value, age = await cache.answer("k", compute, ttl=0.5, max_stale=5)
        seen.append((value, age >= 0.5))
        return seen

    assert asyncio.run(scenario()) == [(1, False), (1, True), (2, False)]
