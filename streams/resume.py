"""What a worker's predecessor already wrote for the raw records it is about to read again.

Exactly-once output without broker transactions (the embedded broker has none, and Faust's
exactly-once needs them): the outcomes of raw.<type> partition p go to partition p of
clean/dlq/dup.<type> (streams/batch.py), and only the owner of raw p writes there. A worker
that takes p over starts at the committed offset c; whatever its predecessor wrote for raw
offsets >= c before it died or lost p is on the tails of those three partitions, each outcome
carrying its raw offset (schemas/lineage.py). Reading the tails back gives the raw offsets
to skip — and the event ids of the clean ones, which the de-duplication table must know
(the predecessor may have died before persisting them).

How far back to read: a worker routes batch k while k-1 is being acknowledged, and only after
k-2 was committed (streams/app.py). Outcomes of uncommitted batches (raw offsets >= c) can
therefore interleave with those of the last committed batch, never with anything older: once
a partition's read reaches an outcome whose raw offset is below c - `margin`, everything of
offsets >= c lies after it. One batch spans at most a batch size of offsets in a partition,
and a successor may have committed only skipped records (a partial batch) inside the
predecessor's zone, so `margin` is twice the batch size; a predecessor that ran with a larger
batch size than twice this one's is not covered (GOVPULSE_STREAMS_BATCH_SIZE, lowered by more
than half across a restart).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, Message

from govpulse.offsets import Ends, read_ranges, topic_ends
from govpulse.schemas import catalog
from govpulse.schemas.lineage import CleanLineage, header_lineage
from govpulse.schemas.wire_format import WireFormatError, schema_id_of
from govpulse.schemas.writer_schemas import UnusableSchema

log = logging.getLogger("govpulse.streams")

READ_TIMEOUT_S = 60.0


@dataclass
class Written:
    """Raw offsets of one partition whose outcome is already on an output partition."""

    offsets: set[int] = field(default_factory=set)
    clean_ids: dict[int, str] = field(default_factory=dict)  # raw offset → event id
    keys: dict[int, bytes | None] = field(default_factory=dict)  # raw offset → outcome's key
    # nothing was committed: the raw topic may be a recreated one whose offsets the outputs'
    # old records name too, so a record is skipped only when its key matches its outcome's
    verify_keys: bool = False

    def written(self, offset: int, key: bytes | None) -> bool:
        """Whether the raw record at `offset` (with `key`) has its outcome written already."""
        if offset not in self.offsets:
            return False
        return not self.verify_keys or same_key(key, self.keys.get(offset))

    def __bool__(self) -> bool:
        return bool(self.offsets)


Outcome = Callable[[Message], int | None]  # the raw offset of an outcome of raw partition p


class TailReader:
    """Reads the output partitions' tails back with a consumer of its own (no group, no
    commits): rare (on assignment changes), so it is simple rather than fast."""

    def __init__(
        self, bootstrap: str, group: str, security: dict[str, Any], writer_schema: Any
    ) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,  # never joined, never committed: assign mode
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",  # a start deleted by retention: from low
                "fetch.wait.max.ms": 10,
                "log_level": 3,
                **security,
            }
        )
        self.writer_schema = writer_schema
        self.bootstrap, self.security = bootstrap, security
        self._lineages: dict[str, CleanLineage] = {}

    def ends(self, event_types: Iterable[str]) -> Ends:
        """The output partitions' true ends (the embedded broker's high watermark is not)."""
        topics = [catalog.topic(stage, t) for t in event_types for stage in catalog.OUTCOMES]
        return topic_ends(self.bootstrap, topics, READ_TIMEOUT_S, security=self.security)

    def written(
        self, event_type: str, partition: int, committed: int, margin: int, ends: Ends
    ) -> Written:
        """Outcomes of raw.<event_type> partition `partition` at offsets >= `committed`;
        `ends`: from `ends()`, taken after the previous owner stopped writing."""
        found = Written()
        for stage in catalog.OUTCOMES:
            topic = catalog.topic(stage, event_type)
            offset_of = self._offset_reader(stage, event_type, partition)
            low, end = ends.get((topic, partition), (0, 0))
            for message, offset in self._tail(
                topic, partition, (low, end), committed - margin, offset_of, margin
            ):
                if offset is None or offset < committed:
                    continue
                found.offsets.add(offset)
                found.keys[offset] = message.key()
                if stage == "clean" and message.key():
                    found.clean_ids[offset] = (message.key() or b"").decode()
        return found

    def _offset_reader(self, stage: str, event_type: str, partition: int) -> Outcome:
        """The raw offset of an outcome of `partition` (None: another partition's, or a record
        whose lineage does not decode — not ours to skip)."""
        if stage != "clean":

            def from_headers(message: Message) -> int | None:
                found = header_lineage(message.headers())
                return found[1] if found is not None and found[0] == partition else None

            return from_headers
        lineage = self._lineages.get(event_type)
        if lineage is None:
            lineage = self._lineages[event_type] = CleanLineage(event_type, self.writer_schema)

        def from_fields(message: Message) -> int | None:
            value = message.value() or b""
            try:  # the registry unreachable raises: the sync fails and is tried again
                lineage.writer(schema_id_of(value))
            except (WireFormatError, KeyError, UnusableSchema):
                return None  # not framed, or a schema id no worker writes under: not ours
            try:
                source_partition, offset, _ = lineage(value)
            except Exception:  # not Avro of that schema: not a record a worker wrote
                return None
            return offset if source_partition == partition else None

        return from_fields

    def _tail(
        self,
        topic: str,
        partition: int,
        bounds: tuple[int, int],
        below: int,
        offset_of: Outcome,
        chunk: int,
    ) -> list[tuple[Message, int | None]]:
        """The partition's records back from its end with their raw offsets, chunk by chunk,
        until a chunk holds an outcome of a raw offset below `below` (or the start is reached)."""
        low, end = bounds
        chunk = max(1000, chunk)
        read: list[tuple[Message, int | None]] = []
        while end > low:
            begin = max(low, end - chunk)
            pairs = [(m, offset_of(m)) for m in self._read(topic, partition, begin, end)]
            read = pairs + read
            if any(o is not None and o < below for _, o in pairs):
                break
            end, chunk = begin, chunk * 2
        return read

    def _read(self, topic: str, partition: int, begin: int, end: int) -> list[Message]:
        """Records [begin, end) of one partition."""
        return list(read_ranges(self.consumer, {(topic, partition): (begin, end)}, READ_TIMEOUT_S))

    def close(self) -> None:
        self.consumer.close()


def same_key(raw: bytes | None, outcome: bytes | None) -> bool:
    """A raw record's key against its outcome's: dead letters and duplicate markers carry the
    raw key, clean records the event id in canonical form (lower-case, hyphenated)."""
    if not raw or not outcome:
        return False
    if raw == outcome:
        return True
    try:
        return str(uuid.UUID(raw.decode().strip("{}"))).encode() == outcome
    except ValueError:
        return False


def describe(written: Iterable[tuple[tuple[str, int], Written]]) -> str:
    """`raw.complaint:1 3 outcomes (from 1200)` for the log."""
    return ", ".join(
        f"{topic}:{partition} {len(w.offsets)} (from {min(w.offsets)})"
        for (topic, partition), w in written
        if w
    )
