"""Reconciliation: every raw record has exactly one outcome, and ClickHouse holds the clean ones.

What is read, per event type:
- Kafka, as ground truth of the stream processor: the raw topic's offsets (what was produced),
  and every record of clean.<type> (lineage fields source_partition/source_offset of the clean
  schema, key = event_id), dlq.<type> and dup.<type> (lineage headers). Outcomes are counted
  per DISTINCT raw (partition, offset): after a worker crash the processor may write a record's
  outcome twice (at-least-once), so counting records would not balance, counting raw positions
  does. A position with a clean record counts as clean even if a replay also marked it a
  duplicate (the replay saw its own first attempt in the de-duplication table).
- ClickHouse, as what the sink stored: rows and distinct event ids of events_<type>, and
  distinct raw positions in dead_letters, restricted to the same raw offset ranges.

A time range (`since`/`until`, by the raw records' broker timestamps) becomes per-partition
raw offset ranges, so Kafka and ClickHouse are compared over exactly the same records.

Checks: produced = clean + dead-lettered + duplicates; ClickHouse rows = clean records (the
sink inserted each exactly once, replays of the processor included); ClickHouse distinct ids =
distinct clean ids; dead letters stored = dead-lettered.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from fastavro import parse_schema

from govpulse.kafka_config import client_config
from govpulse.offsets import Ends, position, topic_ends
from govpulse.schemas import catalog, wire_format
from govpulse.schemas.timestamps import epoch_millis
from govpulse.sinks.columns import table_for
from govpulse.sinks.dead_letters import STORE_REJECTED
from govpulse.sinks.migrations import TTL_DAYS

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
class TypeAudit:
    """Counts of one event type over the audited raw offset ranges."""

    event_type: str
    produced: int = 0
    clean: int = 0  # distinct raw positions with a clean record (aged out ones included)
    aged_out: int = 0  # … whose event has passed the events tables' retention since
    dead_lettered: int = 0  # … dead-lettered (and not clean)
    duplicates: int = 0  # … dropped as duplicates (and neither of the above)
    unaccounted: int = 0  # … with no outcome yet
    clean_records: int = 0  # clean records within retention, the processor's replays included
    clean_ids: int = 0  # distinct event ids among them
    stored_rows: int = 0  # rows in events_<type> within retention
    stored_refused: int = 0  # clean records ClickHouse refused, in dead_letters (store_rejected)
    stored_ids: int = 0  # distinct event ids in events_<type> and among the refused
    stored_dead_letters: int = 0  # distinct raw positions in dead_letters
    dead_letter_records: int = 0  # dlq records, the processor's replays included
    stored_dead_letter_rows: int = 0  # rows in dead_letters (one per dlq record)
    unreadable_clean: int = 0  # clean records whose lineage could not be decoded
    replayed: int = 0  # outcome records beyond one per raw position (at-least-once)
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)  # positions by reason
    ranges: dict[int, list[int]] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        found = []
        if self.unaccounted:
            found.append(
                f"{self.unaccounted} of {self.produced} raw records have no outcome "
                "(clean, dead-lettered or duplicate): streams behind, or records lost"
            )
        accounted = self.stored_rows + self.stored_refused
        if accounted != self.clean_records:
            why = (
                "sink behind, or rows lost"
                if accounted < self.clean_records
                else ("rows inserted twice")
            )
            refused = f" (+{self.stored_refused} refused by it)" if self.stored_refused else ""
            found.append(
                f"ClickHouse holds {self.stored_rows} rows{refused} for {self.clean_records} "
                f"clean records: {why}"
            )
        if self.stored_ids != self.clean_ids:
            found.append(
                f"ClickHouse has {self.stored_ids} distinct event ids, "
                f"{catalog.clean_topic(self.event_type)} "
                f"has {self.clean_ids}"
            )
        if self.stored_dead_letters != self.dead_lettered:
            found.append(
                f"dead_letters holds {self.stored_dead_letters} raw records, "
                f"{catalog.dlq_topic(self.event_type)} has {self.dead_lettered}"
            )
        if self.unreadable_clean:
            found.append(
                f"{self.unreadable_clean} records of {catalog.clean_topic(self.event_type)} "
                "could not be decoded (not framed, or a schema id the registry lacks): "
                "their raw records count as without outcome"
            )
        if self.stored_dead_letter_rows > self.dead_letter_records:
            found.append(
                f"dead_letters holds {self.stored_dead_letter_rows} rows for "
                f"{self.dead_letter_records} dlq records: dead letters inserted twice"
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
        wanted = {key: end for key, end in wanted.items() if starts[key] < end}
        consumer.assign([TopicPartition(t, p, starts[(t, p)]) for t, p in wanted])
        deadline = time.monotonic() + timeout
        while wanted:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {sorted(wanted)} to the end in {timeout:.0f} s")
            for message in consumer.consume(10_000, 0.5):
                if message.error() is not None:
                    continue
                topic, partition, offset = position(message)
                key = (topic, partition)
                end = wanted.get(key)
                if end is not None and offset < end:
                    yield message
                    if offset + 1 >= end:
                        del wanted[key]
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


def _lineage(message: Message) -> tuple[int, int] | None:
    """The raw (partition, offset) in a dlq/dup record's headers; None when absent, null or
    not a number (Kafka allows a header without a value)."""
    headers = dict(message.headers() or ())
    partition, offset = headers.get("source_partition"), headers.get("source_offset")
    if partition is None or offset is None:
        return None
    try:
        return int(partition), int(offset)
    except ValueError:
        return None


def _text(value: str | bytes | None, default: str) -> str:
    """A header's value as text (`default` for a header without a value)."""
    if value is None:
        return default
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


