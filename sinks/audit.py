"""Reconciliation: every raw record has exactly one outcome, stored exactly once, and every
rollup counts what its events table holds.

What is read, per event type:
- Kafka, as ground truth of the stream processor: the raw topic's offsets (what was produced),
  and every record of clean.<type> (lineage fields source_partition/source_offset of the clean
  schema, key = event_id), dlq.<type> and dup.<type> (lineage headers). Outcomes are counted
  per DISTINCT raw (partition, offset), and so are the records behind them: a raw position
  with two clean (or two dlq) records is a record the stream processor wrote twice. A position
  with a clean record counts as clean even if a replay also marked it a duplicate.
- ClickHouse, as what the sink stored: rows and distinct event ids of events_<type>, and rows
  and distinct raw positions in dead_letters, restricted to the same raw offset ranges (one
  query for the events table with the refused rows, one for the dead letters); and, per
  rollup, its event count per bucket against the events table's (one query per type).

A time range (`since`/`until`, by the raw records' broker timestamps) becomes per-partition
raw offset ranges, so Kafka and ClickHouse are compared over exactly the same records. The
rollups have no raw offsets: there the range applies to occurred_at, in whole buckets.

Checks, each a problem naming the table or topic when it fails:
- produced = clean + dead-lettered + duplicates (distinct raw positions);
- clean.<type> records = distinct raw positions with one, and the same for dlq.<type>;
- events_<type> rows (+ clean records ClickHouse refused, in dead_letters as store_rejected)
  = distinct event ids among them: a doubled row is named with the size of the difference;
- those rows = distinct event ids of clean.<type> (a record the processor replayed is no
  excuse, and an event id on two raw positions is stored once), and ClickHouse distinct ids =
  distinct clean ids;
- dead_letters rows = distinct raw positions, and those positions = dlq.<type>'s;
- every rollup's event count = its events table's, per bucket of occurred_at (see
  `rollup_views` for which rollups, `rollup_counts` for which buckets). Only rollups a
  materialized view fills per insert straight from events_<type>: a tier a refreshable view
  fills from another rollup is not compared (nor is dead_letters_minute, from dead_letters).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from govpulse.kafka_config import client_config
from govpulse.offsets import Ends, position, read_ranges, topic_ends
from govpulse.schemas import catalog
from govpulse.schemas.lineage import CleanLineage, header_lineage
from govpulse.schemas.rollups import PROGRESS_TABLE, tier_tables
from govpulse.sinks.columns import table_for
from govpulse.sinks.dead_letters import STORE_REJECTED
from govpulse.sinks.migrations import TTL_DAYS
from govpulse.sinks.tiers import INSERT_SKEW_SECONDS, TierJob

CLEAN, DEAD, DUP, AGED = 1, 2, 4, 8
Ranges = dict[int, tuple[int, int]]  # raw partition → [first, end)
# flag byte → outcome letter: clean wins over dead-lettered, which wins over duplicate; a
# clean record whose event has since passed the events tables' retention is 'a' (aged out)
_OUTCOME = bytes(
    (ord("a") if f & AGED else ord("c"))
    if f & CLEAN
    else ord("d")
    if f & DEAD
    else ord("u")
    if f & DUP
    else ord("-")
    for f in range(256)
)
DAY_MS = 24 * 60 * 60 * 1000
# Events this close to the end of their retention count as aged out: the table's TTL may
# delete them while the audit runs.
RETENTION_MARGIN_MS = 10 * 60 * 1000


@dataclass
class RollupCount:
    """One rollup against its events table, over the buckets both keep in the audited window."""

    table: str  # the rollup, e.g. activity_minute
    source: str  # the events table its view reads, e.g. events_complaint
    grain: str  # minute, hour or day: the rollup's own time column
    since: str | None = None  # first bucket compared (ISO 8601), None: the first there is
    until: str | None = None  # end of the last bucket compared, None: the last there is
    buckets: int = 0  # buckets with events in either table
    differing: int = 0  # … whose counts differ
    rollup_events: int = 0  # events the rollup counts over those buckets
    table_events: int = 0  # rows the events table holds over them
    first: list[tuple[str, int, int]] = field(default_factory=list)  # (bucket, rollup, table)


@dataclass
class TypeAudit:
    """Counts of one event type over the audited raw offset ranges (rollups: see `rollups`)."""

    event_type: str
    produced: int = 0
    clean: int = 0  # distinct raw positions with a clean record (aged out ones included)
    aged_out: int = 0  # … whose event has passed the events tables' retention since
    dead_lettered: int = 0  # … dead-lettered (and not clean)
    duplicates: int = 0  # … dropped as duplicates (and neither of the above)
    unaccounted: int = 0  # … with no outcome yet
    clean_records: int = 0  # clean records of those positions (one each, unless written twice)
    clean_ids: int = 0  # distinct event ids among the clean records within retention
    stored_rows: int = 0  # rows in events_<type> within retention
    stored_refused: int = 0  # clean records ClickHouse refused, in dead_letters (store_rejected)
    stored_ids: int = 0  # distinct event ids in events_<type> and among the refused
    stored_dead_letters: int = 0  # distinct raw positions in dead_letters
    dead_letter_records: int = 0  # dlq records, the processor's replays included
    dead_letter_positions: int = 0  # distinct raw positions among them
    stored_dead_letter_rows: int = 0  # rows in dead_letters (one per raw position)
    unreadable_clean: int = 0  # clean records whose lineage could not be decoded
    replayed: int = 0  # outcome records beyond one per raw position (at-least-once)
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)  # positions by reason
    ranges: dict[int, list[int]] = field(default_factory=dict)
    window: str = ""  # the audited raw records, in words, e.g. "all of raw.complaint"
    rollups: list[RollupCount] = field(default_factory=list)
    rollups_skipped: dict[str, str] = field(default_factory=dict)  # view → why not compared

    @property
    def rollups_off(self) -> int:
        """Rollups whose counts differ from the events table's somewhere."""
        return sum(1 for r in self.rollups if r.differing)

    @property
    def problems(self) -> list[str]:
        return [
            *self._outcome_problems(),
            *self._doubled_records(),
            *self._stored_problems(),
            *(line for r in self.rollups for line in rollup_problems(r, self.event_type)),
        ]

    def _outcome_problems(self) -> list[str]:
        found = []
        if self.unaccounted:
            found.append(
                f"{self.unaccounted} of {self.produced} raw records have no outcome "
                "(clean, dead-lettered or duplicate): streams behind, or records lost"
            )
        if self.unreadable_clean:
            found.append(
                f"{self.unreadable_clean} records of {catalog.clean_topic(self.event_type)} "
                "could not be decoded (not framed, or a schema id the registry lacks): "
                "their raw records count as without outcome"
            )
        return found

    def _doubled_records(self) -> list[str]:
        """Outcome records beyond one per raw position: the stream processor wrote them twice."""
        topics = (
            (catalog.clean_topic(self.event_type), self.clean_records, self.clean),
            (catalog.dlq_topic(self.event_type), self.dead_letter_records,
             self.dead_letter_positions),
        )  # fmt: skip
        return [
            f"{topic} holds {records:,} records for {positions:,} raw positions: "
            f"the stream processor wrote {records - positions:,} twice"
            for topic, records, positions in topics
            if records > positions
        ]

    def _stored_problems(self) -> list[str]:
        found = []
        table, where = table_for(self.event_type), self.window or "the audited records"
        rows, refused = self.stored_rows + self.stored_refused, self._refused()
        if rows > self.stored_ids:
            found.append(
                f"{table} holds {self.stored_rows:,} rows{refused} for {self.stored_ids:,} "
                f"distinct event ids in {where}: {_times(rows - self.stored_ids, 'row')} "
                "stored twice"
            )
        if rows != self.clean_ids:
            why = "sink behind, or rows lost" if rows < self.clean_ids else "rows inserted twice"
            found.append(
                f"ClickHouse holds {self.stored_rows:,} rows{refused} for {self.clean_ids:,} "
                f"distinct event ids in {catalog.clean_topic(self.event_type)}: {why}"
            )
        if self.stored_ids != self.clean_ids:
            found.append(
                f"ClickHouse has {self.stored_ids:,} distinct event ids, "
                f"{catalog.clean_topic(self.event_type)} has {self.clean_ids:,}"
            )
        if self.stored_dead_letter_rows > self.stored_dead_letters:
            doubled = self.stored_dead_letter_rows - self.stored_dead_letters
            found.append(
                f"dead_letters holds {self.stored_dead_letter_rows:,} rows for "
                f"{self.stored_dead_letters:,} raw positions in {where}: "
                f"{_times(doubled, 'dead letter')} stored twice"
            )
        if self.stored_dead_letters != self.dead_lettered:
            found.append(
                f"dead_letters holds {self.stored_dead_letters:,} raw records, "
                f"{catalog.dlq_topic(self.event_type)} has {self.dead_lettered:,}"
            )
        return found

    def _refused(self) -> str:
        return f" (+{self.stored_refused:,} refused by it)" if self.stored_refused else ""


