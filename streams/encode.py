"""Clean record → Confluent-framed Avro under the clean schema id, mostly by copying bytes.

A clean record is the latest raw record with personal fields swapped for pseudonyms, followed
by the clean_extras fields. Avro writes a record as its fields one after another, so:
- raw fields that cleaning did not change are copied from the payload as they are;
- the extras that follow from a code (agency, province, district names) are encoded for every
  code when the encoder is built, and copied per record;
- only changed fields, fields the writer lacked, pseudonyms and lineage are encoded per record.
Records read by fastavro (writers the decoder cannot map onto the latest layout) come without
field offsets and are encoded whole. A test pins the bytes to what fastavro writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from govpulse.schemas.catalog import PSEUDONYM_SUFFIX
from govpulse.schemas.flat_avro import Encoder, field_encoder
from govpulse.schemas.layout import EventLayout, layout_of
from govpulse.schemas.wire_format import header
from govpulse.streams.enrich import NO_DISTRICT, ReferenceTables


class CleanEncoder:
    """Encodes records of one clean schema (`catalog.clean_schema(type)`) under `schema_id`."""

    def __init__(
        self,
        layout: EventLayout | dict[str, Any],
        clean_schema: dict[str, Any],
        schema_id: int,
        tables: ReferenceTables,
    ) -> None:
        """`layout`: the latest raw schema's layout (or that schema) the records come in."""
        layout = layout_of(layout)
        self.header = header(schema_id)
        clean_fields = clean_schema["fields"]
        personal = dict(layout.pii)
        main = clean_fields[: len(layout.names)]
        for name, clean in zip(layout.names, main, strict=True):
            expected = name + (PSEUDONYM_SUFFIX if name in personal else "")
            if clean["name"] != expected:
                raise ValueError(
                    f"clean field {clean['name']!r} stands where {expected!r} should: the clean "
                    "schema must be the latest raw schema with PII fields renamed, then extras"
                )
        self._names = tuple(f["name"] for f in main)
        self._encoders = tuple(field_encoder(f["type"]) for f in main)
        self._index = layout.index
        self._always = layout.pii_positions
        self._extras = _extras_steps(clean_fields[len(layout.names) :], tables)

    def encode(
        self,
        record: dict[str, Any],
        source: bytes | None = None,
        starts: tuple[int, ...] | None = None,
        changed: set[str] | frozenset[str] = frozenset(),
    ) -> bytes:
        """The framed clean record; unchanged raw fields are copied from `source` at `starts`."""
        parts = [self.header]
        names, encoders = self._names, self._encoders
        if starts is None or source is None:
            parts += [encode(record[name]) for name, encode in zip(names, encoders, strict=True)]
        else:
            indexes: Sequence[int] = self._always
            if changed:
                index = self._index
                indexes = sorted({*indexes, *(index[name] for name in changed)})
            done = starts[0]
            for i in indexes:
                parts.append(source[done : starts[i]])
                parts.append(encoders[i](record[names[i]]))
                done = starts[i + 1]
            parts.append(source[done : starts[-1]])
        for key, encoded, encode in self._extras:
            if encoded is not None:
                parts.append(encoded[record.get(key)])
            else:
                parts.append(encode(record[key]))
        return b"".join(parts)


# (code field, {code: encoded run}, _looked_up) for a run of fields that follow from a code;
# (field name, None, encoder) for a field encoded per record. One shape for both, so the
# per-record loop unpacks and branches without a type check.
Step = tuple[str, dict[Any, bytes] | None, Encoder]


def _looked_up(value: Any) -> bytes:
    """The encoder of a step whose bytes are looked up by code: never called."""
    raise AssertionError("a run of reference-derived fields is looked up, not encoded")


def _extras_steps(fields: list[dict[str, Any]], tables: ReferenceTables) -> tuple[Step, ...]:
    """One step per run of extras fields: runs that follow from one code become one lookup.

    A field is reference-derived when a reference table row holds it (the agency, province or
    district row); each run of such fields is encoded for every code when the encoder is
    built. Other extras (key id, defects, lineage) are encoded per record.
    """
    districts: dict[str | None, Mapping[str, Any]] = dict(tables.districts.items())
    districts[None] = NO_DISTRICT
    sources: dict[str, Mapping[Any, Mapping[str, Any]]] = {
        "agency_code": tables.agencies,
        "province_code": tables.provinces,
        "district_code": districts,
    }

    def source_of(name: str) -> str | None:
        for code_field, rows in sources.items():
            if name in next(iter(rows.values())):
                return code_field
        return None

    steps: list[Step] = []
    run: list[tuple[str, Encoder]] = []
    run_source: str | None = None
    for field in [*fields, {"name": "", "type": "null"}]:  # a sentinel closes the last run
        name, source = field["name"], source_of(field["name"])
        if run and run_source and source != run_source:
            rows = sources[run_source]
            encoded = {
                code: b"".join([encode(row[n]) for n, encode in run]) for code, row in rows.items()
            }
            steps.append((run_source, encoded, _looked_up))
            run = []
        run_source = source
        if source is not None:
            run.append((name, field_encoder(field["type"])))
        elif name:
            steps.append((name, None, _remember_last(field_encoder(field["type"]))))
    return tuple(steps)


def _remember_last(encode: Encoder) -> Encoder:
    """`encode`, skipping the work while the value repeats (key id, processing time, …)."""
    last_value: Any = _UNSET
    last_bytes = b""

    def remembered(value: Any) -> bytes:
        nonlocal last_value, last_bytes
        if value is not last_value and value != last_value:
            last_value, last_bytes = value, encode(value)
        return last_bytes

    return remembered


_UNSET = object()
