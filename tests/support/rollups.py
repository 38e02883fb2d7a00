"""Rows of events_<type> against the events counted in activity_minute (not a test module)."""

from __future__ import annotations

from typing import Any

from govpulse.schemas.catalog import EVENT_TYPES
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
