"""Realistic clean records without a stream worker: for the sink's benchmarks and tests.

The simulator's traffic goes through the real transform (`govpulse.streams.transform.Transformer`)
with the latest raw schemas under local schema ids, then each clean value is framed under the
id the registry gives the clean schema — byte for byte what a stream worker writes to
clean.<type>, minus the worker.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from fastavro import parse_schema

from govpulse.schemas import catalog

Records = dict[str, list[tuple[bytes, bytes]]]  # event type → [(key, framed clean value)]


class _LocalSchemas:
    """Latest raw schema and clean schema of every type under local ids (no registry)."""

    def __init__(self) -> None:
        self.parsed: dict[int, Any] = {}
        self.raw_ids: dict[str, int] = {}
        self.clean_ids: dict[str, int] = {}
        for event_type in catalog.EVENT_TYPES:
            self.raw_ids[event_type] = self._add(catalog.raw_schema(event_type))
            self.clean_ids[event_type] = self._add(catalog.clean_schema(event_type))

    def _add(self, schema: dict[str, Any]) -> int:
        schema_id = len(self.parsed) + 1
        self.parsed[schema_id] = parse_schema(schema)
        return schema_id

    def __call__(self, schema_id: int) -> Any:
        return self.parsed[schema_id]


def clean_records(events: int, seed: int = 1) -> Records:
    """Clean records from `events` simulated clean events (no defects), framed with id 0.

    `events` unique event ids, produced_at and occurred_at around now (so no TTL drops them).
    """
    from govpulse.producers.traffic import TrafficGenerator
    from govpulse.schemas.wire_format import encode
    from govpulse.streams.rules.pseudonymise import PseudonymKey
    from govpulse.streams.transform import Cleaned, Transformer

    local = _LocalSchemas()
    key = PseudonymKey("samples", b"s" * 32)
    transformers = {t: Transformer(t, local, local.clean_ids[t], key) for t in catalog.EVENT_TYPES}
    generator = TrafficGenerator(seed=seed, daily_rhythm=False, dirty_share=0.0)
    now_ms = time.time_ns() // 1_000_000
    out: Records = {t: [] for t in catalog.EVENT_TYPES}
    for offset in range(events):
        event_type, record, _ = generator.next_event()
        record = {"produced_at": datetime.now(UTC), **record}
        schema_id = local.raw_ids[event_type]
        result = transformers[event_type].process(
            encode(schema_id, local(schema_id), record), 0, offset, now_ms
        )
        if isinstance(result, Cleaned):
            unframed = b"\x00\x00\x00\x00\x00" + result.value[5:]
            out[event_type].append((result.event_id.encode(), unframed))
    return out


def clean_value(event_type: str, **changes: Any) -> tuple[bytes, bytes]:
    """(key, clean value framed with id 0) of the example record of `event_type`, stamped now,
    with a new event id and `changes` — for a test's hand-made record (e.g. one the worker
    lets through and ClickHouse refuses)."""
    import uuid

    from govpulse.schemas.wire_format import encode
    from govpulse.streams.rules.pseudonymise import PseudonymKey
    from govpulse.streams.transform import Cleaned, Transformer
    from tests.support import examples

    local = _LocalSchemas()
    now = datetime.now(UTC)
    record = {**examples.example(event_type), "event_id": str(uuid.uuid4())}
    record.update({"occurred_at": now, "produced_at": now, **changes})
    key = PseudonymKey("samples", b"s" * 32)
    transformer = Transformer(event_type, local, local.clean_ids[event_type], key)
    schema_id = local.raw_ids[event_type]
    result = transformer.process(
        encode(schema_id, local(schema_id), record), 0, 0, time.time_ns() // 1_000_000
    )
    if not isinstance(result, Cleaned):
        raise ValueError(f"the record was dead-lettered: {result}")
    return result.event_id.encode(), b"\x00\x00\x00\x00\x00" + result.value[5:]


def prefill(
    bootstrap: str, registry_url: str, records: Records, total: int | None = None
) -> dict[str, int]:
    """Produce `total` (default: all) records to clean.<type>, cycling through `records`.

    Registers the clean schemas and frames every value under the registry's id. Returns the
    records produced per type.
    """
    from confluent_kafka import Producer

    from govpulse.registry import registry_client
    from govpulse.schemas.writer_schemas import register_clean_schema

    registry = registry_client(registry_url)
    heads = {t: b"\x00" + register_clean_schema(registry, t).to_bytes(4, "big") for t in records}
    pool = [(t, k, heads[t] + v[5:]) for t, items in records.items() for k, v in items]
    total = len(pool) if total is None else total
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 20,
            "compression.type": "lz4",
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    counts = dict.fromkeys(records, 0)
    for i in range(total):
        event_type, key, value = pool[i % len(pool)]
        producer.produce(catalog.clean_topic(event_type), value, key)
        counts[event_type] += 1
        if i % 50_000 == 0:
            producer.poll(0)
    left = producer.flush(120)
    if left:
        raise RuntimeError(f"{left} clean records not acknowledged by the broker")
    return counts
