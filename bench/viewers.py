"""Benchmark: the operations room — a hundred dashboard screens while the pipeline runs.

Starts the pipeline as `govpulse up` would, each piece a child process on 127.0.0.1 free
ports: the embedded broker (Tansu) and schema registry, `govpulse serve` (serve's sink, the
dashboard and ClickHouse's HTTP interface: the one process owning the store), ONE
`govpulse streams` worker and `govpulse simulate --flat --rate RATE` for the whole run. Then,
in one run so they compare on the same machine state, phases of `--phase` seconds:

- warm-up (`--warmup` seconds, no viewers; reported, not compared);
- `baseline`: no viewers;
- one phase per viewer mode of `--modes`, `--gap` seconds apart (longer while the dashboard
  still answers /api/freshness slower than 1 s: a backlog of the last phase is not measured
  in the next one).

The screens (`--screens`, 100 by default): 1 national wall (1 h), a screen per province
(1 h, `province=<code>`; with fewer screens the first provinces by code), the rest analysts
(national view, switching range every 30 s, 15m → 1h → 24h → 7d, each starting at another
range and switching at another moment). Each screen is one aiohttp session with 6
connections (a browser's per host) and a 30 s timeout per request; they start spread over
the first 2 s. One asyncio loop in this process drives them all.

- `poll`: what dashboard/static/app.js does. Every tick the panel requests at once
  (overview, timeseries, provinces, ministries, service-requests, complaints, net-pracharat,
  digital-centers, breakdown by channel, and province/<code> on a provincial screen); the
  next tick when all answered, max(0.25, 2 − elapsed) s later. Independently /api/freshness,
  1 s after each answer. A range switch starts a tick at once; answers still in flight for
  the old range complete (and are counted), as a browser's fetches would.
- `push`: what app.js does since it subscribes: one Server-Sent Events connection per screen,
  GET /api/stream?range=R[&province=P] (`event: panels` every 2 s, `event: freshness` every
  1 s), with an EventSource's semantics: a refused stream (503 with Retry-After, any status
  but 200) is closed and subscribed again 30 s later; a dropped one (or a failed connection)
  is reconnected after the `retry:` interval. The page's timers keep running and poll as
  above whenever the stream has not delivered for a period and a half (3 s for the panels,
  1.5 s for the badge), and once at the start. A fallback is a panel tick that polls after
  one that did not, counted by the stream's state then (refused, reconnecting, silent while
  open). A range switch closes the stream and opens another.

Figures per phase: the pipeline's end-to-end latency (inserted_at − produced_at of the rows
inserted during the phase, all events_* tables, read through serve's ClickHouse endpoint
after the run), the simulator's delivered rate, the stream worker's consumer lag
(govpulse_streams_consumer_lag summed, sampled every 2 s), serve's threads and open files
(sampled every 2 s), CPU seconds per second of serve, the worker, the simulator, the broker and this
process (it shares the cores), the dashboard's SQL statements per second
(govpulse_dashboard_queries_total; null where the code has no such counter) and its shed
requests; for viewer phases requests asked/answered per second, per endpoint (route
template) count, p50/p95/p99/max latency, statuses, timeouts and errors; in push mode
messages per screen per second, the interval between consecutive `panels` messages of a
screen, the time to a stream's first `panels`, stale messages, how streams ended, the polls
made and the fallbacks to polling. Each viewer
phase carries `e2e_p99_ratio` (its p99 over baseline's), each phase the 1-minute load
average at its end (this run's own threads count too: chdb keeps ~170 in serve, so compare
it with the baseline's; a jump without viewers means other jobs on the machine). A
benchmark reports: nothing is asserted. Progress goes to stderr, one JSON object to stdout.
Every process it started is ended by its PID at the end, on Ctrl-C and on errors too.

    .venv/bin/python -m bench.viewers                        # ~10 min: 100 screens, poll, push
    .venv/bin/python -m bench.viewers --screens 20 --warmup 20 --phase 40 --modes poll
    .venv/bin/python -m bench.viewers --url http://127.0.0.1:8088 --phase 30 --modes push

`--url` drives only the screens against a dashboard already running (no pipeline, no
baseline, no warm-up): for quick checks; the pipeline figures are then null.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bench._fault_harness import Pipeline, pipeline_env, scrape, stderr_log
from bench._stack import interrupt_on_signals, positive
from bench.host import host_facts, peak_rss_mb
from govpulse.schemas.reference import provinces

RANGES = ("15m", "1h", "24h", "7d")  # dashboard/params.py, the analysts' cycle
NATIONAL_RANGE = "1h"  # the wall's and the provincial screens' (the page's default)
REFRESH_S = 2.0  # /api/meta refresh_seconds: one panel tick
MIN_WAIT_S = 0.25  # app.js: never less between two ticks
FRESHNESS_EVERY_S = 1.0  # app.js: min(1000, refresh_seconds * 1000) ms after each answer
SWITCH_EVERY_S = 30.0  # an analyst's range switch
STREAM_RETRY_S = 30.0  # app.js STREAM_RETRY_MS: a refused stream is tried again this late
DEFAULT_RETRY_S = 3.0  # an EventSource's reconnection delay until the server sends `retry:`
REQUEST_TIMEOUT_S = 30.0
CONNECTIONS = 6  # a browser's connections per host
SAMPLE_EVERY_S = 2.0
PROGRESS_EVERY_S = 10.0
DRAINED_ANSWER_S = 1.0  # a gap ends once /api/freshness answers this fast (or after MAX_GAP_S)
MAX_GAP_S = 120.0
SETTLE_S = 3.0  # after the last phase: its last inserts are visible before they are read
DELIVERED = "govpulse_producer_delivered_total"  # the simulator's
FRESHNESS = "/api/freshness"
STREAM = "/api/stream"
PROVINCE = "/api/province/{code}"
# app.js PANELS, in its order: (route template, path, takes `province`, extra parameters)
PANELS: tuple[tuple[str, bool, dict[str, str]], ...] = (
    ("/api/overview", True, {}),
    ("/api/timeseries", True, {}),
    ("/api/provinces", False, {}),
    ("/api/ministries", True, {}),
    ("/api/service-requests", True, {}),
    ("/api/complaints", True, {}),
    ("/api/net-pracharat", True, {}),
    ("/api/digital-centers", True, {}),
    ("/api/breakdown", True, {"by": "channel"}),
)
Log = Callable[[str], None]


# -- pure helpers (tests/bench/test_viewers.py) ----------------------------------------------
def percentile(ordered: Sequence[float], share: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default) of sorted values."""
    if not ordered:
        raise ValueError("no values")
    position = share * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: Sequence[float], digits: int = 1) -> dict[str, Any]:
    """count, p50, p95, p99 and max of `values` (null figures when there are none)."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}
    return {
        "count": len(ordered),
        **{f"p{round(q * 100)}": round(percentile(ordered, q), digits) for q in (0.5, 0.95, 0.99)},
        "max": round(ordered[-1], digits),
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 2)


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str
    id: str | None = None


_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


class SseParser:
    """The Server-Sent Events line protocol (WHATWG HTML, "event stream interpretation"), fed
    raw chunks as they arrive: lines end with CRLF, LF or CR, also split across chunks; a
    blank line dispatches the event; `:` lines are comments; `retry:` sets `retry_ms`."""

    def __init__(self) -> None:
        self._tail: list[bytes] = []  # the unterminated line so far
        self._after_cr = False  # the last chunk ended with CR: a leading LF is its CRLF's
        self._event = ""
        self._data: list[str] = []
        self.last_id: str | None = None
        self.retry_ms: int | None = None

    def feed(self, chunk: bytes) -> list[SseEvent]:
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._after_cr = chunk.endswith(b"\r")
        parts = _LINE_BREAK.split(chunk)
        if len(parts) == 1:
            if chunk:
                self._tail.append(chunk)
            return []
        first = b"".join([*self._tail, parts[0]]) if self._tail else parts[0]
        self._tail = [parts[-1]] if parts[-1] else []
        events = []
        for raw in [first, *parts[1:-1]]:
            event = self._line(raw.decode("utf-8", "replace"))
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> SseEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> SseEvent | None:
        event, data, self._event, self._data = self._event, self._data, "", []
        if not data:
            return None
        return SseEvent(event or "message", "\n".join(data), self.last_id)


def metric_samples(text: str, name: str) -> dict[str, float] | None:
    """Label set (as exposed, `{reason="x"}`, or "") → value of each sample called `name` in
    a Prometheus text exposition; None when the metric is not exposed at all (older code),
    {} when it is but has no sample yet (a labelled counter nothing counted)."""
    family = name.removesuffix("_total")
    declared = (f"# TYPE {name} ", f"# TYPE {family} ")
    exposed, found = False, {}
    for line in text.splitlines():
        if line.startswith("#"):
            exposed = exposed or line.startswith(declared)
            continue
        if not line.startswith(name):
            continue
        rest = line[len(name) :]
        if rest.startswith("{"):
            end = rest.rfind("} ")
            labels, value = rest[: end + 1], rest[end + 2 :]
        elif rest.startswith(" "):
            labels, value = "", rest[1:]
        else:  # another metric whose name starts with this one
            continue
        found[labels] = float(value.split()[0])
    return found if exposed or found else None


def error_name(error: BaseException) -> str:
    """Its class and message (no URL, no port: few distinct values)."""
    text = re.sub(r"\S*://\S*|:\d+|\b127\.0\.0\.1\b", "", str(error)).strip()
    return f"{type(error).__name__}: {text}"[:80] if text else type(error).__name__


def label_value(labels: str, name: str) -> str:
    match = re.search(rf'{name}="((?:[^"\\]|\\.)*)"', labels)
    return match[1] if match else ""


# -- the screens ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScreenSpec:
    """One screen of the room: what it shows, when it starts and (analysts) switches."""

    name: str
    kind: str  # wall | province | analyst
    province: str | None
    range: str
    start_s: float  # after the phase starts: the room's screens do not tick in lockstep
    switch_s: float | None = None  # an analyst's first range switch, then every 30 s


def room(count: int, province_codes: Sequence[str]) -> list[ScreenSpec]:
    """The wall, then a screen per province in code order, then the analysts."""
    kinds: list[tuple[str, str | None]] = [("wall", None)]
    kinds += [("province", code) for code in sorted(province_codes)]
    kinds = kinds[:count]
    analysts = count - len(kinds)
    kinds += [("analyst", None)] * analysts
    specs = []
    for index, (kind, province) in enumerate(kinds):
        start = round(REFRESH_S * index / count, 3)
        if kind != "analyst":
            name = "wall" if kind == "wall" else f"province-{province}"
            specs.append(ScreenSpec(name, kind, province, NATIONAL_RANGE, start))
            continue
        nth = index - (count - analysts)
        switch = round(SWITCH_EVERY_S * (nth + 1) / analysts, 3)
        specs.append(
            ScreenSpec(f"analyst-{nth}", kind, None, RANGES[nth % len(RANGES)], start, switch)
        )
    return specs


def panel_requests(range_name: str, province: str | None) -> list[tuple[str, str]]:
    """(route template, path with query) of one tick's panel requests, in app.js's order."""
    requests = []
    for path, filtered, extra in PANELS:
        params = {"range": range_name}
        if filtered and province:
            params["province"] = province
        requests.append((path, f"{path}?{urlencode({**params, **extra})}"))
    if province:
        requests.append((PROVINCE, f"/api/province/{province}?range={range_name}"))
    return requests


def stream_path(range_name: str, province: str | None) -> str:
    return f"{STREAM}?" + urlencode(
        {"range": range_name, **({"province": province} if province else {})}
    )


@dataclass
class EndpointStats:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    timeouts: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def report(self) -> dict[str, Any]:
        figures = summary(self.latencies_ms)
        return {
            "count": figures.pop("count") + self.timeouts + sum(self.errors.values()),
            **{f"{k}_ms": v for k, v in figures.items()},
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "timeouts": self.timeouts,
            "errors": dict(self.errors),
        }


@dataclass
class ViewerStats:
    """What the screens of one phase saw; every screen records here as it goes."""

    asked: int = 0
    answered: int = 0  # a whole response, any status
    endpoints: dict[str, EndpointStats] = field(default_factory=dict)
    messages: Counter[str] = field(default_factory=Counter)  # push: by SSE event type
    panels_interval_ms: list[float] = field(default_factory=list)
    first_panels_ms: list[float] = field(default_factory=list)
    panels_age_ms: list[float] = field(default_factory=list)  # receipt − as_of_ms
    stale: int = 0
    unreadable: int = 0  # panels messages whose data was not the JSON expected
    streams: Counter[str] = field(default_factory=Counter)  # how streams ended: refused …
    fallbacks: Counter[str] = field(default_factory=Counter)  # push → polling, by state
    poll_ticks: int = 0  # push: panel ticks polled (the stream silent for 3 s), not the first
    freshness_polls: int = 0  # push: /api/freshness polled (no push for 1.5 s), not the first

    def endpoint(self, template: str) -> EndpointStats:
        stats = self.endpoints.get(template)
        if stats is None:
            stats = self.endpoints[template] = EndpointStats()
        return stats

    def report(self, seconds: float, screens: int, mode: str) -> dict[str, Any]:
        every = [  # a stream's time to its headers is no answer's latency
            ms
            for name, stats in self.endpoints.items()
            if name != STREAM
            for ms in stats.latencies_ms
        ]
        failed = sum(s.timeouts + sum(s.errors.values()) for s in self.endpoints.values())
        statuses: Counter[int] = Counter()
        for stats in self.endpoints.values():
            statuses.update(stats.statuses)
        report: dict[str, Any] = {
            "requests": {
                "asked_per_s": round(self.asked / seconds, 1),
                "answered_per_s": round(self.answered / seconds, 1),
                "ok_per_s": round(
                    sum(n for s, n in statuses.items() if 200 <= s < 300) / seconds, 1
                ),
                "asked": self.asked,
                "answered": self.answered,
                "timeouts_or_errors": failed,
                "in_flight_at_end": self.asked - self.answered - failed,
                "statuses": {str(k): v for k, v in sorted(statuses.items())},
                "latency_ms": summary(every),
            },
            "endpoints": {name: s.report() for name, s in sorted(self.endpoints.items())},
        }
        if mode == "push":
            report["push"] = {
                "messages_per_screen_per_s": round(
                    sum(self.messages.values()) / screens / seconds, 3
                ),
                "messages": dict(self.messages),
                "panels_interval_ms": summary(self.panels_interval_ms),
                "first_panels_ms": summary(self.first_panels_ms),
                "panels_age_ms": summary(self.panels_age_ms),
                "stale_messages": self.stale,
                "unreadable_messages": self.unreadable,
                "streams_ended": dict(self.streams),
                "fallbacks": sum(self.fallbacks.values()),
                "fallbacks_by_stream_state": dict(self.fallbacks),
                "poll_ticks": self.poll_ticks,
                "freshness_polls": self.freshness_polls,
            }
        return report


_SHORT = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
# a stream lives as long as the page; an EventSource never times a silent stream out (the
# page polls meanwhile): 30 s to connect, as for a request, then no limit
_STREAM = aiohttp.ClientTimeout(total=None, connect=REQUEST_TIMEOUT_S, sock_read=None)


def pushed(last: float, now: float, period: float) -> bool:
    """app.js `pushed`: the stream delivered within a period and a half, so no polling."""
    return now - last < 1.5 * period


class Screen:
    """One browser page: a session of its own, the page's requests on its schedule."""

    def __init__(self, spec: ScreenSpec, base_url: str, mode: str, stats: ViewerStats) -> None:
        self.spec, self.base_url, self.mode, self.stats = spec, base_url, mode, stats
        self.range = spec.range
        self.session: aiohttp.ClientSession | None = None
        self.tasks: set[asyncio.Task[Any]] = set()  # cancelled when the phase ends
        self.panels: asyncio.Task[Any] | None = None  # the panel timer's chain
        self.stream: asyncio.Task[Any] | None = None  # push: the EventSource of the view
        # push: when the stream last delivered (loop time), the stream's state, the polling
        self.last_panels = self.last_freshness = -math.inf
        self.state = "connecting"  # open | reconnecting | refused <status>
        self.retry_s = DEFAULT_RETRY_S
        self.polled = False  # the last panel tick polled (a fallback starts when it did not)
        self.ticks = 0

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def run(self) -> None:
        """Until cancelled at the end of the phase."""
        connector = aiohttp.TCPConnector(limit=CONNECTIONS)
        async with aiohttp.ClientSession(
            self.base_url, connector=connector, timeout=_SHORT
        ) as self.session:
            try:
                await asyncio.sleep(self.spec.start_s)
                if self.spec.switch_s is not None:
                    self.spawn(self.switching())
                if self.mode == "push":  # app.js start(): subscribe, then poll once at once
                    self.stream = self.spawn(self.subscribe())
                self.panels = self.spawn(self.panel_ticks())
                await self.freshness_ticks()
            finally:  # before the session closes: requests waiting for a connection would
                for task in list(self.tasks):  # fail with "Connector is closed", not end
                    task.cancel()
                await asyncio.gather(*self.tasks, return_exceptions=True)

    # -- polling, as app.js (in push mode only while the stream is silent) --------------------
    async def panel_ticks(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            if self.mode == "push" and pushed(self.last_panels, started, REFRESH_S):
                self.polled = False
                await asyncio.sleep(REFRESH_S)
                continue
            if self.mode == "push" and self.ticks:  # the page's first tick always polls
                self.stats.poll_ticks += 1
                if not self.polled:
                    reason = "silent" if self.state == "open" else self.state
                    self.stats.fallbacks[reason] += 1
                self.polled = True
            self.ticks += 1
            requests = panel_requests(self.range, self.spec.province)
            tick = self.spawn(self.all_of(requests))
            await asyncio.shield(tick)  # a range switch restarts the chain, not the fetches
            await asyncio.sleep(max(MIN_WAIT_S, REFRESH_S - (loop.time() - started)))

    async def all_of(self, requests: list[tuple[str, str]]) -> None:
        await asyncio.gather(*(self.get(template, path) for template, path in requests))

    async def freshness_ticks(self) -> None:
        loop = asyncio.get_running_loop()
        first = True
        while True:
            if self.mode != "push" or not pushed(
                self.last_freshness, loop.time(), FRESHNESS_EVERY_S
            ):
                self.stats.freshness_polls += self.mode == "push" and not first
                await self.get(FRESHNESS, FRESHNESS)
            first = False
            await asyncio.sleep(FRESHNESS_EVERY_S)

    async def get(self, template: str, path: str) -> None:
        stats, endpoint = self.stats, self.stats.endpoint(template)
        assert self.session is not None
        stats.asked += 1
        started = time.perf_counter()
        try:
            async with self.session.get(path) as response:
                await response.read()
                status = response.status
        except TimeoutError:
            endpoint.timeouts += 1
            return
        except aiohttp.ClientError as error:
            endpoint.errors[error_name(error)] += 1
            return
        endpoint.latencies_ms.append((time.perf_counter() - started) * 1000)
        endpoint.statuses[status] += 1
        stats.answered += 1

    # -- analysts ------------------------------------------------------------------------------
    async def switching(self) -> None:
        """app.js setView: subscribe() to the new view, refreshPanels() at once (which polls
        only if the stream is silent); fetches in flight for the old view complete."""
        assert self.spec.switch_s is not None
        await asyncio.sleep(self.spec.switch_s)
        while True:
            self.range = RANGES[(RANGES.index(self.range) + 1) % len(RANGES)]
            if self.stream is not None:
                self.stream.cancel()
                self.state = "connecting"
                self.stream = self.spawn(self.subscribe())
            if self.panels is not None:
                self.panels.cancel()
                self.panels = self.spawn(self.panel_ticks())
            await asyncio.sleep(SWITCH_EVERY_S)

    # -- push: an EventSource ------------------------------------------------------------------
    async def subscribe(self) -> None:
        """EventSource semantics: a refused stream (a status but 200, or not
        text/event-stream) is closed for good and app.js subscribes again 30 s later; a
        dropped one or a failed connection is reconnected after the `retry:` interval."""
        while True:
            outcome = await self.listen(self.range)
            if outcome.startswith("refused"):
                self.state = outcome
                self.stats.streams[outcome] += 1
                await asyncio.sleep(STREAM_RETRY_S)
            else:
                self.state = "reconnecting"
                self.stats.streams[outcome] += 1
                await asyncio.sleep(self.retry_s)

    async def listen(self, range_name: str) -> str:
        """One stream until it ends: how it ended."""
        stats, endpoint = self.stats, self.stats.endpoint(STREAM)
        assert self.session is not None
        stats.asked += 1
        started = time.perf_counter()
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
        connected = False  # once the headers came, an error ends the stream, not the request
        try:
            async with self.session.get(
                stream_path(range_name, self.spec.province), headers=headers, timeout=_STREAM
            ) as response:
                endpoint.latencies_ms.append((time.perf_counter() - started) * 1000)
                endpoint.statuses[response.status] += 1
                stats.answered += 1
                connected = True
                if response.status != 200:
                    return f"refused {response.status}"
                if response.content_type != "text/event-stream":
                    return f"refused {response.content_type}"
                self.state = "open"
                await self.messages(response, started)
                return "dropped"  # the server ended it
        except TimeoutError:
            endpoint.timeouts += not connected
            return "dropped" if connected else "connect timeout"
        except aiohttp.ClientError as error:
            if not connected:
                endpoint.errors[error_name(error)] += 1
            return "dropped" if connected else "connect error"

    async def messages(self, response: aiohttp.ClientResponse, started: float) -> None:
        stats, parser, loop = self.stats, SseParser(), asyncio.get_running_loop()
        last: float | None = None
        async for chunk in response.content.iter_any():
            for event in parser.feed(chunk):
                stats.messages[event.event] += 1
                if event.event == "freshness":
                    self.last_freshness = loop.time()
                if event.event != "panels":
                    continue
                now = time.perf_counter()
                self.last_panels = loop.time()
                if last is None:
                    stats.first_panels_ms.append((now - started) * 1000)
                else:
                    stats.panels_interval_ms.append((now - last) * 1000)
                last = now
                try:
                    data = json.loads(event.data)
                    stale, as_of = data["stale"], data["as_of_ms"]
                except (ValueError, KeyError, TypeError):
                    stats.unreadable += 1
                    continue
                stats.stale += stale is True
                if isinstance(as_of, int | float):
                    stats.panels_age_ms.append(time.time() * 1000 - as_of)
            if parser.retry_ms is not None:
                self.retry_s = parser.retry_ms / 1000


# -- the pipeline's side ------------------------------------------------------------------------
def proc_cpu_s(pid: int) -> float | None:
    """utime + stime of a process, in seconds (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            fields = file.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_threads_files(pid: int) -> tuple[int | None, int | None]:
    """Threads and open files of a process (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as file:
            found = re.search(r"^Threads:\s+(\d+)", file.read(), re.M)
        return (int(found[1]) if found else None), len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None, None


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Target:
    """What is measured: the dashboard's URL, and the pipeline's processes when started here."""

    url: str
    pipe: Pipeline | None = None

    def pid(self, name: str) -> int | None:
        if self.pipe is None:
            return None
        if name == "simulator":
            return self.pipe.simulator.pid if self.pipe.simulator else None
        if name == "broker":
            return self.pipe.broker_pid
        member = self.pipe.members.get(name)
        return member.proc.pid if member and member.proc else None

    def metrics_url(self, name: str) -> str | None:
        if self.pipe is None:
            return None
        if name == "simulator":
            return f"http://127.0.0.1:{self.pipe.simulator_port}/metrics"
        return f"http://127.0.0.1:{self.pipe.members[name].port}/metrics"


WORKER = "worker0"
CPU_OF = ("serve", WORKER, "simulator", "broker")


@dataclass
class Snapshot:
    """Counters at one moment: a phase's figures are the differences of two."""

    at: float  # monotonic
    wall_ms: int
    cpu_s: dict[str, float | None]
    load_avg: float  # 1 min: other jobs on the machine show here
    queries: float | None = None
    shed: dict[str, float] | None = None
    stale: float | None = None
    served: float | None = None
    delivered: float | None = None


@dataclass
class Sample:
    at: float
    lag: float | None
    threads: int | None
    files: int | None
    subscribers: float | None


class Probe:
    """Scrapes the pipeline's metrics and /proc every 2 s, prints progress every 10 s."""

    def __init__(self, target: Target, log: Log) -> None:
        self.target, self.log = target, log
        self.samples: list[Sample] = []
        self.phase = "start"
        self.phase_started = time.monotonic()
        self.viewers: ViewerStats | None = None
        self.answered_before = 0  # for the progress line's rate
        self.session: aiohttp.ClientSession | None = None

    async def text(self, url: str | None) -> str | None:
        if url is None or self.session is None:
            return None
        try:
            async with self.session.get(url) as response:
                return await response.text()
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def snapshot(self) -> Snapshot:
        cpu: dict[str, float | None] = {"bench": own_cpu_s()}
        for name in CPU_OF:
            pid = self.target.pid(name)
            cpu[name] = proc_cpu_s(pid) if pid else None
        snap = Snapshot(time.monotonic(), time.time_ns() // 1_000_000, cpu, os.getloadavg()[0])
        serve = await self.text(self.target.metrics_url("serve"))
        if serve is not None:
            queries = metric_samples(serve, "govpulse_dashboard_queries_total")
            snap.queries = None if queries is None else sum(queries.values())
            shed = metric_samples(serve, "govpulse_dashboard_shed_total")
            if shed is not None:
                by_reason: dict[str, float] = {}
                for labels, value in shed.items():
                    reason = label_value(labels, "reason")
                    by_reason[reason] = by_reason.get(reason, 0.0) + value
                snap.shed = by_reason
            stale = metric_samples(serve, "govpulse_dashboard_stale_total")
            snap.stale = None if stale is None else sum(stale.values())
            served = metric_samples(serve, "govpulse_dashboard_requests_total")
            snap.served = None if served is None else sum(served.values())
        simulator = await self.text(self.target.metrics_url("simulator"))
        if simulator is not None:
            delivered = metric_samples(simulator, DELIVERED)
            snap.delivered = None if delivered is None else sum(delivered.values())
        return snap

    async def sample(self) -> Sample:
        lag = subscribers = None
        worker = await self.text(self.target.metrics_url(WORKER))
        if worker is not None:
            found = metric_samples(worker, "govpulse_streams_consumer_lag")
            lag = None if found is None else sum(found.values())
        serve = await self.text(self.target.metrics_url("serve"))
        if serve is not None:
            found = metric_samples(serve, "govpulse_dashboard_subscribers")
            subscribers = None if found is None else sum(found.values())
        pid = self.target.pid("serve")
        threads, files = proc_threads_files(pid) if pid else (None, None)
        return Sample(time.monotonic(), lag, threads, files, subscribers)

    async def run(self) -> None:
        """Until cancelled."""
        next_progress = time.monotonic() + PROGRESS_EVERY_S
        while True:
            if self.target.pipe is not None:
                self.samples.append(await self.sample())
            if time.monotonic() >= next_progress:
                next_progress += PROGRESS_EVERY_S
                self.progress()
            await asyncio.sleep(SAMPLE_EVERY_S)

    def progress(self) -> None:
        elapsed = time.monotonic() - self.phase_started
        parts = [f"[{self.phase} {elapsed:5.0f} s]"]
        if self.viewers is not None:
            answered, before = self.viewers.answered, self.answered_before
            self.answered_before = answered
            parts.append(f"answered {(answered - before) / PROGRESS_EVERY_S:,.0f}/s")
            parts.append(f"(asked {self.viewers.asked:,}, answered {answered:,} in all)")
            if self.viewers.messages:
                parts.append(f"messages {sum(self.viewers.messages.values()):,}")
            if self.viewers.fallbacks:
                parts.append(f"fallbacks {sum(self.viewers.fallbacks.values())}")
        if self.samples:
            last = self.samples[-1]
            lag = "-" if last.lag is None else f"{last.lag:,.0f}"
            parts.append(f"lag {lag}, serve threads {last.threads} files {last.files}")
        if len(parts) > 1:
            self.log(" ".join(parts))

    def begin(self, phase: str, viewers: ViewerStats | None) -> None:
        self.phase, self.viewers, self.phase_started = phase, viewers, time.monotonic()
        self.answered_before = 0
        if phase != "gap":
            self.log(f"phase {phase} starting")

    def figures(self, start: Snapshot, end: Snapshot) -> dict[str, Any]:
        """The pipeline's figures between two snapshots (e2e latency comes later)."""
        seconds = end.at - start.at
        samples = [s for s in self.samples if start.at <= s.at <= end.at]

        def rate(a: float | None, b: float | None, digits: int = 1) -> float | None:
            return None if a is None or b is None else round((b - a) / seconds, digits)

        def series(values: list[float | int | None], mean: bool) -> dict[str, Any]:
            known = [v for v in values if v is not None]
            if not known:
                return {"first": None, "max": None, "last": None}
            out: dict[str, Any] = {"first": known[0], "max": max(known), "last": known[-1]}
            if mean:
                out = {"mean": round(sum(known) / len(known), 1), **out}
            return out

        lag = series([s.lag for s in samples], mean=True)
        lag.pop("first")
        shed = None
        if start.shed is not None and end.shed is not None:
            shed = {k: end.shed[k] - start.shed.get(k, 0) for k in end.shed}
        return {
            "load_avg_1m_at_end": round(end.load_avg, 2),
            "simulator_rate_per_s": rate(start.delivered, end.delivered),
            "consumer_lag": lag,
            "serve": {
                "threads": series([s.threads for s in samples], mean=False),
                "open_files": series([s.files for s in samples], mean=False),
            },
            "cpu_s_per_s": {
                name: rate(start.cpu_s.get(name), end.cpu_s.get(name), 3) for name in end.cpu_s
            },
            "dashboard": {
                "queries_per_s": rate(start.queries, end.queries),
                "served_per_s": rate(start.served, end.served),
                "shed": shed,
                "stale": None if start.stale is None or end.stale is None
                else end.stale - start.stale,
                "subscribers": series([s.subscribers for s in samples], mean=False),
            },
        }  # fmt: skip


# -- the phases ----------------------------------------------------------------------------------
@dataclass
class Phase:
    name: str
    kind: str  # warmup | baseline | viewers
    start: Snapshot
    end: Snapshot
    figures: dict[str, Any]
    gap_s: float | None = None


async def answers_fast(url: str) -> bool:
    """Whether /api/freshness answers within DRAINED_ANSWER_S (a backlog would delay it)."""
    timeout = aiohttp.ClientTimeout(total=DRAINED_ANSWER_S)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url + FRESHNESS) as response,
        ):
            await response.read()
            return response.status < 500
    except (aiohttp.ClientError, TimeoutError):
        return False


async def gap(url: str, least: float) -> float:
    """At least `least` seconds, then until the dashboard answers fast (MAX_GAP_S at most)."""
    started = time.monotonic()
    await asyncio.sleep(least)
    while time.monotonic() - started < MAX_GAP_S and not await answers_fast(url):
        await asyncio.sleep(1.0)
    return round(time.monotonic() - started, 1)


async def viewers(
    specs: list[ScreenSpec], url: str, mode: str, seconds: float, stats: ViewerStats
) -> None:
    screens = [asyncio.create_task(Screen(spec, url, mode, stats).run()) for spec in specs]
    try:
        await asyncio.sleep(seconds)
    finally:
        for task in screens:
            task.cancel()
        results = await asyncio.gather(*screens, return_exceptions=True)
    for result in results:  # a screen that failed on its own is a bug of this bench: say so
        if isinstance(result, Exception):
            raise result


async def drive(args: argparse.Namespace, target: Target, log: Log) -> list[Phase]:
    specs = room(args.screens, list(provinces()))
    probe = Probe(target, log)
    session = probe.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
    sampler = asyncio.create_task(probe.run())
    phases: list[Phase] = []

    async def phase(
        name: str, kind: str, work: Callable[[], Awaitable[None]], stats: ViewerStats | None
    ) -> Phase:
        probe.begin(name, stats)
        start = await probe.snapshot()
        await work()
        end = await probe.snapshot()
        probe.begin("gap", None)
        done = Phase(name, kind, start, end, probe.figures(start, end))
        if stats is not None:
            done.figures["viewers"] = stats.report(end.at - start.at, len(specs), name)
        phases.append(done)
        return done

    try:
        if target.pipe is not None:
            if args.warmup > 0:
                await phase("warmup", "warmup", lambda: asyncio.sleep(args.warmup), None)
            await phase("baseline", "baseline", lambda: asyncio.sleep(args.phase), None)
        for index, mode in enumerate(args.modes):
            waited = None
            if phases or index:
                log(f"gap before {mode}: at least {args.gap:g} s")
                waited = await gap(target.url, args.gap)
            stats = ViewerStats()

            def work(mode: str = mode, stats: ViewerStats = stats) -> Awaitable[None]:
                return viewers(specs, target.url, mode, args.phase, stats)

            (await phase(mode, "viewers", work, stats)).gap_s = waited
        if target.pipe is not None:
            await asyncio.sleep(SETTLE_S)
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        await session.close()
    return phases


def e2e_latency(clickhouse_url: str, phases: list[Phase]) -> dict[str, dict[str, Any]]:
    """Per phase: inserted_at − produced_at (ms) of the rows inserted during it, every
    events_* table; read through serve's ClickHouse HTTP endpoint."""
    from govpulse.clickhouse import make_client
    from govpulse.schemas.catalog import EVENT_TYPES
    from govpulse.sinks.columns import table_for

    union = " UNION ALL ".join(
        f"SELECT produced_at, inserted_at FROM {table_for(t)}" for t in EVENT_TYPES
    )
    latency = "dateDiff('millisecond', produced_at, inserted_at)"

    def at(ms: int) -> str:
        return f"fromUnixTimestamp64Milli(toInt64({ms}), 'UTC')"

    cases = ", ".join(
        f"inserted_at >= {at(p.start.wall_ms)} AND inserted_at < {at(p.end.wall_ms)}, '{p.name}'"
        for p in phases
    )
    low, high = min(p.start.wall_ms for p in phases), max(p.end.wall_ms for p in phases)
    client = make_client(clickhouse_url)
    try:
        rows = client.query(
            f"SELECT multiIf({cases}, '') AS phase, count(), "
            f"quantiles(0.5, 0.95, 0.99)({latency}), max({latency}), avg({latency}) "
            f"FROM ({union}) WHERE inserted_at >= {at(low)} AND inserted_at < {at(high)} "
            "GROUP BY phase"
        ).result_rows
    finally:
        client.close()
    found = {row[0]: row for row in rows if row[0]}
    result = {}
    for p in phases:
        seconds = (p.end.wall_ms - p.start.wall_ms) / 1000
        row = found.get(p.name)
        if row is None:
            result[p.name] = {"rows": 0, "rows_per_s": 0.0, "p50": None, "p95": None,
                              "p99": None, "max": None, "mean": None}  # fmt: skip
            continue
        _, count, (p50, p95, p99), worst, mean = row
        result[p.name] = {
            "rows": count,
            "rows_per_s": round(count / seconds, 1),
            "p50": round(p50),
            "p95": round(p95),
            "p99": round(p99),
            "max": worst,
            "mean": round(mean),
        }
    return result


def report(args: argparse.Namespace, phases: list[Phase], e2e: dict[str, Any] | None) -> dict:
    baseline = (e2e or {}).get("baseline", {}).get("p99")
    out = []
    for p in phases:
        latency = None if e2e is None else e2e.get(p.name)
        entry: dict[str, Any] = {
            "phase": p.name,
            "kind": p.kind,
            "seconds": round(p.end.at - p.start.at, 1),
            "gap_before_s": p.gap_s,
            "e2e_latency_ms": latency,
        }
        if p.kind == "viewers":
            entry["e2e_p99_ratio"] = ratio(latency.get("p99") if latency else None, baseline)
        entry.update(p.figures)
        out.append(entry)
    return {
        "phases": out,
        "comparison": {
            p["phase"]: {
                "e2e_p99_ratio": p["e2e_p99_ratio"],
                "requests_p95_ms": p["viewers"]["requests"]["latency_ms"]["p95"],
                "answered_per_s": p["viewers"]["requests"]["answered_per_s"],
                "dashboard_queries_per_s": p["dashboard"]["queries_per_s"],
                "serve_cpu_s_per_s": p["cpu_s_per_s"].get("serve"),
            }
            for p in out
            if p["kind"] == "viewers"
        },
    }


# -- the command -------------------------------------------------------------------------------
def _modes(text: str) -> list[str]:
    modes = [m.strip() for m in text.split(",") if m.strip()]
    wrong = [m for m in modes if m not in ("poll", "push")]
    if wrong or not modes or len(set(modes)) < len(modes):
        raise argparse.ArgumentTypeError(f"--modes: {text!r}: poll, push or poll,push")
    return modes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.viewers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--screens",
        type=int,
        default=100,
        help="screens of the room: 1 wall, up to 77 provinces, the rest analysts (default 100)",
    )
    parser.add_argument(
        "--rate", type=positive, default=1000, help="simulator events/s (default 1000)"
    )
    parser.add_argument(
        "--warmup", type=float, default=60, help="seconds of traffic before baseline (default 60)"
    )
    parser.add_argument(
        "--phase", type=positive, default=120, help="seconds of each phase (default 120)"
    )
    parser.add_argument(
        "--modes",
        type=_modes,
        default=_modes("poll,push"),
        help="viewer phases, in order: poll, push or both (default poll,push)",
    )
    parser.add_argument(
        "--gap",
        type=float,
        default=10,
        help="seconds at least between two phases with viewers; then until /api/freshness "
        f"answers within {DRAINED_ANSWER_S:g} s, {MAX_GAP_S:g} s at most (default 10)",
    )
    parser.add_argument(
        "--url",
        default=None,
        help="drive only the screens against this running dashboard (http://host:port): "
        "no pipeline, no warm-up, no baseline",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the run keeps data and logs (must be empty or absent; kept); default: a "
        "temporary directory, deleted at the end",
    )
    parser.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    args = parser.parse_args(argv)
    if args.screens < 1:
        parser.error("--screens must be at least 1")
    if args.warmup < 0 or args.gap < 0:
        parser.error("--warmup and --gap cannot be negative")
    if args.workdir is not None and args.workdir.exists() and any(args.workdir.iterdir()):
        parser.error(f"--workdir {args.workdir} is not empty: a fresh store is measured")
    if args.url is not None:
        args.url = args.url.rstrip("/")
    return args


