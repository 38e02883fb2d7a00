"""The pure record transform: one raw payload → a clean record, or the reason it is not one.

No Kafka, no network. The worker's batch loop (`govpulse.streams.batch.BatchProcessor.route`)
hands `Transformer.process` a message value and its position; the producer SDK's verdict
(`govpulse.producers.verdict`) hands it the bytes about to be sent. `process` returns
`Cleaned` (framed under the clean schema id, for `clean.<type>`, key = event_id) or `Rejected`
(a reason and a detail, for `dlq.<type>` with the original bytes). De-duplication comes after,
in the batch loop: a `Cleaned` whose event id the dedup store has seen goes to `dup.<type>`.

Every step receives the event type's `EventLayout` (`govpulse.schemas.layout`), computed once
from the contract: which fields are strings, timestamps, years, PII (and of what kind), free
text, and where they stand in the binary. The steps, in order (first failure wins):
1. decode (`govpulse.streams.decode`): UNDECODABLE (framing, Avro body, trailing bytes),
   UNKNOWN_SCHEMA (unknown id, another type's schema, unresolvable); read as the latest raw
   schema, with each field's start in the payload when the compiled reader could read it.
2. clean (`govpulse.streams.clean`): text, Thai digits, Buddhist Era, abolished
   district/subdistrict codes → their one successor — repairs, never rejects; then the event
   id is given its one canonical spelling (`govpulse.streams.rules.event_id`), so
   de-duplication and ClickHouse see one id however the agency wrote it.
3. validate (`govpulse.streams.validate`): INVALID_VALUE (event_type, event_id) →
   UNKNOWN_AGENCY → UNKNOWN_PROVINCE → UNKNOWN_DISTRICT → UNKNOWN_SUBDISTRICT →
   FUTURE_TIMESTAMP → OUTSIDE_RETENTION.
4. pseudonymise (`govpulse.streams.pii.Pseudonymiser`): INVALID_NATIONAL_ID; every PII field
   becomes `<field>_pseudonym`.
5. mask (`govpulse.streams.pii.IdMasker`): every ID-shaped number in other free text is
   masked, valid ID or not.
6. enrich (`govpulse.streams.enrich`): names of the agency, ministry, province, district and
   region; then defects_fixed and the lineage fields are set.
7. encode (`govpulse.streams.encode`): unchanged fields copied from the payload, the rest
   encoded, framed under the clean schema id.

`process` never raises for any payload: anything unexpected in steps 2–7 becomes INVALID_VALUE
with the exception in the detail. The one exception is `SchemaLookupFailed` — the writer-schema
lookup failed for another reason than an unknown id (registry down), which is no fault of the
record, so the worker must retry rather than dead-letter. Details never hold a national ID.

Values in `Cleaned.record` are Avro's primitives, as in the bytes: timestamps are epoch
milliseconds (int), decimals their unscaled two's-complement bytes, uuids strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, final

from govpulse.schemas import catalog
from govpulse.schemas.layout import event_layout
from govpulse.streams.clean import Fix, RecordCleaner, ordered
from govpulse.streams.decode import (
    DecodeFailure,
    RawDecoder,
    SchemaLookupFailed,
    WriterSchemaLookup,
)
from govpulse.streams.encode import CleanEncoder
from govpulse.streams.enrich import reference_tables
from govpulse.streams.pii import IdMasker, Pseudonymiser, redact_ids
from govpulse.streams.reasons import Reason
from govpulse.streams.rules.event_id import canonical_event_id
from govpulse.streams.rules.pseudonymise import PseudonymKey
from govpulse.streams.validate import DEFAULT_FUTURE_TOLERANCE_MS, Validator

__all__ = [
    "DEFAULT_FUTURE_TOLERANCE_MS",
    "Cleaned",
    "Reason",
    "Rejected",
    "SchemaLookupFailed",
    "Transformer",
    "build_transformers",
]


@final  # lets `type(result) is Cleaned` (the batch loop's test) narrow both ways
@dataclass(slots=True)
class Cleaned:
    """A record for `clean.<type>`: `value` is framed under the clean schema id."""

    event_id: str
    value: bytes
    record: dict[str, Any]
    defects_fixed: list[str]


@dataclass(slots=True)
class Rejected:
    """A record for `dlq.<type>`: why (a stable code) and what a person needs to act."""

    reason: Reason
    detail: str
    event_id: str | None = None


class Transformer:
    """Turns `raw.<event_type>` payloads into clean records; build once, call per message."""

    def __init__(
        self,
        event_type: str,
        writer_schema: WriterSchemaLookup,
        clean_schema_id: int,
        key: PseudonymKey,
        future_tolerance_ms: int = DEFAULT_FUTURE_TOLERANCE_MS,
        retention_ms: int | None = None,
    ) -> None:
        """`retention_ms`: how old an event may be (GOVPULSE_RAW_TTL_DAYS in the worker)."""
        layout = event_layout(event_type)  # validates event_type
        tables = reference_tables()
        self.event_type = event_type
        self.key_id = key.key_id
        # Bound methods, looked up once: process() is the per-message hot path.
        self._decode = RawDecoder(layout, writer_schema).decode
        self._clean = RecordCleaner(layout, tables).clean
        self._validate = Validator(
            event_type, layout, tables, future_tolerance_ms, retention_ms
        ).check
        self._pseudonymise = Pseudonymiser(layout, key).apply
        self._mask_ids = IdMasker(layout, event_type).mask
        self._enrich = tables.enrich
        self._encode = CleanEncoder(
            layout, catalog.clean_schema(event_type), clean_schema_id, tables
        ).encode

    def process(
        self, payload: bytes, partition: int, offset: int, now_ms: int
    ) -> Cleaned | Rejected:
        """Clean one message value read at (partition, offset); `now_ms` is processing time."""
        try:
            record, source, starts, missing = self._decode(payload)
        except DecodeFailure as failure:
            return Rejected(failure.reason, redact_ids(failure.detail))
        except SchemaLookupFailed:
            raise
        except Exception as error:  # a bug must not stop the partition
            return Rejected(Reason.UNDECODABLE, _unexpected(error))
        event_id = record.get("event_id")
        try:
            changed = set(missing)
            fixes = self._clean(record, changed)
            event_id = record["event_id"]
            canonical = canonical_event_id(event_id)
            if canonical is not None and canonical is not event_id:
                record["event_id"] = canonical  # before de-duplication compares it
                changed.add("event_id")
                fixes.add(Fix.EVENT_ID_SPELLING)
            refusal = self._validate(record, now_ms) or self._pseudonymise(record)
            if refusal is not None:
                return Rejected(refusal[0], redact_ids(refusal[1]), record["event_id"])
            self._mask_ids(record, source, starts, changed, fixes)
            self._enrich(record)
            defects = [fix.value for fix in ordered(fixes)] if fixes else []
            record["defects_fixed"] = defects
            record["processed_at"] = now_ms
            record["source_partition"] = partition
            record["source_offset"] = offset
            value = self._encode(record, source, starts, changed)
        except Exception as error:  # a bug must not stop the partition
            return Rejected(Reason.INVALID_VALUE, _unexpected(error), event_id)
        return Cleaned(record["event_id"], value, record, defects)


def _unexpected(error: Exception) -> str:
    detail = f"unexpected {type(error).__name__} while cleaning: {error}"
    return redact_ids(detail[:500])


def build_transformers(
    writer_schema: WriterSchemaLookup,
    clean_schema_ids: Mapping[str, int],
    key: PseudonymKey,
    future_tolerance_ms: int = DEFAULT_FUTURE_TOLERANCE_MS,
    retention_ms: int | None = None,
) -> dict[str, Transformer]:
    """One transformer per event type in `clean_schema_ids` (event type → clean schema id)."""
    return {
        event_type: Transformer(
            event_type, writer_schema, schema_id, key, future_tolerance_ms, retention_ms
        )
        for event_type, schema_id in clean_schema_ids.items()
    }