class _CleanLineage:
    """(source_partition, source_offset, occurred_at ms) of clean records, decoding only those
    fields."""

    def __init__(self, event_type: str, writer_schema: Callable[[int], Any]) -> None:
        clean = catalog.clean_schema(event_type)
        names = ("source_partition", "source_offset", "occurred_at")
        wanted = [f for f in clean["fields"] if f["name"] in names]
        self.reader = parse_schema({**clean, "fields": wanted})
        self.writer_schema = writer_schema
        self.writers: dict[int, Any] = {}

    def __call__(self, value: bytes) -> tuple[int, int, int]:
        sid = wire_format.schema_id_of(value)
        writer = self.writers.get(sid)
        if writer is None:
            writer = self.writers[sid] = self.writer_schema(sid)
        record = wire_format.decode(value, writer, self.reader)
        occurred = epoch_millis(record["occurred_at"])
        return record["source_partition"], record["source_offset"], occurred


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
        self.lineage = _CleanLineage(event_type, writer_schema)
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
            if self.mark((partition, offset), CLEAN | AGED if aged else CLEAN) and not aged:
                self.audit.clean_records += 1
                self.ids.add(message.key())
        else:
            position = _lineage(message)
            marked = self.mark(position, DEAD if stage == "dlq" else DUP)
            self.records += marked
            if stage == "dlq" and marked and position is not None:
                self.audit.dead_letter_records += 1
                reason = dict(message.headers() or ()).get("reason")
                self.reasons[position] = _text(reason, "unknown")

    def result(self) -> TypeAudit:
        audit = self.audit
        audit.clean_ids = len(self.ids)
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
    `kept_since_ms`), clean records the engine refused (dead_letters, `store_rejected`), and
    distinct dead-lettered raw positions.
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
        f"SELECT 0, ifNull(event_id, '') FROM dead_letters WHERE {source} "
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
    """Days the events table of `event_type` keeps rows (its TTL), None without a TTL."""
    rows = client.query(
        "SELECT create_table_query FROM system.tables WHERE database = currentDatabase() "
        "AND name = {t:String}",
        parameters={"t": table_for(event_type)},
    ).result_rows
    found = TTL_DAYS.search(rows[0][0]) if rows else None
    return int(found["days"]) if found else None


# -- both ----------------------------------------------------------------------------------------
def audit(
    bootstrap: str,
    stored: Callable[[str, Ranges, int | None], dict[str, int]],
    writer_schema: Callable[[int], Any],
    event_types: Sequence[str] = catalog.EVENT_TYPES,
    since: datetime | None = None,
    until: datetime | None = None,
    retention: int | None = None,
) -> list[TypeAudit]:
    """Audit every type; `stored(event_type, ranges, kept_since_ms)` is `stored_counts` on
    some client. `retention`: days the events tables keep (their TTL); events older than
    that (less a margin) are counted as aged out and compared on neither side.

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
        for name, value in stored_now[event_type].items():
            setattr(result, name, value)
    return [results[t] for t in event_types]


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
    ("clean records", "clean_records"),
    ("CH rows", "stored_rows"),
    ("clean ids", "clean_ids"),
    ("CH ids", "stored_ids"),
    ("CH dead", "stored_dead_letters"),
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
            "types": {r.event_type: {**asdict(r), "problems": r.problems} for r in results},
        }
    )