def _times(count: int, noun: str) -> str:
    """'1 row', '12 rows'."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def bucket_label(bucket: str, grain: str) -> str:
    """A rollup bucket as a problem names it: '2026-12-07 10:31 UTC', 'the hour …', 'day …'."""
    start = datetime.fromisoformat(bucket).astimezone(UTC)
    if grain == "minute":
        return f"{start:%Y-%m-%d %H:%M} UTC"
    if grain == "hour":
        return f"the hour {start:%Y-%m-%d %H:00} UTC"
    return f"the day {start:%Y-%m-%d} (UTC)"


def rollup_problems(count: RollupCount, event_type: str) -> list[str]:
    """The first differing buckets of one rollup, each a problem; the rest summed up."""
    found = []
    for bucket, counted, held in count.first:
        gap = held - counted
        how = f"{gap:,} missing" if gap > 0 else f"{-gap:,} too many"
        found.append(
            f"{count.table} counts {counted:,} {event_type} events in "
            f"{bucket_label(bucket, count.grain)}, {count.source} holds {held:,}: {how}"
        )
    if count.differing > len(count.first):
        found.append(
            f"{count.table} differs from {count.source} in "
            f"{count.differing - len(count.first):,} more {count.grain}s (over all "
            f"{count.buckets:,} {count.grain}s compared it counts {count.rollup_events:,} "
            f"{event_type} events, {count.source} holds {count.table_events:,})"
        )
    return found


# -- Kafka ---------------------------------------------------------------------------------------
OUTCOME_MARGIN_S = 600  # clock skew allowed between agencies and stream workers


def _read(
    bootstrap: str, ends: Ends, timeout: float, from_ms: int | None = None
) -> Iterator[Message]:
    """Every record of these partitions, from low (or about `from_ms`) to end, one consumer.

    With `from_ms` each partition starts at the broker's offset for that time: Kafka gives the
    first record stamped at or after it; the embedded broker gives the start of the batch that
    holds it, or less. Either way no record stamped at or after `from_ms` is skipped, and an
    audit of the last half hour does not read the topics' whole retention.
    """
    wanted = {key: end for key, (low, end) in ends.items() if end > low}
    if not wanted:
        return
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "govpulse-audit",
            "enable.auto.commit": False,
            "log_level": 0,
            **client_config(),
        }
    )
    try:
        starts = {key: ends[key][0] for key in wanted}
        if from_ms is not None:
            starts = _starts_at(consumer, ends, wanted, from_ms, timeout)
        yield from read_ranges(
            consumer, {k: (starts[k], end) for k, end in wanted.items()}, timeout
        )
    finally:
        consumer.close()


def _starts_at(
    consumer: Consumer,
    ends: Ends,
    wanted: dict[tuple[str, int], int],
    from_ms: int,
    timeout: float,
) -> dict[tuple[str, int], int]:
    """Per partition, where records stamped at or after `from_ms` begin (end: none there)."""
    found = consumer.offsets_for_times(
        [TopicPartition(t, p, from_ms) for t, p in wanted], timeout=timeout
    )
    starts = {}
    for tp in found:
        key = (tp.topic, tp.partition)
        low, end = ends[key]
        if tp.error is not None:
            raise KafkaException(tp.error)
        starts[key] = end if tp.offset < 0 else min(end, max(low, tp.offset))
    return starts


def raw_ranges(
    bootstrap: str,
    ends: Ends,
    event_types: Sequence[str],
    since: datetime | None = None,
    until: datetime | None = None,
    timeout: float = 300.0,
) -> dict[str, Ranges]:
    """Raw offset ranges [first, end) per type and partition; by broker timestamp if asked.

    With a time range the raw topics are read once: a partition's range starts at its first
    record stamped at/after `since` and ends before its first record stamped at/after `until`.
    """
    raw = {catalog.raw_topic(t): t for t in event_types}
    bounds = {key: value for key, value in ends.items() if key[0] in raw}
    if since is not None or until is not None:
        since_ms = int(since.timestamp() * 1000) if since else None
        until_ms = int(until.timestamp() * 1000) if until else None
        first = {key: end for key, (_, end) in bounds.items()}  # no record in range: empty
        stop = dict(first)
        for message in _read(bootstrap, bounds, timeout, since_ms):
            topic, partition, offset = position(message)
            key = (topic, partition)
            ts = message.timestamp()[1]
            if (since_ms is None or ts >= since_ms) and first[key] == bounds[key][1]:
                first[key] = offset
            if until_ms is not None and ts >= until_ms and stop[key] == bounds[key][1]:
                stop[key] = offset
        bounds = {key: (first[key], max(first[key], stop[key])) for key in bounds}
    result: dict[str, Ranges] = {t: {} for t in event_types}
    for (topic, partition), (low, end) in bounds.items():
        result[raw[topic]][partition] = (low, end)
    return result


def _text(value: str | bytes | None, default: str) -> str:
    """A header's value as text (`default` for a header without a value)."""
    if value is None:
        return default
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


