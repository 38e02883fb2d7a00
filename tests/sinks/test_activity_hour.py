"""The hourly, daily and national rollups (sinks/ddl/0007_activity_hour.sql, 0008_*.sql).

They are filled by their own materialized views from events_*, beside the per-minute ones,
so they must agree with the finer rollups summed over whole hours (days, provinces), and must
drop a replayed sink batch (same insert_deduplication_token) as the minute rollups do. The
day and week views read whole days from the daily tables, the rest from the hourly ones, and
the national twins when no province is picked: their answers must equal those read from the
full hourly tables alone. One migrated database per module; each test
uses its own hours, days ago, or compares two readings of the same rows, so tests never
disturb each other.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import govpulse.dashboard.queries
from govpulse.dashboard.params import RANGES, Query
from govpulse.dashboard.queries import (
    DAY,
    HOUR,
    MINUTE,
    NATIONAL_KINDS,
    DashboardQueries,
    Grain,
    whole_days,
    window_of,
)
from govpulse.schemas.catalog import EVENT_TYPES
from govpulse.sinks.columns import columns_for, table_for, to_columns
from govpulse.sinks.migrations import DdlOptions, load_migrations, migrate
from tests.support.synthetic import SyntheticTraffic

pytestmark = pytest.mark.integration

_THIS_HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
# The week view is checked as of yesterday 09:30 UTC: its window (8 days ago 10:00 to
# yesterday 10:00) then holds six whole days and 14 + 10 hours around them, at any time of day.
_WEEK_NOW = _THIS_HOUR.replace(hour=0) - timedelta(hours=14, minutes=30)
# Per grain, the rollup's dimensions and its additive metrics (summed at any grain).
ADDITIVE = {
    "activity": (
        ("event_type", "province_code", "agency_code", "channel", "ministry_code", "region_code"),
        ("events", "amount_thb"),
    ),
    "service_request": (
        ("province_code", "agency_code", "service_code", "status", "ministry_code", "region_code"),
        ("requests", "satisfaction_sum", "satisfaction_count"),
    ),
    "complaint": (
        (
            "province_code",
            "agency_code",
            "category",
            "severity",
            "status",
            "via_1111",
            "ministry_code",
            "region_code",
        ),
        ("complaints",),
    ),
    "net_pracharat": (
        ("province_code", "agency_code", "ministry_code", "region_code"),
        ("reports", "sessions", "devices_sum", "bytes_down", "bytes_up"),
    ),
    "digital_center": (
        (
            "province_code",
            "agency_code",
            "activity",
            "product_category",
            "ministry_code",
            "region_code",
        ),
        ("activities", "participants", "order_amount_thb"),
    ),
}


def hours_ago(n: int) -> datetime:
    return _THIS_HOUR - timedelta(hours=n)


def insert(client, database: str, by_type: dict[str, list[dict]], token: str) -> None:
    """Insert the way the sink does: column-oriented, one deduplication token per batch."""
    for event_type, records in by_type.items():
        client.insert(
            f"{database}.{table_for(event_type)}",
            to_columns(event_type, records),
            column_names=columns_for(event_type),
            column_oriented=True,
            settings={"insert_deduplication_token": f"{token}:{event_type}"},
        )


def rows(client, sql: str, **params: Any) -> list[tuple]:
    return [tuple(r) for r in client.query(sql, parameters=params).result_rows]


@pytest.fixture(scope="module")
def db(clickhouse) -> str:
    name = f"gp_hour_{uuid.uuid4().hex[:10]}"
    migrate(clickhouse, database=name)
    return name


@pytest.fixture(scope="module")
def five_hours(clickhouse, db) -> tuple[datetime, datetime]:
    """3,000 clean events of every type over five whole hours a week ago, in three batches."""
    start, end = hours_ago(7 * 24), hours_ago(7 * 24 - 5)
    traffic = SyntheticTraffic(seed=7)
    for batch in range(3):
        insert(clickhouse, db, traffic.events(1000, start, end), token=f"five-hours:{batch}")
    return start, end


@pytest.fixture(scope="module")
def week(clickhouse) -> str:
    """A database of its own: 4,000 clean events over the week view's window and the day
    before it, in 2 batches (its hours overlap the other tests' hours)."""
    name = f"gp_day_{uuid.uuid4().hex[:10]}"
    migrate(clickhouse, database=name)
    traffic = SyntheticTraffic(seed=10)
    start, end = _WEEK_NOW - timedelta(days=8), _WEEK_NOW
    for batch in range(2):
        insert(clickhouse, name, traffic.events(2000, start, end), token=f"week:{batch}")
    return name


@pytest.mark.parametrize("rollup", list(ADDITIVE))
def test_an_hourly_rollup_equals_its_minute_rollup_summed_over_the_same_hours(
    clickhouse, db, five_hours, rollup
):
    start, end = five_hours
    dimensions, metrics = ADDITIVE[rollup]
    keys = ", ".join(dimensions)
    sums = ", ".join(f"sum({m})" for m in metrics)

    def by_hour(table: str, column: str) -> list[tuple]:
        return rows(
            clickhouse,
            f"SELECT toStartOfHour({column}) AS h, {keys}, {sums} FROM {db}.{table} "
            f"WHERE {column} >= {{s:DateTime('UTC')}} AND {column} < {{e:DateTime('UTC')}} "
            f"GROUP BY h, {keys} ORDER BY h, {keys}",
            s=start,
            e=end,
        )

    minute = by_hour(getattr(MINUTE, rollup), "minute")
    hour = by_hour(getattr(HOUR, rollup), "hour")
    assert len({r[0] for r in hour}) == 5
    assert hour == minute


def test_hourly_distinct_counts_and_quantiles_match_the_minute_states_merged(
    clickhouse, db, five_hours
):
    start, end = five_hours

    def merged(grain: Grain) -> list[tuple]:
        return rows(
            clickhouse,
            f"SELECT toStartOfHour({grain.time}) AS h, event_type, uniqMerge(citizens), "
            f"quantile{grain.sketch}Merge(0.5)(processing_seconds) FROM {db}.{grain.activity} "
            f"WHERE {grain.time} >= {{s:DateTime('UTC')}} AND {grain.time} < {{e:DateTime('UTC')}} "
            "GROUP BY h, event_type ORDER BY h, event_type",
            s=start,
            e=end,
        )

    minute, hour = merged(MINUTE), merged(HOUR)
    assert [r[:2] for r in hour] == [r[:2] for r in minute]
    for (_, event_type, m_citizens, m_p50), (_, _, h_citizens, h_p50) in zip(
        minute, hour, strict=True
    ):
        assert h_citizens == m_citizens, event_type  # uniq is exact at these sizes
        if event_type == "service_request":
            # t-digest per minute, bfloat16 per hour: both within a few percent of the truth
            assert h_p50 == pytest.approx(m_p50, rel=0.1)
    latency = [
        rows(
            clickhouse,
            f"SELECT uniqMerge(access_points), quantile{grain.sketch}Merge(0.5)(latency_ms) "
            f"FROM {db}.{grain.net_pracharat} "
            f"WHERE {grain.time} >= {{s:DateTime('UTC')}} AND {grain.time} < {{e:DateTime('UTC')}}",
            s=start,
            e=end,
        )[0]
        for grain in (MINUTE, HOUR)
    ]
    assert latency[1][0] == latency[0][0] > 0
    assert latency[1][1] == pytest.approx(latency[0][1], rel=0.05)


@pytest.mark.parametrize("rollup", list(ADDITIVE))
def test_a_daily_rollup_equals_its_hourly_rollup_summed_over_the_same_days(
    clickhouse, week, rollup
):
    db = week
    dimensions, metrics = ADDITIVE[rollup]
    keys = ", ".join(dimensions)
    sums = ", ".join(f"sum({m})" for m in metrics)

    def by_day(table: str, column: str) -> list[tuple]:
        return rows(
            clickhouse,
            f"SELECT toStartOfDay({column}) AS d, {keys}, {sums} FROM {db}.{table} "
            f"GROUP BY d, {keys} ORDER BY d, {keys}",
        )

    day = by_day(getattr(DAY, rollup), "day")
    assert len({r[0] for r in day}) >= 8
    assert day == by_day(getattr(HOUR, rollup), "hour")


def test_daily_distinct_counts_and_quantiles_match_the_hourly_states_merged(clickhouse, week):
    db = week

    def merged(grain: Grain) -> list[tuple]:
        return rows(
            clickhouse,
            f"SELECT toStartOfDay({grain.time}) AS d, event_type, uniqMerge(citizens), "
            "ifNotFinite(quantileBFloat16Merge(0.5)(processing_seconds), -1) "
            f"FROM {db}.{grain.activity} "
            "GROUP BY d, event_type ORDER BY d, event_type",
        )

    # Same state types at both grains: uniq sets and bfloat16 histograms merge exactly.
    assert merged(DAY) == merged(HOUR)
    net, complaints = (
        [
            rows(
                clickhouse,
                f"SELECT toStartOfDay({grain.time}) AS d, uniqMerge(access_points), "
                f"quantileBFloat16Merge(0.5)(latency_ms) FROM {db}.{grain.net_pracharat} "
                "GROUP BY d ORDER BY d",
            )
            for grain in (HOUR, DAY)
        ],
        [
            rows(
                clickhouse,
                f"SELECT toStartOfDay({grain.time}) AS d, "
                f"quantileTDigestMerge(0.5)(resolution_days) FROM {db}.{grain.complaint} "
                "GROUP BY d ORDER BY d",
            )
            for grain in (HOUR, DAY)
        ],
    )
    assert net[1] == net[0]
    assert [r[0] for r in complaints[1]] == [r[0] for r in complaints[0]]
    for (_, hour_p50), (_, day_p50) in zip(*complaints, strict=True):
        assert day_p50 == pytest.approx(hour_p50, rel=0.1, nan_ok=True)  # t-digest: merge order


WEEK_ENDPOINTS = (
    ("province", {"province": "10", "agency": "MOI-DOPA"}),
    ("overview", {}),
    ("timeseries", {}),
    ("service_requests", {"agency": "MOI-DOPA"}),
    ("breakdown", {"by": "region"}),
    ("overview", {"province": "10"}),
    ("overview", {"agency": "MOI-DOPA"}),
    ("ministries", {}),
    ("provinces", {}),
    ("province", {"province": "10"}),
    ("service_requests", {}),
    ("complaints", {}),
    ("net_pracharat", {}),
    ("digital_centers", {}),
    ("breakdown", {"by": "channel"}),
    ("breakdown", {"by": "province", "agency": "MOI-DOPA"}),
)


@pytest.mark.parametrize("range_name", ["7d", "24h"])
@pytest.mark.parametrize(("endpoint", "filters"), WEEK_ENDPOINTS)
def test_the_week_and_day_from_days_and_national_twins_equal_the_full_hourly_rollups(
    clickhouse, week, monkeypatch, endpoint, filters, range_name
):
    query = Query(RANGES[range_name], **filters)
    window = window_of(query.range, _WEEK_NOW.timestamp())
    if range_name == "7d":
        first, last = whole_days(query.range, window)
        assert (last - first) // 86400 == 6
        assert window.start < first and last < window.end  # partial days at both ends
    queries = DashboardQueries(clickhouse, week)
    from_days = getattr(queries, endpoint)(query, window)
    monkeypatch.setattr(govpulse.dashboard.queries, "whole_days", lambda time_range, window: None)
    monkeypatch.setattr(govpulse.dashboard.queries, "reads_national", lambda query: False)
    from_hours = getattr(queries, endpoint)(query, window)
    if endpoint == "complaints":  # a t-digest median: depends on the order states merge in
        p50 = from_hours.pop("resolution_days_p50")
        assert from_days.pop("resolution_days_p50") == pytest.approx(p50, rel=0.1)
    assert from_days == from_hours
    assert from_days.get("events", 1) > 0


@pytest.mark.parametrize("grain", [HOUR, DAY], ids=lambda g: g.time)
@pytest.mark.parametrize("kind", NATIONAL_KINDS)
def test_a_national_twin_equals_its_rollup_summed_over_provinces(clickhouse, week, grain, kind):
    dimensions, metrics = ADDITIVE[kind]
    keys = ", ".join(
        d for d in dimensions if d not in ("province_code", "region_code", "ministry_code")
    )
    sums = ", ".join(f"sum({m})" for m in metrics)

    def summed(table: str) -> list[tuple]:
        return rows(
            clickhouse,
            f"SELECT {grain.time}, {keys}, {sums} FROM {week}.{table} "
            f"GROUP BY {grain.time}, {keys} ORDER BY {grain.time}, {keys}",
        )

    national = summed(f"{kind}_national_{grain.time}")
    assert len(national) > 10
    assert national == summed(getattr(grain, kind))


def test_a_replayed_batch_with_the_same_token_is_counted_once_in_activity_hour(clickhouse, db):
    at = hours_ago(3 * 24)
    traffic = SyntheticTraffic(seed=8)
    batch = traffic.events(5000, at, at + timedelta(minutes=50))
    for _ in range(2):  # the sink retries a batch after a crash, with the same token
        insert(clickhouse, db, batch, token="clean:0:0-4999")

    def hourly() -> dict[str, int]:
        return dict(
            rows(
                clickhouse,
                f"SELECT event_type, sum(events) FROM {db}.activity_hour "
                "WHERE hour = {h:DateTime('UTC')} GROUP BY event_type",
                h=at,
            )
        )

    expected = {t: len(batch[t]) for t in EVENT_TYPES if batch.get(t)}
    assert hourly() == expected
    later = traffic.events(10, at, at + timedelta(minutes=50))
    insert(clickhouse, db, later, token="clean:0:5000-5009")
    assert sum(hourly().values()) == 5010
    assert day_events(clickhouse, db, at) == hour_events_of_day(clickhouse, db, at)


def day_events(clickhouse, db: str, at: datetime) -> int:
    """Events of the UTC day of `at` in activity_day."""
    return rows(
        clickhouse,
        f"SELECT sum(events) FROM {db}.activity_day "
        "WHERE day = toStartOfDay({at:DateTime('UTC')})",
        at=at,
    )[0][0]


def hour_events_of_day(clickhouse, db: str, at: datetime) -> int:
    """Events of the UTC day of `at` summed from activity_hour."""
    return rows(
        clickhouse,
        f"SELECT sum(events) FROM {db}.activity_hour "
        "WHERE toStartOfDay(hour) = toStartOfDay({at:DateTime('UTC')})",
        at=at,
    )[0][0]


def test_different_batches_rolling_up_to_identical_hour_rows_are_both_counted(clickhouse, db):
    # Two events alike in every rolled-up column, in different minutes of one hour, sent as
    # two batches: their activity_hour blocks are byte-identical, only the tokens differ.
    at = hours_ago(4 * 24)
    traffic = SyntheticTraffic(seed=9)
    record = traffic.events(200, at, at + timedelta(seconds=1))["net_pracharat_usage"][0]
    later = dict(record, event_id=uuid.uuid4(), occurred_at=at + timedelta(minutes=30))
    insert(clickhouse, db, {"net_pracharat_usage": [record]}, token="clean:1:0-0")
    insert(clickhouse, db, {"net_pracharat_usage": [later]}, token="clean:1:1-1")
    hour_events = rows(
        clickhouse,
        f"SELECT sum(events) FROM {db}.activity_hour WHERE hour = {{h:DateTime('UTC')}}",
        h=at,
    )
    assert hour_events == [(2,)]
    # Likewise their byte-identical activity_day blocks.
    assert day_events(clickhouse, db, at) == hour_events_of_day(clickhouse, db, at)


# 0007 brings the hourly tables; 0008 the daily ones, the national twins per hour and day and
# district_hour.
CLUSTER_CASES = {
    7: (HOUR.tables, len(EVENT_TYPES) + 4),
    8: (
        (
            *DAY.tables,
            *(f"{k}_national_{g.time}" for g in (HOUR, DAY) for k in NATIONAL_KINDS),
            "district_hour",
        ),
        # 5 + 4 daily views; per grain, 5 national activity views and 3 national per-type
        # ones; 5 district views
        len(EVENT_TYPES) + 4 + 2 * (len(EVENT_TYPES) + len(NATIONAL_KINDS) - 1) + len(EVENT_TYPES),
    ),
}


@pytest.mark.parametrize("version", list(CLUSTER_CASES))
def test_on_a_cluster_the_hourly_and_daily_rollups_are_replicated_locals_behind_distributed_tables(
    version,
):
    (migration,) = [m for m in load_migrations() if m.version == version]
    tables, view_count = CLUSTER_CASES[version]
    statements = migration.statements(DdlOptions(database="gp", replicated=True, cluster="c1"))
    assert all("ON CLUSTER c1" in s for s in statements)
    creates = {
        m[1]: s for s in statements if (m := re.match(r"CREATE TABLE IF NOT EXISTS gp\.(\w+)", s))
    }
    assert set(creates) == {*tables, *(f"{t}_local" for t in tables)}
    for table in tables:
        assert "ENGINE = ReplicatedAggregatingMergeTree(" in creates[f"{table}_local"]
        assert "non_replicated_deduplication_window" in creates[f"{table}_local"]
        assert f"ENGINE = Distributed(c1, gp, {table}_local)" in creates[table]
    views = [s for s in statements if s.startswith("CREATE MATERIALIZED VIEW")]
    assert len(views) == view_count
    for view in views:
        assert re.search(r"TO gp\.\w+_(hour|day)_local\b", view)
        assert re.search(r"FROM gp\.events_\w+_local\b", view)
    single = "\n".join(migration.statements(DdlOptions(database="gp")))
    assert "${" not in single and "_local" not in single and "ON CLUSTER" not in single
