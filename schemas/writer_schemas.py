"""Writer schemas by registry id, fetched once and kept: the one cache of the project.

The stream processor reads raw records with them (`WriterSchemas.__call__`: the parsed
schema), the sink joins clean records into Avro containers under their registered text
(`WriterSchemas.text`), and the sink and the audit decode the few records they look into
(`WriterSchemas.decode`). The clean schemas the worker writes are registered here too.
"""

from __future__ import annotations

import json
import time
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro import parse_schema

from govpulse.schemas import catalog, wire_format


class UnusableSchema(ValueError):
    """A registered schema records cannot be read with (not Avro, or not parseable alone,
    e.g. with references): its records are dead-lettered, not retried forever."""


class WriterSchemas:
    """Registry id → writer schema, parsed by fastavro (logical types applied when decoding).

    KeyError for an id the registry lacks, `UnusableSchema` for one that is not a
    self-contained Avro schema, the registry client's own error when it is unreachable (the
    caller retries). An unknown id is remembered for `MISS_TTL_S` only: garbage payloads do not
    hit the registry per record, and a schema registered later is found within a minute. An
    unusable one is remembered for good: an id never changes what it names.
    """

    MISS_TTL_S = 60.0

    def __init__(self, client: SchemaRegistryClient) -> None:
        self.client = client
        self._known: dict[int, tuple[str, Any]] = {}  # id → (JSON text, parsed)
        self._missing: dict[int, float] = {}
        self._unusable: dict[int, str] = {}

    def __call__(self, schema_id: int) -> Any:
        """The parsed schema (what `fastavro.schemaless_reader` takes)."""
        known = self._known.get(schema_id)
        return (known or self._fetch(schema_id))[1]

    def text(self, schema_id: int) -> str:
        """The schema's JSON text as registered (what an Avro container file embeds)."""
        known = self._known.get(schema_id)
        return (known or self._fetch(schema_id))[0]

    def decode(self, payload: bytes) -> dict[str, Any]:
        """One framed record, fully decoded with its writer schema (logical types applied);
        `WireFormatError` when it is not framed."""
        return wire_format.decode(payload, self(wire_format.schema_id_of(payload)))

    def _fetch(self, schema_id: int) -> tuple[str, Any]:
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
            text = registered.schema_str
            if text is None:
                raise ValueError("the registry returned no schema text")
            parsed = parse_schema(json.loads(text))
        except Exception as error:
            why = f"schema id {schema_id} cannot be read: {error}"
            self._unusable[schema_id] = why
            raise UnusableSchema(why) from None
        known = self._known[schema_id] = (text, parsed)
        return known


def register_clean_schema(client: SchemaRegistryClient, event_type: str) -> int:
    """Registry id of the clean schema of `event_type` (registered if new)."""
    subject = catalog.subject(catalog.clean_topic(event_type))
    return client.register_schema(subject, Schema(catalog.clean_schema_json(event_type), "AVRO"))
