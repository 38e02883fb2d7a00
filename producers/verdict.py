"""The stream worker's verdict on a record, given to the agency engineer at `send()`.

A record with a bad national-ID check digit, an unknown agency, a district of another
province or a timestamp in the future passes the Avro shape check and is dead-lettered
downstream, where the agency engineer never sees it. So the SDK runs the worker's own
transform (`govpulse.streams.transform.Transformer`: decode, clean, validate, pseudonymise, on the
very bytes about to be sent) — the same rule code, not a copy — and raises `RecordRejected`
naming the field and the rule. Settings are the worker's: GOVPULSE_FUTURE_TOLERANCE_S and
GOVPULSE_RAW_TTL_DAYS. Duplicates are the one verdict it cannot give: they depend on what
other senders sent.

Costs ~20 µs a record (the worker's per-record cost); `check_rules=False` on the producer
(GOVPULSE_PRODUCER_CHECK_RULES=false) turns it off for bulk back-fills and for the traffic
simulator, which sends defective records on purpose.
"""

from __future__ import annotations

import time
from typing import Any

from govpulse.streams.reasons import Reason
from govpulse.streams.rules.pseudonymise import PseudonymKey
from govpulse.streams.transform import Rejected, Transformer
from govpulse.streams.validate import DAY_MS

# Pseudonyms computed here are thrown away: any key gives the same verdict.
_THROWAWAY_KEY = PseudonymKey("sdk-check", b"\0" * 32)


class RecordRejected(ValueError):
    """The stream worker would dead-letter this record; `reason` is its dead-letter code."""

    def __init__(self, event_type: str, event_id: Any, reason: Reason, detail: str) -> None:
        super().__init__(
            f"{event_type} record {event_id}: the stream worker would dead-letter it as "
            f"{reason}: {detail} (not sent; check_rules=False sends such records anyway)"
        )
        self.reason = reason
        self.detail = detail


class RecordCheck:
    """The worker's transform for one event type, reading the schema the SDK writes with."""

    def __init__(
        self,
        event_type: str,
        schema_id: int,
        writer_schema: Any,
        future_tolerance_s: int,
        retention_days: int,
    ) -> None:
        self.event_type = event_type
        schemas = {schema_id: writer_schema}
        self._process = Transformer(
            event_type,
            schemas.__getitem__,
            0,  # the clean record is not kept: any id
            _THROWAWAY_KEY,
            future_tolerance_ms=future_tolerance_s * 1000,
            retention_ms=retention_days * DAY_MS,
        ).process

    def verdict(self, value: bytes, now_ms: int | None = None) -> Rejected | None:
        """The worker's dead-letter verdict on the framed `value`, None when it would pass."""
        now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        result = self._process(value, 0, 0, now_ms)
        return result if type(result) is Rejected else None

    def check(self, value: bytes, event_id: Any) -> None:
        """Raise `RecordRejected` when the worker would dead-letter `value`."""
        rejected = self.verdict(value)
        if rejected is not None:
            raise RecordRejected(self.event_type, event_id, rejected.reason, rejected.detail)
