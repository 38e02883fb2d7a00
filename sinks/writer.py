"""The sink's writer thread: inserts one cycle of batches into ClickHouse while Kafka is read.

The embedded engine releases the GIL while it parses and writes, so inserting cycle k on this
thread while the consumer thread reads and batches cycle k+1 uses both cores (measured: one
thread doing both tops out near 60k rows/s). At most one cycle is in flight; the consumer
stops reading when the next one is full, so memory holds two cycles at most.

For a cycle, in order: replayed batches (ranges recorded in `sink_batches` and never
committed) are taken out into groups of their own, one per original insert, completed with
the other ranges of that insert read back from Kafka and inserted under the original token
(sinks/replay.py) — a crash half-way through an insert's views is repaired, not skipped;
the ranges about to be inserted fresh are written to `sink_batches` with their token; each
table's group is inserted with its token. Stored batches go to `outbox` as they land; the
consumer thread commits their offsets. A failure is retried with exponential backoff, with
`failing` set meanwhile (the consumer pauses). Ranges recorded without a token (before
migration 0009), or no longer in Kafka, fall back to "skip it if its first record is stored".

With several stores (one client each), a cycle's tables are inserted concurrently: a small
insert costs ClickHouse far more than its rows (every materialized view writes a part), so
the cycle's wall time — the sink's share of freshness — is the slowest table's, not the sum
(bench/e2e at 5k events/s, runs paired in one window: p99 1.52 s with one connection, 0.76 s
with four; on a busier host later, 1.52–2.49 s against 1.58–1.60 s).

Each event_id is stored once (issue 18: agencies' Kafka clients partition differently, so one
event can reach two raw partitions, and the stream workers de-duplicate per partition). Before
a FRESH insert of a clean group, the writer drops the records whose event_id is earlier in the
same insert (token order) or already in `events_<type>` (one look-up per table and cycle,
`SinkStore.stored_event_ids`, on that table's connection, the tables concurrently). Records of
the same table's re-inserts in the cycle count as earlier: they are inserted whatever happens.

A re-insert under a replay token must be the original insert again, row for row: a view that
missed the block gets the re-insert's rows, a table that has it drops the re-insert by its
token whatever rows it holds. So the re-insert is never filtered against the table: the
original's own rows are there by then, and filtering would leave them out of the views that
missed them. Instead each fresh insert's decision is recorded: the positions it leaves out (in
token order, over its ranges' records) go into `sink_batches` in the same block as its ranges
(`SinkStore.write_intents`), before the insert. A re-insert reads its ranges back, looks the
positions up by its token (`SinkStore.recorded_drops`) and leaves out exactly those; ranges
recorded without them (before this, or by an insert that dropped nothing) drop nothing, as
their insert did not. When the ranges cannot be rebuilt, the fallback inserts what is not
stored as a fresh insert, filtered like any other, so nothing is doubled there either.

What remains is a race, not a replay: two copies of an event on partitions inserted by
different inserts whose look-ups both ran before either insert landed — two sinks, each owning
one of the partitions, within one insert's time (look-up to acknowledgement, tens to hundreds
of milliseconds) — are both stored. A crash between an insert's look-up and its landing widens
that window to the re-insert: a copy stored meanwhile by any other insert (another sink's, or
this sink's own after the restart, on a partition read before the replayed range is complete)
is not seen by the re-insert, which must not change. Both copies are then whole rows of
`events_<type>`, counted by every rollup alike (no view misses one, none counts one twice):
nothing is lost, and the audit shows the event twice — rows of events_<type> exceed its
distinct event ids (and the distinct clean ids) by the number of such events, which
`SELECT count() - uniqExact(event_id)` over the table counts too.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from govpulse.monitoring import metrics
from govpulse.sinks.batching import Batch
from govpulse.sinks.dead_letters import refused_dead_letter_row
from govpulse.sinks.isolate import Refused, insert_isolating
from govpulse.sinks.replay import FetchRanges, RangeUnavailable, parse_token
from govpulse.sinks.store import EventKey, SinkStore

log = logging.getLogger("govpulse.sink")

CRASH_EXIT_CODE = 137  # what a shell reports for kill -9


def in_token_order(batches: list[Batch]) -> list[Batch]:
    """Batches as their insert's token lists them: by topic, partition, first offset."""
    return sorted(batches, key=lambda b: (b.topic, b.partition, b.first))


