"""Legacy geography: abolished DOPA codes repaired by cleaning, village codes validated.

The cases are real DOPA history (geothai's abolished areas): in 2011 eight districts of Nong
Khai (43xx) became Bueng Kan province (38xx); in 2015 subdistrict Tha Faek moved from Tha Pla
(5303) to Nam Pat (5304) in the same province.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from fastavro import parse_schema

from govpulse.schemas import catalog, reference
from govpulse.schemas.flat_avro import strip_logical_types
from govpulse.schemas.wire_format import decode, encode
from govpulse.streams.clean import Fix, RecordCleaner
from govpulse.streams.enrich import reference_tables
from govpulse.streams.reasons import Reason
from govpulse.streams.rules.pseudonymise import PseudonymKey
from govpulse.streams.transform import Cleaned, Rejected, Transformer
from tests.support import examples

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
AT = datetime(2024, 6, 14, 3, 30, tzinfo=UTC)  # the examples' occurred_at
NOW_MS = (AT + timedelta(minutes=1) - EPOCH) // timedelta(milliseconds=1)
KEY = PseudonymKey("k-test", b"t" * 32)
TYPES = ("service_request", "net_pracharat_usage")

# A registry in a dict: the latest raw schema and the clean schema of each type.
SCHEMAS: dict[int, Any] = {}
RAW_ID: dict[str, int] = {}
CLEAN_ID: dict[str, int] = {}
for _type in TYPES:
    RAW_ID[_type] = len(SCHEMAS) + 1
    SCHEMAS[RAW_ID[_type]] = parse_schema(catalog.raw_schema(_type))
    CLEAN_ID[_type] = len(SCHEMAS) + 1
    SCHEMAS[CLEAN_ID[_type]] = parse_schema(catalog.clean_schema(_type))
TRANSFORMERS = {t: Transformer(t, SCHEMAS.__getitem__, CLEAN_ID[t], KEY) for t in TYPES}
CLEAN_PLAIN = {t: parse_schema(strip_logical_types(catalog.clean_schema(t))) for t in TYPES}
TO_THAI = str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙")


def process(event_type: str, **changes: Any) -> Cleaned | Rejected:
    record = {**examples.example(event_type), **changes}
    payload = encode(RAW_ID[event_type], SCHEMAS[RAW_ID[event_type]], record)
    return TRANSFORMERS[event_type].process(payload, 0, 1, NOW_MS)


def cleaned(event_type: str, **changes: Any) -> tuple[Cleaned, dict[str, Any]]:
    """The clean result and its record as decoded from the clean bytes."""
    result = process(event_type, **changes)
    assert isinstance(result, Cleaned), result
    return result, decode(result.value, CLEAN_PLAIN[event_type])


def rejected(event_type: str, **changes: Any) -> Rejected:
    result = process(event_type, **changes)
    assert isinstance(result, Rejected), result
    return result


def usage(**changes: Any) -> Cleaned | Rejected:
    return process("net_pracharat_usage", **changes)


# -- abolished districts ------------------------------------------------------------------------
def test_abolished_district_maps_to_its_successor_in_another_province():
    result, record = cleaned("service_request", province_code="43", district_code="4303")
    assert record["district_code"] == "3801" and record["province_code"] == "38"
    assert record["district_name_en"] == "Mueang Bueng Kan"
    assert record["district_name_th"] == reference.districts()["3801"].name_th
    assert record["province_name_en"] == "Bueng Kan"
    assert record["region_code"] == reference.region_of("38").code
    assert result.defects_fixed == ["legacy_district"] == record["defects_fixed"]


def test_abolished_district_already_given_its_new_province_keeps_it():
    result, record = cleaned("service_request", province_code="38", district_code="4304")
    assert (record["province_code"], record["district_code"]) == ("38", "3802")
    assert result.defects_fixed == ["legacy_district"]


def test_abolished_district_maps_to_its_successor_in_the_same_province():
    # geothai lists no such district today (its successors within a province are notices
    # about subdistricts), so the successor table is made up: 1081 Ban Thawai → 1003.
    tables = replace(reference_tables(), legacy_districts={"1081": "1003"})
    cleaner = RecordCleaner(catalog.raw_schema("service_request"), tables)
    record = {"province_code": "10", "district_code": "1081", "occurred_at": 0}
    changed: set[str] = set()
    assert cleaner.clean(record, changed) == {Fix.LEGACY_DISTRICT}
    assert record == {"province_code": "10", "district_code": "1003", "occurred_at": 0}
    assert changed == {"district_code"}


def test_abolished_district_repair_is_recorded_after_the_thai_digit_fix():
    digits = {"province_code": "43".translate(TO_THAI), "district_code": "4312".translate(TO_THAI)}
    result, record = cleaned("service_request", **digits)
    assert (record["province_code"], record["district_code"]) == ("38", "3807")
    assert result.defects_fixed == ["thai_digits", "legacy_district"]


def test_abolished_district_in_a_third_province_is_left_for_validation():
    result = rejected("service_request", province_code="50", district_code="4303")
    assert result.reason is Reason.UNKNOWN_DISTRICT
    assert "'4303'" in result.detail and "abolished it on 2011-03-31" in result.detail


def test_abolished_district_without_a_successor_stays_unknown_and_says_so():
    result = rejected("service_request", province_code="25", district_code="2504")
    assert result.reason is Reason.UNKNOWN_DISTRICT
    assert result.detail == (
        "district_code '2504' is not a DOPA district code; "
        "DOPA abolished it on 2006-01-01 and names no successor"
    )


def test_only_single_successors_from_a_notice_are_repaired():
    tables = reference_tables()
    for code, area in reference.abolished().items():
        legacy = tables.legacy_districts if area.level == "district" else tables.legacy_subdistricts
        single = area.basis == "notice" and len(area.successors) == 1
        assert legacy.get(code) == (area.successors[0] if single else None), code
    assert "104701" not in tables.legacy_subdistricts  # split in two
    assert "100205" not in tables.legacy_subdistricts  # a same-name match only


# -- village codes --------------------------------------------------------------------------
def test_a_valid_village_code_passes():
    # Guards against over-rejection; the only new test that also passed before the check.
    result, record = cleaned("net_pracharat_usage", village_code="57010305")
    assert record["village_code"] == "57010305" and result.defects_fixed == []


def test_a_village_code_whose_subdistrict_does_not_exist_is_an_unknown_subdistrict():
    for village in ("99999999", "57019905"):
        result = usage(village_code=village)
        assert isinstance(result, Rejected) and result.reason is Reason.UNKNOWN_SUBDISTRICT
        assert f"'{village[:6]}' is not a DOPA subdistrict code" in result.detail


def test_a_village_code_that_is_not_eight_digits_is_an_unknown_subdistrict():
    for village in ("5701030", "570103051", "570103ab", ""):
        result = usage(village_code=village)
        assert isinstance(result, Rejected) and result.reason is Reason.UNKNOWN_SUBDISTRICT
        assert "is not 8 digits" in result.detail


def test_a_village_in_a_subdistrict_of_another_district_is_an_unknown_subdistrict():
    result = usage(province_code="57", district_code="5701", village_code="57020201")
    assert isinstance(result, Rejected) and result.reason is Reason.UNKNOWN_SUBDISTRICT
    assert result.detail == (
        "village_code '57020201': subdistrict '570202' lies in district '5702', "
        "not in district_code '5701'"
    )


def test_a_village_of_another_province_is_an_unknown_subdistrict_when_no_district_is_given():
    result = usage(province_code="57", district_code=None, village_code="50010101")
    assert isinstance(result, Rejected) and result.reason is Reason.UNKNOWN_SUBDISTRICT
    assert "lies in province '50', not in province_code '57'" in result.detail
    cleaned("net_pracharat_usage", province_code="50", district_code=None, village_code="50010101")


def test_a_village_is_checked_after_the_district_and_before_the_clock():
    late = AT + timedelta(days=1)
    assert usage(district_code="9999", village_code="99999999").reason is (Reason.UNKNOWN_DISTRICT)
    assert usage(village_code="99999999", occurred_at=late).reason is Reason.UNKNOWN_SUBDISTRICT


# -- abolished subdistricts -----------------------------------------------------------------
def test_abolished_subdistrict_moves_the_village_and_its_district():
    result, record = cleaned(
        "net_pracharat_usage", province_code="53", district_code="5303", village_code="53030605"
    )
    assert record["village_code"] == "53040705"  # village number 05 kept
    assert (record["province_code"], record["district_code"]) == ("53", "5304")
    assert record["district_name_en"] == "Nam Pat"
    assert result.defects_fixed == ["legacy_subdistrict"]


def test_abolished_district_and_subdistrict_of_bueng_kan_are_both_repaired():
    result, record = cleaned(
        "net_pracharat_usage", province_code="43", district_code="4303", village_code="43030112"
    )
    assert record["village_code"] == "38010112"
    assert (record["province_code"], record["district_code"]) == ("38", "3801")
    assert record["province_name_en"] == "Bueng Kan"
    assert result.defects_fixed == ["legacy_district", "legacy_subdistrict"]


def test_abolished_subdistrict_without_a_notice_is_an_unknown_subdistrict():
    result = usage(province_code="10", district_code="1002", village_code="10020501")
    assert isinstance(result, Rejected) and result.reason is Reason.UNKNOWN_SUBDISTRICT
    assert "102901 has the same name but no notice" in result.detail
    split = usage(province_code="10", district_code="1047", village_code="10470101")
    assert isinstance(split, Rejected) and "split into 104702, 104703" in split.detail


def test_cleaning_a_repaired_record_again_changes_nothing():
    cleaner = RecordCleaner(catalog.raw_schema("net_pracharat_usage"))
    record = {"province_code": "43", "district_code": "4303", "village_code": "43030112"}
    assert cleaner.clean(record, set()) == {Fix.LEGACY_DISTRICT, Fix.LEGACY_SUBDISTRICT}
    changed: set[str] = set()
    assert cleaner.clean(record, changed) == set() and changed == set()
