"""Re-inserting an interrupted insert whole: its token, and its ranges read back from Kafka.

A crash can stop an insert half-way through its materialized views: `events_<type>` holds the
block and a rollup does not. The insert's token names every range it held
(`<table>|topic:partition:first-last,…`), so the next owner of any of those partitions can
rebuild the same block — its own replayed batch, the other ranges read back by offset — and
insert it under the same token: tables that hold the block drop it, tables that missed it
get it. Rebuilding needs exactly those offsets, and leaving out exactly the records the
original left out as duplicate events (recorded with its ranges: sinks/writer.py); when Kafka
no longer has them (retention), `RangeUnavailable` sends the caller back to the older "is the
first record stored?" check.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from govpulse.offsets import position

READ_TIMEOUT_S = 30.0
_GONE = (
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_TOPIC,
    KafkaError._UNKNOWN_PARTITION,
    KafkaError.OFFSET_OUT_OF_RANGE,
)


class TokenRange(NamedTuple):
    topic: str
    partition: int
    first: int
    last: int


class RangeUnavailable(RuntimeError):
    """The offsets of a range cannot all be read back (deleted by retention, or malformed)."""


def parse_token(token: str) -> tuple[str, list[TokenRange]]:
    """`<table>[@<scope>]|topic:partition:first-last,…` → (table, ranges). ValueError when
    malformed."""
    table, sep, body = token.partition("|")
    table = table.partition("@")[0]
    if not sep or not table or not body:
        raise ValueError(f"not a sink insert token: {token!r}")
    ranges = []
    for part in body.split(","):
        topic, partition, span = part.rsplit(":", 2)
        first, last = span.split("-", 1)
        ranges.append(TokenRange(topic, int(partition), int(first), int(last)))
    return table, ranges


class RangeReader:
    """Reads ranges of offsets back, outside the consumer group, all of an insert at once.

    Used from the sink's writer thread only; one consumer, assigned one insert's partitions
    at a time (a range per partition read one by one cost a fetch wait each: 19 ranges, 10 s).
    """

    def __init__(self, config: dict[str, Any], timeout_s: float = READ_TIMEOUT_S) -> None:
        self._config = {
            **config,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
        }
        self.timeout_s = timeout_s
        self._consumer: Consumer | None = None

    def read(self, ranges: Sequence[TokenRange]) -> list[list[Message]]:
        """The records of each range, in order; RangeUnavailable when any offset is gone."""
        if self._consumer is None:
            self._consumer = Consumer(self._config)
        consumer = self._consumer
        spans: dict[tuple[str, int], tuple[int, int]] = {}  # partition → [first, last] wanted
        for r in ranges:
            first, last = spans.get((r.topic, r.partition), (r.first, r.last))
            spans[(r.topic, r.partition)] = (min(first, r.first), max(last, r.last))
        for (topic, partition), (first, _) in spans.items():
            # Only the low watermark: Tansu reports the high one as its last batch's first
            # offset + 1 (see govpulse.offsets), so it can be below an offset it holds.
            low, _ = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=self.timeout_s
            )
            if low > first:  # deleted by retention
                raise RangeUnavailable(
                    f"{topic}:{partition}:{first}- is no longer in Kafka (it starts at {low})"
                )
        consumer.assign([TopicPartition(t, p, first) for (t, p), (first, _) in spans.items()])
        try:
            found = self._read_until(consumer, spans)
        finally:
            consumer.unassign()
        return [_slice(found[(r.topic, r.partition)], r) for r in ranges]

    def _read_until(
        self, consumer: Consumer, spans: dict[tuple[str, int], tuple[int, int]]
    ) -> dict[tuple[str, int], list[Message]]:
        found: dict[tuple[str, int], list[Message]] = {key: [] for key in spans}
        pending = set(spans)
        deadline = time.monotonic() + self.timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"reading {_describe(spans, pending)} back from Kafka took more than "
                    f"{self.timeout_s:.0f} s"
                )
            for message in consumer.consume(10_000, 0.1):
                error = message.error()
                if error is not None:
                    if error.code() in _GONE:  # a partition's, or the topic's (no partition)
                        topic, partition = message.topic(), message.partition()
                        gone = pending
                        if topic is not None and partition is not None:
                            gone = {(topic, partition)}
                        raise RangeUnavailable(f"{_describe(spans, gone)}: {error}")
                    continue  # transient: retried until the timeout
                topic, partition, offset = position(message)
                key = (topic, partition)
                if key not in pending:
                    continue
                first, last = spans[key]
                if offset > last and not found[key]:
                    raise RangeUnavailable(f"{_describe(spans, {key})}: its first offset is gone")
                if first <= offset <= last:
                    found[key].append(message)
                if offset >= last:
                    pending.discard(key)
        return found

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


def _describe(spans: dict[tuple[str, int], tuple[int, int]], keys: set[tuple[str, int]]) -> str:
    return ", ".join(f"{t}:{p}:{spans[(t, p)][0]}-{spans[(t, p)][1]}" for t, p in sorted(keys))


def _slice(messages: list[Message], wanted: TokenRange) -> list[Message]:
    """The records of one range out of its partition's read; RangeUnavailable if its first
    offset is missing (compacted or deleted)."""
    part = [m for m in messages if wanted.first <= position(m)[2] <= wanted.last]
    if not part or position(part[0])[2] != wanted.first:
        where = f"{wanted.topic}:{wanted.partition}:{wanted.first}-{wanted.last}"
        raise RangeUnavailable(f"{where}: its first offset is gone")
    return part


# ranges -> the records of each range, as the sink batches them (one list per range, in order)
FetchRanges = Callable[[Sequence[TokenRange]], list[list[Any]]]
