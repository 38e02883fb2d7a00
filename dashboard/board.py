"""What the dashboard computes and shares: answers per refresh tick, not per viewer.

A panel with a province filter is computed for every province at once
(`DashboardQueries.all_provinces`: one query set for 77 screens) and each screen's answer
is cut from it; every answer is shared by all who ask within its tick and served stale
(marked, with its age) while the next tick is computed, so a request never waits for
ClickHouse once its key has been computed. Every computation goes through the gate.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from govpulse.dashboard.cache import ResponseCache
from govpulse.dashboard.gate import SHARED, SINGLE, URGENT, QueryGate
from govpulse.dashboard.params import Query, TimeRange, Window
from govpulse.dashboard.queries import DashboardQueries, window_of
from govpulse.monitoring.metrics import DASHBOARD_STALE, DASHBOARD_TICK_SECONDS


def dumps(value: Any) -> str:
    """Compact JSON with Thai as text: every answer the dashboard sends."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class JsonTexts:
    """JSON text of shared answers, serialised once however many screens are sent them.

    Keyed by the answer object's identity, holding the object (so the identity cannot be
    reused while the entry lives); cleared when it grows past `limit` (a few ticks' worth).
    """

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._texts: dict[int, tuple[Any, str]] = {}

    def __call__(self, value: Any) -> str:
        entry = self._texts.get(id(value))
        if entry is not None and entry[0] is value:
            return entry[1]
        if len(self._texts) >= self.limit:
            self._texts.clear()
        text = dumps(value)
        self._texts[id(value)] = (value, text)
        return text


json_text = JsonTexts()


@dataclass(frozen=True)
class Answer:
    """A shared answer, its age, and whether it is older than its tick (then marked)."""

    value: dict[str, Any]
    age: float
    stale: bool

    @classmethod
    def of(cls, value: dict[str, Any], age: float, ttl: float) -> Answer:
        stale = ttl > 0 and age >= ttl
        if stale:
            DASHBOARD_STALE.inc()
        return cls(value, age, stale)

    def json(self) -> str:
        """The answer as JSON; a stale one with `"stale": true, "age_seconds"` in front."""
        text = json_text(self.value)
        if not self.stale:
            return text
        return f'{{"stale":true,"age_seconds":{round(self.age, 1)},{text[1:]}'


# An answer is served, marked with its age, up to ten ticks old and at least this long: when
# the engine is busy (the pipeline first: dashboard queries run niced) a screen keeps getting
# the last figures with their age rather than waiting for ClickHouse or a 503.
MIN_STALE_SECONDS = 60.0

# The 15 min and 1 h drill-down counts a province's districts from the raw events of the
# window (the minute rollups have no district): grouped for all provinces, one scan of the
# hour's events, 250-370 ms at 1,000 events/s — 40 % of a 2 s tick's engine time alone.
DRILL_DOWN_TICK_SECONDS = 10.0


@dataclass(frozen=True)
class Limits:
    """How much the dashboard may ask of ClickHouse and hold open (see dashboard.gate).

    `max_queued` computations wait at most `max_wait_seconds`; beyond either, requests are
    shed (503 + Retry-After). `max_subscribers` pages may hold a push stream; more get 503
    and poll instead. With answers cut per tick, the queue holds at most ~one computation
    per panel and range in use (~40), so the defaults shed only when ClickHouse is slow.
    """

    max_queued: int = 64
    max_wait_seconds: float = 10.0
    max_subscribers: int = 500

    def __post_init__(self) -> None:
        if self.max_queued < 1 or self.max_wait_seconds <= 0 or self.max_subscribers < 0:
            raise ValueError(
                f"dashboard limits {self}: expected max_queued ≥ 1, max_wait_seconds > 0, "
                "max_subscribers ≥ 0"
            )


