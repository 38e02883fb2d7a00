"""Raw payload → record in the LATEST raw schema's shape, with a plan per writer schema id.

Every record comes out in the latest raw shape, so older records get the newer fields'
defaults. Three plans, chosen once per writer schema id:
- the writer has the latest layout (the common case): the compiled flat reader, which also
  says where each field starts so the encoder can copy unchanged fields;
- the writer is an older version whose fields are the latest fields minus some with defaults,
  in the same order and of the same types (how our schemas evolve): the writer's compiled
  reader, the defaults added, and field starts mapped onto the latest layout (a missing
  field has an empty span and is marked for encoding);
- anything else: fastavro with the latest raw schema as reader schema (full resolution:
  enum defaults, promotions, aliases), no field starts.
Logical types are never applied (see `govpulse.schemas.flat_avro`).
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastavro import parse_schema
from fastavro.read import SchemaResolutionError

from govpulse.schemas import catalog
from govpulse.schemas.flat_avro import (
    Reader,
    UnsupportedSchema,
    binary_layout,
    compile_reader,
    strip_logical_types,
)
from govpulse.schemas.layout import EventLayout, layout_of
from govpulse.schemas.wire_format import HEADER_SIZE, MAGIC_BYTE, read_record
from govpulse.schemas.writer_schemas import UnusableSchema
from govpulse.streams.reasons import Reason

# schema id -> parsed writer schema (`govpulse.schemas.writer_schemas.WriterSchemas`);
# KeyError when the registry lacks the id, UnusableSchema when it is not a self-contained Avro
# schema, anything else when the registry is unreachable
WriterSchemaLookup = Callable[[int], Any]


class DecodeFailure(Exception):
    """The payload cannot become a record; carries the dead-letter reason and detail."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class SchemaLookupFailed(RuntimeError):
    """The writer-schema lookup failed for a reason other than an unknown id (registry down).

    Not the payload's fault, so it is raised rather than dead-lettered: the worker retries.
    """


@dataclass(frozen=True, slots=True)
class _Plan:
    read_flat: Reader | None  # a compiled reader of the writer layout, else fastavro's
    writer: Any = None  # fastavro's parsed writer schema (logical types stripped)
    reader: Any = None  # fastavro's parsed latest raw schema
    # latest fields the writer lacks → default value
    defaults: dict[str, Any] = dataclasses.field(default_factory=dict)
    start_of: tuple[int, ...] | None = None  # latest field i starts at writer start_of[i]
    missing: frozenset[str] = frozenset()


_NO_DEFAULT = object()


def _default_value(field: dict[str, Any]) -> Any:
    """A field's JSON default as the primitive value the flat reader would return."""
    if "default" not in field:
        return _NO_DEFAULT
    default, field_type = field["default"], field["type"]
    first = field_type[0] if isinstance(field_type, list) else field_type
    kind = first.get("type") if isinstance(first, dict) else first
    if kind == "bytes":
        return default.encode("latin-1")
    if kind in ("null", "boolean", "int", "long", "float", "double", "string", "enum"):
        return default
    return _NO_DEFAULT


def _subset_plan(writer: Any, latest: dict[str, Any]) -> _Plan | None:
    """The plan for an older writer whose fields are latest fields with some left out."""
    writer_fields = json.loads(binary_layout(writer))["fields"]
    latest_fields = json.loads(binary_layout(latest))["fields"]
    writer_types = {f["name"]: f["type"] for f in writer_fields}
    writer_names = [f["name"] for f in writer_fields]
    if [n for n in (f["name"] for f in latest_fields) if n in writer_types] != writer_names:
        return None  # extra writer fields, or another order
    defaults, start_of, next_index = {}, [], len(writer_names)
    for field, canonical in reversed(list(zip(latest["fields"], latest_fields, strict=True))):
        name = field["name"]
        if name in writer_types:
            if writer_types[name] != canonical["type"]:
                return None  # a promotion or changed enum: fastavro resolves it
            next_index = writer_names.index(name)
        else:
            default = _default_value(field)
            if default is _NO_DEFAULT or field.get("aliases"):
                return None
            defaults[name] = default
        start_of.append(next_index)
    try:
        read = compile_reader(strip_logical_types(writer))
    except UnsupportedSchema:
        return None
    start_of.reverse()
    start_of.append(len(writer_names))
    return _Plan(read, defaults=defaults, start_of=tuple(start_of), missing=frozenset(defaults))


def _fullname(schema: Any) -> str | None:
    if not isinstance(schema, dict) or schema.get("type") != "record":
        return None
    name = schema.get("name", "")
    return name if "." in name else f"{schema.get('namespace', '')}.{name}".lstrip(".")


