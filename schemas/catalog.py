"""The Avro contracts: load raw and clean schemas, name topics and subjects, find PII fields.

Each `.avsc` in `schemas/avro/` holds one event type's own fields; the shared envelope
(`envelope.avsc`) is spliced in front here, so the envelope is written once and every schema
sent to a registry is still one self-contained document. Clean schemas are derived from the
latest raw schema: each field tagged `"pii"` becomes `<field>_pseudonym`, and the enrichment
and lineage fields of `clean_extras.avsc` are appended — so tagging a new personal field is
all it takes to keep it out of clean topics.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

EVENT_TYPES = (
    "service_request",
    "complaint",
    "net_pracharat_usage",
    "digital_center_activity",
    "dataset_update",
)
NAMESPACE = "th.go.govpulse"
CLEAN_NAMESPACE = "th.go.govpulse.clean"
PSEUDONYM_SUFFIX = "_pseudonym"
# The topics of an event type: `raw.<type>` in, then exactly one of clean, dlq or dup out.
STAGES = ("raw", "clean", "dlq", "dup")
OUTCOMES = STAGES[1:]
_VERSION_FILE = re.compile(r"^(?P<type>[a-z_]+)\.v(?P<version>[0-9]+)\.avsc$")


def topic(stage: str, event_type: str) -> str:
    """`<stage>.<event_type>`: the one place topic names are built."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
    return f"{stage}.{event_type}"


def raw_topic(event_type: str) -> str:
    return topic("raw", event_type)


def clean_topic(event_type: str) -> str:
    return topic("clean", event_type)


def dlq_topic(event_type: str) -> str:
    return topic("dlq", event_type)


def dup_topic(event_type: str) -> str:
    """Where the stream processor reports a duplicate (an empty value with lineage headers)."""
    return topic("dup", event_type)


def subject(topic: str) -> str:
    """Confluent's TopicNameStrategy for values."""
    return f"{topic}-value"


def _check_type(event_type: str) -> None:
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}; expected one of {EVENT_TYPES}")


def _folder(directory: Path | None) -> Any:
    """The packaged `schemas/avro` folder, or another one (a changed copy under review)."""
    return files("govpulse.schemas.avro") if directory is None else Path(directory)


@cache
def _read(name: str, directory: Path | None = None) -> dict[str, Any]:
    path = _folder(directory).joinpath(name)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON: {error}") from None
    except FileNotFoundError:
        raise ValueError(f"{path}: no such schema file") from None


def schema_files(directory: Path | None = None) -> list[str]:
    return sorted(p.name for p in _folder(directory).iterdir() if p.name.endswith(".avsc"))


def versions(event_type: str, directory: Path | None = None) -> list[int]:
    """Raw schema versions on disk for `event_type`, ascending."""
    _check_type(event_type)
    found = [
        int(match["version"])
        for name in schema_files(directory)
        if (match := _VERSION_FILE.match(name)) and match["type"] == event_type
    ]
    return sorted(found)


def envelope_fields(directory: Path | None = None) -> list[dict[str, Any]]:
    return copy.deepcopy(_read("envelope.avsc", directory)["fields"])


def raw_schema(
    event_type: str, version: int | None = None, directory: Path | None = None
) -> dict[str, Any]:
    """The full raw schema (envelope + own fields) of `event_type`; latest when no version."""
    available = versions(event_type, directory)
    if not available:
        raise ValueError(f"{event_type} has no schema file {event_type}.v<N>.avsc")
    version = version or available[-1]
    if version not in available:
        raise ValueError(f"{event_type} has no schema version {version}; found {available}")
    own = copy.deepcopy(_read(f"{event_type}.v{version}.avsc", directory))
    own["fields"] = envelope_fields(directory) + own["fields"]
    return own


def _pseudonym_field(field: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": field["name"] + PSEUDONYM_SUFFIX,
        "type": ["null", "string"],
        "default": None,
        "doc": f"Keyed HMAC-SHA256 pseudonym (base64url) of the raw field '{field['name']}' "
        f"({field['pii']}); stable per person and key, not reversible without the key.",
    }


def clean_schema(event_type: str, directory: Path | None = None) -> dict[str, Any]:
    """The clean schema: latest raw schema with PII fields pseudonymised, plus enrichment."""
    raw = raw_schema(event_type, directory=directory)
    fields = [_pseudonym_field(f) if "pii" in f else f for f in raw["fields"]]
    return {
        "type": "record",
        "name": raw["name"],
        "namespace": CLEAN_NAMESPACE,
        "doc": f"Cleaned, de-duplicated, enriched and pseudonymised {event_type} event.",
        "fields": fields + copy.deepcopy(_read("clean_extras.avsc", directory)["fields"]),
    }


def pii_fields(schema: dict[str, Any]) -> dict[str, str]:
    """Field name → PII kind for every top-level field tagged with a `"pii"` attribute."""
    return {f["name"]: f["pii"] for f in schema["fields"] if "pii" in f}


def to_json(schema: dict[str, Any]) -> str:
    """Schema text as registered: compact, Thai kept readable."""
    return json.dumps(schema, ensure_ascii=False, separators=(",", ":"))


def raw_schema_json(
    event_type: str, version: int | None = None, directory: Path | None = None
) -> str:
    return to_json(raw_schema(event_type, version, directory))


def clean_schema_json(event_type: str, directory: Path | None = None) -> str:
    return to_json(clean_schema(event_type, directory))
