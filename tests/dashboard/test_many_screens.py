"""A hundred screens on a real engine: the cost is per refresh tick, and saturation sheds.

The operations room is one national wall, a screen per province and analysts. Asked one
province at a time, 77 screens × 10 panels were ~850 queries per 2 s tick; cut from one
computation for every province, they are one query set. And when the engine cannot keep
up, the dashboard answers 503 with Retry-After at once rather than queueing for 30 s.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from govpulse.dashboard.app import DASHBOARD, Limits, build_app
from govpulse.dashboard.background import BackgroundServer
from govpulse.schemas.reference import agencies as all_agencies
from govpulse.schemas.reference import provinces
from govpulse.sinks.migrations import migrate
from tests.support.synthetic import SyntheticTraffic, insert_events

pytestmark = pytest.mark.integration

PROVINCES = sorted(provinces())


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    retry_after: str | None
    seconds: float


def fetch(url: str) -> Reply:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            status, raw, retry = response.status, response.read(), None
    except urllib.error.HTTPError as error:
        status, raw, retry = error.code, error.read(), error.headers.get("Retry-After")
    return Reply(status, json.loads(raw), retry, time.monotonic() - started)


def fetch_all(urls: list[str]) -> list[Reply]:
    with ThreadPoolExecutor(len(urls)) as pool:
        return list(pool.map(fetch, urls))


def first_panels(url: str) -> dict[str, Any]:
    """The first `panels` message of a push stream (then hang up)."""
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        kind = None
        for line in response:
            text = line.decode().rstrip("\n")
            if text.startswith("event: "):
                kind = text.removeprefix("event: ")
            elif text.startswith("data: ") and kind == "panels":
                return json.loads(text.removeprefix("data: "))
    raise AssertionError(f"{url}: the stream ended before a panels message")


@pytest.fixture(scope="module")
def database(clickhouse) -> str:
    name = f"dash_many_{uuid.uuid4().hex[:8]}"
    migrate(clickhouse, database=name)
    now = datetime.now(UTC)
    events = SyntheticTraffic(seed=91).events(3000, now - timedelta(minutes=50), now)
    insert_events(clickhouse, name, events)
    return name


@pytest.fixture()
def served(clickhouse, database: str) -> Iterator[BackgroundServer]:
    with BackgroundServer(build_app(clickhouse, database)) as server:
        yield server


def statements(server: BackgroundServer) -> int:
    return server.app[DASHBOARD].queries.statements


def test_a_hundred_provincial_screens_cost_one_query_set(served: BackgroundServer) -> None:
    url = served.url
    urls = [f"{url}/api/overview?range=1h&province={code}" for code in PROVINCES]
    urls += [f"{url}/api/province/{code}?range=1h" for code in PROVINCES[: 100 - len(urls)]]
    before = statements(served)
    replies = fetch_all(urls)
    cost = statements(served) - before
    assert [r.status for r in replies] == [200] * 100
    assert [r.body["province"] for r in replies[:77]] == PROVINCES
    assert [r.body["code"] for r in replies[77:]] == PROVINCES[:23]
    # one overview statement and the drill-down's two (agencies, districts) for all 100,
    # where one province at a time was 77 + 2 × 23 = 123
    assert cost <= 3, cost


def test_the_push_stream_cuts_every_screens_view_from_the_same_tick(
    served: BackgroundServer,
) -> None:
    """Ten provincial screens subscribed: their first messages cost one query set."""
    before = statements(served)
    urls = [f"{served.url}/api/stream?range=15m&province={c}" for c in PROVINCES[:10]]
    with ThreadPoolExecutor(10) as pool:
        first = list(pool.map(first_panels, urls))
    cost = statements(served) - before
    assert [m["panels"]["overview"]["province"] for m in first] == PROVINCES[:10]
    assert [m["panels"]["province"]["code"] for m in first] == PROVINCES[:10]
    assert all("error" not in panel for m in first for panel in m["panels"].values())
    # every panel of the page once: the grouped ones for all provinces, the map, and
    # the freshness badge's three — not ten times that
    assert cost <= 20, cost


def test_a_saturated_dashboard_sheds_at_once_instead_of_queueing(clickhouse, database: str) -> None:
    """Sharing off (every request computes) and a queue of two: a burst of 40 is shed."""
    app = build_app(clickhouse, database, cache_seconds=0, limits=Limits(max_queued=2))
    agencies = sorted(all_agencies())[:4]
    with BackgroundServer(app) as server:
        urls = [
            f"{server.url}/api/ministries?range=1h&agency={agencies[i % 4]}&province={code}"
            for i, code in enumerate(PROVINCES[:40])
        ]
        replies = fetch_all(urls)
        after = fetch(f"{server.url}/api/overview?range=1h")
    shed = [r for r in replies if r.status == 503]
    answered = [r for r in replies if r.status == 200]
    assert shed and answered and len(shed) + len(answered) == 40
    assert all(r.retry_after and int(r.retry_after) > 0 for r in shed)
    assert all(r.body["reason"] in ("queue_full", "waited_too_long") for r in shed)
    assert max(r.seconds for r in shed) < 1.0  # refused at once, not after a queue
    assert after.status == 200  # and it recovers as soon as the burst is over


def test_the_server_stops_at_once_with_screens_subscribed(clickhouse, database: str) -> None:
    """Push streams never end by themselves: shutdown ends them instead of waiting 60 s."""
    server = BackgroundServer(build_app(clickhouse, database)).start()
    holding = [
        urllib.request.urlopen(f"{server.url}/api/stream?range=1h", timeout=30) for _ in range(3)
    ]
    assert all(response.readline().startswith(b"retry: ") for response in holding)
    started = time.monotonic()
    server.stop()
    took = time.monotonic() - started
    for response in holding:
        response.read()  # the server ended the stream: EOF, not a hang
        response.close()
    assert took < 5, took
