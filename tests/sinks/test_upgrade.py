"""Upgrading a store with history across 0011: the tiers filled for the past, the old views gone.

A store is built by 0001–0010 (the long-range rollups then filled by 39 materialized views on
every insert) and filled with a week of synthetic traffic; `migrate` then applies 0011, whose
tables replace the old ones, and backfills them from the minute tier. Every count, sum and
distinct count the dashboard reads from the hour and day tiers must be what the old tables
held; quantiles within the sketch's error (the old hourly ones were bfloat16, the new are the
minute tier's t-digests merged).
"""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from govpulse.dashboard.params import RANGES, Query
from govpulse.dashboard.queries import DashboardQueries, window_of
from govpulse.schemas.rollups import tier_tables
from govpulse.sinks.migrations import load_migrations, migrate
from govpulse.sinks.rollup_ddl import TIERS_MIGRATION, replaced_views
from tests.support.synthetic import SyntheticTraffic, insert_events

pytestmark = pytest.mark.integration

_NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def _exact_columns(table, present: set[str]) -> tuple[list[str], list[str]]:
    """(keys, exact aggregates) of a tier table: sums and uniq merges compare exactly. Keys
    only those the old table had too (three old national twins had no ministry_code)."""
    keys = [table.grain.name, *(d for d in table.dimensions if d in present)]
    exact = [
        f"sum({m.name})" if m.kind in ("count", "sum") else f"uniqMerge({m.name})"
        for m in table.metrics
        if m.kind in ("count", "sum", "uniq")
    ]
    return keys, exact


def _read(client, db: str, table, final: bool, present: set[str]) -> list[tuple]:
    keys, exact = _exact_columns(table, present)
    rows = client.query(
        f"SELECT {', '.join(keys)}, {', '.join(exact)} FROM {db}.{table.name}"
        f"{' FINAL' if final else ''} GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}"
    ).result_rows
    return [tuple(r) for r in rows]


def test_migrate_fills_the_new_tiers_from_history_and_drops_the_old_views(clickhouse, tmp_path):
    old_ddl = Path(tmp_path, "ddl")
    old_ddl.mkdir()
    here = Path(load_migrations.__code__.co_filename).parent / "ddl"
    for migration in load_migrations():
        if migration.filename != TIERS_MIGRATION:
            shutil.copy(here / migration.filename, old_ddl / migration.filename)
    db = f"gp_upgrade_{uuid.uuid4().hex[:10]}"
    migrate(clickhouse, database=db, directory=old_ddl)
    traffic = SyntheticTraffic(seed=31)
    for batch in range(2):
        by_type = traffic.events(3000, _NOW - timedelta(days=8), _NOW - timedelta(minutes=5))
        insert_events(clickhouse, db, by_type, token=f"old:{batch}", settle=False)  # no tiers yet
    present = {
        t.name: {
            name
            for (name,) in clickhouse.query(
                "SELECT name FROM system.columns "
                "WHERE database = {d:String} AND table = {t:String}",
                parameters={"d": db, "t": t.name},
            ).result_rows
        }
        for t in tier_tables()
    }
    before = {t.name: _read(clickhouse, db, t, False, present[t.name]) for t in tier_tables()}
    assert all(before.values())

    assert migrate(clickhouse, database=db) == [TIERS_MIGRATION.removesuffix(".sql")]

    views = {
        name
        for (name,) in clickhouse.query(
            "SELECT name FROM system.tables WHERE database = {d:String} "
            "AND engine = 'MaterializedView'",
            parameters={"d": db},
        ).result_rows
    }
    assert not views & set(replaced_views())
    # every closed hour merged; the open hour (and the margin) is the minute tier's to answer
    for table in tier_tables():
        after = _read(clickhouse, db, table, True, present[table.name])
        closed = [
            r for r in before[table.name] if r[0] < _NOW.replace(tzinfo=None) - timedelta(hours=1)
        ]
        if table.grain.name == "hour":
            assert [r for r in after if r[0] in {c[0] for c in closed}] == closed, table.name
        else:  # days: the whole days before today
            today = _NOW.replace(hour=0, tzinfo=None)
            assert [r for r in after if r[0] < today] == [
                r for r in before[table.name] if r[0] < today
            ], table.name


def test_the_dashboard_answers_the_day_and_week_the_same_across_the_upgrade(clickhouse):
    """Answered from the new tiers plus the minute tier, the week equals the minute tier
    summed: nothing lost at the seam between the tiers and the open hour."""
    db = f"gp_upgrade_{uuid.uuid4().hex[:10]}"
    migrate(clickhouse, database=db)
    traffic = SyntheticTraffic(seed=32)
    by_type = traffic.events(2000, _NOW - timedelta(days=7), datetime.now(UTC))
    insert_events(clickhouse, db, by_type, settle=False)  # as if the sink's job had not run
    queries = DashboardQueries(clickhouse, db)
    for name in ("24h", "7d"):
        query = Query(RANGES[name])
        window = window_of(query.range)
        expected = clickhouse.query(
            f"SELECT sum(events) FROM {db}.activity_minute "
            "WHERE minute >= toDateTime({s:UInt32}) AND minute < toDateTime({e:UInt32})",
            parameters={"s": window.start, "e": window.end},
        ).result_rows[0][0]
        before_job = queries.overview(query, window)["events"]  # hours not merged: late
        from govpulse.sinks.tiers import TierJob

        TierJob(clickhouse, db).run_once()
        queries._tier_read_at = -1e9  # read the new progress now, not in 5 s
        after_job = queries.overview(query, window)["events"]
        assert after_job == expected > 0, name
        assert before_job <= after_job
