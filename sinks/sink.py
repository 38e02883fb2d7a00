"""The ClickHouse sink: clean.* and dlq.* → ClickHouse, batched, idempotent, committed after.

A `Sink` owns a confluent-kafka consumer (group `govpulse-sink`, offsets committed by hand) and
a writer thread (`sinks.writer`) inserting through the clickhouse-connect client it is given, so
`govpulse serve` can share one chdb client between the sink and the dashboard API. Drive it
with `run(stop_event)` in a thread, or step it with `poll_once()`; stop with the event (run
closes it) or `close()`.

A flush cycle starts when `max_rows` records are held or the oldest waited `max_wait_ms`; it
inserts one block per table (each clean topic's partitions into `events_<type>`, every
dead-letter partition into `dead_letters`) and, once ClickHouse acknowledged a block, the
consumer commits its offsets (last + 1) — never more. A clean record whose event_id is already
stored, or earlier in the same insert, is left out (one event reaching two raw partitions: see
sinks/writer.py). Before inserting, the writer records the offset ranges in `sink_batches` with
their insert's token (and which records it left out); after a crash between insert and
commit, the next owner of a partition cuts its first batches at exactly those offsets and
inserts the original insert again, whole, under its token (sinks/replay.py): ClickHouse drops
it where it landed and fills in where a crash cut it short (a rollup view not yet written).
While ClickHouse fails, the writer retries with backoff and the consumer pauses its
partitions.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from govpulse.monitoring import metrics
from govpulse.offsets import position
from govpulse.registry import registry_client
from govpulse.schemas import catalog
from govpulse.schemas.writer_schemas import WriterSchemas
from govpulse.sinks.batching import Batch, Batcher
from govpulse.sinks.batching import TopicPartition as Key
from govpulse.sinks.columns import table_for
from govpulse.sinks.dead_letters import dead_letter_row
from govpulse.sinks.replay import RangeReader, TokenRange
from govpulse.sinks.store import DEAD_LETTERS, SinkStore
from govpulse.sinks.writer import Cycle, InsertGroup, Writer

log = logging.getLogger("govpulse.sink")

GROUP_ID = "govpulse-sink"
DEFAULT_MAX_ROWS = 100_000
# bench/e2e at 5k events/s on 2 cores, p99: 100 ms → 1.03–1.05 s; 50 → 1.16–1.21; 200 → 1.17–1.20
DEFAULT_MAX_WAIT_MS = 100
# One cycle (max_rows + one poll) must stay below max_insert_block_size (1,048,576 rows), so
# each table's insert is one block, stored all or nothing — what the replay check relies on.
MAX_ROWS_LIMIT = 1_000_000
LAG_EVERY_S = 1.0
BUSY_POLL_S = 0.005  # how often the consumer looks whether the writer finished
REVOKE_WAIT_S = 60.0  # an insert in flight cannot be interrupted


@dataclass
class SinkStats:
    """What the sink did since it started: for progress lines, `govpulse serve` and tests."""

    rows: dict[str, int]  # by table
    inserts: int
    replays_skipped: int  # replayed ranges found already stored
    replays_reinserted: int  # interrupted inserts re-inserted whole under their token
    failures: int  # failed attempts (inserts, intents, look-ups)
    refused: int  # rows ClickHouse refused for their content, dead-lettered (sinks/isolate.py)
    duplicates_dropped: int  # clean records not inserted: their event_id was stored already
    lag: int  # records not yet committed, over assigned partitions
    paused: bool
    assigned: int
    held: int  # records read and not yet committed

    @property
    def rows_total(self) -> int:
        return sum(self.rows.values())


class Sink:
    """Consumes clean.* and dlq.*, inserts into ClickHouse, commits what was acknowledged."""

    def __init__(
        self,
        client: Client,
        bootstrap: str,
        registry_url: str,
        *,
        event_types: Sequence[str] = catalog.EVENT_TYPES,
        group_id: str = GROUP_ID,
        max_rows: int = DEFAULT_MAX_ROWS,
        max_wait_ms: int = DEFAULT_MAX_WAIT_MS,
        session_timeout_ms: int = 6000,
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
        give_up_after: int = 8,
        crash_after_inserts: int | None = None,
        consumer_config: dict[str, Any] | None = None,
        insert_clients: Sequence[Client] = (),
    ) -> None:
        """`insert_clients`: more connections to the same store, so a cycle's tables are
        inserted concurrently (see sinks/writer.py)."""
        if not 1 <= max_rows <= MAX_ROWS_LIMIT or max_wait_ms < 1:
            raise ValueError(
                f"max_rows={max_rows}, max_wait_ms={max_wait_ms}: expected 1 <= max_rows <= "
                f"{MAX_ROWS_LIMIT:,} (an insert must stay one ClickHouse block), max_wait_ms >= 1"
            )
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": session_timeout_ms,
                "heartbeat.interval.ms": max(500, session_timeout_ms // 4),
                "fetch.wait.max.ms": 20,  # idle long-poll: bounds the wait for new records
                "queued.max.messages.kbytes": 65536,  # prefetch bound (purged while paused)
                "log_level": 3,
                **(consumer_config or {}),
            }
        )
        self.scope = _cluster_scope(self.consumer, bootstrap)
        ledger = f"{group_id}@{self.scope}" if self.scope else group_id  # sink_batches' group
        schemas = WriterSchemas(registry_client(registry_url))
        self.store = SinkStore(client, schemas, ledger)
        self.max_rows = max_rows
        self.max_wait = max_wait_ms / 1000
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self._kinds: dict[str, tuple[str, str]] = {}
        for event_type in event_types:
            self._kinds[catalog.clean_topic(event_type)] = ("clean", event_type)
            self._kinds[catalog.dlq_topic(event_type)] = ("dlq", event_type)
        self.batcher = Batcher()
        self._range_reader = RangeReader(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"{group_id}-replay",  # never joins: assigns ranges, no commits
                "log_level": 3,
                **(consumer_config or {}),
            }
        )
        self.writer = Writer(
            self.store,
            insert_stores=[SinkStore(c, schemas, ledger) for c in insert_clients],
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
            give_up_after=give_up_after,
            crash_after_inserts=crash_after_inserts,
            fetch_ranges=self._read_back,
        )
        self._in_flight = 0  # records submitted to the writer, not yet committed or dropped
        self._unplanned: set[Key] = set()  # assigned; replayed ranges not loaded yet
        self._assigned: set[Key] = set()
        self._committed: dict[Key, int] = {}
        self._seen_end: dict[Key, int] = {}
        self._plan_attempts = 0
        self._plan_retry_at = 0.0
        self._lag_at = 0.0
        self._lag = 0
        self._paused = False
        self._closing = self._closed = False
        self._errors_logged: set[str] = set()
        self.consumer.subscribe(
            list(self._kinds),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        metrics.FRESHNESS.start()
        metrics.DATA_AGE.start()
        metrics.SINK_PAUSED.set(0)

    @property
    def stats(self) -> SinkStats:
        w = self.writer.stats
        return SinkStats(
            rows=dict(w.rows),
            inserts=w.inserts,
            replays_skipped=w.replays_skipped,
            replays_reinserted=w.replays_reinserted,
            failures=w.failures,
            refused=w.refused,
            duplicates_dropped=w.duplicates_dropped,
            lag=self._lag,
            paused=self._paused,
            assigned=len(self._assigned),
            held=self.batcher.rows + self._in_flight,
        )

    # -- the loop ----------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Poll and insert until `stop` is set; then flush what is held, commit, close."""
        try:
            while not stop.is_set():
                self.poll_once()
        finally:
            self.close()

    def poll_once(self, timeout: float = 0.1) -> int:
        """One step: commit what the writer stored, start a cycle when due, read Kafka.

        Returns the rows whose offsets were committed in this step.
        """
        committed = self._collect()
        now = time.monotonic()
        if self._unplanned and now >= self._plan_retry_at:
            self._load_plans()
        self._steer_pause()
        if not self.writer.busy and not self._unplanned and self._due():
            self._submit(self.batcher.take())
        if self.writer.busy and self.batcher.rows >= self.max_rows and not self._paused:
            self.writer.wait(timeout)  # the next cycle is full: let the writer catch up
            messages = self.consumer.consume(1, 0)  # serve callbacks, nothing more
        else:
            wait = self._wait(timeout)
            messages = self.consumer.consume(min(self.max_rows, 10_000), wait)
        if messages:
            self._add(messages)
        committed += self._collect()
        if not self.writer.busy and not self._unplanned and self._due():
            self._submit(self.batcher.take())
        if time.monotonic() >= self._lag_at:
            self._update_lag()
        return committed

    def flush(self, timeout: float = REVOKE_WAIT_S) -> int:
        """Insert and commit everything held now; rows committed. Waits for the writer."""
        committed = 0
        if self.writer.busy:
            self.writer.wait(timeout)
            committed += self._collect()
        if not self._unplanned and not self.writer.busy:
            self._submit(self.batcher.take())
            self.writer.wait(timeout)
        return committed + self._collect()

    def close(self) -> None:
        """Finish the insert in flight, flush what is held (one attempt), commit, leave.

        Idempotent. Call it from the thread that polls (`run` does), never beside `run`.
        """
        if self._closed:
            return
        self._closing = True
        try:
            self._final_flush()
        except Exception:  # closing anyway: what is not committed is re-read
            log.exception("final flush failed; uncommitted records will be re-read")
        finally:
            self.consumer.close()
            self._closed = True
            if self.writer.stop():
                self._range_reader.close()
            else:  # it may be reading a range back: its consumer goes with the process
                log.warning("the sink's writer is still inside an insert; leaving it behind")
            self._forget(set(self._assigned))
            metrics.SINK_PAUSED.set(0)

    def _final_flush(self) -> None:
        """On close or revoke: no more retries; what does not land now is re-read."""
        self.writer.abandon()
        self.writer.wait(REVOKE_WAIT_S)
        self._collect()
        unstored, self.writer.unstored = self.writer.unstored, set()
        if unstored:  # their next owner re-reads from the committed offset; so must we not pass
            dropped = self.batcher.drop(unstored)
            log.info("not flushing %d records of %d partitions whose earlier insert was given up",
                     dropped, len(unstored))  # fmt: skip
        if not self._unplanned and self.batcher.rows and not self.writer.busy:
            self._submit(self.batcher.take(), final=True)
            if not self.writer.wait(REVOKE_WAIT_S):
                self.writer.abandon()  # the partitions move on now: it must not insert later
            self._collect()

    # -- batching ----------------------------------------------------------------------------
    def _add(self, messages: Sequence[Message]) -> None:
        """Records of one poll, by partition run, into the batcher."""
        now = time.monotonic()
        runs: dict[Key, tuple[list[int], list[Message]]] = {}
        for message in messages:
            if message.error() is not None:
                self._log_consumer_error(message)
                continue
            topic, partition, offset = position(message)
            known = runs.get((topic, partition))
            if known is None:
                runs[(topic, partition)] = ([offset], [message])
            else:
                known[0].append(offset)
                known[1].append(message)
        for (topic, partition), (offsets, run) in runs.items():
            if (topic, partition) not in self._assigned:  # revoked during this poll
                continue
            self.batcher.extend(topic, partition, offsets, self._records(run), now)
            self._seen_end[(topic, partition)] = offsets[-1] + 1

    def _records(self, run: Sequence[Message]) -> list[Any]:
        """What the writer inserts for messages of one partition: clean values as they are,
        dead letters as `dead_letters` rows."""
        kind, event_type = self._kinds[position(run[0])[0]]
        if kind == "clean":
            return [m.value() or b"" for m in run]
        return [
            dead_letter_row(event_type, m.key(), m.headers(), *position(m), m.timestamp()[1])
            for m in run
        ]

    def _read_back(self, ranges: Sequence[TokenRange]) -> list[list[Any]]:
        """Ranges of another insert, read back from Kafka to re-insert it whole."""
        return [self._records(run) for run in self._range_reader.read(ranges)]

    def _log_consumer_error(self, message: Message) -> None:
        text = str(message.error())
        if text not in self._errors_logged:  # once per kind, not once per poll
            self._errors_logged.add(text)
            log.warning("consumer: %s (topic %s)", text, message.topic())

    def _due(self) -> bool:
        if self.batcher.rows >= self.max_rows or self.batcher.has_cut:
            return True
        oldest = self.batcher.oldest()
        return oldest is not None and time.monotonic() - oldest >= self.max_wait

    def _wait(self, timeout: float) -> float:
        """How long the next poll may block without delaying a due cycle."""
        if self._paused:
            return timeout
        if self.writer.busy:
            return min(timeout, BUSY_POLL_S)
        oldest = self.batcher.oldest()
        if oldest is None or self._unplanned:
            # consume() returns when its timeout ends: a short one starts the batch clock early
            return min(timeout, self.max_wait / 4)
        return max(0.0, min(timeout, oldest + self.max_wait - time.monotonic()))

    def _group(self, batches: Iterable[Batch]) -> list[InsertGroup]:
        groups: dict[str, InsertGroup] = {}
        for batch in batches:
            kind, event_type = self._kinds[batch.topic]
            table = table_for(event_type) if kind == "clean" else DEAD_LETTERS
            if table not in groups:
                dead = kind != "clean"
                groups[table] = InsertGroup(
                    table, None if dead else event_type, [], scope=self.scope
                )
            groups[table].batches.append(batch)
        return list(groups.values())

    def _submit(self, batches: list[Batch], final: bool = False) -> None:
        if batches:
            self._in_flight += sum(len(b.records) for b in batches)
            self.writer.submit(Cycle(self._group(batches), final=final))

    # -- committing --------------------------------------------------------------------------
    def _collect(self) -> int:
        """Commit the offsets of every batch the writer stored since the last call."""
        stored: list[Batch] = []
        while True:
            try:
                stored += self.writer.outbox.get_nowait()
            except queue.Empty:
                break
        if not stored:
            if not self.writer.busy:
                self._in_flight = 0  # the rest of a finished cycle was dropped
            return 0
        rows = sum(len(b.records) for b in stored)
        self._in_flight = max(0, self._in_flight - rows) if self.writer.busy else 0
        ends: dict[Key, int] = {}
        for batch in stored:
            ends[batch.key] = max(ends.get(batch.key, 0), batch.last + 1)
        # never backwards (a batch stored late must not undo a later batch's commit), and only
        # partitions still ours whose replay plan is loaded (a slow insert can outlive their
        # revocation; committing it before the plan is read would leave its range out of it)
        ends = {
            k: end
            for k, end in ends.items()
            if k in self._assigned and k not in self._unplanned and end > self._committed.get(k, -1)
        }
        offsets = [TopicPartition(t, p, end) for (t, p), end in ends.items()]
        if not offsets:
            return rows
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:
            # The rows are stored; the ranges in sink_batches make a re-read skip them.
            log.warning("offset commit failed (rows are stored, a re-read skips them): %s", error)
            return rows
        for key, end in ends.items():
            if key in self._assigned:
                self._committed[key] = end
        return rows

    # -- backpressure ------------------------------------------------------------------------
    def _steer_pause(self) -> None:
        """Pause all partitions while ClickHouse fails; resume when it answers again."""
        failing = self.writer.failing.is_set() or bool(self._unplanned and self._plan_attempts)
        if failing and not self._paused:
            self._pause()
        elif not failing and self._paused:
            self._resume()

    def _pause(self) -> None:
        assigned = [TopicPartition(t, p) for t, p in self._assigned]
        if assigned:
            self.consumer.pause(assigned)
        log.info("ClickHouse failing: paused consumption of %d partitions", len(assigned))
        self._paused = True
        metrics.SINK_PAUSED.set(1)

    def _resume(self) -> None:
        assigned = [TopicPartition(t, p) for t, p in self._assigned]
        if assigned:
            self.consumer.resume(assigned)
        log.info("ClickHouse answers again: resumed consumption of %d partitions", len(assigned))
        self._paused = False
        metrics.SINK_PAUSED.set(0)

    # -- rebalances --------------------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = {(tp.topic, tp.partition) for tp in partitions}
        consumer.assign(partitions)
        self.writer.unstored -= keys  # read again from their committed offsets
        self._assigned |= keys
        self._unplanned |= keys
        log.info("assigned %d partitions", len(keys))
        if not self._load_plans() or self._paused:
            self._pause()  # the new partitions too
        else:  # librdkafka keeps a partition paused across a rebalance: one paused in an
            consumer.resume(partitions)  # outage and assigned back would never be read again

    def _load_plans(self) -> bool:
        """Committed offsets and not-yet-committed ranges of newly assigned partitions."""
        keys = sorted(self._unplanned)
        try:
            committed = self.consumer.committed([TopicPartition(t, p) for t, p in keys], 10)
            starts = {(tp.topic, tp.partition): tp.offset for tp in committed}
            plans = self.store.pending_ranges(starts)
        except Exception as error:
            self._plan_attempts += 1
            delay = min(self.max_backoff_s, self.backoff_s * 2 ** (self._plan_attempts - 1))
            self._plan_retry_at = time.monotonic() + delay
            log.warning("cannot read replay ranges (%s); retry in %.1f s", error, delay)
            return False
        for key in keys:
            self.batcher.set_plan(key, plans.get(key, ()))
            if starts.get(key, -1) >= 0:
                self._committed[key] = starts[key]
        if plans:
            log.info(
                "re-reading %d uncommitted range(s) with their original boundaries",
                sum(len(r) for r in plans.values()),
            )
        self._unplanned.clear()
        self._plan_attempts = 0
        return True

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if not self._closing:
            try:
                self._final_flush()
            except Exception:
                log.exception("flush on revoke failed; the next owner re-reads the records")
        self._forget({(tp.topic, tp.partition) for tp in partitions})

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions taken away (session expired): another member owns them; no commit."""
        self.writer.abandon()
        self.writer.wait(REVOKE_WAIT_S)
        with contextlib.suppress(queue.Empty):
            while True:
                self.writer.outbox.get_nowait()  # not ours to commit any more
        self._forget({(tp.topic, tp.partition) for tp in partitions})

    def _forget(self, keys: set[Key]) -> None:
        dropped = self.batcher.drop(keys)
        if dropped:
            log.info("dropped %d uncommitted records of revoked partitions", dropped)
        for topic, partition in keys:
            self._committed.pop((topic, partition), None)
            self._seen_end.pop((topic, partition), None)
            with contextlib.suppress(KeyError):  # no series yet
                metrics.SINK_CONSUMER_LAG.remove(topic, str(partition))
        self._assigned -= keys
        self._unplanned -= keys
        if not self._unplanned:
            self._plan_attempts = 0

    # -- lag -----------------------------------------------------------------------------------
    def _update_lag(self) -> None:
        self._lag_at = time.monotonic() + LAG_EVERY_S
        total = 0
        # librdkafka's cached ends move only as partitions are fetched: while paused, ask the
        # broker, or the lag (and ConsumerLagHigh) would stand still during a ClickHouse outage
        ask = self._paused
        for key in self._assigned:
            topic, partition = key
            try:
                low, high = self.consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=1.0, cached=not ask
                )
            except KafkaException:
                ask = False  # the broker does not answer either: the cached ends this time
                low, high = -1, -1
            end = max(high, self._seen_end.get(key, 0))
            lag = max(0, end - self._committed.get(key, max(low, 0)))
            total += lag
            metrics.SINK_CONSUMER_LAG.labels(topic, str(partition)).set(lag)
        self._lag = total


def _cluster_scope(consumer: Consumer, bootstrap: str, timeout: float = 30.0) -> str:
    """The Kafka cluster's id, as the sink scopes tokens and recorded ranges by it.

    Offsets name records only within one cluster: the embedded broker starts a new, empty
    one (offsets from 0 again) every time, and without the scope the ranges and tokens of the
    last run would be taken for this run's — replayed, and new inserts dropped as duplicates.
    """
    try:
        cluster = consumer.list_topics(timeout=timeout).cluster_id or ""
    except KafkaException as error:
        raise RuntimeError(
            f"cannot read the Kafka cluster's metadata at {bootstrap} (GOVPULSE_BOOTSTRAP_SERVERS)"
            f": {error}"
        ) from None
    return re.sub(r"[^A-Za-z0-9_.-]", "_", cluster)
