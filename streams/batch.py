"""One batch of raw records → clean, dead-letter or duplicate: the worker's unit of work.

No Faust here: the worker hands over (key, value, partition, offset) tuples and a `Dedup`
store, so the routing and counting are tested without a broker. The outcome of raw partition
p goes to partition p of clean/dlq/dup (not by key hash): the owner of raw p is then the only
writer of those partitions, which is what lets its successor find what it wrote
(streams/resume.py). Output goes through a
confluent-kafka producer (one `produce()` call per record, ~2 µs, where Faust's own send is
an await per record); a batch is done only when the broker acknowledged every output record
(`Output.deliver`), so the worker acks its input after its output is safe; what a crash
leaves written past the commit is read back by the next owner (streams/resume.py).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from govpulse.monitoring import metrics
from govpulse.schemas import catalog
from govpulse.streams.reasons import Reason
from govpulse.streams.transform import Cleaned, Transformer


class RawMessage(Protocol):
    """What `route` reads of a raw record: confluent-kafka's `Message` as it is (building a
    tuple per record first cost ~7 % of a worker's time), or a `RawRecord`."""

    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def partition(self) -> int: ...
    def offset(self) -> int: ...


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A `RawMessage` built by hand, for tests and benchmarks."""

    key_: bytes | None
    value_: bytes | None
    partition_: int
    offset_: int

    def key(self) -> bytes | None:
        return self.key_

    def value(self) -> bytes | None:
        return self.value_

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_


# Kafka headers as confluent-kafka's `produce` takes them (a list, invariant in its items).
Headers = list[tuple[str, str | bytes | None]]

# writes a batch's dedup entries; returns their changelog sends, awaited before the commit
Persist = Callable[[], list[Awaitable[Any]]]


def _nothing() -> list[Awaitable[Any]]:
    return []


class Dedup(Protocol):
    """Remembers event ids within the window.

    `flush` seals a batch's ids and returns what makes them durable, for the worker to call
    once the batch's output is acknowledged: ids made durable before their clean records
    would turn the replay after a crash in between into duplicates, losing those records.
    """

    def seen(self, event_id: str) -> bool: ...
    def remember(self, event_id: str, partition: int, offset: int, now_ms: int) -> None: ...
    def flush(self, now_ms: int) -> Persist: ...


class DictDedup:
    """In-memory `Dedup` for tests and benchmarks (the worker uses a Faust table)."""

    def __init__(self) -> None:
        self.first_seen: dict[str, int] = {}

    def seen(self, event_id: str) -> bool:
        return event_id in self.first_seen

    def remember(self, event_id: str, partition: int, offset: int, now_ms: int) -> None:
        self.first_seen[event_id] = now_ms

    def flush(self, now_ms: int) -> Persist:
        """Nothing to persist in memory."""
        return _nothing


class DeliveryFailed(RuntimeError):
    """The broker did not acknowledge an output record: the batch must not be acked."""


@dataclass
class BatchCounts:
    consumed: int = 0
    clean: int = 0
    duplicates: int = 0
    dead_lettered: dict[str, int] = field(default_factory=dict)
    persist: Persist = _nothing  # the batch's dedup entries, once output is safe


class _Metrics:
    """The per-type children of the shared metrics, resolved once."""

    def __init__(self, event_type: str) -> None:
        self.consumed = metrics.STREAMS_CONSUMED.labels(event_type)
        self.clean = metrics.STREAMS_CLEAN.labels(event_type)
        self.duplicates = metrics.STREAMS_DUPLICATES.labels(event_type)
        self.age = metrics.STREAMS_RECORD_AGE_SECONDS.labels(event_type)
        self.event_type = event_type

    def dead_lettered(self, reason: str, count: int) -> None:
        metrics.STREAMS_DEAD_LETTERED.labels(self.event_type, reason).inc(count)


def output_producer(
    bootstrap: str,
    extra: dict[str, Any] | None = None,
    *,
    security: dict[str, Any] | None = None,
    on_delivery: Any = None,
) -> Producer:
    """Idempotent, acks=all, lz4, short linger: output safe and cheap per record.

    `security`: librdkafka TLS/SASL properties (`govpulse.kafka_config.client_config`); by
    default those of this process's GOVPULSE_KAFKA_* settings, so output and input (Faust)
    always connect the same way. `on_delivery` is called for failed records only
    (`delivery.report.only.error`): a Python call per acknowledged record cost ~1.5 µs.
    """
    if security is None:
        from govpulse.kafka_config import client_config

        security = client_config()
    callback = {"on_delivery": on_delivery, "delivery.report.only.error": True}
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            **security,
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": "lz4",
            "linger.ms": 5,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 500_000,
            "log_level": 3,
            **(callback if on_delivery is not None else {}),
            **(extra or {}),
        }
    )


class Output:
    """A producer whose records of one batch are awaited together by `deliver`.

    The worker keeps two and alternates: while one waits for the broker's acknowledgements of
    batch N (in a thread, the GIL released), batch N+1 is transformed into the other. A batch
    is only acked (its raw offsets committed) after `deliver` returned for it.
    """

    def __init__(
        self,
        bootstrap: str,
        extra: dict[str, Any] | None = None,
        *,
        security: dict[str, Any] | None = None,
    ) -> None:
        self._errors: list[str] = []
        self.producer = output_producer(
            bootstrap, extra, security=security, on_delivery=self._on_delivery
        )

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._errors.append(f"{message.topic()}: {error.str()}")

    def purge(self, timeout: float = 10.0) -> None:
        """Drop what is not sent yet and wait for the requests in flight (a batch given up on:
        it is read again). Blocks: call it from a thread."""
        self.producer.purge(in_queue=True, in_flight=False)
        self.producer.flush(timeout)  # requests already sent: answered (or timed out) now
        self._errors = []  # the purged records' errors are not the next batch's

    def deliver(self, timeout: float = 60.0) -> None:
        """Block until every produced record is acknowledged; `DeliveryFailed` otherwise."""
        left = self.producer.flush(timeout)
        errors, self._errors = self._errors, []
        if left or errors:
            raise DeliveryFailed(
                f"{left} output records unacknowledged after {timeout:.0f} s, {len(errors)}"
                f" failed (first: {errors[:1]}); the batch will be re-read"
            )


class BatchProcessor:
    """Routes a batch of one type's raw records into an `Output` (acknowledged by its
    `deliver`)."""

    def __init__(self, event_type: str, transformer: Transformer, dedup: Dedup) -> None:
        self.event_type = event_type
        self.transformer = transformer
        self.dedup = dedup
        self.raw_topic = catalog.raw_topic(event_type)
        self.clean_topic = catalog.clean_topic(event_type)
        self.dlq_topic = catalog.dlq_topic(event_type)
        self.dup_topic = catalog.dup_topic(event_type)
        self.metrics = _Metrics(event_type)

    def route(
        self, records: Sequence[RawMessage], output: Output, now_ms: int | None = None
    ) -> BatchCounts:
        """Transform and produce every record (not yet acknowledged: `output.deliver()`)."""
        now_ms = now_ms if now_ms is not None else time.time_ns() // 1_000_000
        counts = BatchCounts(consumed=len(records))
        producer = output.producer
        produce, clean_topic = producer.produce, self.clean_topic
        process, seen, remember = (
            self.transformer.process,
            self.dedup.seen,
            self.dedup.remember,
        )
        ages: list[int] = []
        for record in records:
            value, partition, offset = record.value(), record.partition(), record.offset()
            result = process(value or b"", partition, offset, now_ms)
            if type(result) is Cleaned:
                if seen(result.event_id):
                    counts.duplicates += 1
                    headers = self._lineage(partition, offset, now_ms)
                    produce(self.dup_topic, b"", record.key(), partition, headers=headers)
                    continue
                try:
                    produce(clean_topic, result.value, result.event_id, partition)
                except KafkaException as error:
                    if error.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE:
                        raise
                    detail = f"clean record of {len(result.value)} bytes: {error.args[0].str()}"
                    self._dead_letter(producer, record, Reason.TOO_LARGE, detail, counts, now_ms)
                    continue
                remember(result.event_id, partition, offset, now_ms)
                counts.clean += 1
                produced_at = result.record.get("produced_at")
                if type(produced_at) is int:
                    ages.append(now_ms - produced_at)
            else:
                self._dead_letter(producer, record, result.reason, result.detail, counts, now_ms)
        producer.poll(0)  # serve failed deliveries' callbacks early
        counts.persist = self.dedup.flush(now_ms)
        self._count(counts, ages)
        return counts

    def _dead_letter(
        self,
        producer: Producer,
        record: RawMessage,
        reason: Reason,
        detail: str,
        counts: BatchCounts,
        now_ms: int,
    ) -> None:
        """The raw bytes to dlq.<type> with reason and lineage. Bytes too large for the output
        producer (a raw record near the limit plus these headers) are left out, not retried
        forever: the raw record keeps them at the lineage's offset, within its retention."""
        code = str(reason)
        counts.dead_lettered[code] = counts.dead_lettered.get(code, 0) + 1
        value, partition, offset = record.value(), record.partition(), record.offset()
        headers = self._lineage(partition, offset, now_ms)
        headers += [("reason", code.encode()), ("detail", detail.encode())]
        try:
            producer.produce(self.dlq_topic, value, record.key(), partition, headers=headers)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE:
                raise
            size = len(value or b"")
            headers += [("payload_omitted", str(size).encode())]
            producer.produce(self.dlq_topic, b"", record.key(), partition, headers=headers)

    def _lineage(self, partition: int, offset: int, now_ms: int) -> Headers:
        return [
            ("source_topic", self.raw_topic.encode()),
            ("source_partition", str(partition).encode()),
            ("source_offset", str(offset).encode()),
            ("first_seen", str(now_ms).encode()),
        ]

    def _count(self, counts: BatchCounts, ages_ms: list[int]) -> None:
        self.metrics.consumed.inc(counts.consumed)
        self.metrics.clean.inc(counts.clean)
        self.metrics.duplicates.inc(counts.duplicates)
        for reason, count in counts.dead_lettered.items():
            self.metrics.dead_lettered(reason, count)
        for age in ages_ms[:: max(1, len(ages_ms) // 100)]:  # a sample is enough
            self.metrics.age.observe(age / 1000)


REASONS = tuple(str(reason) for reason in Reason)
