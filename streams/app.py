"""The Faust app: one agent per event type, a changelogged de-duplication table per type.

Faust owns what a framework is for — consumer groups and partition assignment, tables with
changelogs and their recovery after a restart or rebalance, offset commits after the agent
has processed a batch. The per-record work is `streams.batch` (pure rules underneath), and
output leaves through a confluent-kafka producer whose acknowledgements the agent awaits
before Faust may commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
from confluent_kafka.schema_registry import SchemaRegistryClient

from govpulse.settings import Settings
from monitoring import metrics
from schemas import catalog
from streams.batch import BatchProcessor, RawRecord, output_producer
from streams.rules.pseudonymise import PseudonymKey
from streams.schema_cache import WriterSchemas, register_clean_schema
from streams.transform import Transformer

log = logging.getLogger("govpulse.streams")
APP_ID = "govpulse-streams"
PRUNE_EVERY_S = 30.0


class TableDedup:
    """`Dedup` on a Faust table: event_id → "first_seen_ms:partition", changelogged.

    Faust's `table[key] = value` picks the changelog partition from the *current* event; a
    batch holds events of several partitions, so entries are written with the partition of
    the record they belong to — the table stays co-partitioned with raw.<type> and recovers
    on whichever worker gets that partition.
    """

    def __init__(self, table: faust.Table, window_ms: int) -> None:
        self.table = table
        self.window_ms = window_ms

    def seen(self, event_id: str) -> bool:
        return event_id.encode() in self.table.data

    def remember(self, event_id: str, partition: int, now_ms: int) -> None:
        # bytes, as the changelog holds them: recovery puts them back in the store unchanged
        key, value = event_id.encode(), f"{now_ms}:{partition}".encode()
        self.table.data[key] = value
        self.table.send_changelog(partition, key, value)

    def prune(self, now_ms: int, limit: int = 50_000) -> int:
        """Forget ids older than the window, oldest first (entries are kept in arrival order)."""
        store = self.table.data
        cutoff, expired = now_ms - self.window_ms, []
        for event_id, value in store.items():
            text = value.decode() if isinstance(value, bytes) else value
            first_seen, partition = text.split(":")
            if int(first_seen) >= cutoff or len(expired) >= limit:
                break
            expired.append((event_id, int(partition)))
        for event_id, partition in expired:
            del store[event_id]
            self.table.send_changelog(partition, event_id, None, value_serializer="raw")
        return len(expired)


def build_app(settings: Settings, key: PseudonymKey, event_types: tuple[str, ...]) -> faust.App:
    """The Faust app with one agent per type in `event_types`."""
    servers = [f"kafka://{server}" for server in settings.bootstrap_servers.split(",")]
    session_s = settings.kafka_session_timeout_ms / 1000
    app = faust.App(
        APP_ID,
        broker=servers,
        store="memory://",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=session_s,
        broker_heartbeat_interval=max(0.5, session_s / 4),
        broker_rebalance_timeout=max(session_s * 2, 10.0),
        broker_commit_interval=1.0,
        broker_max_poll_records=settings.streams_batch_size,
        stream_buffer_maxsize=settings.streams_batch_size * 2,
        stream_wait_empty=False,
        table_cleanup_interval=PRUNE_EVERY_S,
        producer_acks=-1,
        logging_config=None,
    )
    registry = SchemaRegistryClient({"url": settings.registry_url})
    writer_schemas = WriterSchemas(registry)
    for event_type in event_types:
        _add_agent(app, settings, event_type, key, registry, writer_schemas)
    return app


def _add_agent(
    app: faust.App,
    settings: Settings,
    event_type: str,
    key: PseudonymKey,
    registry: SchemaRegistryClient,
    writer_schemas: WriterSchemas,
) -> None:
    source = app.topic(
        catalog.raw_topic(event_type),
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topic_partitions,
    )
    table = app.Table(
        f"dedup-{event_type}",
        default=None,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.topic_partitions,
        help=f"event_id → first seen, for dropping duplicates of {event_type}",
    )
    dedup = TableDedup(table, settings.dedup_window_s * 1000)
    batch_size, within = settings.streams_batch_size, settings.streams_batch_ms / 1000
    state: dict[str, Any] = {}

    def processor() -> BatchProcessor:
        if "processor" not in state:  # the registry is reachable once the worker runs
            transformer = Transformer(
                event_type,
                writer_schemas,
                register_clean_schema(registry, event_type),
                key,
                future_tolerance_ms=settings.future_tolerance_s * 1000,
            )
            producer = output_producer(settings.bootstrap_servers)
            state["processor"] = BatchProcessor(event_type, transformer, producer, dedup)
        return state["processor"]

    async def clean(stream: faust.StreamT) -> None:
        loop = asyncio.get_running_loop()
        last_prune = time.monotonic()
        async for events in stream.take_events(batch_size, within=within):
            started = time.perf_counter()
            work = processor()
            records = [
                RawRecord(e.message.key, e.message.value, e.message.partition, e.message.offset)
                for e in events
            ]
            work.route(records)
            await loop.run_in_executor(None, work.wait_delivered)
            metrics.STREAMS_BATCH_SECONDS.observe(time.perf_counter() - started)
            metrics.STREAMS_BATCH_SIZE.observe(len(records))
            if time.monotonic() - last_prune > PRUNE_EVERY_S:
                last_prune = time.monotonic()
                dedup.prune(time.time_ns() // 1_000_000)

    clean.__name__ = clean.__qualname__ = f"clean_{event_type}"
    app.agent(source, name=f"clean-{event_type}", concurrency=1)(clean)