class Dashboard:
    """Per-application state: the queries, the gate in front of ClickHouse, the shared answers.

    Answers are computed per refresh tick, not per viewer: a panel with a province filter is
    computed for every province at once (`DashboardQueries.all_provinces`, one query set for
    77 screens) and each screen's answer is cut from it; every answer is shared by all who
    ask within its tick and served stale (marked, with its age) while the next tick is
    computed, so a request never waits for ClickHouse once a key has been computed.
    """

    def __init__(
        self,
        queries: DashboardQueries,
        meta: dict[str, Any],
        cache_seconds: float,
        workers: int,
        limits: Limits,
    ) -> None:
        self.queries = queries
        self.meta = meta
        self.cache = ResponseCache()
        self.cache_seconds = cache_seconds
        self.workers = workers
        self.limits = limits
        self.refresh_seconds = float(meta["refresh_seconds"])
        self.executor: ThreadPoolExecutor | None = None
        self.gate: QueryGate | None = None
        self.subscribers = 0
        self.closing = asyncio.Event()  # set at shutdown: push streams end

    async def run(self, function: Callable[..., Any], *args: Any, priority: int = SHARED) -> Any:
        """Run a blocking ClickHouse read through the gate (bounded queue, may shed)."""
        if self.gate is None:
            raise web.HTTPServiceUnavailable(reason="dashboard is not started")
        return await self.gate.run(function, *args, priority=priority)

    def ttl(self, time_range: TimeRange, panel: str = "") -> float:
        """How long an answer of `time_range` is shared: a refresh tick for the live ranges
        (the district drill-down's every DRILL_DOWN_TICK_SECONDS: it scans the raw events of
        the window), the range's max_age for a day or a week; 0 (never) with caching off."""
        if self.cache_seconds <= 0:
            return 0.0
        if time_range.max_age <= self.cache_seconds:
            tick = max(self.cache_seconds, self.refresh_seconds)
            return max(tick, DRILL_DOWN_TICK_SECONDS) if panel == "province" else tick
        return time_range.max_age

    async def windowed(self, name: str, query: Query) -> Answer:
        ttl = self.ttl(query.range, name)
        max_stale = max(ttl * ResponseCache.STALE_FACTOR, MIN_STALE_SECONDS)
        if query.province is not None and query.agency is None and ttl > 0:
            # one computation for every province; this screen's answer is cut from it
            every = Query(query.range, None, None, query.by)
            method = self.queries.all_provinces

            def timed_all(window: Window) -> Any:
                with DASHBOARD_TICK_SECONDS.labels(name).time():
                    return method(name, every, window)

            async def compute_all() -> Any:
                return await self.run(timed_all, window_of(query.range))

            key = ("all provinces", name, *every.key())
            answers, age = await self.cache.answer(key, compute_all, ttl, max_stale)
            return Answer.of(answers[query.province], age, ttl)

        single = getattr(self.queries, name)
        priority = SINGLE if query.agency is not None else SHARED

        async def compute() -> Any:
            return await self.run(single, query, window_of(query.range), priority=priority)

        value, age = await self.cache.answer((name, *query.key()), compute, ttl, max_stale)
        return Answer.of(value, age, ttl)

    async def freshness(self) -> Any:
        async def compute() -> Any:
            result = await self.run(self.queries.freshness, priority=URGENT)
            thresholds = self.meta["thresholds"]
            age = result["data_age_seconds"]
            result["freshness_threshold_seconds"] = thresholds["freshness_seconds"]
            result["fresh"] = age is not None and age <= thresholds["freshness_seconds"]
            result["dead_letter_threshold"] = thresholds["dead_letter_rate"]
            result["dead_letter_ok"] = result["dead_letter_rate"] <= thresholds["dead_letter_rate"]
            return result

        ttl = self.cache_seconds
        value, age = await self.cache.answer(
            ("freshness",), compute, ttl, ttl * ResponseCache.STALE_FACTOR
        )
        if ttl <= 0 or age < ttl:
            return value
        return aged_freshness(value, age, self.meta["thresholds"]["freshness_seconds"])


def aged_freshness(value: dict[str, Any], age: float, threshold: float) -> dict[str, Any]:
    """A freshness answer computed `age` seconds ago, as of now: every age grows by `age`
    (the newest event it found is that much older now), so a stale badge never flatters."""

    def older(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds + age, 1)

    data_age = older(value["data_age_seconds"])
    DASHBOARD_STALE.inc()
    return {
        **value,
        "data_age_seconds": data_age,
        "seconds_since_last_insert": older(value["seconds_since_last_insert"]),
        "data_age_by_type": {t: older(s) for t, s in value["data_age_by_type"].items()},
        "fresh": data_age is not None and data_age <= threshold,
        "stale": True,
        "age_seconds": round(age, 1),
    }
