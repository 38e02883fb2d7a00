"""Cleaning a decoded raw record in place: text, Thai digits and Buddhist Era years.

The rules themselves live in `streams.rules`; this module decides which fields they apply to —
from the schema, never from a list of names — and does it fast: most strings are already clean,
so a cheap check skips them and only dirty ones go through the rules. The check is pinned to
the rules by a property test (`clean_string(s)` equals the rules applied to `s`).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from streams.flat_avro import is_type, nullable_branch
from streams.rules import buddhist_era, text, thai_digits


class Fix(StrEnum):
    """What cleaning repaired, as listed in a clean record's `defects_fixed` (in this order)."""

    THAI_DIGITS = "thai_digits"
    ZERO_WIDTH = "zero_width"
    WHITESPACE = "whitespace"
    UNICODE_NFC = "unicode_nfc"
    BUDDHIST_ERA = "buddhist_era"
    NATIONAL_ID_IN_TEXT = "national_id_in_text"  # a valid ID in a non-PII string was masked


FIX_ORDER = {fix: index for index, fix in enumerate(Fix)}

_THAI_DIGIT = re.compile(f"[{thai_digits.THAI_DIGITS}]")
_DROP_ZERO_WIDTH = str.maketrans(dict.fromkeys(text.ZERO_WIDTH))

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Timestamps below the first BE year cannot be BE: skip the datetime arithmetic for them.
_BE_START_MS = (datetime(buddhist_era.BE_MIN, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(
    milliseconds=1
)


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


def _logical_type(field_type: Any) -> str | None:
    branch = nullable_branch(field_type)
    inner = branch[2] if branch else field_type
    return inner.get("logicalType") if isinstance(inner, dict) else None


class RecordCleaner:
    """Cleans records of one raw schema; the fields each rule touches come from the schema.

    - every string field (alone or nullable): Thai digits → Arabic, then `text.clean_text`;
    - every timestamp-millis field with a Buddhist Era year: shifted back 543 years;
    - every int/long field named `*_year` (e.g. dataset_update.data_year): BE year → CE.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        fields = schema["fields"]
        self.string_fields = tuple(f["name"] for f in fields if is_type(f["type"], "string"))
        self.timestamp_fields = tuple(
            f["name"] for f in fields if _logical_type(f["type"]) == "timestamp-millis"
        )
        self.year_fields = tuple(
            f["name"]
            for f in fields
            if (is_type(f["type"], "int") or is_type(f["type"], "long"))
            and (f["name"] == "year" or f["name"].endswith("_year"))
        )

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
        return fixes


def ordered(fixes: set[Fix]) -> list[str]:
    """Fixes in the fixed `Fix` order, so equal records get equal `defects_fixed`."""
    return sorted(fixes, key=FIX_ORDER.__getitem__) if len(fixes) > 1 else list(fixes)
