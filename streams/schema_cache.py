"""Writer schemas by registry id, fetched once and kept: the decode side of the wire format."""

from __future__ import annotations

import json
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro import parse_schema

from schemas import catalog


class WriterSchemas:
    """`schemas(schema_id)` → parsed fastavro schema; KeyError for an id the registry lacks."""

    def __init__(self, client: SchemaRegistryClient) -> None:
        self.client = client
        self._parsed: dict[int, Any] = {}
        self._missing: set[int] = set()

    def __call__(self, schema_id: int) -> Any:
        parsed = self._parsed.get(schema_id)
        if parsed is not None:
            return parsed
        if schema_id in self._missing:
            raise KeyError(schema_id)
        try:
            text = self.client.get_schema(schema_id).schema_str
        except SchemaRegistryError as error:
            if error.http_status_code == 404:
                self._missing.add(schema_id)
                raise KeyError(schema_id) from None
            raise
        parsed = self._parsed[schema_id] = parse_schema(json.loads(text))
        return parsed


def register_clean_schema(client: SchemaRegistryClient, event_type: str) -> int:
    """Registry id of the clean schema of `event_type` (registered if new)."""
    subject = catalog.subject(catalog.clean_topic(event_type))
    return client.register_schema(subject, Schema(catalog.clean_schema_json(event_type), "AVRO"))