class _Outcomes:
    """One type's outcome flags per raw position, and its clean-record counts."""

    def __init__(
        self,
        event_type: str,
        ranges: Ranges,
        writer_schema: Callable[[int], Any],
        kept_since_ms: int | None,
    ) -> None:
        self.audit = TypeAudit(event_type, ranges={p: [lo, hi] for p, (lo, hi) in ranges.items()})
        self.audit.produced = sum(hi - lo for lo, hi in ranges.values())
        self.ranges = ranges
        self.flags = {p: bytearray(hi - lo) for p, (lo, hi) in ranges.items()}
        self.lineage = CleanLineage(event_type, writer_schema)
        self.ids: set[bytes | None] = set()
        self.records = 0  # dead-letter and duplicate records in range
        self.kept_since_ms = kept_since_ms  # older events have passed the retention
        self.reasons: dict[tuple[int, int], str] = {}  # dead-lettered position → reason

    def mark(self, position: tuple[int, int] | None, flag: int) -> bool:
        if position is None or position[0] not in self.ranges:
            return False
        lo, hi = self.ranges[position[0]]
        if not lo <= position[1] < hi:
            return False
        self.flags[position[0]][position[1] - lo] |= flag
        return True

    def add(self, stage: str, message: Message) -> None:
        if stage == "clean":
            try:
                partition, offset, occurred = self.lineage(message.value() or b"")
            except Exception:  # not framed, unknown schema id, not Avro: counted, not fatal
                self.audit.unreadable_clean += 1
                return
            aged = self.kept_since_ms is not None and occurred < self.kept_since_ms
            if self.mark((partition, offset), CLEAN | AGED if aged else CLEAN):
                self.audit.clean_records += 1
                if not aged:
                    self.ids.add(message.key())
        else:
            position = header_lineage(message.headers())
            marked = self.mark(position, DEAD if stage == "dlq" else DUP)
            self.records += marked
            if stage == "dlq" and marked and position is not None:
                self.audit.dead_letter_records += 1
                reason = dict(message.headers() or ()).get("reason")
                self.reasons[position] = _text(reason, "unknown")

    def result(self) -> TypeAudit:
        audit = self.audit
        audit.clean_ids = len(self.ids)
        audit.dead_letter_positions = len(self.reasons)
        for array in self.flags.values():
            outcomes = bytes(array).translate(_OUTCOME)
            audit.aged_out += outcomes.count(b"a")
            audit.clean += outcomes.count(b"c") + outcomes.count(b"a")
            audit.dead_lettered += outcomes.count(b"d")
            audit.duplicates += outcomes.count(b"u")
            audit.unaccounted += outcomes.count(b"-")
        for (partition, offset), reason in self.reasons.items():
            lo = self.ranges[partition][0]
            if not self.flags[partition][offset - lo] & CLEAN:  # a clean copy wins
                audit.dead_letter_reasons[reason] = audit.dead_letter_reasons.get(reason, 0) + 1
        positions = audit.clean + audit.dead_lettered + audit.duplicates
        audit.replayed = audit.clean_records + self.records - positions
        return audit


