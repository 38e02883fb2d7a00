"""Checks a cleaned raw record must pass before it may reach `clean.<type>`.

The checks run in a fixed order and the first failure is the reason, so a record with several
problems always lands in the dead-letter topic with the same reason code:
INVALID_VALUE (event_type, event_id) → UNKNOWN_AGENCY → UNKNOWN_PROVINCE (province_code, then
any other `*_province_code`) → UNKNOWN_DISTRICT → FUTURE_TIMESTAMP. National IDs are checked
afterwards, by `streams.pii`, because only the pseudonymiser may look at them.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from streams.enrich import ReferenceTables
from streams.flat_avro import is_type
from streams.reasons import Reason

Failure = tuple[Reason, str]

DEFAULT_FUTURE_TOLERANCE_MS = 5 * 60 * 1000  # agency clocks drift; later than this is a defect
_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def shown(value: Any, limit: int = 40) -> str:
    """`value` for a human-readable detail, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def iso_millis(millis: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC, or the bare number when out of datetime's range."""
    try:
        return (_EPOCH + timedelta(milliseconds=millis)).isoformat(timespec="milliseconds")
    except (OverflowError, ValueError):
        return f"{millis} ms"


def is_uuid(value: str) -> bool:
    """The producer SDK's test (`uuid.UUID` accepts it), with a fast path for canonical form."""
    if _CANONICAL_UUID.fullmatch(value):
        return True
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class Validator:
    """Reference-data and clock checks for records of one event type."""

    def __init__(
        self,
        event_type: str,
        schema: dict[str, Any],
        tables: ReferenceTables,
        future_tolerance_ms: int = DEFAULT_FUTURE_TOLERANCE_MS,
    ) -> None:
        self.event_type = event_type
        self.future_tolerance_ms = future_tolerance_ms
        self._agencies = tables.agencies
        self._provinces = tables.provinces
        self._district_province = tables.district_province
        self._other_province_fields = tuple(
            f["name"]
            for f in schema["fields"]
            if f["name"].endswith("_province_code") and is_type(f["type"], "string")
        )

    def check(self, record: dict[str, Any], now_ms: int) -> Failure | None:
        """The first failing check as (reason, detail), or None when the record is valid."""
        if record["event_type"] != self.event_type:
            return Reason.INVALID_VALUE, (
                f"event_type {shown(record['event_type'])} does not match the topic's type "
                f"{self.event_type!r}"
            )
        if not is_uuid(record["event_id"]):
            return Reason.INVALID_VALUE, f"event_id {shown(record['event_id'])} is not a UUID"
        if record["agency_code"] not in self._agencies:
            return Reason.UNKNOWN_AGENCY, (
                f"agency_code {shown(record['agency_code'])} is not in the agency table "
                "(schemas/reference/agencies.json)"
            )
        province = record["province_code"]
        if province not in self._provinces:
            return Reason.UNKNOWN_PROVINCE, (
                f"province_code {shown(province)} is not a DOPA province code"
            )
        for name in self._other_province_fields:
            other = record.get(name)
            if other is not None and other not in self._provinces:
                return Reason.UNKNOWN_PROVINCE, (
                    f"{name} {shown(other)} is not a DOPA province code"
                )
        district = record.get("district_code")
        if district is not None:
            owner = self._district_province.get(district)
            if owner is None:
                return Reason.UNKNOWN_DISTRICT, (
                    f"district_code {shown(district)} is not a DOPA district code"
                )
            if owner != province:
                return Reason.UNKNOWN_DISTRICT, (
                    f"district_code {district!r} lies in province {owner!r}, "
                    f"not in province_code {province!r}"
                )
        occurred = record["occurred_at"]
        if occurred > now_ms + self.future_tolerance_ms:
            return Reason.FUTURE_TIMESTAMP, (
                f"occurred_at {iso_millis(occurred)} is {(occurred - now_ms) / 1000:,.0f} s "
                f"after processing time {iso_millis(now_ms)} (tolerance "
                f"{self.future_tolerance_ms / 1000:,.0f} s)"
            )
        return None
