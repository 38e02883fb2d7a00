"""Every province's panel at once (`DashboardQueries.all_provinces`) equals its own query.

One database per module, filled once with clean events of every type over several
provinces and agencies: the hour before a fixed moment (the live ranges, and the last full
minute of the overview) and the week before it (a day's window across two UTC days, a
week's whole days from the daily rollups). Two provinces get no events at all. For each
panel and range, the answer cut for each of the 77 provinces from one grouped call must be
exactly the answer of that province's own call, with as many SQL statements.

A province's own call costs 5-50 ms of engine time here, so a case compares a quarter of the
provinces, another quarter per range (over the four ranges every province is compared for
every panel), and always the quiet ones; the grouped call still answers all 77. STRIDE = 1
compares all 77 in every case (about 75 s instead of about 20).
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError
from clickhouse_connect.driver.models import SettingDef
from prometheus_client import REGISTRY

from govpulse.dashboard.params import RANGES, Query, Window
from govpulse.dashboard.queries import (
    GROUPED_PANELS,
    DashboardQueries,
    engine_settings,
    whole_days,
    window_of,
)
from govpulse.schemas.reference import provinces
from govpulse.sinks.migrations import migrate
from tests.support.synthetic import SyntheticTraffic, insert_events

pytestmark = pytest.mark.integration

# Half past nine UTC yesterday: the day's window spans two UTC days, the week's holds six
# whole ones; the windows are pinned to it, so the test runs the same at any time of day.
NOW = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
    hours=14, minutes=30
)
QUIET = ("96", "95")  # provinces given no events
BY = "channel"  # the breakdown's dimension where none is named
STRIDE = len(RANGES)


def _without_quiet(by_type: dict[str, list[dict]]) -> dict[str, list[dict]]:
    return {
        event_type: [r for r in records if r["province_code"] not in QUIET]
        for event_type, records in by_type.items()
    }


@pytest.fixture(scope="module")
def store(clickhouse) -> tuple[DashboardQueries, str]:
    """The module's database and its queries; the agency with the most recent events."""
    assert set(QUIET) <= set(provinces())
    database = f"dash_all_{uuid.uuid4().hex[:8]}"
    migrate(clickhouse, database=database)
    traffic = SyntheticTraffic(seed=77)
    recent = _without_quiet(traffic.events(1500, NOW - timedelta(minutes=55), NOW))
    week = _without_quiet(
        traffic.events(1500, NOW - timedelta(days=7, hours=12), NOW - timedelta(hours=1))
    )
    both = {t: recent.get(t, []) + week.get(t, []) for t in {*recent, *week}}
    insert_events(clickhouse, database, both)  # one insert per type: fewer parts, faster reads
    agency = Counter(r["agency_code"] for rs in recent.values() for r in rs).most_common(1)
    return DashboardQueries(clickhouse, database), agency[0][0]


def _window(range_name: str) -> Window:
    return window_of(RANGES[range_name], NOW.timestamp())


def _compared(range_name: str) -> list[str]:
    """The provinces whose own answers a case of `range_name` compares (see the docstring)."""
    codes = list(provinces())
    return sorted({*codes[list(RANGES).index(range_name) % STRIDE :: STRIDE], *QUIET})


def _assert_same_as_each_province(
    queries: DashboardQueries, name: str, query: Query, window: Window
) -> dict[str, dict[str, Any]]:
    grouped = queries.all_provinces(name, query, window)
    assert list(grouped) == list(provinces())
    for code in _compared(query.range.name):
        single = getattr(queries, name)(Query(query.range, code, query.agency, query.by), window)
        assert grouped[code] == single, code
    return grouped


@pytest.mark.parametrize("range_name", list(RANGES))
@pytest.mark.parametrize("name", GROUPED_PANELS)
def test_every_provinces_answer_equals_its_own_query(store, name, range_name) -> None:
    queries, _ = store
    by = BY if name == "breakdown" else None
    grouped = _assert_same_as_each_province(
        queries, name, Query(RANGES[range_name], None, None, by), _window(range_name)
    )
    if name == "overview":
        events = {code: answer["events"] for code, answer in grouped.items()}
        assert all(events[code] == 0 for code in QUIET)
        assert sum(n > 0 for n in events.values()) > 40
        assert sum(answer["events_last_minute"] for answer in grouped.values()) > 0