def topic_counts(
    bootstrap: str,
    ends: Ends,
    ranges: dict[str, Ranges],
    writer_schema: Callable[[int], Any],
    timeout: float = 300.0,
    since: datetime | None = None,
    kept_since_ms: int | None = None,
) -> dict[str, TypeAudit]:
    """The Kafka side of the audit: one pass over every clean/dlq/dup partition.

    With `since`, from `OUTCOME_MARGIN_S` before it: an outcome is written after its raw
    record, but by another machine's clock (the worker's, not the agency's).
    """
    outcomes = {t: _Outcomes(t, r, writer_schema, kept_since_ms) for t, r in ranges.items()}
    stages = {catalog.topic(stage, t): (stage, t) for t in ranges for stage in catalog.OUTCOMES}
    outputs = {key: value for key, value in ends.items() if key[0] in stages}
    from_ms = None if since is None else int((since.timestamp() - OUTCOME_MARGIN_S) * 1000)
    for message in _read(bootstrap, outputs, timeout, from_ms):
        stage, event_type = stages[position(message)[0]]
        outcomes[event_type].add(stage, message)
    return {t: o.result() for t, o in outcomes.items()}


# -- ClickHouse ----------------------------------------------------------------------------------
def _range_condition(ranges: Ranges) -> str:
    parts = [
        f"(source_partition = {p:d} AND source_offset >= {lo:d} AND source_offset < {hi:d})"
        for p, (lo, hi) in sorted(ranges.items())
        if hi > lo
    ]
    return " OR ".join(parts) or "0"


def stored_counts(
    client: Any, event_type: str, ranges: Ranges, kept_since_ms: int | None = None
) -> dict[str, int]:
    """What ClickHouse holds for these raw offset ranges (the part `govpulse serve` can answer).

    Returns rows and distinct event ids of events within retention (occurred_at at or after
    `kept_since_ms`), clean records the engine refused (dead_letters, `store_rejected`; one
    without an event id is told apart by its raw position), and rows and distinct raw positions
    of the other dead letters.
    """
    condition = _range_condition(ranges)
    kept = (
        ""
        if kept_since_ms is None
        else (f" AND occurred_at >= fromUnixTimestamp64Milli({int(kept_since_ms):d}, 'UTC')")
    )
    source = "event_type = {t:String} AND source_topic = {s:String}"
    parameters = {"t": event_type, "s": catalog.raw_topic(event_type), "r": STORE_REJECTED}
    rows, refused, ids = client.query(
        f"SELECT countIf(stored), countIf(NOT stored), uniqExact(id) FROM ("
        f"SELECT 1 AS stored, toString(event_id) AS id FROM {table_for(event_type)} "
        f"WHERE ({condition}){kept} UNION ALL "
        "SELECT 0, ifNull(event_id, concat('@', toString(source_partition), ':', "
        f"toString(source_offset))) FROM dead_letters WHERE {source} "
        f"AND reason = {{r:String}} AND ({condition}))",
        parameters=parameters,
    ).result_rows[0]
    dead, dead_rows = client.query(
        "SELECT uniqExact(source_partition, source_offset), count() FROM dead_letters "
        f"WHERE {source} AND reason != {{r:String}} AND ({condition})",
        parameters=parameters,
    ).result_rows[0]
    return {
        "stored_rows": int(rows),
        "stored_refused": int(refused),
        "stored_ids": int(ids),
        "stored_dead_letters": int(dead),
        "stored_dead_letter_rows": int(dead_rows),
    }


def retention_days(client: Any, event_type: str) -> int | None:
    """Days the events table of `event_type` keeps rows (its TTL), None without a TTL.

    On a cluster the TTL is the shard-local table's (`<name>_local`), not the Distributed one's.
    """
    rows = client.query(
        "SELECT create_table_query FROM system.tables WHERE database = currentDatabase() "
        "AND name IN ({t:String}, {local:String})",
        parameters={"t": table_for(event_type), "local": f"{table_for(event_type)}_local"},
    ).result_rows
    found = [int(m["days"]) for (query,) in rows if (m := TTL_DAYS.search(query))]
    return min(found, default=None)


