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

from govpulse.schemas.flat_avro import encode_long
from govpulse.schemas.wire_format import HEADER_SIZE, schema_id_of

MAGIC = b"Obj\x01"


def split_by_schema(values: Sequence[bytes]) -> dict[int, list[bytes]]:
    """Framed values grouped by schema id, keeping their order within each group;
    `WireFormatError` (a ValueError) when one is not framed.

    Almost every batch has one id; the common case costs one comparison per value.
    """
    if not values:
        return {}
    head = values[0][:HEADER_SIZE]
    if all(v[:HEADER_SIZE] == head for v in values):
        return {schema_id_of(values[0]): list(values)}
    groups: dict[int, list[bytes]] = {}
    for value in values:
        groups.setdefault(schema_id_of(value), []).append(value)
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
            encode_long(2),
            encode_long(11),
            b"avro.schema",
            encode_long(len(schema)),
            schema,
            encode_long(10),
            b"avro.codec",
            encode_long(4),
            b"null",
            encode_long(0),
            sync,
        )
    )
    body = b"".join([v[HEADER_SIZE:] for v in values])
    return b"".join((header, encode_long(len(values)), encode_long(len(body)), body, sync))
