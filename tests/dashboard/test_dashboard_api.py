"""The dashboard's JSON API over the real embedded ClickHouse engine.

One database per module, filled once with ~3,000 clean events spread over the last hour (from
the traffic simulator, inserted the way the sink inserts) plus a few hundred from three days
ago and some dead letters; the counts each endpoint must report are computed from the very
records inserted. The app is served on a real loopback socket, so HTTP parsing (a 10,000-
character URL) is part of what is tested.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from govpulse.dashboard.app import build_app
from govpulse.dashboard.background import BackgroundServer
from govpulse.dashboard.cache import ResponseCache
from govpulse.dashboard.params import RANGES
from govpulse.dashboard.queries import (
    DAY,
    HOUR,
    REQUIRED_TABLES,
    DashboardQueries,
    bucket_seconds,
    window_of,
)
from govpulse.monitoring.metrics import DASHBOARD_REQUESTS
from govpulse.schemas.catalog import EVENT_TYPES
from govpulse.schemas.reference import districts
from govpulse.sinks.migrations import migrate
from tests.support.synthetic import SyntheticTraffic, insert_dead_letters, insert_events

pytestmark = pytest.mark.integration

RECENT_EVENTS = 3000
OLD_EVENTS = 300
DEAD_LETTERS = 60
WINDOWED = (
    "/api/overview",
    "/api/timeseries",
    "/api/ministries",
    "/api/provinces",
    "/api/service-requests",
    "/api/complaints",
    "/api/net-pracharat",
    "/api/digital-centers",
    "/api/breakdown?by=channel",
    "/api/province/10",
)


@dataclass
class Loaded:
    client: Any
    database: str
    recent: dict[str, list[dict]]
    url: str

    def count(self, **where: str) -> int:
        """How many recent records match every field=value given."""
        return sum(
            all(record[k] == v for k, v in where.items())
            for records in self.recent.values()
            for record in records
        )

    def table_counts(self) -> dict[str, int]:
        return {
            table: self.client.query(f"SELECT count() FROM {self.database}.{table}").result_rows[0][
                0
            ]
            for table in (*REQUIRED_TABLES, "dead_letters")
        }


@pytest.fixture(scope="module")
def loaded(clickhouse) -> Iterator[Loaded]:
    database = f"dash_api_{uuid.uuid4().hex[:8]}"
    migrate(clickhouse, database=database)
    traffic = SyntheticTraffic(seed=61)
    now = datetime.now(UTC)
    # Recent events end 30 s ago and start 55 min ago: inside the 1 h window at any second.
    recent = traffic.events(RECENT_EVENTS, now - timedelta(minutes=55), now - timedelta(seconds=30))
    insert_events(clickhouse, database, recent)
    insert_events(
        clickhouse,
        database,
        traffic.events(OLD_EVENTS, now - timedelta(days=3, hours=1), now - timedelta(days=3)),
    )
    insert_dead_letters(
        clickhouse, database, traffic.dead_letters(DEAD_LETTERS, now - timedelta(minutes=3), now)
    )
    with BackgroundServer(build_app(clickhouse, database, cache_seconds=0)) as server:
        yield Loaded(clickhouse, database, recent, server.url)


def get(url: str) -> tuple[int, Any, dict[str, str]]:
    """Status, decoded body (JSON when it is JSON) and headers of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            status, body, headers = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, body, headers = error.code, error.read(), dict(error.headers)
    if headers.get("Content-Type", "").startswith("application/json"):
        return status, json.loads(body), headers
    return status, body.decode("utf-8", "replace"), headers


def api(loaded: Loaded, path: str, **params: str) -> tuple[int, Any]:
    query = urllib.parse.urlencode(params)
    separator = "&" if "?" in path else "?"
    status, body, _ = get(loaded.url + path + (separator + query if query else ""))
    return status, body


