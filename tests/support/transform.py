"""The pure transform in a test bench: a registry in a dict, framed payloads, verdicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastavro import parse_schema

from govpulse.schemas import catalog
from govpulse.schemas.flat_avro import strip_logical_types
from govpulse.schemas.wire_format import encode
from govpulse.streams.clean import RecordCleaner
from govpulse.streams.rules import thai_digits
from govpulse.streams.rules.pseudonymise import PseudonymKey
from govpulse.streams.transform import Cleaned, Rejected, Transformer
from tests.support import examples

TYPES = catalog.EVENT_TYPES
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
AT = datetime(2024, 6, 14, 3, 30, tzinfo=UTC)  # the examples' occurred_at
NOW_MS = (AT + timedelta(minutes=1) - EPOCH) // timedelta(milliseconds=1)
KEY = PseudonymKey("k-test", b"t" * 32)
OTHER_KEY = PseudonymKey("k-other", b"o" * 32)
ARABIC = "0123456789"
TO_THAI = str.maketrans(ARABIC, thai_digits.THAI_DIGITS)
VALID_ID = "1101700203450"


# -- a registry in a dict: raw v1, raw latest and clean ids per type ---------------------------
SCHEMAS: dict[int, Any] = {}
RAW_ID: dict[tuple[str, int], int] = {}
CLEAN_ID: dict[str, int] = {}
for _type in TYPES:
    for _version in catalog.versions(_type):
        RAW_ID[_type, _version] = len(SCHEMAS) + 1
        SCHEMAS[len(SCHEMAS) + 1] = parse_schema(catalog.raw_schema(_type, _version))
    CLEAN_ID[_type] = len(SCHEMAS) + 1
    SCHEMAS[len(SCHEMAS) + 1] = parse_schema(catalog.clean_schema(_type))
LATEST = {t: catalog.versions(t)[-1] for t in TYPES}
CLEAN_PLAIN = {t: parse_schema(strip_logical_types(catalog.clean_schema(t))) for t in TYPES}


def transformer(event_type: str, key: PseudonymKey = KEY, **kwargs: Any) -> Transformer:
    return Transformer(event_type, SCHEMAS.__getitem__, CLEAN_ID[event_type], key, **kwargs)


TRANSFORMERS = {t: transformer(t) for t in TYPES}
CLEANERS = {t: RecordCleaner(catalog.raw_schema(t)) for t in TYPES}


def payload(event_type: str, record: dict[str, Any], version: int | None = None) -> bytes:
    """`record` framed as an agency would send it, with the given raw schema version."""
    version = version or LATEST[event_type]
    names = {f["name"] for f in catalog.raw_schema(event_type, version)["fields"]}
    schema_id = RAW_ID[event_type, version]
    return encode(schema_id, SCHEMAS[schema_id], {k: v for k, v in record.items() if k in names})


def process(event_type: str, record: dict[str, Any], **kwargs: Any) -> Cleaned | Rejected:
    return TRANSFORMERS[event_type].process(payload(event_type, record, **kwargs), 1, 7, NOW_MS)


def cleaned(event_type: str, record: dict[str, Any], **kwargs: Any) -> Cleaned:
    result = process(event_type, record, **kwargs)
    assert isinstance(result, Cleaned), result
    return result


def rejected(event_type: str, record: dict[str, Any]) -> Rejected:
    result = process(event_type, record)
    assert isinstance(result, Rejected), result
    return result


def example(kind: str = "service_request", /, **changes: Any) -> dict[str, Any]:
    """The example record of `kind` with `changes` (which may include event_type)."""
    return {**examples.example(kind), **changes}
