"""The generated Avro writer: fastavro's bytes for every record, a named field for a bad one."""

from __future__ import annotations

import datetime
import decimal
import io
import json
import uuid
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_writer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from govpulse.producers.traffic import TrafficGenerator
from govpulse.schemas import catalog
from govpulse.schemas.avro_writer import compile_writer
from govpulse.schemas.flat_avro import UnsupportedSchema

RAW = [(t, v) for t in catalog.EVENT_TYPES for v in catalog.versions(t)]
HEADER = b"\x00\x00\x00\x00\x2a"

EVERYTHING = {
    "type": "record",
    "name": "Everything",
    "namespace": "test.avro",
    "fields": [
        {"name": "flag", "type": "boolean"},
        {"name": "small", "type": "int"},
        {"name": "big", "type": "long"},
        {"name": "ratio", "type": "float"},
        {"name": "precise", "type": "double"},
        {"name": "blob", "type": "bytes"},
        {"name": "text", "type": "string"},
        {"name": "colour", "type": {"type": "enum", "name": "Colour", "symbols": ["RED", "GREEN"]}},
        {
            "name": "other_colour",
            "type": ["null", {"type": "enum", "name": "Other", "symbols": ["BLUE"]}],
            "default": None,
        },
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {
            "name": "amount",
            "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 3},
        },
        {"name": "odd", "type": {"type": "string", "logicalType": "not-a-known-one"}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "maybe_counts", "type": {"type": "array", "items": ["null", "long"]}},
        {"name": "maybe_text", "type": ["string", "null"]},
        {"name": "maybe_id", "type": ["null", {"type": "string", "logicalType": "uuid"}]},
        {"name": "maybe_at", "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}]},
        {"name": "with_default", "type": "long", "default": 7},
    ],
}


def fastavro_bytes(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    buffer.write(HEADER)
    schemaless_writer(buffer, parse_schema(json.loads(json.dumps(schema))), record)
    return buffer.getvalue()


# -- values of a schema, generated -------------------------------------------------------------
_OFFSETS = st.builds(
    datetime.timezone, st.timedeltas(datetime.timedelta(hours=-23), datetime.timedelta(hours=23))
)


def values(schema: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    if isinstance(schema, list):
        return st.one_of(*(values(branch, named) for branch in schema))
    if isinstance(schema, str):
        if schema in named:
            return values(named[schema], named)
        return {
            "null": st.none(),
            "boolean": st.booleans(),
            "int": st.integers(-(2**31), 2**31 - 1),
            "long": st.integers(-(2**63), 2**63 - 1),
            "float": st.floats(width=32) | st.integers(-(2**24), 2**24),
            "double": st.floats() | st.integers(-(2**53), 2**53),
            "bytes": st.binary(max_size=300),
            "string": st.text(max_size=300),
        }[schema]
    kind, logical = schema["type"], schema.get("logicalType")
    if isinstance(kind, dict | list):
        return values(kind, named)
    if "name" in schema:
        named[schema["name"]] = named[
            f"{schema.get('namespace', 'test.avro')}.{schema['name']}"
        ] = schema
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "fixed":
        return st.binary(min_size=schema["size"], max_size=schema["size"])
    if kind == "array":
        return st.lists(values(schema["items"], named), max_size=4)
    if kind == "map":
        return st.dictionaries(st.text(max_size=10), values(schema["values"], named), max_size=4)
    if kind == "record":
        fields = {f["name"]: values(f["type"], named) for f in schema["fields"]}
        return st.fixed_dictionaries(fields)
    if logical == "uuid":
        return st.uuids() | st.uuids().map(str) | st.uuids().map(lambda u: str(u).upper())
    if logical == "timestamp-millis":
        return (
            st.integers(-(2**63), 2**63 - 1)
            | st.datetimes(timezones=st.just(datetime.UTC))
            | st.datetimes(timezones=_OFFSETS, allow_imaginary=False)
            | st.datetimes(datetime.datetime(1971, 1, 1), datetime.datetime(2100, 1, 1))
        )
    if logical == "date":
        return st.dates() | st.datetimes() | st.integers(-(2**31), 2**31 - 1)
    if logical == "decimal":
        scale, digits = schema.get("scale", 0), schema["precision"] - schema.get("scale", 0)
        bound = decimal.Decimal(10**digits) - decimal.Decimal(1).scaleb(-scale)
        return st.decimals(-bound, bound, places=scale) | st.binary(max_size=8)
    return values(kind, named)


def _check_same_bytes(schema: dict[str, Any], record: dict[str, Any]) -> None:
    write = compile_writer(schema, HEADER)
    assert write(record) == fastavro_bytes(schema, record)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_schema_with_every_supported_type_is_written_as_fastavro_writes_it(data):
    _check_same_bytes(EVERYTHING, data.draw(values(EVERYTHING, {})))


@pytest.mark.parametrize(("event_type", "version"), RAW)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_raw_schemas_write_generated_records_as_fastavro_does(event_type, version, data):
    schema = catalog.raw_schema(event_type, version)
    _check_same_bytes(schema, data.draw(values(schema, {})))


@pytest.mark.parametrize("event_type", catalog.EVENT_TYPES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_clean_schemas_write_generated_records_as_fastavro_does(event_type, data):
    schema = catalog.clean_schema(event_type)
    _check_same_bytes(schema, data.draw(values(schema, {})))


@pytest.mark.parametrize(("event_type", "version"), RAW)
def test_simulated_records_are_written_as_fastavro_writes_them(event_type, version):
    schema = catalog.raw_schema(event_type, version)
    write = compile_writer(schema, HEADER, ("event_type", "produced_at"))
    generator = TrafficGenerator(seed=7, daily_rhythm=False, dirty_share=0.2)
    produced_at = 1_764_000_000_000
    records = [r for t, r, *_ in (generator.next_event() for _ in range(3000)) if t == event_type]
    assert len(records) > 100
    for record in records:
        full = {"event_type": event_type, "produced_at": produced_at, **record}
        assert write(record, event_type, produced_at) == fastavro_bytes(schema, full)


def test_fallback_values_fill_only_missing_fields():
    schema = catalog.raw_schema("complaint")
    write = compile_writer(schema, HEADER, ("event_type", "produced_at"))
    record = {k: v for k, v in _complaint().items() if k != "produced_at"}
    assert write(record, "complaint", 1234) == fastavro_bytes(
        schema, {**record, "produced_at": 1234}
    )
    own = {**record, "produced_at": 99}
    assert write(own, "complaint", 1234) == fastavro_bytes(schema, own)


def test_equal_decimals_write_the_same_bytes_and_extra_zeros_are_accepted():
    schema = catalog.raw_schema("service_request")
    write = compile_writer(schema)
    record = _record("service_request")
    one = write({**record, "fee_thb": decimal.Decimal("1.5")})
    assert one == write({**record, "fee_thb": decimal.Decimal("1.50")})
    assert one == write({**record, "fee_thb": decimal.Decimal("1.500")})
    negative = {**record, "fee_thb": decimal.Decimal("-128.00")}
    assert write(negative) == fastavro_bytes(schema, negative)[len(HEADER) :]


# -- refusals ----------------------------------------------------------------------------------
def _record(event_type: str) -> dict[str, Any]:
    from tests.support import examples

    record = examples.example(event_type)
    record.setdefault("produced_at", 1_764_000_000_000)
    record["event_type"] = event_type
    return record


def _complaint() -> dict[str, Any]:
    return _record("complaint")


BAD = [
    ("net_pracharat_usage", "sessions", 2**40, "expected int"),
    ("net_pracharat_usage", "sessions", True, "expected int"),
    ("net_pracharat_usage", "bytes_down", 1.5, "expected long"),
    ("net_pracharat_usage", "bytes_down", 2**63, "expected long"),
    ("net_pracharat_usage", "avg_latency_ms", 1e300, "float too large"),
    ("net_pracharat_usage", "avg_latency_ms", "fast", "expected null or float"),
    ("complaint", "via_1111", "yes", "expected boolean"),
    ("complaint", "via_1111", 1, "expected boolean"),
    ("complaint", "event_id", "not-a-uuid", "UUID"),
    ("complaint", "event_id", 12345, "UUID"),
    ("complaint", "channel", "FAX", "one of WEB"),
    ("complaint", "channel", ["WEB"], "one of WEB"),
    ("complaint", "province_code", None, "expected string"),
    ("complaint", "province_code", 10, "expected string"),
    ("complaint", "occurred_at", "yesterday", "datetime"),
    ("complaint", "occurred_at", datetime.date(2025, 1, 1), "datetime"),
    ("complaint", "complainant_phone", b"0812345678", "null or string"),
    ("service_request", "fee_thb", decimal.Decimal("1.234"), "at most 12 digits, 2 decimals"),
    ("service_request", "fee_thb", decimal.Decimal("1E+10"), "at most 12 digits"),
    ("service_request", "fee_thb", decimal.Decimal("NaN"), "Decimal"),
    ("service_request", "fee_thb", decimal.Decimal("-Infinity"), "Decimal"),
    ("service_request", "fee_thb", 12.5, "Decimal"),
    ("service_request", "processing_seconds", "quick", "null or long"),
]


@pytest.mark.parametrize(("event_type", "name", "value", "words"), BAD)
def test_a_bad_value_is_refused_naming_its_field(event_type, name, value, words):
    write = compile_writer(catalog.raw_schema(event_type), HEADER)
    with pytest.raises(ValueError, match=f"^field '{name}' has .*{words}"):
        write({**_record(event_type), name: value})


def test_a_missing_field_is_named_and_a_missing_nullable_one_is_null():
    schema = catalog.raw_schema("complaint")
    write = compile_writer(schema)
    record = _complaint()
    del record["province_code"]
    with pytest.raises(ValueError, match=r"^field 'province_code' is missing, expected string"):
        write(record)
    record = _complaint()
    del record["complainant_phone"]
    assert write(record) == fastavro_bytes(schema, record)[len(HEADER) :]


def test_a_record_that_is_not_a_mapping_is_refused():
    with pytest.raises(ValueError, match="expected a mapping"):
        compile_writer(catalog.raw_schema("complaint"))(["not", "a", "record"])


def test_a_uuid_object_is_written_as_its_text():
    schema = catalog.raw_schema("complaint")
    record = {**_complaint(), "event_id": uuid.UUID("12345678-1234-5678-1234-567812345678")}
    assert compile_writer(schema)(record) == fastavro_bytes(schema, record)[len(HEADER) :]


@pytest.mark.parametrize(
    "field_type",
    [
        ["string", "long"],
        ["null", "string", "long"],
        {"type": "long", "logicalType": "time-micros"},
        {"type": "long", "logicalType": "timestamp-micros"},
        "Undefined",
        # what no contract uses is left to fastavro
        {"type": "map", "values": "long"},
        {"type": "fixed", "name": "Digest", "size": 4},
        {"type": "int", "logicalType": "date"},
        {"type": "record", "name": "Inner", "fields": [{"name": "x", "type": "double"}]},
    ],
)
def test_what_is_not_compiled_says_so(field_type):
    schema = {"type": "record", "name": "R", "fields": [{"name": "a", "type": field_type}]}
    with pytest.raises(UnsupportedSchema):
        compile_writer(schema)


def test_a_named_reference_is_not_compiled():
    schema = {
        "type": "record",
        "name": "Node",
        "fields": [{"name": "next", "type": ["null", "Node"]}],
    }
    with pytest.raises(UnsupportedSchema, match="named type"):
        compile_writer(schema)