# -- the page ---------------------------------------------------------------------------------
def test_page_is_served_with_a_strict_content_security_policy(loaded: Loaded) -> None:
    status, body, headers = get(loaded.url + "/")
    assert status == 200
    assert "<html" in body and "/static/app.js" in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "asset",
    [
        "app.js",
        "app.css",
        "vendor/uPlot.iife.min.js",
        "vendor/uPlot.min.css",
        "vendor/LICENSE.uPlot",
    ],
)
def test_static_assets_and_the_vendored_licence_are_served(loaded: Loaded, asset: str) -> None:
    status, body, _ = get(f"{loaded.url}/static/{asset}")
    assert status == 200 and len(body) > 100


def test_meta_has_77_tiled_provinces_and_labels_in_both_languages(loaded: Loaded) -> None:
    status, meta = api(loaded, "/api/meta")
    assert status == 200
    assert len(meta["provinces"]) == 77
    cells = {(p["col"], p["row"]) for p in meta["provinces"]}
    assert len(cells) == 77  # one province per tile
    assert all(0 <= p["col"] < meta["grid"]["columns"] for p in meta["provinces"])
    assert {r["name"] for r in meta["ranges"]} == set(RANGES)
    for group in meta["labels"].values():
        for entry in group.values():
            assert entry["th"] and entry["en"]
    assert set(meta["labels"]["event_type"]) == set(EVENT_TYPES)
    assert meta["refresh_seconds"] <= 2


# -- figures match what was inserted -----------------------------------------------------------
def test_overview_counts_every_event_of_the_last_hour_by_type(loaded: Loaded) -> None:
    status, body = api(loaded, "/api/overview", range="1h")
    assert status == 200
    assert body["events"] == RECENT_EVENTS
    assert body["events_by_type"] == {t: len(loaded.recent.get(t, [])) for t in EVENT_TYPES}
    assert body["citizens"] > 0 and body["amount_thb"] > 0


def test_seven_days_include_the_older_events(loaded: Loaded) -> None:
    _, body = api(loaded, "/api/overview", range="7d")
    assert body["events"] == RECENT_EVENTS + OLD_EVENTS


@pytest.mark.parametrize(("name", "points"), [("15m", 15), ("1h", 60), ("24h", 24), ("7d", 168)])
def test_timeseries_has_one_point_per_bucket(loaded: Loaded, name: str, points: int) -> None:
    _, body = api(loaded, "/api/timeseries", range=name)
    assert len(body["t"]) == points
    assert body["t"] == sorted(body["t"]) and body["t"][1] - body["t"][0] == body["step_seconds"]
    assert set(body["events_per_minute"]) == set(EVENT_TYPES)
    assert all(len(series) == points for series in body["events_per_minute"].values())


def test_timeseries_of_the_hour_adds_up_to_the_overview(loaded: Loaded) -> None:
    """Per-minute rates times the minutes each bucket covered so far: the minute in progress
    is a rate over the seconds it has run, not diluted over a whole minute."""
    _, body = api(loaded, "/api/timeseries", range="1h")
    last = body["last_bucket_seconds"] / 60
    assert 10 / 60 <= last <= 1
    events = sum(
        sum(series[:-1]) + series[-1] * last for series in body["events_per_minute"].values()
    )
    assert events == pytest.approx(RECENT_EVENTS, abs=0.5)


# The day view reads the hourly rollups, the hour view the per-minute ones; every recent event
# is inside both windows, so their answers must agree, field by field.
AGREEING_FIELDS = {
    "/api/overview": ("events", "events_by_type", "amount_thb", "events_last_minute"),
    "/api/ministries": ("ministries", "departments"),
    "/api/provinces": ("provinces", "max_events"),
    "/api/service-requests": ("requests", "by_status", "satisfaction_avg", "top_services"),
    "/api/complaints": ("complaints", "by_category", "by_severity", "by_status", "via_1111"),
    "/api/net-pracharat": ("reports", "sessions", "devices_upper_bound", "bytes_down", "bytes_up"),
    "/api/digital-centers": ("orders", "sales_thb", "participants", "by_activity", "by_product"),
    "/api/breakdown?by=channel": ("rows",),
    "/api/province/10": ("events", "agencies", "districts"),
}


