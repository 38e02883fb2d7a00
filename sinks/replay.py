"""Re-inserting an interrupted insert whole: its token, and its ranges read back from Kafka.

A crash can stop an insert half-way through its materialized views: `events_<type>` holds the
block and a rollup does not. The insert's token names every range it held
(`<table>|topic:partition:first-last,…`), so the next owner of any of those partitions can
rebuild the same block — its own replayed batch, the other ranges read back by offset — and
insert it under the same token: tables that hold the block drop it, tables that missed it
get it. Rebuilding needs exactly those offsets; when Kafka no longer has them (retention),
`RangeUnavailable` sends the caller back to the older "is the first record stored?" check.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

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
    """Reads offsets first..last of one partition back, outside the consumer group.

    Used from the sink's writer thread only; one consumer, assigned one range at a time.
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

    def read(self, topic: str, partition: int, first: int, last: int) -> list[Message]:
        if self._consumer is None:
            self._consumer = Consumer(self._config)
        consumer = self._consumer
        where = f"{topic}:{partition}:{first}-{last}"
        # Only the low watermark: Tansu reports the high one as its last batch's first offset
        # + 1 (see govpulse.offsets), so it can be below an offset it holds.
        low, _ = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=self.timeout_s
        )
        if low > first:  # deleted by retention
            raise RangeUnavailable(f"{where} is no longer in Kafka (it starts at {low})")
        consumer.assign([TopicPartition(topic, partition, first)])
        found: list[Message] = []
        deadline = time.monotonic() + self.timeout_s
        try:
            while not found or found[-1].offset() < last:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"reading {where} back from Kafka took more than {self.timeout_s:.0f} s"
                    )
                for message in consumer.consume(10_000, 0.5):
                    if message.error() is not None:
                        if message.error().code() in _GONE:
                            raise RangeUnavailable(f"{where}: {message.error()}")
                        continue  # transient: retried until the timeout
                    if message.offset() > last and not found:
                        raise RangeUnavailable(f"{where}: its first offset is gone")
                    if first <= message.offset() <= last:
                        found.append(message)
                if found and found[0].offset() != first:
                    raise RangeUnavailable(f"{where}: its first offset is gone")
        finally:
            consumer.unassign()
        return found

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None


# (topic, partition, first, last) -> the records of that range, as the sink batches them
FetchRange = Callable[[str, int, int, int], list[Any]]
