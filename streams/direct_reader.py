"""Reads the raw partitions Faust assigned to this worker with a confluent-kafka consumer.

Faust decides who owns what: its assignor gives each worker the active partitions of the
dedup tables' changelogs (co-partitioned across types), recovers those tables after every
rebalance and keeps them changelogged. Partition p of `dedup-<type>-changelog` active here
means raw.<type> partition p is ours. The records themselves are fetched with librdkafka in
batches — Faust's own fetcher hands messages to streams one await at a time and capped a
worker at ~3-4k events/s, where this consumer reads ~500k msg/s from the same broker.
Offsets are committed (group `<app id>-raw`, assign mode) only after a batch's output was
acknowledged; on every assignment the outcomes already written past the committed offsets
are read back (streams/resume.py) and those records are not routed again: exactly once.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import faust
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from govpulse.monitoring import metrics
from govpulse.offsets import Ends, position
from govpulse.schemas import catalog
from govpulse.streams.resume import TailReader, Written, describe

log = logging.getLogger("govpulse.streams")
Owned = frozenset[tuple[str, int]]


class DirectReader:
    """A confluent-kafka consumer that follows Faust's assignment of the dedup changelogs."""

    def __init__(
        self,
        app: faust.App,
        bootstrap: str,
        event_types: tuple[str, ...],
        security: dict[str, Any],
        writer_schema: Any,
        margin: int,
    ) -> None:
        """`writer_schema`: schema id → parsed schema (for the clean records read back);
        `margin`: how far back of a committed offset a predecessor's outcomes may interleave
        (twice the batch size, see streams/resume.py)."""
        self.app = app
        self.raw_of_changelog = {
            f"{app.conf.id}-dedup-{t}-changelog": catalog.raw_topic(t) for t in event_types
        }
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"{app.conf.id}-raw",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 50,
                "log_level": 3,
                **security,
            }
        )
        self.tails = TailReader(bootstrap, f"{app.conf.id}-resume", security, writer_schema)
        self.margin = margin
        self.type_of = {catalog.raw_topic(t): t for t in event_types}
        self.owned: Owned = frozenset()
        self._committed: dict[tuple[str, int], int] = {}  # committed offset of owned partitions
        # per owned partition: raw offsets whose outcome the previous owner wrote already
        self.written: dict[tuple[str, int], Written] = {}

    def wanted(self) -> Owned:
        """The raw partitions this worker owns now; none while Faust rebalances or recovers."""
        if self.app.rebalancing or getattr(self.app, "in_recovery", False):
            return frozenset()
        return frozenset(
            (self.raw_of_changelog[tp.topic], tp.partition)
            for tp in self.app.assignor.assigned_actives()
            if tp.topic in self.raw_of_changelog
        )

    def sync(self) -> bool:
        """Follow the assignment; True when it changed. Positions restart at committed offsets."""
        wanted = self.wanted()
        if wanted == self.owned:
            return False
        partitions = [TopicPartition(topic, partition) for topic, partition in sorted(wanted)]
        if partitions:
            committed = self.consumer.committed(partitions, timeout=30)
            for tp in committed:
                if tp.error is not None:  # not "none committed": starting over would replay
                    raise KafkaException(tp.error)  # days of raw past the dedup window
                if tp.offset < 0:
                    tp.offset = OFFSET_BEGINNING
            ends = self.tails.ends({self.type_of[tp.topic] for tp in committed})
            self.written = {(tp.topic, tp.partition): self._written(tp, ends) for tp in committed}
            self.consumer.assign(committed)
            self._committed = {(tp.topic, tp.partition): tp.offset for tp in committed}
            if found := describe(self.written.items()):
                log.info("outcomes already written, not routed again: %s", found)
        else:
            self.consumer.unassign()
            self._committed = {}
            self.written = {}
        self._forget_lag(self.owned - wanted)
        self.owned = wanted
        return True

    def _written(self, tp: TopicPartition, ends: Ends) -> Written:
        """What was written for this raw partition past its committed offset (from its low
        watermark when nothing was committed: a worker may have died before its first commit)."""
        start = tp.offset
        if start < 0:
            start, _ = self.consumer.get_watermark_offsets(tp, timeout=30)
        event_type = self.type_of[tp.topic]
        written = self.tails.written(event_type, tp.partition, start, self.margin, ends)
        if tp.offset < 0 and written:
            written.verify_keys = True
            log.warning(
                "%s:%d has nothing committed but %d outcomes on its output partitions: a worker "
                "died before its first commit, or the raw topic was recreated with its outputs "
                "kept; records whose key matches their outcome's are not routed again",
                tp.topic, tp.partition, len(written.offsets),
            )  # fmt: skip
        return written

    def unwritten(self, messages: list[Message]) -> list[Message]:
        """`messages` without those whose outcome the previous owner wrote already."""
        if not any(self.written.values()):
            return messages
        kept = []
        for message in messages:
            topic, partition, offset = position(message)
            written = self.written.get((topic, partition))
            if written and written.written(offset, message.key()):
                written.offsets.discard(offset)
                metrics.STREAMS_RESUME_SKIPPED.labels(self.type_of[topic]).inc()
                continue
            kept.append(message)
        return kept

    def take(self, max_messages: int, within_s: float) -> list[Message]:
        """Up to `max_messages`; waits up to `within_s` only when there is no backlog."""
        if not self.owned:
            return []
        messages = self.consumer.consume(max_messages, 0)  # what librdkafka prefetched
        if len(messages) < max_messages // 2:
            messages += self.consumer.consume(max_messages - len(messages), within_s)
        return [m for m in messages if m.error() is None]

    def commit(self, messages: list[Message]) -> None:
        """Commit past the last record of each partition in `messages` (synchronously)."""
        ends: dict[tuple[str, int], int] = {}
        for message in messages:
            topic, partition, offset = position(message)
            ends[(topic, partition)] = max(ends.get((topic, partition), -1), offset + 1)
        if ends:
            self.consumer.commit(
                offsets=[TopicPartition(t, p, end) for (t, p), end in ends.items()],
                asynchronous=False,
            )
            self._committed.update(ends)

    def update_lag(self) -> None:
        """Export end - committed per owned partition, from the ends librdkafka last fetched
        (no broker round trip: called from the event loop every few seconds)."""
        for (topic, partition), committed in list(self._committed.items()):
            low, high = self.consumer.get_watermark_offsets(
                TopicPartition(topic, partition), cached=True
            )
            if high < 0:  # not fetched yet
                continue
            start = committed if committed >= 0 else low  # nothing committed: from the start
            lag = max(0, high - max(start, low))
            metrics.STREAMS_CONSUMER_LAG.labels(topic, str(partition)).set(lag)

    def _forget_lag(self, partitions: Owned) -> None:
        for topic, partition in partitions:
            with contextlib.suppress(KeyError):
                metrics.STREAMS_CONSUMER_LAG.remove(topic, str(partition))

    def forget(self) -> None:
        """Drop the assignment: the next `sync` assigns again from the committed offsets (what
        was read since, and not processed, is read again)."""
        self.consumer.unassign()
        self._forget_lag(self.owned)
        self.owned = frozenset()
        self._committed = {}
        self.written = {}

    def close(self) -> None:
        self.consumer.close()
        self.tails.close()