@pytest.mark.parametrize("path", list(AGREEING_FIELDS))
def test_the_day_from_hourly_rollups_agrees_with_the_hour_from_minute_rollups(
    loaded: Loaded, path: str
) -> None:
    _, hour = api(loaded, path, range="1h")
    _, day = api(loaded, path, range="24h")
    for field in AGREEING_FIELDS[path]:
        assert day[field] == hour[field], field
    if path == "/api/overview":
        assert day["citizens"] == pytest.approx(hour["citizens"], rel=0.02)  # uniq: approximate


def test_day_and_week_series_are_hourly_and_add_up_to_the_overview(loaded: Loaded) -> None:
    _, meta = api(loaded, "/api/meta")
    steps = {r["name"]: r["step_seconds"] for r in meta["ranges"]}
    for name, total in (("24h", RECENT_EVENTS), ("7d", RECENT_EVENTS + OLD_EVENTS)):
        _, body = api(loaded, "/api/timeseries", range=name)
        assert body["step_seconds"] == steps[name] == 3600 and body["start"] % 3600 == 0
        # Rates per minute, rounded to 0.01: each hourly bucket is off by at most 0.3 events;
        # the hour in progress is a rate over the minutes it has run.
        last = body["last_bucket_seconds"] / 60
        events = sum(sum(s[:-1]) * 60 + s[-1] * last for s in body["events_per_minute"].values())
        assert events == pytest.approx(total, abs=0.3 * len(body["t"]) * len(EVENT_TYPES))
        _, sessions = api(loaded, "/api/net-pracharat", range=name)
        assert sum(sessions["sessions_series"]) == sessions["sessions"]
    assert steps["15m"] == steps["1h"] == 60


