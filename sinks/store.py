"""The sink's ClickHouse side: inserts, the ranges it is about to insert, and "already stored?".

Clean records are inserted as Avro into `events_<type>_avro` (see 0006_sink_ingest.sql for why
and how they reach `events_<type>`); dead letters as rows into `dead_letters`. Every insert
carries a deduplication token made of the topic:partition:first-last ranges it holds, so a
retried insert whose first attempt did land is dropped by ClickHouse.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from govpulse.schemas import catalog
from govpulse.schemas.timestamps import epoch_millis
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


class SinkStore:
    """What the sink does to ClickHouse, through one clickhouse-connect client."""

    def __init__(self, client: Client, schemas: WriterSchemas, consumer_group: str) -> None:
        self.client = client
        self.schemas = schemas
        self.group = consumer_group

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

    # -- intents: ranges about to be inserted ------------------------------------------------
    def write_intents(self, batches: Iterable[tuple[str, Batch]]) -> None:
        """Record (token of its insert, batch) pairs before inserting them."""
        rows = [[self.group, b.topic, b.partition, b.first, b.last, t] for t, b in batches]
        if rows:
            self.client.insert(INTENTS, rows, column_names=INTENT_COLUMNS)

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
