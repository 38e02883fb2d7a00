"""Which raw record an outcome came from: the (partition, offset) every stage output carries.

A clean record holds it in its own fields (`source_partition`, `source_offset` of the clean
schema); dead letters and duplicate markers in headers (`source_partition`, `source_offset`).
The audit reads it to count outcomes per raw position; a stream worker taking a partition
over reads it to skip what its predecessor already wrote (streams/resume.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastavro import parse_schema

from govpulse.schemas import catalog, wire_format
from govpulse.schemas.timestamps import epoch_millis

Position = tuple[int, int]  # raw (partition, offset)
Headers = Sequence[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None]


def header_lineage(headers: Headers | None) -> Position | None:
    """The raw (partition, offset) in a dlq/dup record's headers; None when absent, null or
    not a number (Kafka allows a header without a value)."""
    found = dict(headers or ())
    partition, offset = found.get("source_partition"), found.get("source_offset")
    if partition is None or offset is None:
        return None
    try:
        return int(partition), int(offset)
    except ValueError:
        return None


class CleanLineage:
    """(source_partition, source_offset, occurred_at ms) of clean records, decoding only those
    fields. Raises on a record that is not framed or whose schema id is unknown."""

    def __init__(self, event_type: str, writer_schema: Callable[[int], Any]) -> None:
        clean = catalog.clean_schema(event_type)
        names = ("source_partition", "source_offset", "occurred_at")
        wanted = [f for f in clean["fields"] if f["name"] in names]
        self.reader = parse_schema({**clean, "fields": wanted})
        self.writer_schema = writer_schema
        self.writers: dict[int, Any] = {}

    def writer(self, schema_id: int) -> Any:
        """The writer schema of `schema_id`, kept (KeyError: unknown to the registry)."""
        writer = self.writers.get(schema_id)
        if writer is None:
            writer = self.writers[schema_id] = self.writer_schema(schema_id)
        return writer

    def __call__(self, value: bytes) -> tuple[int, int, int]:
        writer = self.writer(wire_format.schema_id_of(value))
        record = wire_format.decode(value, writer, self.reader)
        occurred = epoch_millis(record["occurred_at"])
        return record["source_partition"], record["source_offset"], occurred