@pytest.mark.parametrize("range_name", ["1h", "7d"])
@pytest.mark.parametrize("name", ["overview", "province"])
def test_with_an_agency_filter_too(store, name, range_name) -> None:
    queries, agency = store
    query = Query(RANGES[range_name], None, agency, None)
    _assert_same_as_each_province(queries, name, query, _window(range_name))


@pytest.mark.parametrize("range_name", ["1h", "7d"])
@pytest.mark.parametrize("by", ["province", "region"])
def test_a_breakdown_by_province_or_region_too(store, by, range_name) -> None:
    queries, _ = store
    query = Query(RANGES[range_name], None, None, by)
    _assert_same_as_each_province(queries, "breakdown", query, _window(range_name))


def test_the_week_reads_whole_days_and_the_day_two_dates() -> None:
    first, last = whole_days(RANGES["7d"], _window("7d")) or (0, 0)
    assert (last - first) // 86400 == 6
    day = _window("24h")
    assert day.start // 86400 != (day.end - 1) // 86400


def _counted() -> float:
    return REGISTRY.get_sample_value("govpulse_dashboard_queries_total") or 0.0


@pytest.mark.parametrize("range_name", ["1h", "24h"])
@pytest.mark.parametrize("name", GROUPED_PANELS)
def test_one_call_for_every_province_sends_as_many_statements_as_one_province(
    store, name, range_name
) -> None:
    queries, _ = store
    window = _window(range_name)
    query = Query(RANGES[range_name], "10", None, BY if name == "breakdown" else None)
    queries.service_names()  # cached names: not a statement of either call
    before, counted = queries.statements, _counted()
    getattr(queries, name)(query, window)
    single = queries.statements - before
    assert _counted() - counted == single > 0
    before = queries.statements
    queries.all_provinces(name, Query(query.range, None, None, query.by), window)
    assert queries.statements - before == single


def test_only_grouped_panels_and_no_province_filter(store) -> None:
    queries, _ = store
    with pytest.raises(ValueError, match="panel"):
        queries.all_provinces("provinces", Query(RANGES["1h"]), _window("1h"))
    with pytest.raises(ValueError, match="province"):
        queries.all_provinces("overview", Query(RANGES["1h"], "10"), _window("1h"))


def test_queries_carry_max_threads_and_their_niceness(clickhouse, store) -> None:
    queries, _ = store
    sql = "SELECT toString(getSetting('max_threads')), getSetting('os_thread_priority')"
    assert queries.settings == {"max_threads": 1}
    niced = DashboardQueries(clickhouse, queries.database, nice=10)
    assert niced.settings == {"max_threads": 1, "os_thread_priority": 10}
    assert niced._rows(sql, {}) == [("1", 10)]
    plain = DashboardQueries(clickhouse, queries.database, max_threads=None, nice=None)
    assert plain.settings == {}
    with pytest.raises(ValueError, match="nice"):
        DashboardQueries(clickhouse, queries.database, nice=20)


def _client(readonly: int, value: str = "auto(8)") -> Any:
    settings = {"max_threads": SettingDef("max_threads", value, readonly)}
    return SimpleNamespace(database="govpulse", server_settings=settings)


def test_a_read_only_user_gets_no_settings_and_a_warning(caplog) -> None:
    with caplog.at_level(logging.WARNING, "govpulse.dashboard.queries"):
        assert engine_settings(_client(readonly=1), 1) == {}
    assert "settings profile" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, "govpulse.dashboard.queries"):
        assert engine_settings(_client(readonly=1, value="1"), 1) == {}  # already its profile's
        assert engine_settings(_client(readonly=0), 2) == {"max_threads": 2}
    assert not caplog.text


def test_settings_refused_as_read_only_are_dropped_and_the_query_sent_again() -> None:
    sent: list[Any] = []

    def query(sql: str, parameters: Any = None, settings: Any = None) -> Any:
        sent.append(settings)
        if settings:
            raise DatabaseError("Code: 164. Cannot modify 'max_threads' setting (READONLY)")
        return SimpleNamespace(result_rows=[[1]])

    client = _client(readonly=0)
    client.query = query
    queries = DashboardQueries(client)
    assert queries._rows("SELECT 1", {}) == [(1,)]
    assert queries._rows("SELECT 1", {}) == [(1,)]
    assert sent == [{"max_threads": 1}, None, None]
    assert queries.settings == {}
