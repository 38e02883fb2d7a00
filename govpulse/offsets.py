"""True end offsets of partitions, on Kafka and on the embedded Tansu broker alike.

Tansu (v0.6.0-510f3e2) reports a partition's high watermark as the *first* offset of its
last record batch + 1, not the last offset + 1: 7 records in one batch give high = 1.
Reading from `high - 1` returns that whole last batch, whose last offset + 1 is the true end.
On Kafka the same read returns exactly one record at `high - 1`, so the result is `high`:
one code path, correct on both.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, TopicPartition


def end_offsets(
    bootstrap: str,
    topic: str,
    timeout: float = 10.0,
    *,
    security: dict[str, Any] | None = None,
) -> dict[int, tuple[int, int]]:
    """partition → (low, end) for every partition of `topic`; end = last offset + 1.

    `security`: librdkafka TLS/SASL properties; default from this process's GOVPULSE_KAFKA_*.
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
            "log_level": 0,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics[topic]
        result: dict[int, tuple[int, int]] = {}
        probe: list[TopicPartition] = []
        for partition in metadata.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout)
            result[partition] = (low, high)
            if high > low:
                probe.append(TopicPartition(topic, partition, high - 1))
        if probe:
            consumer.assign(probe)
            pending = {tp.partition for tp in probe}
            quiet_since, deadline = time.monotonic(), time.monotonic() + timeout
            while pending and time.monotonic() < deadline:
                message = consumer.poll(0.1)
                if message is None or message.error() is not None:
                    if time.monotonic() - quiet_since > 1.0:
                        pending.clear()  # no more records behind the ones seen
                    continue
                quiet_since = time.monotonic()
                low, end = result[message.partition()]
                result[message.partition()] = (low, max(end, message.offset() + 1))
        return result
    finally:
        consumer.close()


def record_count(bootstrap: str, topic: str, timeout: float = 10.0) -> int:
    """Records in `topic` now: the sum over its partitions of true end − low offset."""
    return sum(end - low for low, end in end_offsets(bootstrap, topic, timeout).values())
