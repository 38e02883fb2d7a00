"""Framed clean records become an Avro object container any Avro reader accepts."""

from __future__ import annotations

import io
import json

import pytest
from fastavro import parse_schema, reader, schemaless_writer

from govpulse.schemas.flat_avro import encode_long as zigzag
from govpulse.schemas.wire_format import WireFormatError as BadFrame
from govpulse.sinks.avro_container import container, split_by_schema


def framed(schema_id: int, parsed, record) -> bytes:
    out = io.BytesIO()
    schemaless_writer(out, parsed, record)
    return b"\x00" + schema_id.to_bytes(4, "big") + out.getvalue()


def test_zigzag_matches_the_avro_spec():
    expected = [b"\x00", b"\x01", b"\x02", b"\x7f", b"\x80\x01"]
    assert [zigzag(n) for n in (0, -1, 1, -64, 64)] == expected


def test_a_container_of_framed_records_reads_back_as_the_same_records():
    schema = {
        "type": "record",
        "name": "R",
        "fields": [{"name": "a", "type": "long"}, {"name": "b", "type": ["null", "string"]}],
    }
    parsed = parse_schema(schema)
    records = [{"a": n, "b": None if n % 2 else f"ไทย {n}"} for n in range(300)]
    values = [framed(7, parsed, r) for r in records]
    assert list(reader(io.BytesIO(container(json.dumps(schema), values)))) == records


def test_values_are_grouped_by_schema_id_in_order():
    values = [b"\x00\x00\x00\x00\x01a", b"\x00\x00\x00\x00\x02b", b"\x00\x00\x00\x00\x01c"]
    assert split_by_schema(values) == {1: [values[0], values[2]], 2: [values[1]]}
    with pytest.raises(BadFrame):
        split_by_schema([b"\x00\x00\x00\x00\x01a", b"not framed"])
