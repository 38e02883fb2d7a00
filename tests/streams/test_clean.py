"""Cleaning decoded records: the fast checks agree with the rules in govpulse.streams.rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from govpulse.schemas import catalog
from govpulse.streams.clean import Fix, RecordCleaner, clean_string, is_clean, ordered
from govpulse.streams.rules import text, thai_digits

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Thai letters and vowels, both digit sets, every kind of whitespace and zero-width character,
# a decomposed é and combining marks: everything the rules treat specially.
PIECES = (
    list("กขงจนมยรวสอะาำิีุูเแโไ่้๊็์ABCxyz09-/ ")
    + list(thai_digits.THAI_DIGITS + text.ZERO_WIDTH)
    + ["\t", "\n", "\r", "\x0b", "\x1c", "\x85", "\u00a0", "\u2003", "\u3000", "\u2028"]
    + ["e\u0301", "\u0301", "\u0e4d\u0e32", "\x00", "\x7f", "\u200e"]
)
tricky = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)


def millis(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


@given(tricky)
def test_clean_string_applies_exactly_the_rules(value):
    assert clean_string(value)[0] == text.clean_text(thai_digits.to_arabic(value))


@given(tricky)
def test_a_string_called_clean_is_left_unchanged_by_the_rules(value):
    if is_clean(value):
        assert text.clean_text(thai_digits.to_arabic(value)) == value
        assert clean_string(value) == (value, [])


@given(tricky)
def test_cleaning_twice_is_cleaning_once_and_reports_nothing_new(value):
    once = clean_string(value)[0]
    assert clean_string(once) == (once, [])


@given(st.lists(tricky, max_size=6))
def test_joined_strings_are_clean_only_when_every_part_is(parts):
    if is_clean(" ".join(filter(None, parts))):
        assert all(is_clean(part) for part in parts)


def test_each_repair_is_named():
    assert clean_string("๗๖") == ("76", [Fix.THAI_DIGITS])
    assert clean_string("ไฟ\u200bดับ") == ("ไฟดับ", [Fix.ZERO_WIDTH])
    assert clean_string(" a  b ") == ("a b", [Fix.WHITESPACE])
    assert clean_string("e\u0301") == ("é", [Fix.UNICODE_NFC])


def test_sara_am_is_kept_as_written():
    assert clean_string("กำแพงเพชร") == ("กำแพงเพชร", [])


def test_cleaner_finds_its_fields_in_the_schema():
    service = RecordCleaner(catalog.raw_schema("service_request"))
    assert {"event_id", "province_code", "district_code", "citizen_id"} <= set(
        service.string_fields
    )
    assert "status" not in service.string_fields  # an enum
    assert service.timestamp_fields == ("occurred_at", "produced_at")
    usage = RecordCleaner(catalog.raw_schema("net_pracharat_usage"))
    assert usage.timestamp_fields == ("occurred_at", "produced_at", "interval_start")
    assert RecordCleaner(catalog.raw_schema("dataset_update")).year_fields == ("data_year",)


def test_be_timestamps_shift_back_and_ce_ones_stay():
    cleaner = RecordCleaner(catalog.raw_schema("net_pracharat_usage"))
    at = datetime(2024, 2, 29, 10, 0, tzinfo=UTC)
    record = {
        "occurred_at": millis(at.replace(year=2567, day=28)),
        "produced_at": millis(at),
        "interval_start": millis(at.replace(year=2567, day=28)),
    }
    changed: set[str] = set()
    assert cleaner.clean(record, changed) == {Fix.BUDDHIST_ERA}
    assert record["occurred_at"] == record["interval_start"] == millis(at.replace(day=28))
    assert record["produced_at"] == millis(at)
    assert changed == {"occurred_at", "interval_start"}


def test_fixes_are_listed_in_enum_order():
    assert ordered({Fix.BUDDHIST_ERA, Fix.THAI_DIGITS, Fix.ZERO_WIDTH}) == [
        Fix.THAI_DIGITS,
        Fix.ZERO_WIDTH,
        Fix.BUDDHIST_ERA,
    ]