# -- rollups -------------------------------------------------------------------------------------
GRAINS = {"Minute": ("minute", 60), "Hour": ("hour", 3_600), "Day": ("day", 86_400)}
FIRST_BUCKETS = 3  # differing buckets named per rollup; the rest are summed up
END_OF_TIME = 2**32 - 1  # DateTime's last second: "no upper bound"
_ITEM = r"(?:\bSELECT|,)\s*"  # the start of one item of a SELECT list
_NAME = r"`?(\w+)`?"
_COUNT = re.compile(_ITEM + r"count\(\)\s+AS\s+" + _NAME)
_BUCKET = re.compile(_ITEM + r"toStartOf(Minute|Hour|Day)\(`?occurred_at`?\)\s+AS\s+" + _NAME)
_CONSTANT = re.compile(_ITEM + r"'([\w.-]*)'\s+AS\s+" + _NAME)
_TARGET = re.compile(r"\bTO\s+(?:`?(\w+)`?\.)?" + _NAME)
_REFRESHABLE = re.compile(r"\bREFRESH\s+(?:EVERY|AFTER)\b")
_NOT_ONE_ROW_PER_EVENT = re.compile(r"\b(?:WHERE|JOIN|HAVING|LIMIT|UNION|arrayJoin)\b", re.I)
_TTL = re.compile(r"\bTTL\b.*?toInterval(Second|Minute|Hour|Day|Week|Month|Year)\(([0-9]+)\)", re.S)
# a month as its shortest: a rollup is then compared over no bucket it may have dropped
_TTL_SECONDS = {"Second": 1, "Minute": 60, "Hour": 3_600, "Day": 86_400, "Week": 604_800}
_TTL_SECONDS |= {"Month": 28 * 86_400, "Year": 365 * 86_400}


@dataclass(frozen=True)
class RollupView:
    """A rollup table filled per insert by a materialized view reading an events table."""

    view: str
    table: str  # the table to read (on a cluster the Distributed one, not `<name>_local`)
    source: str  # the events table
    count_column: str  # the view's `count() AS <column>`
    time_column: str  # the view's `toStartOf<Grain>(occurred_at) AS <column>`
    grain: str  # minute, hour, day
    step: int  # the grain in seconds
    filters: tuple[tuple[str, str], ...] = ()  # constant columns the view sets ('x' AS event_type)
    ttl_seconds: int | None = None  # the rollup's own retention
    complete_until_s: int | None = None  # a tier's buckets are compared only before this
    # a tier's bucket holding an event inserted since this (epoch ms) is not compared: the tier
    # job recomputes it on its next run
    pending_since_ms: int | None = None

    @property
    def final(self) -> bool:
        """Read with FINAL: a tier table (the tier job's), whose recomputed buckets replace rows."""
        return self.complete_until_s is not None


@dataclass
class TypeRollups:
    """The rollups of one event type the audit compares, and the views it cannot, with why."""

    views: list[RollupView] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def parse_view(view: str, create: str, select: str, source: str) -> RollupView | str:
    """The rollup a materialized view fills from `source`, or why it cannot be compared.

    Compared: a view writing TO a table, one row per event into a `count()` column, bucketed
    by toStartOfMinute/Hour/Day(occurred_at). Not: a refreshable view (it runs a query on a
    schedule, so it lags by design), one that filters, joins or multiplies rows, one without
    a count() or whose buckets are not of occurred_at (produced_minute keeps max() only).
    """
    target = _TARGET.search(create)
    count, bucket = _COUNT.search(select), _BUCKET.search(select)
    if _REFRESHABLE.search(create):
        return "refreshable: filled on a schedule, not per insert"
    if target is None:
        return "no TO table: keeps its rows in an inner table"
    if count is None:
        return "no count() column"
    if bucket is None:
        return "not bucketed by toStartOfMinute/Hour/Day(occurred_at)"
    if _NOT_ONE_ROW_PER_EVENT.search(select):
        return "filters, joins or multiplies rows: its count is not the table's"
    grain, step = GRAINS[bucket[1]]
    return RollupView(
        view=view,
        table=target[2],
        source=source,
        count_column=count[1],
        time_column=bucket[2],
        grain=grain,
        step=step,
        filters=tuple((column, value) for value, column in _CONSTANT.findall(select)),
    )


def ttl_seconds(create: str) -> int | None:
    """How long a table keeps rows, from its CREATE query's TTL (None: no TTL)."""
    found = _TTL.search(create)
    return int(found[2]) * _TTL_SECONDS[found[1]] if found else None


def _ambiguous(views: Sequence[RollupView]) -> set[str]:
    """Views sharing a table with another whose constant columns are the same: their rows
    cannot be told apart (activity_minute's views each set event_type, so they can)."""
    seen: dict[tuple[str, tuple[tuple[str, str], ...]], list[str]] = {}
    for view in views:
        seen.setdefault((view.table, view.filters), []).append(view.view)
    return {name for names in seen.values() if len(names) > 1 for name in names}


