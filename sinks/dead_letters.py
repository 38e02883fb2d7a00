"""A `dlq.<type>` message → one `dead_letters` row, with nothing personal in it (PDPA).

The stream processor writes the original raw bytes to the dead-letter topic, with the reason
and lineage in headers. The payload is NOT stored in ClickHouse: a dead-lettered record is
exactly the one whose personal data may not have been found or pseudonymised — a national ID in
Thai digits or with odd separators, in a field whose tagging is the defect, a phone number —
so masking "13-digit runs" would leave some through. The row keeps what triage needs (reason,
detail, event id, when) and where the bytes are (source topic/partition/offset of the raw
record; the dead-letter topic itself keeps the bytes for replay under Kafka's access control
and retention). `detail` and `event_id` come from the processor and are already scrubbed of
valid IDs; any 13-digit run left (an invalid ID is often a mistyped real one) is masked here too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from govpulse.sinks.columns import DEAD_LETTER_COLUMNS

ID_MASK = "[national_id]"
EMPTY_PAYLOAD = ""
# 13 digits (Arabic or Thai), optionally in the printed 1-2345-67890-12-1 grouping.
_DIGIT = "[0-9\u0e50-\u0e59]"
_THIRTEEN_DIGITS = re.compile(
    rf"(?<!{_DIGIT})(?:{_DIGIT}{{13}}|{_DIGIT}[- ]{_DIGIT}{{4}}[- ]{_DIGIT}{{5}}[- ]{_DIGIT}{{2}}"
    rf"[- ]{_DIGIT})(?!{_DIGIT})"
)
MAX_DETAIL = 1000


def mask_ids(text: str) -> str:
    """`text` with every 13-digit run (valid ID or not) replaced by `ID_MASK`."""
    return _THIRTEEN_DIGITS.sub(ID_MASK, text) if len(text) >= 13 else text


# A message's headers as confluent_kafka gives them (a consumer's are a list, values bytes or
# None; a header without a value is None).
Headers = Sequence[tuple[str, str | bytes | None]] | Mapping[str, str | bytes | None]


def _header(headers: Mapping[str, str | bytes | None], name: str) -> str:
    value = headers.get(name)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""


def _int_header(headers: Mapping[str, str | bytes | None], name: str, default: int) -> int:
    value = headers.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        return default


def dead_letter_row(
    event_type: str,
    key: bytes | None,
    headers: Headers | None,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int,
) -> list[Any]:
    """Values for `govpulse.sinks.columns.DEAD_LETTER_COLUMNS`.

    A message without lineage headers (written by something other than the stream processor)
    is still stored, pointing at itself: its own topic, partition and offset.
    """
    found: dict[str, str | bytes | None] = dict(headers or ())
    lineage = "source_topic" in found
    event_id = mask_ids(key.decode("utf-8", "replace")) if key else None
    return [
        event_type,
        _header(found, "reason") or "unknown",
        mask_ids(_header(found, "detail"))[:MAX_DETAIL],
        _header(found, "source_topic") if lineage else topic,
        _int_header(found, "source_partition", partition) if lineage else partition,
        _int_header(found, "source_offset", offset) if lineage else offset,
        _int_header(found, "first_seen", timestamp_ms),
        EMPTY_PAYLOAD,
        event_id,
    ]


STORE_REJECTED = "store_rejected"  # the reason of a record ClickHouse refused (sinks/isolate.py)


def refused_row(
    event_type: str,
    error: str,
    source_topic: str,
    source_partition: int,
    source_offset: int,
    first_seen_ms: int,
    event_id: str | None,
) -> list[Any]:
    """A record ClickHouse refused for its content, kept visible instead of stopping the sink.

    A clean record points at its raw record (the lineage the audit counts by); one that does
    not decode points at its own clean-topic position.
    """
    detail = mask_ids(f"ClickHouse refused the record: {error}")[:MAX_DETAIL]
    return [event_type, STORE_REJECTED, detail, source_topic, source_partition, source_offset,
            first_seen_ms, EMPTY_PAYLOAD, event_id]  # fmt: skip


def refused_dead_letter_row(row: Sequence[Any], error: str) -> list[Any]:
    """A dead-letter row ClickHouse refused, stored again with only what cannot fail: its
    type, reason, lineage and the engine's error (its header values were the trouble)."""
    values = dict(zip(DEAD_LETTER_COLUMNS, row, strict=True))
    detail = mask_ids(f"stored without its detail and times, ClickHouse refused them: {error}")
    first_seen = int(datetime.now(UTC).timestamp() * 1000)
    return [str(values["event_type"]), str(values["reason"])[:100], detail[:MAX_DETAIL],
            str(values["source_topic"]), int(values["source_partition"]),
            int(values["source_offset"]), first_seen, EMPTY_PAYLOAD, None]  # fmt: skip
