"""The sink's ClickHouse side: inserts, the ranges it is about to insert, and "already stored?".

Clean records are inserted as Avro into `events_<type>_avro` (see 0006_sink_ingest.sql for why
and how they reach `events_<type>`); dead letters as rows into `dead_letters`. Every insert
carries a deduplication token made of the topic:partition:first-last ranges it holds, so a
retried insert whose first attempt did land is dropped by ClickHouse.

Duplicate events (issue 18: one event_id on two raw partitions, so cleaned twice): before a
fresh insert the writer asks `stored_event_ids` which of its event ids `events_<type>` holds.
The ids and occurred_at come from the first fields of each record's Avro body (the envelope
every event schema starts with: `envelope_key`), not from decoding it. The records it then
leaves out are recorded with the insert's ranges in `sink_batches`, under the consumer group
`<group>|dropped` (`write_intents`, `recorded_drops`), so a re-insert of that insert leaves
out exactly the same ones (see sinks/writer.py).

Which look-up: measured on chdb (2 shared cores, load 3-20), each query with ids it never saw
(ClickHouse's query condition cache answers a repeated condition in ~5 ms whatever the table);
new events of the last 10 minutes plus 1 % copies of events stored in the last hour; median
(min) ms on 4 M rows over 120 days / 30 M rows over 390 days:

| ids   | event_id IN (bloom filter) | + occurred_at ranges: taken | (province, agency, at) IN |
|-------|----------------------------|-----------------------------|---------------------------|
| 100   | 85 (53) / 508 (486)        | 9 (4) / 10 (4)              | 24 (6) / 35 (6)           |
| 1,000 | 103 (82) / 352 (311)       | 18 (11) / 18 (16)           | 49 (45) / 78 (56)         |
| 5,000 | 212 (103) / 650 (552)      | 40 (21) / 33 (31)           | (not run)                 |

The bloom filter cannot prune for more than a few dozen ids (nearly every index granule holds
one of them by chance), so the look-up reads most of the event_id column and grows with the
table; the primary-key tuples read as few granules as the ranges, but ClickHouse's analysis of
a set of tuples costs more than reading them. Copies of an event share its occurred_at, so the
ids are looked up within the time ranges of the batch's occurred_at (`time_ranges`): other
partitions and granules are never read, and the cost follows the batch's span, not the table.
A batch holding copies of old events spreads the ranges (1 % copies of any age among 1,000
ids: 113 / 234 ms, about the whole table, as the bloom filter's 134 / 379). A copy whose
occurred_at differs from the stored event's is not found (it is stored again). Past ~1,000 ids
the bloom filter only costs (`BLOOM_MAX_IDS`). Every look-up has a floor of ~5 ms (planning,
parts), so a live cycle pays ~5 ms per event type; bulk pays ~3 µs per id for passing the ids
(as one String parameter read as TSV in ClickHouse, ~45 % less than an Array(UUID) parameter
at 10,000 ids: the text is built here, as clickhouse-connect escapes a `str` parameter
character by character in Python, 0.2-0.3 s for 30,000 ids) and ~1 µs per record for
`envelope_key`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from clickhouse_connect.driver.client import Client

from govpulse.schemas import catalog
from govpulse.schemas.timestamps import epoch_millis
from govpulse.schemas.wire_format import HEADER_SIZE, MAGIC_BYTE
from govpulse.schemas.writer_schemas import UnusableSchema, WriterSchemas
from govpulse.sinks.avro_container import container, split_by_schema
from govpulse.sinks.batching import Batch, Range, TopicPartition
from govpulse.sinks.columns import DEAD_LETTER_COLUMNS, columns_for, table_for
from govpulse.sinks.dead_letters import refused_row
from govpulse.sinks.isolate import RecordRefused

log = logging.getLogger("govpulse.sink")

DEAD_LETTERS = "dead_letters"
INTENTS = "sink_batches"
INTENT_COLUMNS = ["consumer_group", "topic", "partition", "first_offset", "last_offset", "token"]
# Per partition, how many not-yet-committed ranges a new owner replays with their boundaries.
MAX_REPLAYED_RANGES = 1000
_INSERT_SETTINGS = {"input_format_avro_allow_missing_fields": 1}
# `sink_batches` rows recording the records a fresh insert left out as duplicates: consumer group
# `<group>|dropped`, the insert's first range, token `<token>#<positions>` (`encode_positions`)
DROPPED_GROUP_SUFFIX = "|dropped"
_DROPPED_SEPARATOR = "#"  # never in a token: topics, scopes and table names exclude it
# Ids per look-up query: a parameter travels in the URL over HTTP (1 MiB limit by default)
MAX_IDS_PER_LOOKUP = 10_000
# Occurred_at values further apart than this are looked up in separate ranges, at most this many
LOOKUP_GAP_MS = 60 * 60 * 1000
MAX_LOOKUP_RANGES = 16
# DateTime64(3)'s range: an occurred_at outside cannot be stored, so it is never looked up
_MIN_MS, _MAX_MS = -2_208_988_800_000, 10_413_791_999_999
_UUID_TEXT = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_CANONICAL_UUID = re.compile(_UUID_TEXT)
# Ids as one String parameter, rows of TSV: the escape of a newline (the parameter's text is
# read in escaped format); they need no other escaping
_ID_SEPARATOR = "\\n"
_CANONICAL_IDS = re.compile(f"{_UUID_TEXT}(?:{re.escape(_ID_SEPARATOR)}{_UUID_TEXT})*")
# Past this many ids per look-up the bloom filter on event_id is skipped (see above)
BLOOM_MAX_IDS = 1_000
# The fields every event schema starts with (schemas/avro/envelope.avsc), as `envelope_key`
# reads them: event_id, then two strings it skips, then occurred_at.
ENVELOPE_PREFIX = (
    ("event_id", "string"),
    ("event_type", "string"),
    ("agency_code", "string"),
    ("occurred_at", "long"),
)

EventKey = tuple[str, int]  # (event_id as written, occurred_at in epoch milliseconds)
_BY_TIME = itemgetter(1)
_ENVELOPE, _DECODE, _UNREADABLE = object(), object(), object()  # SinkStore._way_to_read


def _base_type(declared: Any) -> Any:
    """`{"type": "string", "logicalType": "uuid"}` → "string"; a name as it is."""
    return declared.get("type") if isinstance(declared, dict) else declared


class UnreadableRecord(RecordRefused):
    """A clean record the sink cannot insert (not framed, or its schema id is unknown).

    Clean topics are written by the stream processor under registered schemas, so this means
    another writer, a bug or a registry that lost its state: the record is refused alone
    (sinks/isolate.py) and dead-lettered as `store_rejected`, the rest of its insert stored.
    """


def staging_table_for(event_type: str) -> str:
    """The Null table clean records are inserted into as Avro (moved on by a view)."""
    return f"{table_for(event_type)}_avro"


def event_type_of(topic: str) -> str:
    """`clean.complaint` → `complaint`."""
    return topic.split(".", 1)[1]


# -- duplicates: pure helpers --------------------------------------------------------------------
def _read_long(buf: bytes, pos: int) -> tuple[int, int]:
    """A zig-zag varint at `pos`: (value, position after it). IndexError when truncated."""
    byte = buf[pos]
    if byte < 0x80:
        return (byte >> 1) ^ -(byte & 1), pos + 1
    value, shift = byte & 0x7F, 7
    while True:
        pos += 1
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (value >> 1) ^ -(value & 1), pos + 1
        shift += 7
        if shift > 63:
            raise ValueError("varint is longer than 10 bytes")


def _skip_string(value: bytes, pos: int) -> int:
    """The position after the string at `pos`."""
    byte = value[pos]
    if byte < 0x80 and not byte & 1:  # up to 63 bytes: one byte of length
        return pos + 1 + (byte >> 1)
    length, pos = _read_long(value, pos)
    if length < 0:
        raise ValueError("negative string length")
    return pos + length


def envelope_key(value: bytes) -> EventKey:
    """(event_id, occurred_at ms) of a framed record whose schema starts with `ENVELOPE_PREFIX`.

    Reads four fields of the body and nothing more (~1 µs: a canonical id and short codes take
    the inline paths). ValueError or IndexError when the bytes are not such a record.
    """
    if value[HEADER_SIZE] == 72:  # a string of 36 bytes: a canonical UUID
        pos = HEADER_SIZE + 37
        event_id = value[HEADER_SIZE + 1 : pos].decode()
    else:
        end = _skip_string(value, HEADER_SIZE)
        event_id = value[_read_long(value, HEADER_SIZE)[1] : end].decode()
        pos = end
    byte = value[pos]  # event_type and agency_code, skipped (inline: the short ones)
    pos = pos + 1 + (byte >> 1) if byte < 0x80 and not byte & 1 else _skip_string(value, pos)
    byte = value[pos]
    pos = pos + 1 + (byte >> 1) if byte < 0x80 and not byte & 1 else _skip_string(value, pos)
    zigzag, shift = 0, 0
    while True:  # occurred_at: a varint of 6 bytes for today's milliseconds
        byte = value[pos]
        zigzag |= (byte & 0x7F) << shift
        if byte < 0x80:
            return event_id, (zigzag >> 1) ^ -(zigzag & 1)
        pos += 1
        shift += 7
        if shift > 63:
            raise ValueError("varint is longer than 10 bytes")


def time_ranges(
    millis: Iterable[int], gap_ms: int = LOOKUP_GAP_MS, limit: int = MAX_LOOKUP_RANGES
) -> list[tuple[int, int]]:
    """Sorted, disjoint [first, last] ranges covering `millis`: a new range where two values
    are more than `gap_ms` apart; past `limit` ranges, the two closest neighbours merge."""
    ranges: list[list[int]] = []
    for each in sorted(set(millis)):
        if ranges and each - ranges[-1][1] <= gap_ms:
            ranges[-1][1] = each
        else:
            ranges.append([each, each])
    while len(ranges) > limit:
        i = min(range(len(ranges) - 1), key=lambda j: ranges[j + 1][0] - ranges[j][1])
        ranges[i : i + 2] = [[ranges[i][0], ranges[i + 1][1]]]
    return [(first, last) for first, last in ranges]


def encode_positions(positions: Iterable[int]) -> str:
    """Sorted positions as runs: [0, 1, 2, 5, 7, 8] → `0-2,5,7-8`."""
    runs: list[list[int]] = []
    for each in sorted(set(positions)):
        if runs and each == runs[-1][1] + 1:
            runs[-1][1] = each
        else:
            runs.append([each, each])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def decode_positions(text: str) -> list[int]:
    """`encode_positions` reversed; ValueError when malformed."""
    positions: list[int] = []
    for run in filter(None, text.split(",")):
        first, _, last = run.partition("-")
        a, b = int(first), int(last or first)
        if a < 0 or b < a:
            raise ValueError(f"not a run of positions: {run!r}")
        positions.extend(range(a, b + 1))
    return positions


class SqlText:
    """A query parameter whose ClickHouse text is built by the caller.

    clickhouse-connect passes a value of a type it does not know on as `str(value)`, without
    the per-character escaping it applies to a `str` (~10 µs an id, in Python). Only for text
    that needs no escaping: here, canonical UUIDs joined by an escaped newline.
    """

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


class SinkStore:
    """What the sink does to ClickHouse, through one clickhouse-connect client."""

    def __init__(self, client: Client, schemas: WriterSchemas, consumer_group: str) -> None:
        self.client = client
        self.schemas = schemas
        self.group = consumer_group
        self._envelope: dict[int, bool] = {}  # schema id → starts with ENVELOPE_PREFIX

    def _readable(self, read: Callable[[Any], Any], argument: Any) -> Any:
        """`read(argument)` from the writer schemas; an unknown or unusable schema id
        raises `UnreadableRecord` (the record is refused alone)."""
        try:
            return read(argument)
        except KeyError as missing:
            raise UnreadableRecord(
                f"schema id {missing.args[0]} is unknown to the registry"
            ) from None
        except UnusableSchema as error:
            raise UnreadableRecord(str(error)) from None

    # -- inserts ---------------------------------------------------------------------------
    def insert_clean(self, event_type: str, values: Sequence[bytes], token: str) -> int:
        """Insert framed clean records of one type; rows inserted."""
        try:
            groups = split_by_schema(values)
        except ValueError as error:
            raise UnreadableRecord(str(error)) from None
        columns = columns_for(event_type)
        for sid, group in groups.items():
            text = self._readable(self.schemas.text, sid)
            settings = {
                **_INSERT_SETTINGS,
                "insert_deduplication_token": token if len(groups) == 1 else f"{token}|{sid}",
            }
            self.client.raw_insert(
                staging_table_for(event_type),
                columns,
                container(text, group),
                settings=settings,
                fmt="Avro",
            )
        return len(values)

    def insert_dead_letters(self, rows: Sequence[Sequence[Any]], token: str) -> int:
        self.client.insert(
            DEAD_LETTERS,
            rows,
            column_names=list(DEAD_LETTER_COLUMNS),
            settings={"insert_deduplication_token": token},
        )
        return len(rows)

    def newest_produced_at(self, values: Iterable[bytes]) -> float | None:
        """Seconds since the epoch of the newest `produced_at` among `values` (decoded);
        a value that does not decode is left out (the insert refuses it on its own)."""
        newest = None
        for value in values:
            try:
                produced = (
                    epoch_millis(self._readable(self.schemas.decode, value)["produced_at"]) / 1000
                )
            except RecordRefused:
                continue
            except Exception as error:  # not Avro of that schema
                log.debug("produced_at of an undecodable clean record: %s", error)
                continue
            newest = produced if newest is None else max(newest, produced)
        return newest

    def refused_clean_row(
        self, event_type: str, value: bytes, topic: str, partition: int, offset: int, error: str
    ) -> list[Any]:
        """The `dead_letters` row of a clean record ClickHouse refused: the raw lineage and
        event id when the record decodes, else its own clean-topic position."""
        lineage: tuple[str, int, int, int, str | None]
        try:
            record = self._readable(self.schemas.decode, value)
            lineage = (
                catalog.raw_topic(event_type),
                int(record["source_partition"]),
                int(record["source_offset"]),
                epoch_millis(record["processed_at"]),
                str(record["event_id"]),
            )
        except Exception:
            now_ms = int(datetime.now(UTC).timestamp() * 1000)
            lineage = (topic, partition, offset, now_ms, None)
        return refused_row(event_type, error, *lineage)

    # -- duplicates ----------------------------------------------------------------------------
    def event_keys(self, values: Sequence[bytes]) -> list[EventKey | None]:
        """(event_id, occurred_at ms) of each clean record; None for one that does not read
        (not framed, schema unknown or unusable: the insert refuses it on its own)."""
        keys: list[EventKey | None] = []
        append = keys.append
        header, way = b"", _UNREADABLE
        for value in values:
            head = value[:HEADER_SIZE]
            if head != header:  # records of a batch share one schema: looked at once
                header, way = head, self._way_to_read(head)
            try:
                if way is _ENVELOPE:
                    append(envelope_key(value))
                elif way is _DECODE:  # a schema of another shape (not the project's own)
                    record = self.schemas.decode(value)
                    append((str(record["event_id"]), epoch_millis(record["occurred_at"])))
                else:
                    append(None)
            except Exception as error:  # not Avro of its schema, fields missing
                log.debug("event id of an unreadable clean record: %s", error)
                append(None)
        return keys

    def _way_to_read(self, header: bytes) -> object:
        """How to read the event key of records framed with `header`: `_ENVELOPE` when their
        writer schema starts with ENVELOPE_PREFIX (remembered), `_DECODE` when it does not,
        `_UNREADABLE` when not framed or the schema id is unknown or unusable (not
        remembered: the registry may know it later)."""
        if len(header) < HEADER_SIZE or header[0] != MAGIC_BYTE:
            return _UNREADABLE
        sid = int.from_bytes(header[1:], "big")
        known = self._envelope.get(sid)
        if known is None:
            try:
                fields = self.schemas(sid).get("fields", [])
            except Exception as error:  # unknown id, unusable schema, registry away
                log.debug("event ids of records of schema %d: %s", sid, error)
                return _UNREADABLE
            known = self._envelope[sid] = len(fields) >= len(ENVELOPE_PREFIX) and all(
                field["name"] == name and _base_type(field["type"]) == kind
                for field, (name, kind) in zip(fields, ENVELOPE_PREFIX, strict=False)
            )
        return _ENVELOPE if known else _DECODE

    def stored_event_ids(self, event_type: str, keys: Iterable[EventKey]) -> set[str]:
        """Which of these event ids `events_<type>` holds, looked up within the time ranges of
        their occurred_at (copies of an event share it). Ids that are not canonical UUIDs, or
        times ClickHouse cannot store, are not looked up (their rows cannot be there)."""
        wanted = [k for k in keys if _MIN_MS <= k[1] <= _MAX_MS]
        if len(wanted) > MAX_IDS_PER_LOOKUP:
            wanted.sort(key=_BY_TIME)  # chunks of neighbouring times: narrow ranges each
        found: set[str] = set()
        for start in range(0, len(wanted), MAX_IDS_PER_LOOKUP):
            chunk = wanted[start : start + MAX_IDS_PER_LOOKUP]
            ids = _ID_SEPARATOR.join([k[0] for k in chunk])
            if not _CANONICAL_IDS.fullmatch(ids):  # one check for all; per id when one fails
                chunk = [k for k in chunk if _CANONICAL_UUID.fullmatch(k[0])]
                ids = _ID_SEPARATOR.join([k[0] for k in chunk])
                if not chunk:
                    continue
            within = " OR ".join(
                f"occurred_at BETWEEN fromUnixTimestamp64Milli({first:d}, 'UTC') "
                f"AND fromUnixTimestamp64Milli({last:d}, 'UTC')"
                for first, last in time_ranges([k[1] for k in chunk])
            )
            rows = self.client.query(
                f"SELECT DISTINCT toString(event_id) FROM {table_for(event_type)} "
                f"WHERE ({within}) AND event_id IN "
                "(SELECT id FROM format(TSV, 'id UUID', {ids:String}))",
                parameters={"ids": SqlText(ids)},
                # a bloom filter passes nearly every granule for this many ids: not worth it
                settings={"use_skip_indexes": 0} if len(chunk) > BLOOM_MAX_IDS else None,
            ).result_rows
            found.update(row[0] for row in rows)
        return found

    # -- intents: ranges about to be inserted ------------------------------------------------
    def write_intents(
        self,
        batches: Iterable[tuple[str, Batch]],
        dropped: Iterable[tuple[str, Batch, Sequence[int]]] = (),
    ) -> None:
        """Record (token of its insert, batch) pairs before inserting them, and in the same
        block, for an insert leaving records out, (token, its first batch in token order,
        positions left out): a crash cannot leave the ranges recorded without them."""
        rows = [[self.group, b.topic, b.partition, b.first, b.last, t] for t, b in batches]
        rows += [
            [
                self.group + DROPPED_GROUP_SUFFIX,
                b.topic,
                b.partition,
                b.first,
                b.last,
                f"{t}{_DROPPED_SEPARATOR}{encode_positions(positions)}",
            ]
            for t, b, positions in dropped
            if positions
        ]
        if rows:
            self.client.insert(INTENTS, rows, column_names=INTENT_COLUMNS)

    def recorded_drops(self, token: str, topic: str, partition: int, first: int) -> list[int]:
        """Positions the insert under `token` (first range `topic:partition:first-…`) left out
        as duplicates; [] when it left none out (or was written before this was recorded)."""
        rows = self.client.query(
            f"SELECT argMax(token, written_at) FROM {INTENTS} "
            "WHERE consumer_group = {g:String} AND topic = {t:String} "
            f"AND partition = {partition:d} AND first_offset = {first:d} "
            "AND startsWith(token, {prefix:String}) HAVING count() > 0",
            parameters={
                "g": self.group + DROPPED_GROUP_SUFFIX,
                "t": topic,
                "prefix": token + _DROPPED_SEPARATOR,
            },
        ).result_rows
        if not rows:
            return []
        return decode_positions(rows[0][0][len(token) + len(_DROPPED_SEPARATOR) :])

    def pending_ranges(
        self, starts: dict[TopicPartition, int]
    ) -> dict[TopicPartition, list[Range]]:
        """Ranges at or above each partition's committed offset: written, maybe inserted.

        Each comes with the token of the insert it went into ('' when written by a sink
        older than migration 0009).
        """
        if not starts:
            return {}
        conditions, parameters = [], {"g": self.group}
        for i, ((topic, partition), start) in enumerate(sorted(starts.items())):
            conditions.append(
                f"(topic = {{t{i}:String}} AND partition = {partition:d} "
                f"AND first_offset >= {max(start, 0):d})"
            )
            parameters[f"t{i}"] = topic
        rows = self.client.query(
            # the newest intent's token: a range re-recorded under a new token (its first
            # insert could not be rebuilt) went into ClickHouse under that one
            f"SELECT topic, partition, first_offset, last_offset, argMax(token, written_at) "
            f"FROM {INTENTS} "
            f"WHERE consumer_group = {{g:String}} AND ({' OR '.join(conditions)}) "
            "GROUP BY topic, partition, first_offset, last_offset "
            "ORDER BY topic, partition, first_offset, last_offset "
            f"LIMIT {MAX_REPLAYED_RANGES} BY topic, partition",
            parameters=parameters,
        ).result_rows
        found: dict[TopicPartition, list[Range]] = {}
        for topic, partition, first, last, token in rows:
            found.setdefault((topic, int(partition)), []).append(
                Range(int(first), int(last), token)
            )
        for (topic, partition), ranges in found.items():
            if len(ranges) == MAX_REPLAYED_RANGES:
                log.error(
                    "%s:%d has %d or more uncommitted ranges; those past the %dth are read as "
                    "new batches, and what of them is already stored is stored twice",
                    topic, partition, MAX_REPLAYED_RANGES, MAX_REPLAYED_RANGES,
                )  # fmt: skip
        return found

    # -- "is this replayed range already stored?" ---------------------------------------------
    def clean_is_stored(self, event_type: str, value: bytes) -> bool:
        """Whether this clean record (the first of a replayed range) is in ClickHouse.

        An insert of up to a million rows is one block, stored all or nothing, so the first
        record answers for its whole range. The look-up follows the table's sort key.
        """
        record = self._readable(self.schemas.decode, value)
        count = self.client.query(
            f"SELECT count() FROM {table_for(event_type)} WHERE province_code = {{p:String}} "
            "AND agency_code = {a:String} "
            "AND occurred_at = fromUnixTimestamp64Milli({o:Int64}, 'UTC') "
            "AND event_id = {e:UUID} "
            "AND processed_at = fromUnixTimestamp64Milli({s:Int64}, 'UTC') "
            "AND source_partition = {sp:Int32} AND source_offset = {so:Int64}",
            parameters={
                "p": record["province_code"],
                "a": record["agency_code"],
                "o": epoch_millis(record["occurred_at"]),
                "e": str(record["event_id"]),
                "s": epoch_millis(record["processed_at"]),
                "sp": record["source_partition"],
                "so": record["source_offset"],
            },
        ).result_rows[0][0]
        return count > 0

    def dead_letter_is_stored(self, row: Sequence[Any]) -> bool:
        """Whether this dead-letter row (the first of a replayed range) is in ClickHouse."""
        values = dict(zip(DEAD_LETTER_COLUMNS, row, strict=True))
        count = self.client.query(
            f"SELECT count() FROM {DEAD_LETTERS} WHERE event_type = {{t:String}} "
            "AND reason = {r:String} AND first_seen = fromUnixTimestamp64Milli({f:Int64}, 'UTC') "
            "AND source_topic = {st:String} AND source_partition = {sp:Int32} "
            "AND source_offset = {so:Int64}",
            parameters={
                "t": values["event_type"],
                "r": values["reason"],
                "f": values["first_seen"],
                "st": values["source_topic"],
                "sp": values["source_partition"],
                "so": values["source_offset"],
            },
        ).result_rows[0][0]
        return count > 0
