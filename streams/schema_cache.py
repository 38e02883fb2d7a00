"""Writer schemas by registry id, fetched once and kept: the decode side of the wire format."""

from __future__ import annotations

import json
import time
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro import parse_schema

from govpulse.schemas import catalog
from govpulse.streams.decode import UnusableSchema


class WriterSchemas:
    """`schemas(schema_id)` → parsed fastavro schema; KeyError for an id the registry lacks,
    `UnusableSchema` for one that is not a self-contained Avro schema.

    An unknown id is remembered for `MISS_TTL_S` only: garbage payloads do not hit the
    registry per record, and a schema registered later is found within a minute.
    """

    MISS_TTL_S = 60.0

    def __init__(self, client: SchemaRegistryClient) -> None:
        self.client = client
        self._parsed: dict[int, Any] = {}
        self._missing: dict[int, float] = {}
        self._unusable: dict[int, str] = {}  # ids never change what they name: kept for good

    def __call__(self, schema_id: int) -> Any:
        parsed = self._parsed.get(schema_id)
        if parsed is not None:
            return parsed
        missed_at = self._missing.get(schema_id)
        if missed_at is not None and time.monotonic() - missed_at < self.MISS_TTL_S:
            raise KeyError(schema_id)
        if schema_id in self._unusable:
            raise UnusableSchema(self._unusable[schema_id])
        try:
            registered = self.client.get_schema(schema_id)
        except SchemaRegistryError as error:
            if error.http_status_code == 404:
                self._missing[schema_id] = time.monotonic()
                raise KeyError(schema_id) from None
            raise
        try:
            if registered.schema_type not in (None, "AVRO"):
                raise ValueError(f"a {registered.schema_type} schema, not Avro")
            parsed = parse_schema(json.loads(registered.schema_str))
        except Exception as error:
            why = f"schema id {schema_id} cannot be read: {error}"
            self._unusable[schema_id] = why
            raise UnusableSchema(why) from None
        self._parsed[schema_id] = parsed
        return parsed


def register_clean_schema(client: SchemaRegistryClient, event_type: str) -> int:
    """Registry id of the clean schema of `event_type` (registered if new)."""
    subject = catalog.subject(catalog.clean_topic(event_type))
    return client.register_schema(subject, Schema(catalog.clean_schema_json(event_type), "AVRO"))