def rollup_views(
    client: Any, event_types: Sequence[str] = catalog.EVENT_TYPES
) -> dict[str, TypeRollups]:
    """Per event type, the rollups filled straight from its events table, found in
    system.tables (one query): the views depending on events_<type> (or events_<type>_local on
    a cluster) and the table each writes TO, so rollups added by a later migration are audited
    without naming them here. Tiers a refreshable view fills from another rollup do not depend
    on an events table and are not compared (their source is, when it is one of these)."""
    rows = client.query(
        "SELECT name, dependencies_table, create_table_query, as_select, currentDatabase() "
        "FROM system.tables WHERE database = currentDatabase()"
    ).result_rows
    tables = {
        name: (list(dependents), create, select) for name, dependents, create, select, _ in rows
    }
    database = rows[0][4] if rows else ""
    found = {t: TypeRollups() for t in event_types}
    parsed: list[tuple[str, RollupView]] = []
    for event_type in event_types:
        for source in (table_for(event_type), f"{table_for(event_type)}_local"):
            for view in tables.get(source, ([], "", ""))[0]:
                result = _view_of(view, table_for(event_type), tables, database)
                if isinstance(result, str):
                    found[event_type].skipped[view] = result
                else:
                    parsed.append((event_type, result))
    ambiguous = _ambiguous([view for _, view in parsed])
    for event_type, view in parsed:
        if view.view in ambiguous:
            found[event_type].skipped[view.view] = (
                f"{view.table} is filled by other views it cannot be told apart from"
            )
        else:
            found[event_type].views.append(view)
    for event_type, views in tier_views(client, event_types, tables).items():
        found[event_type].views.extend(views)
    for rollups in found.values():
        rollups.views.sort(key=lambda view: (view.step, view.table))
    return found


def tier_views(
    client: Any, event_types: Sequence[str], present: Iterable[str]
) -> dict[str, list[RollupView]]:
    """Per event type, the tier tables the tier job fills (schemas/rollups.py), compared over
    the buckets it has completed: whole hours before its `complete_until`, whole days before
    that day, but for buckets holding events inserted since its last run began (it has not
    merged them yet). None before the job's first run (or in a store without tiers)."""
    if PROGRESS_TABLE not in present:  # a store migrated by an older govpulse
        return {}
    progress = TierJob(client).progress()
    if progress is None:
        return {}
    complete_until, scanned_from, _ = progress
    pending_since_ms = int((scanned_from - INSERT_SKEW_SECONDS) * 1000)
    found: dict[str, list[RollupView]] = {t: [] for t in event_types}
    for table in tier_tables():
        family = table.family
        for event_type in event_types:
            if event_type not in family.sources:
                continue
            found[event_type].append(
                RollupView(
                    view=f"tier job → {table.name}",
                    table=table.name,
                    source=table_for(event_type),
                    count_column=family.counts,
                    time_column=table.grain.name,
                    grain=table.grain.name,
                    step=table.grain.seconds,
                    filters=(("event_type", event_type),) if family.by_event_type else (),
                    complete_until_s=complete_until,
                    pending_since_ms=pending_since_ms,
                )
            )
    return found


def _view_of(
    view: str, source: str, tables: dict[str, tuple[list[str], str, str]], db: str
) -> RollupView | str:
    """The rollup `view` fills, with the table to read (the Distributed twin of a `_local`
    one) and its TTL; or why it is not compared."""
    if view not in tables:
        return "in another database"
    _, create, select = tables[view]
    parsed = parse_view(view, create, select, source)
    if isinstance(parsed, str):
        return parsed
    target = _TARGET.search(create)
    if target is not None and target[1] not in (None, db):
        return f"writes to another database ({target[1]})"
    if parsed.table not in tables:
        return f"its table {parsed.table} does not exist"
    name = parsed.table
    if name.endswith("_local") and name.removesuffix("_local") in tables:
        name = name.removesuffix("_local")
    return replace(parsed, table=name, ttl_seconds=ttl_seconds(tables[parsed.table][1]))


