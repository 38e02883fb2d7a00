"""The audit's rollup check on the real engine: found from system.tables and the rollup spec,
compared per bucket.

Each test migrates a database of its own on the session's chdb engine and writes events
straight into events_complaint: the materialized views fill the minute rollups, as on a sink
insert, and `settle` runs the tier job, which merges the hour and day tiers from the minute
tier, as the sink's tier loop would. Then a test damages a rollup the way a lost or doubled
block (or a wrong row written into a tier) would.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from govpulse.clickhouse import make_client
from govpulse.schemas import catalog
from govpulse.sinks.audit import rollup_counts, rollup_problems, rollup_views
from govpulse.sinks.migrations import migrate
from govpulse.sinks.tiers import INSERT_SKEW_SECONDS, TierJob, TierRun
from tests.support.rollups import rollup_differences

pytestmark = pytest.mark.integration
COMPLAINT_MINUTES = {"activity_minute", "complaint_minute"}  # materialized views fill them
COMPLAINT_TIERS = {
    "activity_hour", "complaint_hour", "district_hour", "activity_national_hour",
    "complaint_national_hour", "activity_day", "complaint_day", "activity_national_day",
    "complaint_national_day",
}  # fmt: skip  # the tier job fills them
COMPLAINT_ROLLUPS = COMPLAINT_MINUTES | COMPLAINT_TIERS
# 10:00 UTC two days ago: the tier job completes the hour and its day in one run, so the audit
# compares both tiers of it (it compares a tier's buckets once the job has completed them: an
# hour a minute after its end, a day after its last hour).
HOUR = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0) - timedelta(days=2)
# For a rollup keeping one day (TTL): an hour of the last day.
RECENT_HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)


@pytest.fixture
def store(clickhouse) -> Iterator:
    """A client on a freshly migrated database of its own, dropped afterwards."""
    name = f"audit_{uuid.uuid4().hex[:10]}"
    migrate(clickhouse, database=name)
    client = make_client(f"chdb://{clickhouse.path}", database=name)
    yield client
    client.close()
    clickhouse.command(f"DROP DATABASE IF EXISTS {name} SYNC")


def add_complaints(client, start: datetime, count: int, every_ms: int = 500) -> None:
    """`count` complaints from `start` on, one every `every_ms`, through the views."""
    client.command(
        "INSERT INTO events_complaint (event_id, occurred_at, province_code, agency_code, "
        "channel, category, severity, status) SELECT generateUUIDv4(), "
        f"toDateTime64({start.timestamp():.3f}, 3, 'UTC') + toIntervalMillisecond(number * "
        f"{every_ms:d}), ['TH-10', 'TH-50'][number % 2 + 1], 'A1', 'web', 'road', "
        f"['low', 'high'][number % 2 + 1], 'open' FROM numbers({count:d})"
    )


def settle(client) -> TierRun:
    """Run the tier job as the sink's tier loop would once the rows inserted so far are
    INSERT_SKEW_SECONDS old, without waiting: its clock reads that much later. It merges the
    hours those rows reached, and the audit compares their buckets. (A run right after an
    insert would merge them too, but leave them pending: the audit skips the buckets holding
    rows inserted since INSERT_SKEW_SECONDS before the job's last run began.) Rows inserted
    after this call are pending until the next one."""
    now = time.time()
    return TierJob(client, clock=lambda: now + INSERT_SKEW_SECONDS).run_once()


def test_every_rollup_of_the_migrations_is_found_and_agrees_with_its_events_table(store):
    found = rollup_views(store)
    views = found["complaint"].views
    assert {v.table for v in views} == COMPLAINT_ROLLUPS
    # the tiers come from the spec, not from views (migrate's backfill ran the job once)
    assert {v.table for v in views if not v.final} == COMPLAINT_MINUTES
    assert {v.view for v in views if v.final} == {f"tier job → {t}" for t in COMPLAINT_TIERS}
    assert all("activity_minute" in {v.table for v in r.views} for r in found.values())
    for event_type, rollups in found.items():  # produced_minute keeps max() only
        assert rollups.skipped == {f"mv_produced_minute_{event_type}": "no count() column"}, (
            event_type
        )
    add_complaints(store, HOUR + timedelta(minutes=58), 600)  # 5 minutes across two hours
    settle(store)
    # found again: a tier view carries where the job was when it was found
    counts = rollup_counts(store, rollup_views(store)["complaint"].views)
    assert {c.table for c in counts} == COMPLAINT_ROLLUPS
    assert all(c.differing == 0 and c.rollup_events == c.table_events == 600 for c in counts)
    assert {(c.grain, c.buckets) for c in counts} == {("minute", 5), ("hour", 2), ("day", 1)}
    assert rollup_differences(store) == {}


def test_a_removed_block_and_a_correction_row_are_named_with_their_bucket(store):
    add_complaints(store, HOUR + timedelta(minutes=30), 240)  # two minutes, 120 each
    minute = HOUR + timedelta(minutes=31)
    store.command(  # a block of the minute tier lost, as a view's insert that failed would
        "ALTER TABLE activity_minute DELETE WHERE event_type = 'complaint' AND minute = "
        f"toDateTime({minute.timestamp():.0f}) AND province_code = 'TH-10' "
        "SETTINGS mutations_sync = 2"
    )
    settle(store)
    store.command(  # a row written into a tier by hand, after the job merged the hour
        "INSERT INTO complaint_hour (hour, province_code, complaints) VALUES "
        f"({HOUR.timestamp():.0f}, 'TH-10', 3)"
    )
    problems = rollup_differences(store)["complaint"]
    label, hour, day = (
        f"{minute:%Y-%m-%d %H:%M} UTC",
        f"{HOUR:%Y-%m-%d %H:00} UTC",
        f"{HOUR:%Y-%m-%d}",
    )
    # The tier job merged the hour from the minute tier as it found it, so activity's hour and
    # day tiers (province and national) miss the lost block too: each is named with its own
    # bucket. complaint_minute kept the block, so complaint's tiers (but for the row written
    # into complaint_hour, after the job ran) agree, as does district_hour, counted from the
    # events table. Rollups are listed minutes first, then hours, then days.
    assert problems == [
        f"activity_minute counts 60 complaint events in {label}, events_complaint holds 120: "
        "60 missing",
        f"activity_hour counts 180 complaint events in the hour {hour}, events_complaint "
        "holds 240: 60 missing",
        f"activity_national_hour counts 180 complaint events in the hour {hour}, "
        "events_complaint holds 240: 60 missing",
        f"complaint_hour counts 243 complaint events in the hour {hour}, events_complaint "
        "holds 240: 3 too many",
        f"activity_day counts 180 complaint events in the day {day} (UTC), events_complaint "
        "holds 240: 60 missing",
        f"activity_national_day counts 180 complaint events in the day {day} (UTC), "
        "events_complaint holds 240: 60 missing",
    ]


def test_a_tier_row_replaced_by_a_wrong_one_is_named_with_its_bucket(store):
    """A tier table keeps, per key, the row of the highest version (read FINAL): a row of a
    higher version than the job's, counting more, replaces the job's row."""
    add_complaints(store, HOUR + timedelta(minutes=10), 100)  # 50 of them in TH-10
    settle(store)
    assert rollup_differences(store) == {}
    store.command(
        "INSERT INTO complaint_hour SELECT * REPLACE (complaints + 7 AS complaints, "
        "version + 1 AS version) FROM complaint_hour FINAL WHERE province_code = 'TH-10'"
    )
    assert rollup_differences(store) == {
        "complaint": [
            f"complaint_hour counts 107 complaint events in the hour {HOUR:%Y-%m-%d %H:00} UTC, "
            "events_complaint holds 100: 7 too many"
        ]
    }
    # A late event reaching that hour makes the job recompute it, replacing the wrong row.
    add_complaints(store, HOUR + timedelta(minutes=50), 1)
    assert int(HOUR.timestamp()) in settle(store).hours
    assert rollup_differences(store) == {}


def test_events_inserted_since_the_tier_job_ran_are_pending_until_its_next_run(store):
    add_complaints(store, HOUR, 100)
    settle(store)
    assert rollup_differences(store) == {}
    # Late events (an agency's backlog) reach the hour after the job merged it and its day.
    add_complaints(store, HOUR + timedelta(minutes=20), 50)
    hour_sum = "SELECT sum(complaints) FROM complaint_hour FINAL"
    assert store.query(hour_sum).result_rows == [(100,)]  # the tiers do not count them yet
    counts = rollup_counts(store, rollup_views(store)["complaint"].views)
    # their hour and day are not compared (nor reported) until the job merged them; the
    # minute tier, filled on insert, is
    assert {(c.grain, c.differing, c.buckets, c.table_events) for c in counts} == {
        ("minute", 0, 2, 150),  # one complaint every 500 ms: 50 s, then 25 s
        ("hour", 0, 0, 0),
        ("day", 0, 0, 0),
    }
    run = settle(store)  # the job's next run
    assert run.late_hours == 1 and run.hours == [int(HOUR.timestamp())]
    assert store.query(hour_sum).result_rows == [(150,)]
    counts = rollup_counts(store, rollup_views(store)["complaint"].views)
    assert all(c.differing == 0 and c.rollup_events == c.table_events == 150 for c in counts)
    assert {(c.grain, c.buckets) for c in counts} == {("minute", 2), ("hour", 1), ("day", 1)}


def test_a_rollup_added_later_is_found_without_naming_it(store):
    store.command(
        "CREATE TABLE complaint_severity_minute (minute DateTime('UTC'), severity "
        "LowCardinality(String), complaints SimpleAggregateFunction(sum, UInt64)) "
        "ENGINE = AggregatingMergeTree ORDER BY (minute, severity)"
    )
    store.command(
        "CREATE MATERIALIZED VIEW mv_complaint_severity_minute TO complaint_severity_minute AS "
        "SELECT toStartOfMinute(occurred_at) AS minute, severity, count() AS complaints "
        "FROM events_complaint GROUP BY minute, severity"
    )
    add_complaints(store, HOUR, 100)
    settle(store)
    assert "complaint_severity_minute" in {v.table for v in rollup_views(store)["complaint"].views}
    assert rollup_differences(store) == {}
    store.command(
        "INSERT INTO complaint_severity_minute VALUES "
        f"({HOUR.timestamp():.0f}, 'low', 1), ({HOUR.timestamp():.0f}, 'high', 1)"
    )
    [problem] = rollup_differences(store)["complaint"]
    assert problem.startswith("complaint_severity_minute counts 102 complaint events in ")


def test_only_buckets_in_the_window_and_kept_by_both_tables_are_compared(store):
    """--since/--until in whole buckets of occurred_at; nothing older than the events tables'
    retention (`kept_since_ms`) or the rollup's own TTL."""
    store.command(
        "CREATE TABLE complaint_recent_hour (hour DateTime('UTC'), complaints "
        "SimpleAggregateFunction(sum, UInt64)) ENGINE = AggregatingMergeTree ORDER BY hour "
        "TTL hour + INTERVAL 1 DAY"
    )
    store.command(
        "CREATE MATERIALIZED VIEW mv_complaint_recent_hour TO complaint_recent_hour AS "
        "SELECT toStartOfHour(occurred_at) AS hour, count() AS complaints "
        "FROM events_complaint GROUP BY hour"
    )
    old = RECENT_HOUR - timedelta(days=3)
    add_complaints(store, old, 10)
    add_complaints(store, RECENT_HOUR + timedelta(minutes=10), 240)  # minutes 10, 11: 120 each
    store.command("ALTER TABLE complaint_recent_hour MATERIALIZE TTL SETTINGS mutations_sync = 2")
    views = rollup_views(store)["complaint"].views
    recent = [v for v in views if v.table == "complaint_recent_hour"]
    assert [v.ttl_seconds for v in recent] == [86_400]
    [kept] = rollup_counts(store, recent)  # the old hour is gone from the rollup only
    assert (kept.differing, kept.buckets, kept.table_events) == (0, 1, 240)
    assert kept.since is not None and kept.since > old.isoformat()

    store.command(
        "ALTER TABLE activity_minute DELETE WHERE event_type = 'complaint' AND "
        f"minute = toDateTime({old.timestamp():.0f}) SETTINGS mutations_sync = 2"
    )
    minutes = [v for v in views if v.table == "activity_minute"]
    assert rollup_counts(store, minutes)[0].differing == 1
    kept_since_ms = int((old + timedelta(hours=1)).timestamp() * 1000)  # the events' retention
    assert rollup_counts(store, minutes, kept_since_ms=kept_since_ms)[0].differing == 0

    store.command(
        "INSERT INTO activity_minute (minute, event_type, events) VALUES "
        f"({(RECENT_HOUR + timedelta(minutes=11)).timestamp():.0f}, 'complaint', 5)"
    )
    since, until = (
        RECENT_HOUR + timedelta(minutes=10, seconds=30),
        RECENT_HOUR + timedelta(minutes=12),
    )
    [window] = rollup_counts(store, minutes, since, until)  # minute 10 is cut: not compared
    assert (window.buckets, window.differing, window.first[0][1:]) == (1, 1, (125, 120))
    [before] = rollup_counts(store, minutes, until=RECENT_HOUR + timedelta(minutes=11))
    assert before.differing == 1 and before.first[0][0] == old.isoformat()


def test_every_type_is_compared_in_one_query_each(store):
    """Keep it fast: one query per type, whatever the number of rollups."""
    for event_type in catalog.EVENT_TYPES:
        table = f"events_{event_type}"
        store.command(
            f"INSERT INTO {table} (event_id, occurred_at) SELECT generateUUIDv4(), "
            f"toDateTime64({HOUR.timestamp():.0f}, 3, 'UTC') + toIntervalSecond(number) "
            "FROM numbers(300)"
        )
    settle(store)
    found, counting = rollup_views(store), CountingClient(store)
    started = time.perf_counter()
    for rollups in found.values():
        counts = rollup_counts(counting, rollups.views)
        assert all(c.differing == 0 and c.table_events == 300 for c in counts)
    assert counting.queries == len(found)
    assert time.perf_counter() - started < 10


class CountingClient:
    """A client that counts the queries it passes on."""

    def __init__(self, client) -> None:
        self.client, self.queries = client, 0

    def query(self, *args, **kwargs):
        self.queries += 1
        return self.client.query(*args, **kwargs)


def test_problems_name_the_type_of_the_events(store):
    add_complaints(store, HOUR, 10)
    settle(store)
    store.command(
        "ALTER TABLE activity_day DELETE WHERE event_type = 'complaint' SETTINGS mutations_sync = 2"
    )
    views = [v for v in rollup_views(store)["complaint"].views if v.table == "activity_day"]
    [count] = rollup_counts(store, views)
    [problem] = rollup_problems(count, "complaint")
    assert problem == (
        f"activity_day counts 0 complaint events in the day {HOUR:%Y-%m-%d} (UTC), "
        "events_complaint holds 10: 10 missing"
    )