class RawDecoder:
    """Decodes `raw.<event_type>` payloads; writer schemas are looked up once per id."""

    def __init__(self, layout: EventLayout | str, writer_schema: WriterSchemaLookup) -> None:
        """`layout`: the event type's layout (or the event type): its latest raw schema."""
        layout = layout_of(layout)
        if layout.event_type is None:
            raise ValueError("a raw decoder needs the layout of an event type")
        latest = layout.schema
        self.event_type = layout.event_type
        self._raw_topic = catalog.raw_topic(layout.event_type)
        self._lookup = writer_schema
        self._latest = latest
        self._latest_name = _fullname(latest)
        self._latest_layout = binary_layout(latest)
        self._read_latest = compile_reader(latest)
        self._reader = parse_schema(strip_logical_types(latest))
        self._plans: dict[int, _Plan] = {}

    def _plan(self, schema_id: int) -> _Plan:
        try:
            writer = self._lookup(schema_id)
        except KeyError:
            raise DecodeFailure(
                Reason.UNKNOWN_SCHEMA, f"schema id {schema_id} is not in the schema registry"
            ) from None
        except UnusableSchema as error:
            raise DecodeFailure(Reason.UNKNOWN_SCHEMA, str(error)) from None
        except Exception as error:
            raise SchemaLookupFailed(f"looking up schema id {schema_id} failed: {error}") from error
        name = _fullname(writer)
        if name != self._latest_name:
            raise DecodeFailure(
                Reason.UNKNOWN_SCHEMA,
                f"schema id {schema_id} is {name or 'not a record schema'}, "
                f"not {self._latest_name} of {self._raw_topic}",
            )
        try:
            if binary_layout(writer) == self._latest_layout:
                plan = _Plan(self._read_latest)
            else:
                plan = _subset_plan(writer, self._latest) or _Plan(
                    None, parse_schema(strip_logical_types(writer)), self._reader
                )
        except Exception as error:  # a registered schema fastavro cannot use
            raise DecodeFailure(
                Reason.UNKNOWN_SCHEMA,
                f"schema id {schema_id} cannot be used: {type(error).__name__}: {error}",
            ) from None
        self._plans[schema_id] = plan
        return plan

    def decode(
        self, payload: bytes
    ) -> tuple[dict[str, Any], bytes, tuple[int, ...] | None, frozenset[str]]:
        """(record, payload as bytes, field starts, fields to encode); `DecodeFailure` if not ours.

        Field starts are in the latest layout and index `payload`; None when fastavro read it.
        The names are fields the payload does not hold (defaults), which must be encoded.
        """
        if payload is None or len(payload) < HEADER_SIZE:
            size = 0 if payload is None else len(payload)
            raise DecodeFailure(
                Reason.UNDECODABLE,
                f"message of {size} bytes is shorter than the {HEADER_SIZE}-byte Confluent header",
            )
        if not isinstance(payload, bytes):
            payload = bytes(payload)
        if payload[0] != MAGIC_BYTE:
            raise DecodeFailure(
                Reason.UNDECODABLE, f"magic byte is {payload[0]}, expected {MAGIC_BYTE}"
            )
        schema_id = int.from_bytes(payload[1:HEADER_SIZE], "big")
        plan = self._plans.get(schema_id) or self._plan(schema_id)
        try:
            if plan.read_flat is not None:
                record, starts = plan.read_flat(payload, HEADER_SIZE)
                end = starts[-1]
            else:
                body = io.BytesIO(payload)
                body.seek(HEADER_SIZE)
                record, starts = read_record(body, plan.writer, plan.reader), None
                end = body.tell()
        except SchemaResolutionError as error:
            raise DecodeFailure(
                Reason.UNKNOWN_SCHEMA,
                f"schema id {schema_id} cannot be read as the latest {self._raw_topic} "
                f"schema: {error}",
            ) from None
        except Exception as error:  # any malformed body: EOF, bad varint, bad UTF-8, …
            raise DecodeFailure(
                Reason.UNDECODABLE,
                f"Avro body under schema id {schema_id} does not decode: "
                f"{type(error).__name__}: {error}",
            ) from None
        if end != len(payload):
            raise DecodeFailure(
                Reason.UNDECODABLE,
                f"{len(payload) - end} bytes follow the record under schema id {schema_id}",
            )
        if plan.start_of is not None and starts is not None:  # starts: only fastavro's are None
            record.update(plan.defaults)
            starts = tuple([starts[i] for i in plan.start_of])
        return record, payload, starts, plan.missing