def run(args: argparse.Namespace, workdir: Path | None, log: Log = stderr_log) -> dict[str, Any]:
    started = time.monotonic()
    specs = room(args.screens, list(provinces()))
    mix = Counter(spec.kind for spec in specs)
    config: dict[str, Any] = {
        "screens": args.screens,
        "room": {"wall": mix["wall"], "province": mix["province"], "analyst": mix["analyst"]},
        "rate": None if args.url else args.rate,
        "warmup_s": None if args.url else args.warmup,
        "phase_s": args.phase,
        "modes": args.modes,
        "gap_s": args.gap,
        "url": args.url,
        "seed": None if args.url else args.seed,
        "workdir": None if workdir is None else str(workdir),
        "connections_per_screen": CONNECTIONS,
        "request_timeout_s": REQUEST_TIMEOUT_S,
    }
    simulator: dict[str, Any] | None = None
    e2e = None
    if args.url is not None:
        phases = asyncio.run(drive(args, Target(args.url), log))
    else:
        from bench._stack import embedded_stack

        assert workdir is not None
        with embedded_stack() as (broker, registry):
            env = pipeline_env(workdir, broker.bootstrap, registry.url)
            log(f"broker {broker.bootstrap} (pid {broker.process.pid}), registry {registry.url}")
            pipe = Pipeline(workdir, env, broker.process.pid, workers=1, log=log, extra_sink=False)
            try:
                pipe.start()
                planned = args.warmup + args.phase * (1 + len(args.modes))
                planned += len(args.modes) * (args.gap + MAX_GAP_S) + 300
                pipe.start_simulator(args.rate, round(planned), seed=args.seed)
                deadline = time.monotonic() + 60  # the warm-up's first figures need its /metrics
                while (
                    scrape(pipe.simulator_port, DELIVERED) is None and time.monotonic() < deadline
                ):
                    time.sleep(0.25)
                url = f"http://127.0.0.1:{pipe.env['GOVPULSE_DASHBOARD_PORT']}"
                log(f"dashboard {url}; ClickHouse HTTP {pipe.clickhouse_url}")
                phases = asyncio.run(drive(args, Target(url, pipe), log))
                e2e = e2e_latency(pipe.clickhouse_url, phases)
            finally:
                pipe.close()
            simulator = pipe.simulator_report()
            simulator.pop("by_type", None)  # the defects sent: not this bench's concern
    return {
        "bench": "viewers",
        "config": config,
        **report(args, phases, e2e),
        "simulator": simulator,
        "bench_peak_rss_mb": peak_rss_mb(),
        "wall_s": round(time.monotonic() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    host = host_facts()  # before the run's own load
    interrupt_on_signals()
    workdir, remove = None, False
    if args.url is None:
        if args.workdir is not None:
            workdir = args.workdir.resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir, remove = Path(tempfile.mkdtemp(prefix="govpulse-viewers-")), True
        stderr_log(f"working in {workdir}")
    try:
        result = run(args, workdir)
    except KeyboardInterrupt:
        stderr_log("interrupted: every process started was stopped")
        return 130
    finally:
        if remove and workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({**result, "host": host}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
