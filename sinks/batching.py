"""Per topic-partition batches: what the sink holds between polling Kafka and inserting.

Pure bookkeeping, no Kafka and no ClickHouse, so the cutting rules are tested alone:
- records of one partition go into one open batch, in offset order;
- a flush cycle takes every open batch (the sink decides when: enough rows, or the oldest
  record waited long enough) — except batches replaying a range, which are cut exactly at
  the range's last offset;
- a replayed range comes from `sink_batches`: offsets the sink (or a previous owner of the
  partition) was about to insert but never committed, with the token of the insert they
  went into. Cutting the first batches after a restart at the same offsets is what lets the
  sink insert that group again under the same token (see sinks/writer.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

TopicPartition = tuple[str, int]


class Range(NamedTuple):
    """Offsets first..last of one partition, and the token of the insert they went into."""

    first: int
    last: int
    token: str = ""  # '' when written by a sink older than migration 0009


@dataclass
class Batch:
    """Records of one partition, offsets `first`..`last`; `replay` when cut at a known range."""

    topic: str
    partition: int
    first: int
    last: int
    opened_at: float
    records: list[Any] = field(default_factory=list)
    replay_last: int | None = None  # set while the batch replays a range ending there
    replay_token: str = ""  # the token the replayed range was inserted under ('' unknown)

    @property
    def replay(self) -> bool:
        return self.replay_last is not None

    @property
    def key(self) -> TopicPartition:
        return (self.topic, self.partition)

    def describe(self) -> str:
        """`topic:partition:first-last`, the unit of the deduplication token."""
        return f"{self.topic}:{self.partition}:{self.first}-{self.last}"


class Batcher:
    """Open and cut batches of every partition the sink is assigned."""

    def __init__(self) -> None:
        self._open: dict[TopicPartition, Batch] = {}
        self._ready: list[Batch] = []
        self._plans: dict[TopicPartition, deque[Range]] = {}
        self.rows = 0  # records held, open and cut

    def set_plan(self, key: TopicPartition, ranges: Iterable[Range]) -> None:
        """Replay these ranges of a partition as batches of their own."""
        plan = deque(sorted(Range(*r) for r in ranges))
        if plan:
            self._plans[key] = plan
        else:
            self._plans.pop(key, None)

    def planned(self, key: TopicPartition) -> list[Range]:
        return list(self._plans.get(key, ()))

    def add(self, topic: str, partition: int, offset: int, record: Any, now: float) -> None:
        key = (topic, partition)
        batch = self._open.get(key)
        if batch is not None and self._must_cut(batch, offset):
            self._cut(key)
            batch = None
        if batch is None:
            batch = self._start(key, offset, now)
        batch.records.append(record)
        batch.last = offset
        self.rows += 1
        if batch.replay_last is not None and offset >= batch.replay_last:
            self._cut(key)

    def extend(
        self, topic: str, partition: int, offsets: list[int], records: list[Any], now: float
    ) -> None:
        """`add` for a run of one partition's records (what one poll returns, in order)."""
        key = (topic, partition)
        batch = self._open.get(key)
        if key in self._plans or (batch is not None and batch.replay_last is not None):
            for offset, record in zip(offsets, records, strict=True):
                self.add(topic, partition, offset, record, now)
            return
        if batch is None:
            batch = self._open[key] = Batch(topic, partition, offsets[0], offsets[0], now)
        batch.records.extend(records)
        batch.last = offsets[-1]
        self.rows += len(records)

    def _must_cut(self, batch: Batch, offset: int) -> bool:
        if batch.replay_last is not None:
            return offset > batch.replay_last  # the range's last offset is gone: end it here
        plan = self._plans.get(batch.key)
        if not plan:
            return False
        return offset >= plan[0].first  # never run into a replayed range

    def _start(self, key: TopicPartition, offset: int, now: float) -> Batch:
        plan = self._plans.get(key)
        replay = None
        while plan and plan[0].last < offset:  # ranges whose offsets will not come again
            plan.popleft()
        if plan and plan[0].first <= offset:
            replay = plan.popleft()
        if plan is not None and not plan:
            del self._plans[key]
        batch = Batch(key[0], key[1], offset, offset, now)
        if replay is not None:
            batch.replay_last, batch.replay_token = replay.last, replay.token
        self._open[key] = batch
        return batch

    def _cut(self, key: TopicPartition) -> None:
        self._ready.append(self._open.pop(key))

    @property
    def has_cut(self) -> bool:
        """A replayed range is complete: worth flushing without waiting."""
        return bool(self._ready)

    def oldest(self) -> float | None:
        """When the longest-waiting record held arrived (None: nothing held)."""
        times = [b.opened_at for b in self._ready] + [b.opened_at for b in self._open.values()]
        return min(times) if times else None

    def take(self) -> list[Batch]:
        """Every batch ready to insert: cut ones, and open ones that are not replaying a range.

        An open replay batch stays until its last offset arrives: inserting part of a range
        would change the batch the range describes.
        """
        taken, self._ready = self._ready, []
        for key, batch in list(self._open.items()):
            if batch.replay_last is None:
                taken.append(self._open.pop(key))
        self.rows -= sum(len(b.records) for b in taken)
        return taken

    def drop(self, keys: Iterable[TopicPartition]) -> int:
        """Forget batches and plans of partitions no longer assigned; return records dropped."""
        gone = set(keys)
        dropped = [b for b in self._ready if b.key in gone]
        self._ready = [b for b in self._ready if b.key not in gone]
        for key in gone:
            if key in self._open:
                dropped.append(self._open.pop(key))
            self._plans.pop(key, None)
        count = sum(len(b.records) for b in dropped)
        self.rows -= count
        return count
