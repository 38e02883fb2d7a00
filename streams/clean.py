"""Cleaning a decoded raw record in place: text, Thai digits, Buddhist Era years, legacy codes.

The rules themselves live in `streams.rules`; the fields they apply to come from the event
type's `EventLayout` (`govpulse.schemas.layout`: by type and attribute, never a list of
names); this module applies them fast: most strings are already clean,
so a cheap check skips them and only dirty ones go through the rules. The check is pinned to
the rules by a property test (`clean_string(s)` equals the rules applied to `s`).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from govpulse.schemas.layout import EventLayout, layout_of
from govpulse.schemas.timestamps import epoch_millis
from govpulse.streams.enrich import ReferenceTables, reference_tables
from govpulse.streams.rules import buddhist_era, text, thai_digits


class Fix(StrEnum):
    """What cleaning repaired, as listed in a clean record's `defects_fixed` (in this order)."""

    THAI_DIGITS = "thai_digits"
    ZERO_WIDTH = "zero_width"
    WHITESPACE = "whitespace"
    UNICODE_NFC = "unicode_nfc"
    BUDDHIST_ERA = "buddhist_era"
    NATIONAL_ID_IN_TEXT = "national_id_in_text"  # a valid ID in a non-PII string was masked
    EVENT_ID_SPELLING = "event_id_spelling"  # event_id made the lowercase canonical UUID
    LEGACY_DISTRICT = "legacy_district"  # an abolished district code → its successor
    LEGACY_SUBDISTRICT = "legacy_subdistrict"  # a village_code's abolished subdistrict, ditto


FIX_ORDER = {fix: index for index, fix in enumerate(Fix)}

_THAI_DIGIT = re.compile(f"[{thai_digits.THAI_DIGITS}]")
_DROP_ZERO_WIDTH = str.maketrans(dict.fromkeys(text.ZERO_WIDTH))

# Timestamps below the first BE year cannot be BE: skip the datetime arithmetic for them.
_BE_START_MS = epoch_millis(datetime(buddhist_era.BE_MIN, 1, 1, tzinfo=UTC))


def is_clean(value: str) -> bool:
    """True when cleaning would leave `value` unchanged; C-speed string methods only.

    `str.isprintable` is False for every whitespace character except the space and for every
    zero-width character (all are Unicode Cf), so what remains to check is spaces at the ends
    or doubled, Thai digits and NFC — the last two only for non-ASCII text.
    """
    if not value.isprintable() or "  " in value or value[:1] == " " or value[-1:] == " ":
        return False
    return value.isascii() or (
        _THAI_DIGIT.search(value) is None and unicodedata.is_normalized("NFC", value)
    )


def clean_string(value: str) -> tuple[str, list[Fix]]:
    """`value` with Thai digits made Arabic and `text.clean_text` applied; what that fixed."""
    if is_clean(value):
        return value, []
    fixes = []
    arabic = thai_digits.to_arabic(value)
    if arabic != value:
        fixes.append(Fix.THAI_DIGITS)
    visible = arabic.translate(_DROP_ZERO_WIDTH)
    if visible != arabic:
        fixes.append(Fix.ZERO_WIDTH)
    collapsed = " ".join(visible.split())
    if collapsed != visible:
        fixes.append(Fix.WHITESPACE)
    if not unicodedata.is_normalized("NFC", collapsed):
        fixes.append(Fix.UNICODE_NFC)
    return text.clean_text(arabic), fixes