def duplicate_positions(
    keys: Sequence[EventKey | None], seen: set[str], stored: set[str]
) -> list[int]:
    """Positions of the records to leave out: event id in `stored`, in `seen` (earlier inserts
    of the cycle) or earlier among `keys`. Adds the ids it keeps to `seen`; a record without a
    key (unreadable: the insert refuses it on its own) is kept."""
    dropped = []
    for position, key in enumerate(keys):
        if key is None:
            continue
        event_id = key[0]
        if event_id in seen or event_id in stored:
            dropped.append(position)
        else:
            seen.add(event_id)
    return dropped


def without(items: list[Any], positions: Sequence[int]) -> list[Any]:
    """`items` less those at `positions`."""
    if not positions:
        return items
    gone = set(positions)
    return [item for i, item in enumerate(items) if i not in gone]


@dataclass
class InsertGroup:
    """The batches of one table in one cycle: one insert, one token."""

    table: str
    event_type: str | None  # None for dead letters
    batches: list[Batch]  # ours: committed once stored
    checked: bool = False  # replayed ranges looked up in ClickHouse
    intents_written: bool = False
    stored: bool = False  # inserted; its batches wait for the table's other groups
    replay_token: str = ""  # re-inserting an interrupted insert under its token
    fetched: list[Batch] = field(default_factory=list)  # its other ranges, read back
    set_aside: list[Batch] = field(default_factory=list)  # replayed, found stored: commit only
    scope: str = ""  # the Kafka cluster's id: offsets of another cluster are other records
    # positions (token order, over batches + fetched) left out as duplicates; None: undecided
    dropped: list[int] | None = None

    @property
    def fresh_clean(self) -> bool:
        """A clean group inserted under a token of its own: its duplicates are decided here."""
        return self.event_type is not None and not self.replay_token

    def records(self) -> list[Any]:
        """Every record of its ranges, in token order, duplicates included."""
        return [r for b in in_token_order(self.batches + self.fetched) for r in b.records]

    @property
    def rows(self) -> int:
        return sum(len(b.records) for b in self.batches)

    @property
    def token(self) -> str:
        """`<table>[@<scope>]|topic:partition:first-last,…`: the same batches of the same Kafka
        cluster always give the same token."""
        if self.replay_token:
            return self.replay_token
        table = f"{self.table}@{self.scope}" if self.scope else self.table
        return f"{table}|" + ",".join(b.describe() for b in in_token_order(self.batches))

    def split_replays(self) -> list[InsertGroup]:
        """This group without its token-replayed batches, then one group per original insert."""
        by_token: dict[str, list[Batch]] = {}
        for batch in self.batches:
            if batch.replay and batch.replay_token:
                by_token.setdefault(batch.replay_token, []).append(batch)
        if not by_token:
            return [self]
        replayed = {id(b) for batches in by_token.values() for b in batches}
        rest = InsertGroup(
            self.table,
            self.event_type,
            [b for b in self.batches if id(b) not in replayed],
            scope=self.scope,
        )
        return [rest] + [
            InsertGroup(self.table, self.event_type, batches, replay_token=token, scope=self.scope)
            for token, batches in sorted(by_token.items())
        ]


@dataclass
class Cycle:
    """Groups to insert; `final` cycles (revoke, close) get one attempt, no retries."""

    groups: list[InsertGroup]
    final: bool = False
    finished: threading.Event = field(default_factory=threading.Event)
    split: bool = False  # replayed batches moved into groups of their own


@dataclass
class WriterStats:
    rows: dict[str, int] = field(default_factory=dict)  # by table
    inserts: int = 0
    replays_skipped: int = 0
    replays_reinserted: int = 0  # interrupted inserts re-inserted whole under their token
    failures: int = 0
    refused: int = 0  # rows ClickHouse refused for their content, dead-lettered
    duplicates_dropped: int = 0  # clean records left out of landed inserts: event_id stored


