"""The stream processor's pure transform: raw payload in, clean record or reason out."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from govpulse.schemas import catalog, reference
from govpulse.schemas.wire_format import decode, encode, header, schema_id_of
from govpulse.schemas.writer_schemas import UnusableSchema
from govpulse.streams.pii import ID_MASK
from govpulse.streams.reasons import Reason
from govpulse.streams.rules import national_id, thai_digits
from govpulse.streams.rules.pseudonymise import PseudonymKey, pseudonym
from govpulse.streams.transform import Cleaned, Rejected, SchemaLookupFailed, Transformer
from tests.support import examples
from tests.support.strategies import NUMBERS_AND_BOOLEANS
from tests.support.transform import (
    ARABIC,
    AT,
    CLEAN_ID,
    CLEAN_PLAIN,
    CLEANERS,
    KEY,
    NOW_MS,
    OTHER_KEY,
    RAW_ID,
    SCHEMAS,
    TO_THAI,
    TRANSFORMERS,
    TYPES,
    VALID_ID,
    cleaned,
    example,
    payload,
    rejected,
    transformer,
)


def strings_of(record: dict[str, Any]) -> list[str]:
    return [value for value in record.values() if isinstance(value, str)]


def thirteen_digit_runs(text: str) -> list[str]:
    return re.findall(r"(?<![0-9])[0-9]{13}(?![0-9])", text)


# -- strategies ----------------------------------------------------------------------------------
PROVINCES = sorted(reference.provinces())
AGENCIES = sorted(reference.agencies())
DISTRICTS_OF: dict[str, list[str]] = {}
for _district in reference.districts().values():
    DISTRICTS_OF.setdefault(_district.province_code, []).append(_district.code)
SUBDISTRICTS_OF: dict[str, list[str]] = {}  # district and province → subdistrict codes
for _code, _subdistricts in reference.subdistricts().items():
    SUBDISTRICTS_OF[_code] = list(_subdistricts)
    SUBDISTRICTS_OF.setdefault(_code[:2], []).extend(_subdistricts)

dirty_text = st.text(
    alphabet=st.sampled_from(list("กขคงจนมยรลวสหอะาำิีุูเแโไ่้๊๋็์ ABCxyz-/."))
    | st.sampled_from(
        list(thai_digits.THAI_DIGITS + ARABIC + "\u200b\u200c\u200d\u2060\ufeff\u00ad \t\n\u00a0")
    ),
    max_size=40,
)
valid_ids = st.text(alphabet=ARABIC, min_size=12, max_size=12).map(
    lambda first: first + str(national_id.check_digit(first))
)
moments = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2024, 6, 14)).map(
    lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000, tzinfo=UTC)
)


def thai_form(digits: str) -> str:
    return digits.translate(TO_THAI)


def be_form(moment: datetime) -> datetime:
    try:
        return moment.replace(year=moment.year + 543)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + 543, day=28)


def _value_strategy(field: dict[str, Any]) -> st.SearchStrategy[Any]:
    field_type = field["type"]
    if isinstance(field_type, list):
        other = next(t for t in field_type if t != "null")
        return st.none() | _value_strategy({**field, "type": other})
    if isinstance(field_type, dict):
        logical = field_type.get("logicalType")
        if logical == "timestamp-millis":
            return moments | moments.map(be_form)
        if logical == "decimal":
            return st.decimals(min_value=-(10**9), max_value=10**9, places=2)
        if field_type["type"] == "enum":
            return st.sampled_from(field_type["symbols"])
        return _value_strategy({**field, "type": field_type["type"]})
    return {
        "string": dirty_text,
        **NUMBERS_AND_BOOLEANS,
    }[field_type]


@st.composite
def clean_bound(draw: st.DrawFn, event_type: str) -> dict[str, Any]:
    """A raw record that must reach clean.<type>: valid codes and IDs, dirty text allowed."""
    schema = catalog.raw_schema(event_type)
    record = {f["name"]: draw(_value_strategy(f)) for f in schema["fields"]}
    province = draw(st.sampled_from(PROVINCES))
    district = draw(st.none() | st.sampled_from(DISTRICTS_OF[province]))
    record.update(
        event_id=str(draw(st.uuids())),
        event_type=event_type,
        agency_code=draw(st.sampled_from(AGENCIES)),
        province_code=draw(st.sampled_from([province, thai_form(province)])),
        district_code=district and draw(st.sampled_from([district, thai_form(district)])),
    )
    if "buyer_province_code" in record:
        record["buyer_province_code"] = draw(st.none() | st.sampled_from(PROVINCES))
    if "village_code" in record:
        subdistrict = draw(st.sampled_from(SUBDISTRICTS_OF[district or province]))
        village = subdistrict + draw(st.text(alphabet=ARABIC, min_size=2, max_size=2))
        record["village_code"] = draw(st.sampled_from([village, thai_form(village)]))
    for name, kind in catalog.pii_fields(schema).items():
        if kind == "national_id":
            value = draw(st.none() | valid_ids)
            if value is not None and draw(st.booleans()):
                value = thai_form(value)
            record[name] = value
        else:
            record[name] = draw(st.none() | st.text(alphabet=ARABIC + "+- ", max_size=15))
    return record


type_and_record = st.sampled_from(TYPES).flatmap(
    lambda event_type: st.tuples(st.just(event_type), clean_bound(event_type))
)


# -- round trips ---------------------------------------------------------------------------------
@pytest.mark.parametrize("event_type", TYPES)
def test_every_example_becomes_a_record_the_clean_schema_decodes(event_type):
    result = cleaned(event_type, examples.example(event_type))
    assert schema_id_of(result.value) == CLEAN_ID[event_type]
    logical = decode(result.value, SCHEMAS[CLEAN_ID[event_type]])
    assert logical["occurred_at"] == AT
    assert logical["processed_at"] == AT + timedelta(minutes=1)
    assert (logical["source_partition"], logical["source_offset"]) == (1, 7)
    assert decode(result.value, CLEAN_PLAIN[event_type]) == result.record
    assert set(result.record) == {f["name"] for f in catalog.clean_schema(event_type)["fields"]}
    assert result.event_id == examples.example(event_type)["event_id"]
    assert result.defects_fixed == []


def test_service_request_example_is_enriched_from_reference_data():
    record = cleaned("service_request", examples.example("service_request")).record
    assert record["agency_name_en"] == "Department of Provincial Administration"
    assert (record["ministry_code"], record["ministry_name_en"]) == ("MOI", "Ministry of Interior")
    assert (record["province_name_th"], record["province_name_en"]) == ("เพชรบุรี", "Phetchaburi")
    assert record["district_name_en"] == "Mueang Phetchaburi"
    assert (record["region_code"], record["region_name_en"]) == ("W", "Western")
    assert record["fee_thb"] == b"\x27\x10"  # Decimal 100.00 as Avro holds it: 10000 unscaled


def test_a_record_without_district_gets_null_district_names():
    record = cleaned("dataset_update", examples.example("dataset_update")).record
    assert record["district_name_th"] is None and record["district_name_en"] is None


@pytest.mark.parametrize("event_type", TYPES)
def test_v1_payload_cleans_into_the_latest_shape(event_type):
    old = cleaned(event_type, examples.example(event_type), version=1)
    new = cleaned(event_type, examples.example(event_type))
    added = {f["name"] for f in catalog.raw_schema(event_type)["fields"]} - {
        f["name"] for f in catalog.raw_schema(event_type, 1)["fields"]
    }
    assert added and all(old.record[name] is None for name in added)
    assert {k: v for k, v in old.record.items() if k not in added} == {
        k: v for k, v in new.record.items() if k not in added
    }
    assert decode(old.value, CLEAN_PLAIN[event_type]) == old.record


def test_a_newer_writer_with_an_extra_field_is_read_through_fastavro_without_it():
    newer = catalog.raw_schema("complaint")
    newer["fields"].append({"name": "mood", "type": "string", "default": ""})
    schemas = {**SCHEMAS, 900: parse_schema(newer)}
    engine = Transformer("complaint", schemas.__getitem__, CLEAN_ID["complaint"], KEY)
    value = encode(900, schemas[900], {**examples.example("complaint"), "mood": "grumpy"})
    result = engine.process(value, 1, 7, NOW_MS)
    assert isinstance(result, Cleaned)
    assert "mood" not in result.record
    assert result.record == {**cleaned("complaint", examples.example("complaint")).record}


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(type_and_record)
def test_copied_and_encoded_fields_give_the_bytes_fastavro_writes(case):
    event_type, record = case
    for version in catalog.versions(event_type):
        result = cleaned(event_type, record, version=version)
        expected = io.BytesIO()
        schemaless_writer(expected, CLEAN_PLAIN[event_type], result.record)
        assert result.value == header(CLEAN_ID[event_type]) + expected.getvalue()


# -- cleaning --------------------------------------------------------------------------------
def test_be_year_2567_timestamp_becomes_2024():
    result = cleaned("service_request", example(occurred_at=AT.replace(year=2567)))
    assert decode(result.value, SCHEMAS[CLEAN_ID["service_request"]])["occurred_at"] == AT
    assert result.defects_fixed == ["buddhist_era"]


def test_be_data_year_2567_becomes_2024():
    result = cleaned("dataset_update", example("dataset_update", data_year=2567))
    assert result.record["data_year"] == 2024
    assert result.defects_fixed == ["buddhist_era"]


def test_thai_digit_province_and_district_become_arabic_and_valid():
    result = cleaned("service_request", example(province_code="๗๖", district_code="๗๖๐๑"))
    assert (result.record["province_code"], result.record["district_code"]) == ("76", "7601")
    assert result.defects_fixed == ["thai_digits"]


def test_zero_width_characters_leave_the_text():
    result = cleaned("complaint", example("complaint", subject="ไฟ\u200bดับ \u200d"))
    assert result.record["subject"] == "ไฟดับ"
    assert result.defects_fixed == ["zero_width", "whitespace"]


def test_defects_fixed_lists_repairs_in_one_fixed_order():
    record = example(
        occurred_at=AT.replace(year=2567), service_name="ต่อ\u200bอายุ", reference_no="๒๕๖๗/๐๐๔๑"
    )
    assert cleaned("service_request", record).defects_fixed == [
        "thai_digits",
        "zero_width",
        "buddhist_era",
    ]


@given(type_and_record)
def test_cleaning_a_clean_record_again_changes_nothing(case):
    event_type, record = case
    result = cleaned(event_type, record)
    again, changed = dict(result.record), set()
    assert CLEANERS[event_type].clean(again, changed) == set()
    assert again == result.record and changed == set()


@given(st.sampled_from(PROVINCES), valid_ids)
def test_thai_and_arabic_digit_forms_give_the_same_clean_record(province, citizen_id):
    district = DISTRICTS_OF[province][0]
    arabic = example(province_code=province, district_code=district, citizen_id=citizen_id)
    thai = example(
        province_code=thai_form(province),
        district_code=thai_form(district),
        citizen_id=thai_form(citizen_id),
    )
    one, other = cleaned("service_request", arabic), cleaned("service_request", thai)
    assert {**one.record, "defects_fixed": None} == {**other.record, "defects_fixed": None}
    assert other.defects_fixed == ["thai_digits"]


def test_late_timestamps_are_accepted():
    cleaned("service_request", example(occurred_at=AT - timedelta(days=3)))


# -- personal data ---------------------------------------------------------------------------
@given(valid_ids)
def test_valid_national_ids_pass_and_become_their_pseudonym(citizen_id):
    record = cleaned("service_request", example(citizen_id=citizen_id)).record
    assert record["citizen_id_pseudonym"] == pseudonym(KEY, citizen_id)
    assert "citizen_id" not in record and record["pseudonym_key_id"] == KEY.key_id


@given(valid_ids, st.integers(1, 9))
def test_a_corrupted_check_digit_is_rejected_as_invalid_national_id(citizen_id, delta):
    corrupted = citizen_id[:12] + str((int(citizen_id[12]) + delta) % 10)
    result = rejected("service_request", example(citizen_id=corrupted))
    assert result.reason is Reason.INVALID_NATIONAL_ID
    assert corrupted not in result.detail


def test_separators_in_a_national_id_are_allowed():
    record = cleaned("service_request", example(citizen_id="1-1017-00203-45-0")).record
    assert record["citizen_id_pseudonym"] == pseudonym(KEY, VALID_ID)


def test_phone_numbers_in_any_notation_give_one_pseudonym():
    forms = ["0812345678", "081-234-5678", "+66 81 234 5678", "๐๘๑๒๓๔๕๖๗๘"]
    pseudonyms = {
        cleaned("service_request", example(applicant_phone=f)).record["applicant_phone_pseudonym"]
        for f in forms
    }
    assert pseudonyms == {pseudonym(KEY, "0812345678")}


SAME_KEY_AGAIN = transformer("service_request", PseudonymKey(KEY.key_id, KEY.secret))
UNDER_OTHER_KEY = transformer("service_request", OTHER_KEY)


@given(valid_ids)
def test_pseudonyms_are_stable_per_key_and_differ_across_keys(citizen_id):
    value = payload("service_request", example(citizen_id=citizen_id))
    first, again, other = (
        engine.process(value, 0, 0, NOW_MS).record["citizen_id_pseudonym"]
        for engine in (TRANSFORMERS["service_request"], SAME_KEY_AGAIN, UNDER_OTHER_KEY)
    )
    assert first == again != other


def test_key_id_is_null_when_the_record_holds_no_personal_data():
    record = cleaned("complaint", example("complaint", complainant_phone=None)).record
    assert record["pseudonym_key_id"] is None
    assert record["complainant_id_pseudonym"] is None


def test_a_valid_id_written_into_free_text_is_masked():
    result = cleaned("complaint", example("complaint", subject=f"ผู้ร้อง {VALID_ID} แจ้งว่า"))
    assert result.record["subject"] == f"ผู้ร้อง {ID_MASK} แจ้งว่า"
    assert "national_id_in_text" in result.defects_fixed


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(type_and_record, valid_ids, st.booleans())
def test_no_checksum_valid_thirteen_digit_run_reaches_a_clean_value(case, leaked, thai):
    event_type, record = case
    text_field = next(
        f["name"]
        for f in catalog.raw_schema(event_type)["fields"][9:]
        if f["type"] == "string" and "pii" not in f
    )
    record[text_field] = f"{record[text_field]} {thai_form(leaked) if thai else leaked}"
    result = cleaned(event_type, record)
    for value in strings_of(decode(result.value, CLEAN_PLAIN[event_type])):
        assert not [run for run in thirteen_digit_runs(value) if national_id.is_valid(run)]
    for name, kind in catalog.pii_fields(catalog.raw_schema(event_type)).items():
        if kind == "national_id" and record[name]:
            assert thai_digits.to_arabic(record[name]).encode() not in result.value


# -- one example per reason the transform reports (TOO_LARGE is the router's: see streams.batch)
REASON_CASES = {
    Reason.UNDECODABLE: lambda: b"\x00\x00\x00",
    Reason.UNKNOWN_SCHEMA: lambda: header(999) + payload("complaint", example("complaint"))[5:],
    Reason.INVALID_VALUE: lambda: payload("complaint", example("complaint", event_type="x")),
    Reason.UNKNOWN_AGENCY: lambda: payload("complaint", example("complaint", agency_code="NOPE")),
    Reason.UNKNOWN_PROVINCE: lambda: payload("complaint", example("complaint", province_code="99")),
    Reason.UNKNOWN_DISTRICT: lambda: payload(
        "complaint", example("complaint", district_code="1099")
    ),
    Reason.UNKNOWN_SUBDISTRICT: lambda: payload(
        "net_pracharat_usage", example("net_pracharat_usage", village_code="57019901")
    ),
    Reason.FUTURE_TIMESTAMP: lambda: payload(
        "complaint", example("complaint", occurred_at=AT + timedelta(minutes=7))
    ),
    Reason.OUTSIDE_RETENTION: lambda: payload(
        "complaint", example("complaint", occurred_at=AT - timedelta(days=401))
    ),
    Reason.INVALID_NATIONAL_ID: lambda: payload(
        "complaint", example("complaint", complainant_id="1101700203451")
    ),
}
# the pure transform keeps every age unless given the workers' retention (400 days default)
KEEPING_400_DAYS = transformer("complaint", retention_ms=400 * 24 * 3600 * 1000)


def test_every_reason_has_an_example():
    assert set(REASON_CASES) == set(Reason) - {Reason.TOO_LARGE}


REASON_TYPE = {Reason.UNKNOWN_SUBDISTRICT: "net_pracharat_usage"}  # else complaint


@pytest.mark.parametrize("reason", list(REASON_CASES))
def test_each_reason_is_reported_with_a_detail(reason):
    event_type = REASON_TYPE.get(reason, "complaint")
    worker = KEEPING_400_DAYS if reason is Reason.OUTSIDE_RETENTION else TRANSFORMERS[event_type]
    result = worker.process(REASON_CASES[reason](), 0, 0, NOW_MS)
    assert isinstance(result, Rejected)
    assert result.reason is reason and result.detail
    decodable = reason not in (Reason.UNDECODABLE, Reason.UNKNOWN_SCHEMA)
    assert (result.event_id == example(event_type)["event_id"]) is decodable


def test_unknown_province_detail_names_the_code():
    result = rejected("complaint", example("complaint", province_code="99", district_code=None))
    assert result.detail == "province_code '99' is not a DOPA province code"


def test_a_buyer_province_outside_dopa_is_an_unknown_province():
    record = example("digital_center_activity", buyer_province_code="00")
    assert rejected("digital_center_activity", record).reason is Reason.UNKNOWN_PROVINCE


def test_a_district_of_another_province_is_an_unknown_district():
    result = rejected("service_request", example(province_code="76", district_code="1001"))
    assert result.reason is Reason.UNKNOWN_DISTRICT
    assert "'10'" in result.detail and "'76'" in result.detail


def test_a_non_uuid_event_id_is_an_invalid_value():
    assert rejected("service_request", example(event_id="not-a-uuid")).reason is (
        Reason.INVALID_VALUE
    )


def test_future_tolerance_is_five_minutes_by_default():
    cleaned("service_request", example(occurred_at=AT + timedelta(minutes=5)))
    result = rejected("service_request", example(occurred_at=AT + timedelta(minutes=6, seconds=1)))
    assert result.reason is Reason.FUTURE_TIMESTAMP


def test_the_first_failing_check_is_the_reason():
    problems = {
        "event_type": "complaint",
        "agency_code": "NOPE",
        "province_code": "99",
        "district_code": "9999",
        "occurred_at": AT + timedelta(days=1),
        "citizen_id": "1101700203451",
    }
    order = [
        Reason.INVALID_VALUE,
        Reason.UNKNOWN_AGENCY,
        Reason.UNKNOWN_PROVINCE,
        Reason.UNKNOWN_DISTRICT,
        Reason.FUTURE_TIMESTAMP,
        Reason.INVALID_NATIONAL_ID,
    ]
    for expected, fixed in zip(order, range(len(problems)), strict=True):
        record = example(**dict(list(problems.items())[fixed:]))
        assert rejected("service_request", record).reason is expected


def test_a_schema_of_another_type_is_an_unknown_schema():
    value = payload("complaint", example("complaint"))
    result = TRANSFORMERS["service_request"].process(value, 0, 0, NOW_MS)
    assert isinstance(result, Rejected) and result.reason is Reason.UNKNOWN_SCHEMA


def test_trailing_bytes_after_the_record_are_undecodable():
    value = payload("complaint", example("complaint")) + b"\x00"
    result = TRANSFORMERS["complaint"].process(value, 0, 0, NOW_MS)
    assert isinstance(result, Rejected) and result.reason is Reason.UNDECODABLE


def test_a_registry_outage_is_raised_not_dead_lettered():
    def registry_down(schema_id: int) -> Any:
        raise ConnectionError("registry unreachable")

    engine = Transformer("complaint", registry_down, CLEAN_ID["complaint"], KEY)
    with pytest.raises(SchemaLookupFailed):
        engine.process(payload("complaint", example("complaint")), 0, 0, NOW_MS)


def test_a_schema_the_worker_cannot_read_is_dead_lettered_not_retried_forever():
    """A Protobuf/JSON schema, or one with references, under the writer id: every retry would
    fail the same way, so the record is an unknown schema, not a registry outage."""

    def unusable(schema_id: int) -> Any:
        raise UnusableSchema(f"schema id {schema_id} cannot be read: a PROTOBUF schema")

    engine = Transformer("complaint", unusable, CLEAN_ID["complaint"], KEY)
    result = engine.process(payload("complaint", example("complaint")), 0, 0, NOW_MS)
    assert isinstance(result, Rejected) and result.reason is Reason.UNKNOWN_SCHEMA
    assert "PROTOBUF" in result.detail


# -- never raises ----------------------------------------------------------------------------
ALL_PAYLOADS = [payload(t, examples.example(t), v) for t in TYPES for v in catalog.versions(t)]


@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(value):
    for engine in TRANSFORMERS.values():
        assert isinstance(engine.process(value, 0, 0, NOW_MS), (Cleaned, Rejected))


@given(st.sampled_from(ALL_PAYLOADS), st.data())
def test_truncated_payloads_are_undecodable(value, data):
    cut = data.draw(st.integers(0, len(value) - 1))
    for engine in TRANSFORMERS.values():
        result = engine.process(value[:cut], 0, 0, NOW_MS)
        assert isinstance(result, Rejected)
        assert result.reason in (Reason.UNDECODABLE, Reason.UNKNOWN_SCHEMA)


@given(st.sampled_from(sorted(RAW_ID.values())), st.binary(max_size=300))
def test_a_valid_header_with_garbage_never_raises(schema_id, garbage):
    for engine in TRANSFORMERS.values():
        result = engine.process(header(schema_id) + garbage, 0, 0, NOW_MS)
        assert isinstance(result, (Cleaned, Rejected))


@settings(max_examples=300)
@given(st.sampled_from(ALL_PAYLOADS), st.data())
def test_corrupted_payloads_never_raise_and_what_passes_is_clean(value, data):
    mutated = bytearray(value)
    for _ in range(data.draw(st.integers(1, 4))):
        mutated[data.draw(st.integers(5, len(value) - 1))] = data.draw(st.integers(0, 255))
    for event_type, engine in TRANSFORMERS.items():
        result = engine.process(bytes(mutated), 0, 0, NOW_MS)
        if isinstance(result, Cleaned):
            assert decode(result.value, CLEAN_PLAIN[event_type]) == result.record
            for text in strings_of(result.record):
                assert not [run for run in thirteen_digit_runs(text) if national_id.is_valid(run)]


def test_a_broken_rule_becomes_an_invalid_value_not_an_exception(monkeypatch):
    engine = transformer("complaint")

    def broken(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(engine, "_enrich", broken)
    result = engine.process(payload("complaint", example("complaint")), 0, 0, NOW_MS)
    assert isinstance(result, Rejected) and result.reason is Reason.INVALID_VALUE
    assert "RuntimeError" in result.detail and "boom" in result.detail


def test_a_memoryview_payload_is_accepted():
    value = memoryview(payload("complaint", example("complaint")))
    assert isinstance(TRANSFORMERS["complaint"].process(value, 0, 0, NOW_MS), Cleaned)


def test_decimal_and_float_fields_survive_unchanged():
    record = example("digital_center_activity", order_amount_thb=Decimal("1234567.89"))
    result = cleaned("digital_center_activity", record)
    logical = decode(result.value, SCHEMAS[CLEAN_ID["digital_center_activity"]])
    assert logical["order_amount_thb"] == Decimal("1234567.89")
    usage = cleaned("net_pracharat_usage", examples.example("net_pracharat_usage"))
    assert usage.record["avg_latency_ms"] == 38.5


def test_the_logical_view_of_the_clean_record_matches_the_raw_example():
    raw = examples.example("service_request")
    result = cleaned("service_request", raw)
    logical = schemaless_reader(
        io.BytesIO(result.value[5:]), SCHEMAS[CLEAN_ID["service_request"]], None
    )
    for name in ("fee_thb", "produced_at", "reference_no", "service_name"):
        assert logical[name] == raw[name]
    assert str(logical["event_id"]) == raw["event_id"]


def test_every_province_has_districts_for_the_strategies():
    assert all(DISTRICTS_OF.get(p) for p in PROVINCES)


def test_an_id_in_a_wrong_field_does_not_reach_the_detail():
    result = rejected("complaint", example("complaint", province_code="1101700203451"))
    assert result.reason is Reason.UNKNOWN_PROVINCE
    assert "1101700203451" not in result.detail


def test_future_tolerance_can_be_tightened():
    strict = transformer("complaint", future_tolerance_ms=0)
    later = payload(
        "complaint", example("complaint", occurred_at=AT + timedelta(minutes=1, seconds=1))
    )
    result = strict.process(later, 0, 0, NOW_MS)
    assert isinstance(result, Rejected) and result.reason is Reason.FUTURE_TIMESTAMP


@pytest.mark.parametrize("padding", [400, 900])
def test_a_clean_record_over_the_output_limit_is_dead_lettered_not_retried_forever(padding):
    """librdkafka refuses a record over `message.max.bytes` at produce(); that used to end the
    batch with an exception — re-read and refused again, a crash loop. The record is
    dead-lettered `too_large` instead (its raw bytes left out too when they no longer fit),
    and its id is not remembered: a smaller resend is not a duplicate."""
    from govpulse.streams.batch import BatchProcessor, DictDedup, Output, RawRecord

    dedup = DictDedup()
    processor = BatchProcessor("complaint", TRANSFORMERS["complaint"], dedup)
    output = Output("127.0.0.1:9", {"message.max.bytes": 1000, "log_level": 0}, security={})
    big = example("complaint", subject="x" * padding)
    fits = example("complaint", event_id="6e2f4a1b-3c8d-4e6f-9b2e-0d3c4b5a6f7e")
    records = [RawRecord(b"k", payload("complaint", r), 0, n) for n, r in enumerate((big, fits))]
    counts = processor.route(records, output, NOW_MS)
    assert counts.dead_lettered == {"too_large": 1} and counts.clean == 1
    assert list(dedup.first_seen) == [fits["event_id"]]
    assert len(output.producer) == 2  # both records queued, none lost


def test_an_event_just_inside_the_retention_is_clean_and_just_outside_dead_lettered():
    """A 2023 event re-sent by an agency used to be stored and deleted by the table's TTL a
    second later, silently, while every rollup kept counting it."""
    inside = example("complaint", occurred_at=AT - timedelta(days=399))
    outside = example("complaint", occurred_at=AT - timedelta(days=401))
    assert isinstance(KEEPING_400_DAYS.process(payload("complaint", inside), 0, 0, NOW_MS), Cleaned)
    result = KEEPING_400_DAYS.process(payload("complaint", outside), 0, 0, NOW_MS)
    assert isinstance(result, Rejected) and result.reason is Reason.OUTSIDE_RETENTION
    assert "400-day retention" in result.detail and "GOVPULSE_RAW_TTL_DAYS" in result.detail