def bucket_bounds(step: int, since_s: float | None, until_s: float | None) -> tuple[int, int]:
    """[first, end) of the whole buckets of `step` seconds inside [since, until), as epoch
    seconds: a bucket cut by the window would count events the window leaves out."""
    first = 0 if since_s is None else -(-int(since_s) // step) * step
    end = END_OF_TIME if until_s is None else int(until_s) // step * step
    return first, max(first, end)


def _kept_since(
    view: RollupView, since: datetime | None, kept_since_ms: int | None, now_s: float
) -> float | None:
    """The earliest moment both the events table and the rollup still keep, and the audit
    wants (the later of `since`, the events tables' and the rollup's retention)."""
    starts = [since.timestamp()] if since is not None else []
    if kept_since_ms is not None:
        starts.append(kept_since_ms / 1000)
    if view.ttl_seconds is not None:
        starts.append(now_s - view.ttl_seconds + RETENTION_MARGIN_MS / 1000)
    return max(starts, default=None)


def _rollup_side(index: int, view: RollupView, bounds: tuple[int, int]) -> tuple[str, dict]:
    """One rollup's events per bucket in its bounds (and of its event type), as SQL."""
    time_column, (first, end) = f"`{view.time_column}`", bounds
    where = [f"{time_column} >= toDateTime({first:d}) AND {time_column} < toDateTime({end:d})"]
    parameters = {}
    for number, (column, value) in enumerate(view.filters):
        parameters[f"v{index}_{number}"] = value
        where.append(f"`{column}` = {{v{index}_{number}:String}}")
    return (
        f"SELECT toUInt16({index:d}) AS i, toUInt32(toUnixTimestamp({time_column})) AS b, "
        f"toUInt64(sum(`{view.count_column}`)) AS r0, toUInt64(0) AS e0, toUInt64(0) AS p0 "
        f"FROM `{view.table}`"
        f"{' FINAL' if view.final else ''} WHERE {' AND '.join(where)} GROUP BY b"
    ), parameters


def _events_side(source: str, views: Sequence[RollupView], bounds: list[tuple[int, int]]) -> str:
    """The events table's rows per bucket of every rollup, read once (per minute, then into
    each rollup's buckets: a minute lies in one hour and one day), and for tier views the rows
    inserted since their job's last run (`p0`: such a bucket is pending, not compared)."""
    first, end = min(lo for lo, _ in bounds), max(hi for _, hi in bounds)
    pending = [v.pending_since_ms for v in views if v.pending_since_ms is not None]
    late = f"countIf(inserted_at >= fromUnixTimestamp64Milli({min(pending):d}))" if pending else "0"
    buckets = ", ".join(
        f"(toUInt16({i:d}), toUInt32(toUnixTimestamp(toStartOf{v.grain.title()}(m))), "
        f"toUInt32({lo:d}), toUInt32({hi:d}), {int(v.pending_since_ms is not None):d})"
        for i, (v, (lo, hi)) in enumerate(zip(views, bounds, strict=True))
    )
    return (
        "SELECT x.1 AS i, x.2 AS b, toUInt64(0) AS r0, toUInt64(sum(c)) AS e0, "
        "toUInt64(sum(l * x.5)) AS p0 FROM ("
        f"SELECT toStartOfMinute(occurred_at) AS m, count() AS c, {late} AS l "
        f"FROM `{source}` WHERE occurred_at >= toDateTime64({first:d}, 3, 'UTC') "
        f"AND occurred_at < toDateTime64({end:d}, 3, 'UTC') GROUP BY m"
        f") ARRAY JOIN [{buckets}] AS x WHERE x.2 >= x.3 AND x.2 < x.4 GROUP BY i, b"
    )


def rollup_counts(
    client: Any,
    views: Sequence[RollupView],
    since: datetime | None = None,
    until: datetime | None = None,
    kept_since_ms: int | None = None,
) -> list[RollupCount]:
    """Each rollup's events per bucket against its events table's rows, in one query.

    Compared: the whole buckets (of the rollup's grain) of occurred_at inside [since, until)
    that both tables still keep (`kept_since_ms`: the events tables' retention; the rollup's
    own TTL). A bucket with events in either table counts. Rows stored before a rollup's view
    existed are not in it (its migration has no backfill): audit such a store --since then.
    """
    if not views:
        return []
    now_s = time.time()
    until_s = None if until is None else until.timestamp()
    bounds = [
        bucket_bounds(v.step, _kept_since(v, since, kept_since_ms, now_s), _until(v, until_s))
        for v in views
    ]
    sides, parameters = [], {}
    for index, (view, bound) in enumerate(zip(views, bounds, strict=True)):
        sql, values = _rollup_side(index, view, bound)
        sides.append(sql)
        parameters.update(values)
    sides.append(_events_side(views[0].source, views, bounds))
    rows = client.query(
        "SELECT i, count(), countIf(r != e), sum(r), sum(e), "
        f"arraySlice(arraySort(groupArrayIf((b, r, e), r != e)), 1, {FIRST_BUCKETS:d}) "
        "FROM (SELECT i, b, sum(r0) AS r, sum(e0) AS e, sum(p0) AS p FROM ("
        + " UNION ALL ".join(sides)
        + ") GROUP BY i, b) WHERE p = 0 GROUP BY i",
        parameters=parameters,
    ).result_rows
    by_index = {int(row[0]): row[1:] for row in rows}
    pairs = enumerate(zip(views, bounds, strict=True))
    return [_rollup_count(view, bound, by_index.get(i)) for i, (view, bound) in pairs]


def _until(view: RollupView, until_s: float | None) -> float | None:
    """The audit's `until`, or where a tier's completed buckets end if that is earlier."""
    if view.complete_until_s is None:
        return until_s
    return view.complete_until_s if until_s is None else min(until_s, view.complete_until_s)


def _rollup_count(view: RollupView, bounds: tuple[int, int], row: Sequence | None) -> RollupCount:
    first, end = bounds
    count = RollupCount(
        view.table,
        view.source,
        view.grain,
        since=_iso(first) if first > 0 else None,
        until=_iso(end) if end < END_OF_TIME else None,
    )
    if row is not None:
        buckets, differing, counted, held, worst = row
        count.buckets, count.differing = int(buckets), int(differing)
        count.rollup_events, count.table_events = int(counted), int(held)
        count.first = [(_iso(b), int(r), int(e)) for b, r, e in worst]
    return count


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat()


def clickhouse_side(
    client: Any, since: datetime | None = None, until: datetime | None = None
) -> Callable[[str, Ranges, int | None], dict[str, Any]]:
    """`stored` for `audit` on one client: `stored_counts` and `rollup_counts` per type, the
    rollups found once (`rollup_views`); `since`/`until` bound the rollups' occurred_at."""
    found = rollup_views(client)

    def stored(event_type: str, ranges: Ranges, kept_since_ms: int | None) -> dict[str, Any]:
        rollups = found.get(event_type, TypeRollups())
        return {
            **stored_counts(client, event_type, ranges, kept_since_ms),
            "rollups": rollup_counts(client, rollups.views, since, until, kept_since_ms),
            "rollups_skipped": dict(rollups.skipped),
        }

    return stored


# -- both ----------------------------------------------------------------------------------------
def audit(
    bootstrap: str,
    stored: Callable[[str, Ranges, int | None], dict[str, Any]],
    writer_schema: Callable[[int], Any],
    event_types: Sequence[str] = catalog.EVENT_TYPES,
    since: datetime | None = None,
    until: datetime | None = None,
    retention: int | None = None,
) -> list[TypeAudit]:
    """Audit every type; `stored(event_type, ranges, kept_since_ms)` gives TypeAudit fields
    from ClickHouse (`clickhouse_side`, or `stored_counts` alone). `retention`: days the
    events tables keep (their TTL); events older than that (less a margin) are counted as
    aged out and compared on neither side.

    ClickHouse is read before the outcome topics' ends are taken: the sink inserts a record
    only after it is on its clean topic, so on a live pipeline ClickHouse can be behind what
    is counted, never ahead — an in-flight record reads "sink behind", not "inserted twice".
    """
    raw_topics = [catalog.raw_topic(t) for t in event_types]
    raw_ends = topic_ends(bootstrap, raw_topics)
    if missing := sorted(set(raw_topics) - {topic for topic, _ in raw_ends}):
        raise MissingTopic(
            f"no topic {', '.join(missing)} at {bootstrap}: wrong GOVPULSE_BOOTSTRAP_SERVERS, "
            "or nothing of these types was ever produced (`govpulse topics apply` creates them)"
        )
    ranges = raw_ranges(bootstrap, raw_ends, event_types, since, until)
    kept_since_ms = None
    if retention is not None:
        kept_since_ms = time.time_ns() // 1_000_000 - retention * DAY_MS + RETENTION_MARGIN_MS
    stored_now = {t: stored(t, ranges[t], kept_since_ms) for t in event_types}
    outcome_topics = [catalog.topic(stage, t) for t in event_types for stage in catalog.OUTCOMES]
    outcome_ends = topic_ends(bootstrap, outcome_topics)
    results = topic_counts(
        bootstrap, outcome_ends, ranges, writer_schema, since=since, kept_since_ms=kept_since_ms
    )
    for event_type, result in results.items():
        result.window = window_text(catalog.raw_topic(event_type), since, until)
        for name, value in stored_now[event_type].items():
            setattr(result, name, value)
    return [results[t] for t in event_types]


def window_text(raw_topic: str, since: datetime | None, until: datetime | None) -> str:
    """The audited raw records in words, for problems: 'raw.complaint since 2026-12-07 …'."""

    def moment(when: datetime) -> str:
        return f"{when.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"

    if since is not None and until is not None:
        return f"{raw_topic} from {moment(since)} until {moment(until)}"
    if since is not None:
        return f"{raw_topic} since {moment(since)}"
    if until is not None:
        return f"{raw_topic} before {moment(until)}"
    return f"all of {raw_topic}"


class MissingTopic(RuntimeError):
    """A raw topic of an audited type does not exist on the broker."""


COLUMNS = (
    ("type", "event_type"),
    ("produced", "produced"),
    ("clean", "clean"),
    ("dead-lettered", "dead_lettered"),
    ("duplicates", "duplicates"),
    ("aged out", "aged_out"),
    ("no outcome", "unaccounted"),
    ("clean ids", "clean_ids"),
    ("CH rows", "stored_rows"),
    ("CH ids", "stored_ids"),
    ("CH dead", "stored_dead_letters"),
    ("CH dead rows", "stored_dead_letter_rows"),
    ("rollups off", "rollups_off"),
)


def table(results: Sequence[TypeAudit]) -> str:
    """A fixed-width table, one line per type, then the problems found."""
    widths = [max(len(h), 9) for h, _ in COLUMNS]
    widths[0] = max(len(r.event_type) for r in results) if results else 4
    lines = ["  ".join(h.rjust(w) if i else h.ljust(w) for i, ((h, _), w) in
                       enumerate(zip(COLUMNS, widths, strict=True))) + "  status"]  # fmt: skip
    for result in results:
        cells = []
        for i, ((_, name), width) in enumerate(zip(COLUMNS, widths, strict=True)):
            value = getattr(result, name)
            cells.append(str(value).ljust(width) if i == 0 else f"{value:,}".rjust(width))
        lines.append("  ".join(cells) + ("  MISMATCH" if result.problems else "  ok"))
    for result in results:
        lines += [f"{result.event_type}: {problem}" for problem in result.problems]
    return "\n".join(lines)


def to_json(results: Sequence[TypeAudit]) -> str:
    return json.dumps(
        {
            "ok": not any(r.problems for r in results),
            "types": {
                r.event_type: {**asdict(r), "rollups_off": r.rollups_off, "problems": r.problems}
                for r in results
            },
        }
    )