def test_day_and_week_read_the_hourly_rollup_and_live_ranges_the_minute_one(
    clickhouse, fresh_database: str
) -> None:
    # Rows written to the hourly and daily rollups alone, as no view would: only the hourly
    # ranges see them (a 7 d window reads its whole days from the daily tables, and when it
    # ends at midnight, every day; hence the same row in both). Without a province the day
    # and week read the national twins, given another count here to tell them apart.
    hour = (int(datetime.now(UTC).timestamp()) // 3600 - 2) * 3600
    day = hour // 86400 * 86400
    for grain, at in ((HOUR, hour), (DAY, day)):
        clickhouse.command(
            f"INSERT INTO {fresh_database}.{grain.activity} ({grain.time}, event_type, "
            "province_code, agency_code, channel, ministry_code, region_code, events) "
            f"VALUES ({at}, 'complaint', '10', 'MOI-DOPA', 'COUNTER', 'MOI', 'C', 7)"
        )
        clickhouse.command(
            f"INSERT INTO {fresh_database}.activity_national_{grain.time} ({grain.time}, "
            "event_type, agency_code, channel, ministry_code, events) "
            f"VALUES ({at}, 'complaint', 'MOI-DOPA', 'COUNTER', 'MOI', 5)"
        )
    with BackgroundServer(build_app(clickhouse, fresh_database, cache_seconds=0)) as server:
        events = {
            (name, province): get(f"{server.url}/api/overview?range={name}{province}")[1]["events"]
            for name in RANGES
            for province in ("", "&province=10")
        }
    assert events == {
        ("15m", ""): 0,
        ("1h", ""): 0,
        ("24h", ""): 5,
        ("7d", ""): 5,
        ("15m", "&province=10"): 0,
        ("1h", "&province=10"): 0,
        ("24h", "&province=10"): 7,
        ("7d", "&province=10"): 7,
    }


def test_province_filter_narrows_to_that_provinces_events(loaded: Loaded) -> None:
    _, body = api(loaded, "/api/overview", province="10")
    assert body["events"] == loaded.count(province_code="10") > 0


def test_agency_filter_narrows_to_that_agencys_events(loaded: Loaded) -> None:
    _, body = api(loaded, "/api/overview", agency="MOI-DOPA")
    assert body["events"] == loaded.count(agency_code="MOI-DOPA") > 0
    _, both = api(loaded, "/api/overview", agency="MOI-DOPA", province="10")
    assert both["events"] == loaded.count(agency_code="MOI-DOPA", province_code="10")


def test_map_lists_all_77_provinces_adding_up_to_the_national_total(loaded: Loaded) -> None:
    _, body = api(loaded, "/api/provinces")
    assert len(body["provinces"]) == 77
    assert sum(p["events"] for p in body["provinces"]) == RECENT_EVENTS
    assert body["max_events"] == max(p["events"] for p in body["provinces"])
    bangkok = next(p for p in body["provinces"] if p["code"] == "10")
    assert bangkok["events"] == loaded.count(province_code="10")


def test_ministries_and_top_departments_add_up(loaded: Loaded) -> None:
    _, body = api(loaded, "/api/ministries")
    assert sum(m["events"] for m in body["ministries"]) == RECENT_EVENTS
    assert all(m["name_th"] and m["name_en"] for m in body["ministries"])
    top = body["departments"]
    assert 0 < len(top) <= 10
    assert [d["events"] for d in top] == sorted((d["events"] for d in top), reverse=True)
    assert top[0]["events"] == max(Counter(r["agency_code"] for r in _all(loaded)).values())


def _all(loaded: Loaded) -> list[dict]:
    return [record for records in loaded.recent.values() for record in records]


def test_province_view_drills_down_to_every_district(loaded: Loaded) -> None:
    status, body = api(loaded, "/api/province/10")
    assert status == 200
    assert body["name_en"] == "Bangkok" and body["region"]["code"] == "C"
    assert body["events"] == loaded.count(province_code="10")
    assert sum(d["events"] for d in body["districts"]) == body["events"]
    bangkok_districts = {d.code for d in districts().values() if d.province_code == "10"}
    assert bangkok_districts <= {d["code"] for d in body["districts"]}
    expected = Counter(r["district_code"] for r in _all(loaded) if r["province_code"] == "10")
    for row in body["districts"]:
        assert row["events"] == expected.get(row["code"], 0)
    assert sum(a["events"] for a in body["agencies"]) == body["events"]


def test_service_requests_report_outcomes_and_median_processing_time(loaded: Loaded) -> None:
    _, body = api(loaded, "/api/service-requests")
    records = loaded.recent["service_request"]
    assert body["requests"] == len(records)
    assert body["by_status"] == dict(Counter(r["status"] for r in records))
    finished = sorted(r["processing_seconds"] for r in records if r["processing_seconds"])
    median = finished[len(finished) // 2]
    assert body["processing_seconds_p50"] == pytest.approx(median, rel=0.25)  # t-digest
    assert 1 <= body["satisfaction_avg"] <= 5
    assert body["top_services"][0]["name"]  # looked up from the raw table


def test_complaints_by_category_severity_status(loaded: Loaded) -> None:
    _, body = api(loaded, "/api/complaints")
    records = loaded.recent["complaint"]
    assert body["complaints"] == len(records)
    assert body["by_category"] == dict(Counter(r["category"] for r in records))
    assert body["via_1111"] == sum(r["via_1111"] for r in records)
    assert sum(body["by_severity"].values()) == sum(body["by_status"].values()) == len(records)


def test_net_pracharat_usage_totals(loaded: Loaded) -> None:
    _, body = api(loaded, "/api/net-pracharat")
    records = loaded.recent["net_pracharat_usage"]
    assert body["reports"] == len(records)
    assert body["sessions"] == sum(r["sessions"] for r in records) == sum(body["sessions_series"])
    assert body["bytes_down"] == sum(r["bytes_down"] for r in records)
    assert len(body["t"]) == len(body["sessions_series"]) == 60


def test_digital_centre_sales_by_product(loaded: Loaded) -> None:
    _, body = api(loaded, "/api/digital-centers")
    orders = [
        r for r in loaded.recent["digital_center_activity"] if r["activity"] == "ONLINE_ORDER"
    ]
    assert body["orders"] == len(orders)
    assert body["sales_thb"] == pytest.approx(float(sum(r["order_amount_thb"] for r in orders)))
    assert sum(p["orders"] for p in body["by_product"]) == len(orders)


@pytest.mark.parametrize(
    "by", ["channel", "region", "ministry", "agency", "province", "event_type"]
)
def test_breakdown_by_each_whitelisted_dimension(loaded: Loaded, by: str) -> None:
    status, body = api(loaded, "/api/breakdown", by=by)
    assert status == 200 and body["by"] == by
    assert sum(r["events"] for r in body["rows"]) == RECENT_EVENTS


@pytest.fixture
def fresh_database(clickhouse) -> str:
    """A migrated database of its own, for tests that insert (the module's data stays put)."""
    database = f"dash_fresh_{uuid.uuid4().hex[:8]}"
    migrate(clickhouse, database=database)
    return database


def test_freshness_and_dead_letter_rate_are_green_after_recent_inserts(
    clickhouse, fresh_database: str
) -> None:
    traffic = SyntheticTraffic(seed=62)
    now = datetime.now(UTC)
    insert_events(clickhouse, fresh_database, traffic.events(400, now - timedelta(minutes=3), now))
    insert_dead_letters(clickhouse, fresh_database, traffic.dead_letters(4, now, now))
    with BackgroundServer(build_app(clickhouse, fresh_database, cache_seconds=0)) as server:
        status, body, _ = get(server.url + "/api/freshness")
    assert status == 200
    assert 0 <= body["data_age_seconds"] < 10 and body["fresh"] is True
    assert 0 <= body["seconds_since_last_insert"] < 10
    assert body["events"] == 400 and body["dead_letters"] == 4
    assert body["pipeline_latency_ms_p50"] > 0
    assert body["dead_letter_rate"] == pytest.approx(4 / 404, abs=1e-4)
    assert body["dead_letter_ok"] is True  # 1 % is under the default 5 %
    assert sum(r["dead_letters"] for r in body["dead_letters_by_reason"]) == 4


def test_the_badge_shows_how_old_the_data_is_not_how_long_ago_it_was_inserted(
    clickhouse, fresh_database: str
) -> None:
    """Issue 18: 7,700 records behind, the badge said 0.2 s. Events its agencies produced
    20-12 s ago, stored just now (a backlog caught up): the data is 12 s old, the insert
    is not, and past a 5 s threshold the badge turns red."""
    traffic = SyntheticTraffic(seed=64)
    now = datetime.now(UTC)
    backlog = traffic.events(500, now - timedelta(seconds=20), now - timedelta(seconds=12.5))
    newest_ms = max(
        int(r["produced_at"].timestamp() * 1000) for records in backlog.values() for r in records
    )
    insert_events(clickhouse, fresh_database, backlog)
    app = build_app(clickhouse, fresh_database, freshness_threshold_seconds=5, cache_seconds=0)
    with BackgroundServer(app) as server:
        _, body, _ = get(server.url + "/api/freshness")
    assert abs(body["newest_produced_ms"] - newest_ms) <= 1  # DateTime64(3) drops the µs
    assert 12 <= body["data_age_seconds"] < 30
    assert body["data_age_seconds"] == pytest.approx((body["now_ms"] - newest_ms) / 1000, abs=0.1)
    assert 0 <= body["seconds_since_last_insert"] < 5
    assert body["fresh"] is False  # 12 s old data is past the 5 s threshold
    assert set(body["data_age_by_type"]) == set(backlog)
    assert all(12 <= age < 30 for age in body["data_age_by_type"].values())


def test_a_backlog_of_older_events_does_not_read_as_a_dead_letter_storm(
    clickhouse, fresh_database: str
) -> None:
    """Events that happened 6-10 minutes ago, stored now (an agency back online), and a few
    dead letters now: the rate compares what was stored in the same window, about 1 %."""
    traffic = SyntheticTraffic(seed=63)
    now = datetime.now(UTC)
    old = traffic.events(1000, now - timedelta(minutes=10), now - timedelta(minutes=6))
    insert_events(clickhouse, fresh_database, old)
    insert_dead_letters(clickhouse, fresh_database, traffic.dead_letters(10, now, now))
    with BackgroundServer(build_app(clickhouse, fresh_database, cache_seconds=0)) as server:
        _, body, _ = get(server.url + "/api/freshness")
    assert body["events_stored"] == 1000 and body["dead_letters"] == 10
    assert body["dead_letter_rate"] == pytest.approx(10 / 1010, abs=1e-4)
    assert body["dead_letter_ok"] is True


def test_freshness_and_dead_letters_turn_red_past_their_thresholds(loaded: Loaded) -> None:
    app = build_app(
        loaded.client,
        loaded.database,
        freshness_threshold_seconds=0.0,
        dead_letter_threshold=0.0,
        cache_seconds=0,
    )
    with BackgroundServer(app) as server:
        _, body, _ = get(server.url + "/api/freshness")
    assert body["fresh"] is False and body["dead_letter_ok"] is False


def test_freshness_is_null_and_red_for_an_empty_database(clickhouse) -> None:
    database = f"dash_empty_{uuid.uuid4().hex[:8]}"
    migrate(clickhouse, database=database)
    with BackgroundServer(build_app(clickhouse, database, cache_seconds=0)) as server:
        status, body, _ = get(server.url + "/api/freshness")
        _, overview, _ = get(server.url + "/api/overview")
    assert status == 200
    assert body["data_age_seconds"] is None and body["fresh"] is False
    assert body["seconds_since_last_insert"] is None
    assert body["dead_letter_rate"] == 0.0
    assert overview["events"] == 0


# -- shapes -------------------------------------------------------------------------------------
SHAPES = {
    "/api/overview": {"events", "events_by_type", "citizens", "amount_thb", "events_last_minute"},
    "/api/timeseries": {"t", "events_per_minute"},
    "/api/ministries": {"ministries", "departments"},
    "/api/provinces": {"provinces", "max_events"},
    "/api/service-requests": {"requests", "by_status", "processing_seconds_p50", "top_services"},
    "/api/complaints": {"complaints", "by_category", "by_severity", "by_status", "via_1111"},
    "/api/net-pracharat": {"reports", "access_points", "sessions", "bytes_down", "t"},
    "/api/digital-centers": {"orders", "sales_thb", "participants", "by_activity", "by_product"},
    "/api/breakdown?by=channel": {"by", "rows"},
    "/api/province/10": {"code", "name_th", "name_en", "region", "agencies", "districts"},
}


@pytest.mark.parametrize("path", WINDOWED)
@pytest.mark.parametrize("time_range", list(RANGES))
def test_every_windowed_endpoint_answers_in_every_range(
    loaded: Loaded, path: str, time_range: str
) -> None:
    status, body = api(loaded, path, range=time_range)
    assert status == 200, body
    assert SHAPES[path] <= set(body)
    step = bucket_seconds(RANGES[time_range])
    assert body["range"] == time_range and body["step_seconds"] == step
    window = window_of(RANGES[time_range])
    assert body["end"] - body["start"] == RANGES[time_range].seconds
    assert body["start"] % step == 0 and abs(body["end"] - window.end) <= step


# -- refusals -------------------------------------------------------------------------------------
MALFORMED = [
    ("/api/overview", {"range": "2h"}),
    ("/api/overview", {"range": ""}),
    ("/api/overview", {"range": "1H"}),
    ("/api/overview", {"province": "1"}),
    ("/api/overview", {"province": "100"}),
    ("/api/overview", {"province": "๑๐"}),  # Thai digits: int() would accept them
    ("/api/overview", {"province": "١٠"}),  # Arabic-Indic digits
    ("/api/overview", {"province": " 10"}),
    ("/api/overview", {"agency": "moi-dopa"}),
    ("/api/overview", {"agency": "MOI DOPA"}),
    ("/api/overview", {"agency": "MOI--DOPA"}),
    ("/api/overview", {"colour": "red"}),
    ("/api/provinces", {"province": "10"}),  # the map is always national
    ("/api/breakdown", {}),
    ("/api/breakdown", {"by": "district_code"}),
    ("/api/breakdown", {"by": "channel,province"}),
    ("/api/freshness", {"range": "1h"}),
    ("/api/meta", {"lang": "th"}),
    ("/api/province/1", {}),
    ("/api/province/abc", {}),
    ("/api/province/10", {"province": "11"}),
    ("/api/overview", {"province": "1" * 4000}),
]


@pytest.mark.parametrize(("path", "params"), MALFORMED)
def test_malformed_parameters_are_refused_with_400_json(
    loaded: Loaded, path: str, params: dict[str, str]
) -> None:
    status, body = api(loaded, path, **params)
    assert status == 400
    assert body["status"] == 400 and body["error"]


def test_a_repeated_parameter_is_refused(loaded: Loaded) -> None:
    status, body, _ = get(loaded.url + "/api/overview?range=1h&range=7d")
    assert status == 400 and body["parameter"] == "range"


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/overview", {"province": "99"}),
        ("/api/overview", {"province": "00"}),
        ("/api/overview", {"agency": "MOX"}),
        ("/api/overview", {"agency": "MOI-NOPE"}),
        ("/api/province/99", {}),
        ("/api/province/10", {"agency": "ABC-DEF"}),
        ("/api/nothing-here", {}),
    ],
)
def test_unknown_codes_and_endpoints_are_404_json(
    loaded: Loaded, path: str, params: dict[str, str]
) -> None:
    status, body = api(loaded, path, **params)
    assert status == 404
    assert body["status"] == 404 and body["error"]


