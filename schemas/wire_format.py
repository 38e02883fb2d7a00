"""The Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro binary body.

Pure functions shared by the producer SDK (encode) and the stream processor (decode), so
both ends agree byte for byte with confluent-kafka's AvroSerializer/AvroDeserializer.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import IO, Any, cast

from fastavro import schemaless_reader, schemaless_writer

MAGIC_BYTE = 0
_HEADER = struct.Struct(">bI")
HEADER_SIZE = _HEADER.size  # 5

# fastavro's `schemaless_reader(stream, writer_schema, reader_schema)`, typed for the record
# schemas every govpulse schema is: fastavro types what it reads as any Avro value, and no
# annotation can derive "a dict" from a schema known only at run time. Cast once, here, so
# per-record callers need no cast of their own.
read_record = cast("Callable[[IO[bytes], Any, Any], dict[str, Any]]", schemaless_reader)


class WireFormatError(ValueError):
    """The bytes are not a Confluent-framed Avro message."""


def header(schema_id: int) -> bytes:
    return _HEADER.pack(MAGIC_BYTE, schema_id)


def encode(schema_id: int, parsed_schema: Any, record: dict[str, Any]) -> bytes:
    """Frame `record` (already valid for `parsed_schema`) with the schema id."""
    buffer = io.BytesIO()
    buffer.write(_HEADER.pack(MAGIC_BYTE, schema_id))
    schemaless_writer(buffer, parsed_schema, record)
    return buffer.getvalue()


def schema_id_of(payload: bytes | None) -> int:
    """The schema id in the frame; `WireFormatError` when the frame is not ours."""
    if payload is None or len(payload) < HEADER_SIZE:
        raise WireFormatError(f"message of {len(payload or b'')} bytes is shorter than the header")
    magic: int
    schema_id: int
    magic, schema_id = _HEADER.unpack_from(payload)
    if magic != MAGIC_BYTE:
        raise WireFormatError(f"magic byte is {magic}, expected {MAGIC_BYTE}")
    return schema_id


def decode(payload: bytes, writer_schema: Any, reader_schema: Any | None = None) -> dict[str, Any]:
    """The record in `payload`, written with `writer_schema` (read as `reader_schema`)."""
    schema_id_of(payload)
    return read_record(io.BytesIO(payload[HEADER_SIZE:]), writer_schema, reader_schema)
