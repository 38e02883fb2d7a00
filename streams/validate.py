"""Checks a cleaned raw record must pass before it may reach `clean.<type>`.

The checks run in a fixed order and the first failure is the reason, so a record with several
problems always lands in the dead-letter topic with the same reason code:
INVALID_VALUE (event_type, event_id) → UNKNOWN_AGENCY → UNKNOWN_PROVINCE (province_code, then
any other `*_province_code`) → UNKNOWN_DISTRICT → UNKNOWN_SUBDISTRICT (`village_code`: its
subdistrict part, then that it lies in the record's district, or province when there is no
district) → FUTURE_TIMESTAMP → OUTSIDE_RETENTION (older
than the events tables keep: stored, the table's TTL would delete it within seconds while the
rollups kept counting it, so it is dead-lettered and counted instead). National IDs are checked
afterwards, by `govpulse.streams.pii`, because only the pseudonymiser may look at them.
"""

from __future__ import annotations

from typing import Any

from govpulse.schemas import reference
from govpulse.schemas.layout import EventLayout, layout_of
from govpulse.schemas.timestamps import from_epoch_millis
from govpulse.streams.enrich import ReferenceTables
from govpulse.streams.reasons import Reason
from govpulse.streams.rules.event_id import canonical_event_id

Failure = tuple[Reason, str]

DEFAULT_FUTURE_TOLERANCE_MS = 5 * 60 * 1000  # agency clocks drift; later than this is a defect
DAY_MS = 24 * 60 * 60 * 1000
VILLAGE_NUMBERS = frozenset(f"{n:02d}" for n in range(100))  # 00: outside any muban


def shown(value: Any, limit: int = 40) -> str:
    """`value` for a human-readable detail, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def iso_millis(millis: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC, or the bare number when out of datetime's range."""
    try:
        return from_epoch_millis(millis).isoformat(timespec="milliseconds")
    except (OverflowError, ValueError):
        return f"{millis} ms"


def abolished_note(code: str) -> str:
    """Why an abolished DOPA code was not repaired by cleaning (`streams.clean`); "" if current.

    Only the failure path calls it, so it may look at the full reference data.
    """
    area = reference.abolished().get(code)
    if area is None:
        return ""
    note = f"; DOPA abolished it on {area.abolished_on}"
    if not area.successors:
        return note + " and names no successor"
    listed = ", ".join(area.successors)
    if len(area.successors) > 1:
        return note + f", split into {listed}: the code alone cannot tell which"
    if area.successor is None:
        return note + f"; {listed} has the same name but no notice makes it the successor"
    return note + f"; its successor {listed} contradicts the record's other codes"


def is_uuid(value: str) -> bool:
    """An accepted event-id spelling (`streams.rules.event_id`); the SDK applies the same."""
    return canonical_event_id(value) is not None


class Validator:
    """Reference-data and clock checks for records of one event type."""

    def __init__(
        self,
        event_type: str,
        layout: EventLayout | dict[str, Any],
        tables: ReferenceTables,
        future_tolerance_ms: int = DEFAULT_FUTURE_TOLERANCE_MS,
        retention_ms: int | None = None,
    ) -> None:
        """`layout`: the event type's layout (or its raw schema); `retention_ms`: events older
        than this (by occurred_at) are OUTSIDE_RETENTION; None keeps every age (the pure
        transform's default; workers pass the setting)."""
        layout = layout_of(layout)
        self.event_type = event_type
        self.future_tolerance_ms = future_tolerance_ms
        self.retention_ms = retention_ms
        self._agencies = tables.agencies
        self._provinces = tables.provinces
        self._district_province = tables.district_province
        self._subdistricts = tables.subdistricts
        self._village_fields = layout.village_fields
        self._other_province_fields = layout.other_province_fields

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
                    + abolished_note(district)
                )
            if owner != province:
                return Reason.UNKNOWN_DISTRICT, (
                    f"district_code {district!r} lies in province {owner!r}, "
                    f"not in province_code {province!r}"
                )
        for name in self._village_fields:
            village = record.get(name)
            if village is None:
                continue
            subdistrict = village[:6]
            if (  # a 6-character known code and 2 more digits: 8 digits in all
                subdistrict in self._subdistricts
                and village[6:] in VILLAGE_NUMBERS
                and (
                    subdistrict[:2] == province if district is None else subdistrict[:4] == district
                )
            ):
                continue
            return Reason.UNKNOWN_SUBDISTRICT, self._village_detail(
                name, village, province, district
            )
        occurred = record["occurred_at"]
        if occurred > now_ms + self.future_tolerance_ms:
            return Reason.FUTURE_TIMESTAMP, (
                f"occurred_at {iso_millis(occurred)} is {(occurred - now_ms) / 1000:,.0f} s "
                f"after processing time {iso_millis(now_ms)} (tolerance "
                f"{self.future_tolerance_ms / 1000:,.0f} s)"
            )
        if self.retention_ms is not None and occurred < now_ms - self.retention_ms:
            return Reason.OUTSIDE_RETENTION, (
                f"occurred_at {iso_millis(occurred)} is older than the "
                f"{self.retention_ms // DAY_MS:,}-day retention of the events tables "
                "(GOVPULSE_RAW_TTL_DAYS): stored, it would be deleted at once"
            )
        return None

    def _village_detail(self, name: str, village: str, province: str, district: str | None) -> str:
        """Why `village` failed the check in `check`."""
        subdistrict = village[:6]
        if len(village) != 8 or not (village.isascii() and village.isdigit()):
            return (
                f"{name} {shown(village)} is not 8 digits "
                "(6-digit subdistrict code + 2-digit village number)"
            )
        if subdistrict not in self._subdistricts:
            return (
                f"{name} {village!r}: {subdistrict!r} is not a DOPA subdistrict code"
                + abolished_note(subdistrict)
            )
        if district is not None:
            return (
                f"{name} {village!r}: subdistrict {subdistrict!r} lies in district "
                f"{subdistrict[:4]!r}, not in district_code {district!r}"
            )
        return (
            f"{name} {village!r}: subdistrict {subdistrict!r} lies in province "
            f"{subdistrict[:2]!r}, not in province_code {province!r}"
        )
