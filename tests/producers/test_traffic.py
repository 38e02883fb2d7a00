"""The traffic generator: realistic, reproducible, and honest about every defect it injects."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from fastavro import parse_schema
from fastavro.validation import validate

from govpulse.producers.defects import Defect, Outcome
from govpulse.producers.traffic import NATIONAL_ID_FIELD, TEXT_FIELD, TrafficGenerator
from govpulse.schemas import catalog
from govpulse.schemas.reference import agencies, districts, provinces, subdistricts
from govpulse.streams.rules import national_id, text, thai_digits

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)  # 10:00 in Bangkok
PARSED = {t: parse_schema(catalog.raw_schema(t)) for t in catalog.EVENT_TYPES}


def _events(n: int, **kwargs) -> list[tuple[str, dict, str | None]]:
    generator = TrafficGenerator(seed=7, clock=lambda: NOW, **kwargs)
    return [generator.next_event() for _ in range(n)]


def _with_envelope(event_type: str, record: dict) -> dict:
    return {"produced_at": NOW, **record}


def test_every_generated_record_is_valid_for_its_latest_raw_schema():
    for event_type, record, _ in _events(3_000, dirty_share=0.5):
        assert validate(_with_envelope(event_type, record), PARSED[event_type], raise_errors=True)


def test_clean_records_pass_every_check_the_stream_processor_makes():
    for event_type, record, defect in _events(3_000, dirty_share=0.0):
        assert defect is None
        assert record["agency_code"] in agencies()
        assert record["province_code"] in provinces()
        if record["district_code"]:
            assert districts()[record["district_code"]].province_code == record["province_code"]
        if "village_code" in record:
            village, district = record["village_code"], record["district_code"]
            assert re.fullmatch("[0-9]{8}", village) and village[:2] == record["province_code"]
            assert village[:6] in subdistricts()[district or village[:4]]
        assert record["occurred_at"] <= NOW
        for name, kind in catalog.pii_fields(catalog.raw_schema(event_type)).items():
            if kind == "national_id" and record.get(name):
                assert national_id.is_valid(record[name])
        assert not text.has_zero_width(record[TEXT_FIELD[event_type]])


def test_the_same_seed_gives_the_same_traffic():
    first, second = _events(200, dirty_share=0.3), _events(200, dirty_share=0.3)
    assert first == second


def test_the_dirty_share_is_honoured_and_every_defect_kind_occurs():
    events = _events(20_000, dirty_share=0.2)
    defects = Counter(defect for _, _, defect in events if defect)
    assert 0.18 < sum(defects.values()) / len(events) < 0.22
    assert set(defects) == {d.value for d in Defect}


def test_a_duplicate_resends_an_earlier_clean_bound_record_with_the_same_event_id():
    events = _events(5_000, dirty_share=0.3)
    first_seen: dict[str, str | None] = {}
    for _, record, defect in events:
        if defect == Defect.DUPLICATE:
            assert record["event_id"] in first_seen
            earlier = first_seen[record["event_id"]]
            assert earlier is None or Defect(earlier).outcome is Outcome.CLEAN
        else:
            assert record["event_id"] not in first_seen
            first_seen[record["event_id"]] = defect


@pytest.mark.parametrize("defect", list(Defect))
def test_each_defect_leaves_the_trace_its_name_promises(defect):
    found = [(t, r) for t, r, d in _events(8_000, dirty_share=1.0) if d == defect.value]
    assert found
    for event_type, record in found:
        if defect is Defect.THAI_DIGITS:
            assert thai_digits.has_thai_digits(record["province_code"])
            assert thai_digits.to_arabic(record["province_code"]) in provinces()
        elif defect is Defect.BUDDHIST_ERA:
            assert record["occurred_at"].year == NOW.year + 543
        elif defect is Defect.ZERO_WIDTH:
            assert text.has_zero_width(record[TEXT_FIELD[event_type]])
        elif defect is Defect.LATE:
            assert record["occurred_at"] < NOW - timedelta(hours=1)
        elif defect is Defect.FUTURE:
            assert record["occurred_at"] > NOW + timedelta(hours=1)
        elif defect is Defect.UNKNOWN_PROVINCE:
            assert record["province_code"] not in provinces()
            assert re.fullmatch("[0-9]{2}", record["province_code"])
        elif defect is Defect.INVALID_NATIONAL_ID:
            value = record[NATIONAL_ID_FIELD[event_type]]
            assert re.fullmatch("[0-9]{13}", value) and not national_id.is_valid(value)


def test_invalid_national_ids_only_go_to_types_that_carry_one():
    for event_type, _, defect in _events(5_000, dirty_share=1.0):
        if defect == Defect.INVALID_NATIONAL_ID:
            assert event_type in NATIONAL_ID_FIELD
    assert set(NATIONAL_ID_FIELD) == {"service_request", "complaint", "digital_center_activity"}


def test_office_hours_are_busier_than_the_night_in_bangkok():
    def factor(hour_utc: int) -> float:
        at = NOW.replace(hour=hour_utc)
        return TrafficGenerator(clock=lambda: at).rhythm_factor()

    assert factor(3) > 1.3  # 10:00 in Bangkok
    assert factor(20) < 0.3  # 03:00 in Bangkok
    assert TrafficGenerator(daily_rhythm=False).rhythm_factor() == 1.0


def test_bad_arguments_are_refused_with_what_was_expected():
    with pytest.raises(ValueError, match="dirty_share"):
        TrafficGenerator(dirty_share=1.5)
    with pytest.raises(ValueError, match="parking_ticket"):
        TrafficGenerator(event_types=["parking_ticket"])