def test_other_methods_are_405_json(loaded: Loaded) -> None:
    request = urllib.request.Request(loaded.url + "/api/overview", method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=10)
    assert error.value.code == 405
    assert json.loads(error.value.read())["status"] == 405


INJECTIONS = [
    "'; DROP TABLE activity_minute; --",
    "10' OR '1'='1",
    "10); DROP DATABASE default; --",
    "10\u0000",
    "{province:String}",
    "กรุงเทพมหานคร",
    "10\u200b",
    "🇹🇭",
    "MOI-DOPA' UNION SELECT name FROM system.users --",
    "x" * 10_000,
    "ก" * 10_000,
]


@pytest.mark.parametrize("value", INJECTIONS, ids=lambda v: repr(v[:24]) + f"/{len(v)}")
def test_injection_style_inputs_are_400_and_leave_the_data_intact(
    loaded: Loaded, value: str
) -> None:
    before = loaded.table_counts()
    quoted = urllib.parse.quote(value, safe="")
    urls = [
        f"/api/overview?province={quoted}",
        f"/api/overview?agency={quoted}",
        f"/api/overview?range={quoted}",
        f"/api/breakdown?by={quoted}",
        f"/api/province/{quoted}",
        f"/api/overview?{quoted}=1",
    ]
    for path in urls:
        status, body, _ = get(loaded.url + path)
        # A URL past aiohttp's 8 KiB request-line limit is refused by the HTTP parser itself
        # (400, plain text) before any handler runs; shorter ones by our validation (400 JSON).
        assert status == 400, (path[:80], body)
        if len(path) < 8000:
            assert isinstance(body, dict) and body["status"] == 400
    assert loaded.table_counts() == before
    assert before["activity_minute"] > 0


