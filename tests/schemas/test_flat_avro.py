"""The compiled flat-record codec reads and writes exactly what fastavro does."""

from __future__ import annotations

import contextlib
import io
import struct
from typing import Any

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import given
from hypothesis import strategies as st

from govpulse.schemas import catalog
from govpulse.schemas.flat_avro import (
    Truncated,
    UnsupportedSchema,
    compile_reader,
    encode_long,
    field_encoder,
    strip_logical_types,
)
from tests.support.strategies import NUMBERS_AND_BOOLEANS

EVERY_KIND = {
    "type": "record",
    "name": "EveryKind",
    "fields": [
        {"name": name, "type": field_type}
        for name, field_type in [
            ("n", "null"),
            ("flag", "boolean"),
            ("f", "float"),
            ("d", "double"),
            ("raw", "bytes"),
            ("null_last", ["string", "null"]),
            ("maybe_flag", ["null", "boolean"]),
            ("maybe_double", ["double", "null"]),
            ("e", {"type": "enum", "name": "E", "symbols": [f"S{i}" for i in range(64)]}),
        ]
    ],
}
SCHEMAS = [catalog.raw_schema(t, v) for t in catalog.EVENT_TYPES for v in catalog.versions(t)]
SCHEMAS.append(EVERY_KIND)
READABLE = len(SCHEMAS)
SCHEMAS += [catalog.clean_schema(t) for t in catalog.EVENT_TYPES]  # with an array: write only
PLAIN = [strip_logical_types(schema) for schema in SCHEMAS]
PARSED = [parse_schema(schema) for schema in PLAIN]
# What malformed input may raise; the transform turns each into Reason.UNDECODABLE.
MALFORMED = (IndexError, Truncated, ValueError, UnicodeDecodeError, struct.error)


def _values(field_type: Any) -> st.SearchStrategy[Any]:
    if isinstance(field_type, list):
        return st.one_of([_values(branch) for branch in field_type])
    if isinstance(field_type, dict):
        if field_type["type"] == "enum":
            return st.sampled_from(field_type["symbols"])
        if field_type["type"] == "array":
            return st.lists(_values(field_type["items"]), max_size=4)
        return _values(field_type["type"])
    return {
        "null": st.none(),
        "string": st.text(max_size=30),
        "bytes": st.binary(max_size=20),
        **NUMBERS_AND_BOOLEANS,
    }[field_type]


@st.composite
def schema_and_record(draw: st.DrawFn) -> tuple[int, dict[str, Any]]:
    index = draw(st.integers(0, len(PLAIN) - 1))
    return index, {f["name"]: draw(_values(f["type"])) for f in PLAIN[index]["fields"]}


def fastavro_bytes(index: int, record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    schemaless_writer(buffer, PARSED[index], record)
    return buffer.getvalue()


READERS = [compile_reader(PLAIN[index]) for index in range(READABLE)]


@given(schema_and_record())
def test_field_encoders_write_what_fastavro_writes(case):
    index, record = case
    encoders = [(f["name"], field_encoder(f["type"])) for f in PLAIN[index]["fields"]]
    assert b"".join(encode(record[name]) for name, encode in encoders) == fastavro_bytes(
        index, record
    )


@given(schema_and_record(), st.binary(max_size=3))
def test_compiled_reader_reads_what_fastavro_reads_and_where_each_field_starts(case, prefix):
    index, record = case
    if index >= READABLE:
        return
    body = fastavro_bytes(index, record)
    read, starts = READERS[index](prefix + body, len(prefix))
    assert read == schemaless_reader(io.BytesIO(body), PARSED[index], None)
    assert starts[0] == len(prefix) and starts[-1] == len(prefix) + len(body)
    encoders = [field_encoder(f["type"]) for f in PLAIN[index]["fields"]]
    for i, (field, encode) in enumerate(zip(PLAIN[index]["fields"], encoders, strict=True)):
        assert (prefix + body)[starts[i] : starts[i + 1]] == encode(record[field["name"]])


@given(st.integers(0, READABLE - 1), st.binary(max_size=200))
def test_malformed_bodies_raise_only_what_the_decoder_catches(index, body):
    with contextlib.suppress(MALFORMED):
        READERS[index](body, 0)


@given(st.integers(-(2**63), 2**63 - 1))
def test_longs_encode_as_zigzag_varints(value):
    buffer = io.BytesIO()
    schemaless_writer(buffer, parse_schema("long"), value)
    assert encode_long(value) == buffer.getvalue()


def test_out_of_range_values_are_refused():
    with pytest.raises(ValueError):
        encode_long(2**63)
    with pytest.raises(ValueError):
        field_encoder("int")(2**31)
    with pytest.raises(ValueError):
        field_encoder({"type": "enum", "name": "E", "symbols": ["A"]})("B")


def test_nested_records_are_left_to_fastavro():
    nested = {
        "type": "record",
        "name": "Outer",
        "fields": [{"name": "inner", "type": {"type": "record", "name": "In", "fields": []}}],
    }
    with pytest.raises(UnsupportedSchema):
        compile_reader(nested)
    with pytest.raises(UnsupportedSchema):
        field_encoder(nested["fields"][0]["type"])


def test_logical_types_are_stripped_but_nothing_else():
    schema = {"type": "long", "logicalType": "timestamp-millis", "doc": "d"}
    assert strip_logical_types(schema) == {"type": "long", "doc": "d"}
    parsed = parse_schema(catalog.raw_schema("service_request"))
    assert "__fastavro_parsed" not in strip_logical_types(parsed)
