"""The pure pieces of bench/viewers.py: the SSE parser, the figures, the room, the requests."""

from __future__ import annotations

import pytest

from bench.viewers import (
    PROVINCE,
    RANGES,
    SseEvent,
    SseParser,
    metric_samples,
    panel_requests,
    percentile,
    pushed,
    room,
    stream_path,
    summary,
)


def feed_all(parser: SseParser, chunks: list[bytes]) -> list[SseEvent]:
    return [event for chunk in chunks for event in parser.feed(chunk)]


def test_sse_events_comments_and_retry() -> None:
    stream = (
        b": keep-alive\n"
        b"retry: 3000\n"
        b"event: panels\n"
        b'data: {"as_of_ms": 1, "stale": false}\n'
        b"\n"
        b"event: freshness\n"
        b"data: {}\n"
        b"\n"
    )
    parser = SseParser()
    events = parser.feed(stream)
    assert events == [
        SseEvent("panels", '{"as_of_ms": 1, "stale": false}'),
        SseEvent("freshness", "{}"),
    ]
    assert parser.retry_ms == 3000


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_sse_chunks_split_anywhere_give_the_same_events(size: int) -> None:
    """CRLF split between two chunks, a line over several, a multi-byte character cut."""
    stream = "event: panels\r\ndata: ไทย\r\ndata: second\r\n\r\n:c\rdata: x\r\r".encode()
    chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
    assert feed_all(SseParser(), chunks) == [
        SseEvent("panels", "ไทย\nsecond"),
        SseEvent("message", "x"),
    ]


def test_sse_no_data_no_event_and_the_type_resets() -> None:
    parser = SseParser()
    assert parser.feed(b"event: panels\n\n") == []  # no data: nothing dispatched
    assert parser.feed(b"data:x\nid: 7\n\n") == [SseEvent("message", "x", "7")]
    assert parser.feed(b"data\n\n") == [SseEvent("message", "", "7")]  # no colon; id kept
    assert parser.feed(b"data: unfinished") == []  # waits for its blank line


def test_percentile_interpolates_and_summary_rounds() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([5.0], 0.99) == 5.0
    figures = summary([float(v) for v in range(1, 101)])
    assert figures == {"count": 100, "p50": 50.5, "p95": 95.0, "p99": 99.0, "max": 100.0}
    assert summary([]) == {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}


def test_metric_samples_absent_declared_and_labelled() -> None:
    text = (
        "# HELP govpulse_dashboard_queries_total q\n"
        "# TYPE govpulse_dashboard_queries_total counter\n"
        "govpulse_dashboard_queries_total 12.0\n"
        "govpulse_dashboard_queries_created 1.7e9\n"
        "# TYPE govpulse_dashboard_shed_total counter\n"
        'govpulse_streams_consumer_lag{partition="0",topic="raw.x"} 3.0\n'
        'govpulse_streams_consumer_lag{partition="1",topic="raw.x"} 4.0\n'
    )
    assert metric_samples(text, "govpulse_dashboard_queries_total") == {"": 12.0}
    assert metric_samples(text, "govpulse_dashboard_shed_total") == {}  # declared, no sample
    assert metric_samples(text, "govpulse_dashboard_stale_total") is None  # older code
    lag = metric_samples(text, "govpulse_streams_consumer_lag")
    assert lag is not None and sum(lag.values()) == 7.0


def test_room_wall_provinces_then_analysts_cycling_ranges() -> None:
    codes = [f"{n}" for n in range(10, 87)]
    screens = room(100, codes)
    kinds = [s.kind for s in screens]
    assert kinds.count("wall") == 1 and kinds.count("province") == 77
    assert kinds.count("analyst") == 22
    assert all(s.range == "1h" for s in screens if s.kind != "analyst")
    analysts = [s for s in screens if s.kind == "analyst"]
    assert [s.range for s in analysts[:5]] == [*RANGES, RANGES[0]]
    assert len({s.switch_s for s in analysts}) == 22  # switching at different moments
    few = room(3, codes)
    assert [(s.kind, s.province) for s in few] == [
        ("wall", None),
        ("province", "10"),
        ("province", "11"),
    ]


def test_panel_requests_follow_app_js() -> None:
    national = panel_requests("24h", None)
    assert len(national) == 9
    assert national[0] == ("/api/overview", "/api/overview?range=24h")
    assert national[-1] == ("/api/breakdown", "/api/breakdown?range=24h&by=channel")
    local = dict(panel_requests("1h", "76"))
    assert local["/api/provinces"] == "/api/provinces?range=1h"  # the map: never filtered
    assert local["/api/complaints"] == "/api/complaints?range=1h&province=76"
    assert local[PROVINCE] == "/api/province/76?range=1h"
    assert stream_path("1h", "76") == "/api/stream?range=1h&province=76"
    assert stream_path("7d", None) == "/api/stream?range=7d"


def test_pushed_within_a_period_and_a_half_as_app_js() -> None:
    assert pushed(10.0, 12.9, 2.0)
    assert not pushed(10.0, 13.0, 2.0)  # silent 3 s: the page polls the panels
    assert not pushed(float("-inf"), 0.0, 1.0)  # nothing pushed yet: the first tick polls
