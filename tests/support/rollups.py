"""Rollups against the events tables they are filled from (not a test module)."""

from __future__ import annotations

from typing import Any

from govpulse.schemas.catalog import EVENT_TYPES
from govpulse.sinks.audit import rollup_counts, rollup_problems, rollup_views
from govpulse.sinks.columns import table_for


def rollup_gaps(client: Any) -> dict[str, tuple[int, int]]:
    """Per type: (rows in events_<type>, events counted in activity_minute), where they differ."""
    gaps = {}
    for event_type in EVENT_TYPES:
        rows = client.query(f"SELECT count() FROM {table_for(event_type)}").result_rows[0][0]
        counted = client.query(
            "SELECT sum(events) FROM activity_minute WHERE event_type = {t:String}",
            parameters={"t": event_type},
        ).result_rows[0][0]
        if rows != counted:
            gaps[event_type] = (rows, counted)
    return gaps


def rollup_differences(client: Any) -> dict[str, list[str]]:
    """Per type, the audit's problems with every rollup of its events table, where there are
    any: the minute rollups over all their buckets, the tiers the tier job fills over those it
    has completed (and merged every row of: see `sinks.audit.tier_views`)."""
    found = rollup_views(client)
    problems = {
        event_type: [
            line
            for count in rollup_counts(client, rollups.views)
            for line in rollup_problems(count, event_type)
        ]
        for event_type, rollups in found.items()
    }
    return {event_type: lines for event_type, lines in problems.items() if lines}