class RecordCleaner:
    """Cleans records of one raw schema; the fields each rule touches come from its layout.

    - every string field (alone or nullable): Thai digits → Arabic, then `text.clean_text`;
    - every timestamp-millis field with a Buddhist Era year: shifted back 543 years;
    - every int/long field named `*_year` (e.g. dataset_update.data_year): BE year → CE;
    - district_code and every `village_code` holding a code DOPA abolished: replaced by its
      successor, and the record's district/province with it when the successor lies in another
      one (`_repair_district`, `_repair_village`). The successors come from
      `schemas/reference/abolished.json` through `ReferenceTables.legacy_*`.
    """

    def __init__(
        self, layout: EventLayout | dict[str, Any], tables: ReferenceTables | None = None
    ) -> None:
        """`layout`: the event type's layout (or the raw schema to compute it from)."""
        layout = layout_of(layout)
        tables = reference_tables() if tables is None else tables
        self.string_fields = layout.string_fields
        self.timestamp_fields = layout.timestamp_fields
        self.year_fields = layout.year_fields
        self.village_fields = layout.village_fields
        self._legacy_districts = tables.legacy_districts if layout.has_district else {}
        self._legacy_subdistricts = tables.legacy_subdistricts
        self._district_province = tables.district_province

    def clean(self, record: dict[str, Any], changed: set[str]) -> set[Fix]:
        """Clean `record` in place; add the names of changed fields to `changed`; the fixes.

        Fields missing from `record` are skipped, so a clean record (whose personal fields
        were renamed) can be cleaned again — which changes nothing.
        """
        fixes: set[Fix] = set()
        # One check over all strings: a space never joins with its neighbours, so the joined
        # text is clean exactly when every part is (pinned by a property test).
        if is_clean(" ".join(filter(None, map(record.get, self.string_fields)))):
            strings: tuple[str, ...] = ()
        else:
            strings = self.string_fields
        for name in strings:
            value = record.get(name)
            if value is None or is_clean(value):
                continue
            cleaned, found = clean_string(value)
            if cleaned != value:
                record[name] = cleaned
                changed.add(name)
                fixes.update(found)
        for name in self.timestamp_fields:
            millis = record.get(name)
            if millis is not None and millis >= _BE_START_MS:
                shifted = buddhist_era.to_ce_timestamp(millis)
                if shifted != millis:
                    record[name] = shifted
                    changed.add(name)
                    fixes.add(Fix.BUDDHIST_ERA)
        for name in self.year_fields:
            year = record.get(name)
            if year is not None and buddhist_era.is_be_year(year):
                record[name] = buddhist_era.to_ce_year(year)
                changed.add(name)
                fixes.add(Fix.BUDDHIST_ERA)
        # After the strings: a legacy code may have arrived in Thai digits.
        if self._legacy_districts:
            district = record.get("district_code")
            if district in self._legacy_districts:
                self._repair_district(record, district, changed, fixes)
        for name in self.village_fields:
            village = record.get(name)
            if village is not None and village[:6] in self._legacy_subdistricts:
                self._repair_village(record, name, village, changed, fixes)
        return fixes

    def _repair_district(
        self, record: dict[str, Any], district: str, changed: set[str], fixes: set[Fix]
    ) -> None:
        """Replace an abolished district code by the one successor a DOPA notice names.

        `legacy_districts` holds only such codes: a district split into several has no single
        successor (which one the record meant is unknown), and geothai lists most abolished
        districts with none, so those stay UNKNOWN_DISTRICT. When the successor lies in another
        province (Nong Khai's districts that became Bueng Kan in 2011), a province_code that
        is the old province moves with it. A province_code that is neither the old nor the
        new province contradicts the district either way: it is left for validation to reject.
        """
        successor = self._legacy_districts[district]
        new_province = self._district_province[successor]
        province = record.get("province_code")
        if province != district[:2] and province != new_province:
            return
        record["district_code"] = successor
        changed.add("district_code")
        if province != new_province:
            record["province_code"] = new_province
            changed.add("province_code")
        fixes.add(Fix.LEGACY_DISTRICT)

    def _repair_village(
        self,
        record: dict[str, Any],
        name: str,
        village: str,
        changed: set[str],
        fixes: set[Fix],
    ) -> None:
        """Give a village code whose subdistrict DOPA abolished its successor's code.

        The village number is kept: the notices behind `legacy_subdistricts` move a whole
        subdistrict to another district (a new district carved out, a boundary changed), so
        its villages keep their numbers. The record's district_code and province_code move
        with the subdistrict where they are the old ones; any other district or province
        contradicts the code and is left for validation to reject, as is a malformed code.
        """
        old = village[:6]
        successor = self._legacy_subdistricts[old]
        district = record.get("district_code")
        province = record.get("province_code")
        if (
            len(village) != 8
            or (district is not None and district != old[:4] and district != successor[:4])
            or (province != old[:2] and province != successor[:2])
        ):
            return
        record[name] = successor + village[6:]
        changed.add(name)
        if district is not None and district != successor[:4]:
            record["district_code"] = successor[:4]
            changed.add("district_code")
        if province != successor[:2]:
            record["province_code"] = successor[:2]
            changed.add("province_code")
        fixes.add(Fix.LEGACY_SUBDISTRICT)


def ordered(fixes: set[Fix]) -> list[Fix]:
    """Fixes in the fixed `Fix` order, so equal records get equal `defects_fixed`."""
    return sorted(fixes, key=FIX_ORDER.__getitem__) if len(fixes) > 1 else list(fixes)