class CycleAbandoned(RuntimeError):
    """The sink let the cycle's partitions go before its inserts started."""


class Writer:
    """One thread, one cycle at a time; results in `outbox` as lists of stored batches."""

    def __init__(
        self,
        store: SinkStore,
        *,
        insert_stores: Sequence[SinkStore] = (),
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
        give_up_after: int = 8,
        crash_after_inserts: int | None = None,
        fetch_ranges: FetchRanges | None = None,
    ) -> None:
        """`fetch_ranges` reads ranges back from Kafka (see sinks/replay.py); without it,
        replayed ranges are only checked for their first record."""
        self.store = store
        self.fetch_ranges = fetch_ranges
        self._stores: queue.SimpleQueue[SinkStore] = queue.SimpleQueue()
        for each in (store, *insert_stores):
            self._stores.put(each)
        self._pool = ThreadPoolExecutor(1 + len(insert_stores), thread_name_prefix="sink-insert")
        self._stats_lock = threading.Lock()
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.give_up_after = give_up_after
        self.crash_after_inserts = crash_after_inserts
        self.stats = WriterStats()
        self.outbox: queue.SimpleQueue[list[Batch]] = queue.SimpleQueue()
        # partitions of a cycle given up on (revoke, close): nothing later of theirs may be
        # committed, or their offsets would pass the batches that were never stored
        self.unstored: set[tuple[str, int]] = set()
        self.failing = threading.Event()
        self._inbox: queue.SimpleQueue[Cycle | None] = queue.SimpleQueue()
        self._abandon = threading.Event()
        self._current: Cycle | None = None
        self._thread = threading.Thread(target=self._loop, name="govpulse-sink-writer", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        return self._current is not None

    def submit(self, cycle: Cycle) -> None:
        if self._current is not None:
            raise RuntimeError("a cycle is still in flight")
        self._abandon.clear()
        self._current = cycle
        self._inbox.put(cycle)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no cycle is in flight; False on timeout."""
        cycle = self._current
        return cycle is None or cycle.finished.wait(timeout)

    def abandon(self) -> None:
        """Stop retrying the cycle in flight after its current attempt (revoke, close)."""
        self._abandon.set()

    def stop(self, timeout: float = 30.0) -> bool:
        """End the thread after the cycle in flight; False if it is still inside it."""
        self.abandon()
        self._inbox.put(None)
        self._pool.shutdown(wait=False, cancel_futures=True)  # no insert starts from now on
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- the thread ----------------------------------------------------------------------------
    def _loop(self) -> None:
        while (cycle := self._inbox.get()) is not None:
            attempts = 0
            while True:
                try:
                    self._write(cycle)
                    break
                except Exception as error:
                    attempts += 1
                    self.stats.failures += 1
                    self.failing.set()
                    if cycle.final or self._abandon.is_set():
                        self._give_up(cycle, error)
                        break
                    delay = min(self.max_backoff_s, self.backoff_s * 2 ** (attempts - 1))
                    self._report(error, attempts, delay)
                    if self._abandon.wait(delay):  # revoked or closing during the backoff
                        self._give_up(cycle, error)
                        break
                    metrics.SINK_INSERT_RETRIES.inc()
            self.failing.clear()
            self._current = None
            cycle.finished.set()

    def _give_up(self, cycle: Cycle, error: Exception) -> None:
        """Leave the cycle unstored: nothing later of its partitions may be committed now."""
        log.warning("insert failed, not retried (%s): the batches are re-read "
                    "by the next owner of their partitions", error)  # fmt: skip
        self.unstored |= {b.key for g in cycle.groups for b in g.batches}
        metrics.SINK_INSERT_FAILURES.inc()

    def _report(self, error: Exception, attempts: int, delay: float) -> None:
        if attempts % self.give_up_after == 0:
            metrics.SINK_INSERT_FAILURES.inc()
            log.error(
                "ClickHouse still failing after %d attempts (%s); the batches stay uncommitted "
                "and are tried again every %.1f s",
                attempts,
                error,
                delay,
            )
        else:
            log.warning("ClickHouse failed (%s); consumption paused, retry in %.1f s", error, delay)

    def _write(self, cycle: Cycle) -> None:
        if not cycle.split:
            cycle.groups = [part for g in cycle.groups for part in g.split_replays()]
            cycle.split = True
        for group in cycle.groups:
            if not group.checked:
                self._check_replays(group)
        cycle.groups = [g for g in cycle.groups if g.batches or g.set_aside]
        self._decide_duplicates(cycle.groups)
        unwritten = [g for g in cycle.groups if g.batches and not g.intents_written]
        if unwritten:
            self.store.write_intents(
                ((g.token, b) for g in unwritten for b in g.batches),
                [(g.token, in_token_order(g.batches)[0], g.dropped or []) for g in unwritten],
            )
            for group in unwritten:
                group.intents_written = True
        if self._abandon.is_set():
            # Revoked or closing while the intents were written: the partitions' next owner may
            # have read its replay plans already, so an insert now could double what it reads.
            raise CycleAbandoned("the cycle was abandoned before its inserts started")
        # One task per table: a table's groups (its fresh batches, and re-inserts of earlier
        # ranges of the same partitions) are published together, so a partition's offsets are
        # never committed past a range that is not stored yet.
        by_table: dict[str, list[InsertGroup]] = {}
        for group in cycle.groups:
            by_table.setdefault(group.table, []).append(group)
        futures = [(gs, self._pool.submit(self._insert_table, gs)) for gs in by_table.values()]
        failed = [(groups, future.exception()) for groups, future in futures]
        cycle.groups = [g for groups, error in failed if error is not None for g in groups]
        if cycle.groups:
            raise next(error for _, error in failed if error is not None)

    def _insert_table(self, groups: list[InsertGroup]) -> None:
        """Insert one table's groups on a free store; hand their batches over once all landed."""
        store = self._stores.get()
        try:
            for group in groups:
                if not group.stored and group.batches:
                    self._insert(store, group)
                    group.stored = True
        finally:
            self._stores.put(store)
        self._maybe_crash()  # before the consumer thread can see it, so before any commit
        self.outbox.put([b for g in groups for b in g.set_aside + g.batches])

    def _check_replays(self, group: InsertGroup) -> None:
        """Complete a re-insert with its other ranges; else set aside what is stored."""
        if group.replay_token:
            try:
                fetched = self._other_ranges(group)
                # both or neither: a fresh insert must not take in the other ranges' records
                group.dropped = self._recorded_drops(group, fetched)
                group.fetched = fetched
                group.intents_written = True  # its ranges are in sink_batches already
                self.stats.replays_reinserted += 1
                log.info(
                    "%s: re-inserting an interrupted insert under its original token "
                    "(%d range(s) read back from Kafka, %d duplicate(s) left out as it left "
                    "them out): %s",
                    group.table,
                    len(group.fetched),
                    len(group.dropped),
                    group.replay_token[:200],
                )
            except RangeUnavailable as error:
                log.warning("%s: cannot rebuild %s (%s)", group.table, group.replay_token, error)
                group.replay_token = ""  # a fresh insert of what is not stored
        self._set_aside_stored(group)

    def _other_ranges(self, group: InsertGroup) -> list[Batch]:
        """The original insert's ranges this group does not hold, read back from Kafka."""
        try:
            table, ranges = parse_token(group.replay_token)
        except ValueError as error:
            raise RangeUnavailable(str(error)) from None
        held = {(b.topic, b.partition, b.first, b.last) for b in group.batches}
        if table != group.table or not held <= set(ranges):
            raise RangeUnavailable("the replayed batches are not the ranges of this token")
        if self.fetch_ranges is None:
            raise RangeUnavailable("no Kafka reader to read the other ranges back")
        others = [each for each in ranges if tuple(each) not in held]
        if not others:
            return []
        return [
            Batch(each.topic, each.partition, each.first, each.last, 0.0, records)
            for each, records in zip(others, self.fetch_ranges(others), strict=True)
        ]

    def _recorded_drops(self, group: InsertGroup, fetched: list[Batch]) -> list[int]:
        """The positions the original insert left out as duplicates (dead letters: none)."""
        if group.event_type is None:
            return []
        first = in_token_order(group.batches + fetched)[0]
        try:
            dropped = self.store.recorded_drops(
                group.replay_token, first.topic, first.partition, first.first
            )
        except ValueError as error:  # a malformed record of them: the insert cannot be rebuilt
            raise RangeUnavailable(f"its left-out duplicates are unreadable: {error}") from None
        count = sum(len(b.records) for b in group.batches + fetched)
        if dropped and max(dropped) >= count:
            raise RangeUnavailable(
                f"it left out position {max(dropped)} of {count} records: not these ranges"
            )
        return dropped

    # -- duplicates ----------------------------------------------------------------------------
    def _decide_duplicates(self, groups: list[InsertGroup]) -> None:
        """Decide, once, which records each fresh clean group leaves out; tables concurrently."""
        for group in groups:
            if group.dropped is None and group.event_type is None:
                group.dropped = []  # dead letters: one row per dlq record, never a duplicate
        tables = sorted({g.table for g in groups if g.dropped is None and g.batches})
        if not tables:
            return
        futures = [
            self._pool.submit(self._decide_table, [g for g in groups if g.table == table])
            for table in tables
        ]
        errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error
        counts = {
            table: sum(len(g.dropped or ()) for g in groups if g.table == table and g.fresh_clean)
            for table in tables
        }
        if any(counts.values()):
            log.info(
                "dropping %d duplicate record(s), event_id already stored or earlier in the "
                "cycle: %s",
                sum(counts.values()),
                ", ".join(f"{table} {n}" for table, n in counts.items() if n),
            )

    def _decide_table(self, groups: list[InsertGroup]) -> None:
        """One table's groups: the re-inserts' records are inserted whatever, so they come
        first; then each undecided group in insert order, against one look-up of its ids."""
        store = self._stores.get()
        try:
            seen: set[str] = set()
            undecided: list[tuple[InsertGroup, list[EventKey | None]]] = []
            for group in groups:
                if group.dropped is not None:
                    kept = without(group.records(), group.dropped)
                    seen.update(k[0] for k in store.event_keys(kept) if k is not None)
                elif group.batches:
                    undecided.append((group, store.event_keys(group.records())))
            if not undecided:
                return
            event_type = undecided[0][0].event_type
            assert event_type is not None  # dead letters are decided already
            candidates = [
                k for _, keys in undecided for k in keys if k is not None and k[0] not in seen
            ]
            stored = store.stored_event_ids(event_type, candidates)
            for group, keys in undecided:
                group.dropped = duplicate_positions(keys, seen, stored)
                if group.dropped and log.isEnabledFor(logging.DEBUG):
                    self._log_drops(group, keys, stored)
        finally:
            self._stores.put(store)

    @staticmethod
    def _log_drops(group: InsertGroup, keys: list[EventKey | None], stored: set[str]) -> None:
        batches = in_token_order(group.batches)
        where = [(b, b.first + i) for b in batches for i in range(len(b.records))]
        for position in group.dropped or ():
            batch, offset = where[position]
            key = keys[position]
            event_id = key[0] if key is not None else "?"
            log.debug(
                "%s: dropping %s:%d:%d, a duplicate of event %s (%s)",
                group.table, batch.topic, batch.partition, offset, event_id,
                "already stored" if event_id in stored else "earlier in this cycle",
            )  # fmt: skip

    def _set_aside_stored(self, group: InsertGroup) -> None:
        """Replayed ranges whose first record is already in ClickHouse: commit, don't insert.

        Not for a group re-inserted under its token: ClickHouse drops what it holds.
        """
        stored = []
        for batch in group.batches:
            if not batch.replay or group.replay_token:
                continue
            first = batch.records[0]
            if group.event_type is not None:
                found = self.store.clean_is_stored(group.event_type, first)
            else:
                found = self.store.dead_letter_is_stored(first)
            if found:
                stored.append(batch)
        if stored:
            self.stats.replays_skipped += len(stored)
            log.info(
                "%s: %d replayed range(s) already stored, not inserted again: %s",
                group.table,
                len(stored),
                ", ".join(b.describe() for b in stored),
            )
            group.batches = [b for b in group.batches if b not in stored]
            group.set_aside = stored  # committed with the rest of the table's groups
        group.checked = True

    def _insert(self, store: SinkStore, group: InsertGroup) -> None:
        started = time.perf_counter()
        token = group.token
        newest = None
        # In token order, always: should ClickHouse cut the insert into several blocks
        # (token_0, token_1, …), a rebuilt insert's blocks hold the same rows as the first's.
        # The same order makes a bisection after a data error split the same way on replay.
        batches = in_token_order(group.batches + group.fetched)
        dropped = group.dropped or []
        records = without([r for b in batches for r in b.records], dropped)
        rows = 0
        refused: list[Refused] = []
        if group.event_type is not None:
            event_type = group.event_type
            newest = store.newest_produced_at([b.records[-1] for b in group.batches])
            if records:  # every record a duplicate: nothing to insert, its ranges committed
                rows, refused = insert_isolating(
                    lambda part, sub: store.insert_clean(event_type, part, sub), records, token
                )
            if dropped:
                metrics.SINK_DUPLICATES_DROPPED.labels(event_type).inc(len(dropped))
        else:
            rows, refused = insert_isolating(store.insert_dead_letters, records, token)
        if refused:
            self._store_refused(store, group, batches, dropped, records, refused, token)
        if records:
            metrics.SINK_INSERT_SECONDS.observe(time.perf_counter() - started)
            metrics.SINK_ROWS_INSERTED.labels(group.table).inc(rows)
            metrics.SINK_BATCH_ROWS.observe(rows)
        with self._stats_lock:
            if newest is not None and group.event_type is not None:
                metrics.FRESHNESS.stored(newest)
                metrics.DATA_AGE.stored(group.event_type, newest)
            self.stats.rows[group.table] = self.stats.rows.get(group.table, 0) + rows
            self.stats.refused += len(refused)
            self.stats.duplicates_dropped += len(dropped)
            self.stats.inserts += 1 if records else 0

    def _store_refused(
        self,
        store: SinkStore,
        group: InsertGroup,
        batches: list[Batch],
        dropped: list[int],
        records: list[Any],
        refused: list[Refused],
        token: str,
    ) -> None:
        """Each refused row into `dead_letters` (reason `store_rejected`, the engine's error),
        under a token of its own derived from the insert's: a replay stores it once."""
        positions = [(b, b.first + i) for b in batches for i in range(len(b.records))]
        positions = without(positions, dropped)  # as `records`: the duplicates left out
        for each in refused:
            batch, offset = positions[each.index]
            record = records[each.index]
            log.error(
                "%s: ClickHouse refused the record at %s:%d:%d (%s); it is dead-lettered as "
                "store_rejected and the rest of the insert is stored",
                group.table, batch.topic, batch.partition, offset, each.error,
            )  # fmt: skip
            if group.event_type is not None:
                row = store.refused_clean_row(
                    group.event_type, record, batch.topic, batch.partition, offset, each.error
                )
            else:
                row = refused_dead_letter_row(record, each.error)
            store.insert_dead_letters([row], f"{token}|refused:{each.index}")
            metrics.SINK_ROWS_REFUSED.labels(group.table).inc()

    def _maybe_crash(self) -> None:
        """Test hook: die like kill -9 after the Nth insert, before its offsets are committed."""
        with self._stats_lock:
            inserts = self.stats.inserts
        if self.crash_after_inserts is not None and inserts >= self.crash_after_inserts:
            log.warning("crash hook: exiting after insert %d, before commit", self.stats.inserts)
            logging.shutdown()
            os._exit(CRASH_EXIT_CODE)
