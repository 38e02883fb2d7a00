"""True end offsets of partitions, on Kafka and on the embedded Tansu broker alike.

Tansu (v0.6.0-510f3e2) reports a partition's high watermark as the *first* offset of its
last record batch + 1, not the last offset + 1: 7 records in one batch give high = 1.
Reading from `high - 1` returns that whole last batch, whose last offset + 1 is the true end.
On Kafka the same read returns exactly one record at `high - 1`, so the result is `high`:
one code path, correct on both. The read stops at each partition's end-of-partition event,
so several topics cost one consumer and about one fetch round trip.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

Ends = dict[tuple[str, int], tuple[int, int]]  # (topic, partition) → (low, end)


def partition_of(message: Message) -> tuple[str, int]:
    """(topic, partition) of a consumed record or partition event (end of partition, offset
    out of range). confluent_kafka types both optional for the client-level errors that
    have neither: those raise ValueError here."""
    topic, partition = message.topic(), message.partition()
    if topic is None or partition is None:
        raise ValueError(f"a Kafka message without a partition: {message.error()}")
    return topic, partition


def position(message: Message) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed record (`message.error()` is None)."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if topic is None or partition is None or offset is None:
        raise ValueError(f"a Kafka message without a position: {message.error()}")
    return topic, partition, offset


def topic_ends(
    bootstrap: str,
    topics: Sequence[str],
    timeout: float = 30.0,
    *,
    security: dict[str, Any] | None = None,
) -> Ends:
    """(topic, partition) → (low, end) with end = last offset + 1; topics absent are left out.

    `security`: librdkafka TLS/SASL properties; default from this process's GOVPULSE_KAFKA_*.
    Raises TimeoutError if a partition's end is not reached within `timeout`.
    """
    if security is None:
        from govpulse.kafka_config import client_config

        security = client_config()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            **security,
            "group.id": "govpulse-offsets",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "log_level": 0,
        }
    )
    try:
        result: Ends = {}
        probe: list[TopicPartition] = []
        metadata = consumer.list_topics(timeout=timeout).topics
        for topic in topics:
            if topic not in metadata:
                continue
            for partition in metadata[topic].partitions:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout
                )
                result[(topic, partition)] = (low, high)
                if high > low:
                    probe.append(TopicPartition(topic, partition, high - 1))
        if not probe:
            return result
        consumer.assign(probe)
        pending = {(tp.topic, tp.partition) for tp in probe}
        deadline = time.monotonic() + timeout
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"end offsets of {sorted(pending)} not found in {timeout} s")
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(partition_of(message))
                continue
            topic, partition, offset = position(message)
            low, end = result[(topic, partition)]
            result[(topic, partition)] = (low, max(end, offset + 1))
        return result
    finally:
        consumer.close()


def end_offsets(
    bootstrap: str,
    topic: str,
    timeout: float = 10.0,
    *,
    security: dict[str, Any] | None = None,
) -> dict[int, tuple[int, int]]:
    """partition → (low, end) for every partition of `topic`; end = last offset + 1."""
    ends = topic_ends(bootstrap, [topic], timeout, security=security)
    return {partition: span for (_, partition), span in ends.items()}


def record_counts(bootstrap: str, topics: Sequence[str], timeout: float = 30.0) -> dict[str, int]:
    """topic → records in it now (true end − low summed over partitions); absent topics: 0."""
    counts = dict.fromkeys(topics, 0)
    for (topic, _), (low, end) in topic_ends(bootstrap, topics, timeout).items():
        counts[topic] += end - low
    return counts


def committed_at_ends(
    bootstrap: str, group: str, topics: Sequence[str], timeout: float = 10.0
) -> bool:
    """Whether consumer group `group` committed every non-empty partition of `topics` at its
    true end: everything there was consumed and acknowledged (a stage caught up)."""
    ends = {key: end for key, (_low, end) in topic_ends(bootstrap, topics, timeout).items()}
    ends = {key: end for key, end in ends.items() if end > 0}
    if not ends:
        return True
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0})
    try:
        found = consumer.committed([TopicPartition(t, p) for t, p in ends], timeout)
    finally:
        consumer.close()
    return all(ends[(tp.topic, tp.partition)] == tp.offset for tp in found)


def read_ranges(
    consumer: Consumer, ranges: Mapping[tuple[str, int], tuple[int, int]], timeout: float
) -> Iterator[Message]:
    """Every record of each (topic, partition)'s [start, end) with one assigned consumer; the
    consumer is unassigned after. TimeoutError naming the partitions not read to their end
    within `timeout` (`end`: a true end, see `topic_ends`, or a record's offset)."""
    wanted = {key: end for key, (start, end) in ranges.items() if start < end}
    if not wanted:
        return
    consumer.assign([TopicPartition(t, p, ranges[(t, p)][0]) for t, p in wanted])
    try:
        deadline = time.monotonic() + timeout
        while wanted:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {sorted(wanted)} to the end in {timeout:.0f} s")
            for message in consumer.consume(10_000, 0.5):
                if message.error() is not None:
                    continue
                topic, partition, offset = position(message)
                end = wanted.get((topic, partition))
                if end is not None and offset < end:
                    yield message
                    if offset + 1 >= end:
                        del wanted[(topic, partition)]
    finally:
        consumer.unassign()