def test_concurrent_requests_all_succeed_with_consistent_answers(loaded: Loaded) -> None:
    results: list[tuple[int, int]] = []
    paths = ["/api/overview", "/api/provinces", "/api/province/10", "/api/timeseries"] * 8

    def fetch(path: str) -> None:
        status, body = api(loaded, path)
        results.append((status, sum_events(path, body)))

    threads = [threading.Thread(target=fetch, args=(path,)) for path in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == len(paths)
    assert {status for status, _ in results} == {200}
    assert {total for _, total in results} == {RECENT_EVENTS, loaded.count(province_code="10")}


def sum_events(path: str, body: dict[str, Any]) -> int:
    if path == "/api/timeseries":  # per-minute rates; the last bucket's over its seconds so far
        last = body["last_bucket_seconds"] / 60
        series = body["events_per_minute"].values()
        return round(sum(sum(s[:-1]) + s[-1] * last for s in series))
    if path == "/api/provinces":
        return sum(p["events"] for p in body["provinces"])
    return int(body["events"])


def test_requests_are_counted_by_route_template_not_raw_path(loaded: Loaded) -> None:
    metric = DASHBOARD_REQUESTS.labels("/api/province/{code}", "200")
    before = metric._value.get()
    api(loaded, "/api/province/76")
    api(loaded, "/api/province/50")
    assert metric._value.get() - before == 2


def test_identical_requests_within_the_cache_time_share_one_answer(
    clickhouse, fresh_database: str
) -> None:
    now = datetime.now(UTC)
    traffic = SyntheticTraffic(seed=63)
    insert_events(clickhouse, fresh_database, traffic.events(3, now, now))
    with BackgroundServer(build_app(clickhouse, fresh_database, cache_seconds=30)) as server:
        first = get(server.url + "/api/overview")[1]
        insert_events(clickhouse, fresh_database, traffic.events(3, now, now))
        cached = get(server.url + "/api/overview")[1]
        other = get(server.url + "/api/overview?range=15m")[1]  # another key: a new query
    assert first == cached and first["events"] == 3
    assert other["events"] == 6


def test_day_and_week_answers_are_served_stale_while_recomputed_in_the_background() -> None:
    computed: list[int] = []

    async def compute() -> int:
        computed.append(len(computed) + 1)
        return computed[-1]

    async def scenario() -> list[int]:
        cache = ResponseCache()
        answers = [(await cache.answer("k", compute, ttl=0.05, max_stale=0.5))[0]]
        answers.append((await cache.answer("k", compute, ttl=0.05, max_stale=0.5))[0])  # shared
        await asyncio.sleep(0.06)
        answers.append((await cache.answer("k", compute, ttl=0.05, max_stale=0.5))[0])  # stale
        await asyncio.sleep(0.01)  # the background refresh has finished
        answers.append((await cache.answer("k", compute, ttl=0.05, max_stale=0.5))[0])
        return answers

    assert asyncio.run(scenario()) == [1, 1, 1, 2]
    assert computed == [1, 2]


def test_a_stale_answer_is_not_served_again_once_its_refresh_failed() -> None:
    """ClickHouse away: the next request gets the error, not figures that stopped moving."""
    calls: list[int] = []

    async def compute() -> int:
        calls.append(1)
        if len(calls) > 1:
            raise ConnectionError("ClickHouse unreachable")
        return 1

    async def scenario() -> tuple[int, int]:
        cache = ResponseCache()
        first = (await cache.answer("k", compute, ttl=0.05, max_stale=0.5))[0]
        await asyncio.sleep(0.06)
        stale = (await cache.answer("k", compute, ttl=0.05, max_stale=0.5))[0]  # refresh fails
        await asyncio.sleep(0.01)
        with pytest.raises(ConnectionError):
            (await cache.answer("k", compute, ttl=0.05, max_stale=0.5))[0]
        return first, stale

    assert asyncio.run(scenario()) == (1, 1)


def test_a_database_name_that_is_not_an_identifier_is_refused(clickhouse) -> None:
    with pytest.raises(ValueError, match="identifier"):
        build_app(clickhouse, "default; DROP TABLE x")


def test_missing_tables_are_named_before_serving(clickhouse) -> None:
    queries = DashboardQueries(clickhouse, f"nowhere_{uuid.uuid4().hex[:8]}")
    assert queries.missing_tables() == list(REQUIRED_TABLES)
