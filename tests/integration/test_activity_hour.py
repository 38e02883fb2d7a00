"""The hourly rollups (sinks/ddl/0007_activity_hour.sql) on the embedded engine.

They are filled by their own materialized views from events_*, beside the per-minute ones,
so they must agree with the minute rollups summed over whole hours, and must drop a replayed
sink batch (same insert_deduplication_token) as the minute rollups do. One migrated database
per module; each test uses its own hours, days ago, so tests never see each other's rows.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dashboard.queries import HOUR, MINUTE, Grain
from dashboard.synthetic import SyntheticTraffic
from schemas.catalog import EVENT_TYPES
from sinks.columns import columns_for, table_for, to_columns
from sinks.migrations import DdlOptions, load_migrations, migrate

pytestmark = pytest.mark.integration

_THIS_HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
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


def test_on_a_cluster_the_hourly_rollups_are_replicated_locals_behind_distributed_tables():
    (migration,) = [m for m in load_migrations() if m.name.endswith("_activity_hour")]
    statements = migration.statements(DdlOptions(database="gp", replicated=True, cluster="c1"))
    assert all("ON CLUSTER c1" in s for s in statements)
    creates = {
        m[1]: s for s in statements if (m := re.match(r"CREATE TABLE IF NOT EXISTS gp\.(\w+)", s))
    }
    assert set(creates) == {*HOUR.tables, *(f"{t}_local" for t in HOUR.tables)}
    for table in HOUR.tables:
        assert "ENGINE = ReplicatedAggregatingMergeTree(" in creates[f"{table}_local"]
        assert "non_replicated_deduplication_window" in creates[f"{table}_local"]
        assert f"ENGINE = Distributed(c1, gp, {table}_local)" in creates[table]
    views = [s for s in statements if s.startswith("CREATE MATERIALIZED VIEW")]
    assert len(views) == len(EVENT_TYPES) + 4
    for view in views:
        assert re.search(r"TO gp\.\w+_hour_local\b", view)
        assert re.search(r"FROM gp\.events_\w+_local\b", view)
    single = "\n".join(migration.statements(DdlOptions(database="gp")))
    assert "${" not in single and "_local" not in single and "ON CLUSTER" not in single
