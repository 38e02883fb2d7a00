"""The data age the dashboard's badge shows, computed from ClickHouse's figures (no engine)."""

from __future__ import annotations

from govpulse.dashboard.queries import age_seconds


def test_age_is_seconds_from_the_newest_produced_at_to_now_to_a_tenth():
    now_ms = 1_765_000_007_240
    assert age_seconds(now_ms, now_ms - 7_240) == 7.2  # issue 18: 7 s behind, not 0.2 s
    assert age_seconds(now_ms, now_ms - 250) == 0.2


def test_a_producer_clock_ahead_of_clickhouse_reads_as_no_age_not_a_negative_one():
    assert age_seconds(1_765_000_000_000, 1_765_000_000_900) == 0.0
