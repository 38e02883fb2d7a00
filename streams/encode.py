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

from typing import Any

from govpulse.schemas.catalog import PSEUDONYM_SUFFIX, pii_fields
from govpulse.schemas.wire_format import header
from govpulse.streams.enrich import NO_DISTRICT, ReferenceTables
from govpulse.streams.flat_avro import Encoder, field_encoder


class CleanEncoder:
    """Encodes records of one clean schema (`catalog.clean_schema(type)`) under `schema_id`."""

    def __init__(
        self,
        raw_schema: dict[str, Any],
        clean_schema: dict[str, Any],
        schema_id: int,
        tables: ReferenceTables,
    ) -> None:
        self.header = header(schema_id)
        raw_fields, clean_fields = raw_schema["fields"], clean_schema["fields"]
        personal = pii_fields(raw_schema)
        main = clean_fields[: len(raw_fields)]
        for raw, clean in zip(raw_fields, main, strict=True):
            expected = raw["name"] + (PSEUDONYM_SUFFIX if raw["name"] in personal else "")
            if clean["name"] != expected:
                raise ValueError(
                    f"clean field {clean['name']!r} stands where {expected!r} should: the clean "
                    "schema must be the latest raw schema with PII fields renamed, then extras"
                )
        self._names = tuple(f["name"] for f in main)
        self._encoders = tuple(field_encoder(f["type"]) for f in main)
        self._index = {raw["name"]: index for index, raw in enumerate(raw_fields)}
        self._always = tuple(sorted(self._index[name] for name in personal))
        self._extras = _extras_steps(clean_fields[len(raw_fields) :], tables)

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
            indexes = self._always
            if changed:
                index = self._index
                indexes = sorted({*indexes, *(index[name] for name in changed)})
            done = starts[0]
            for i in indexes:
                parts.append(source[done : starts[i]])
                parts.append(encoders[i](record[names[i]]))
                done = starts[i + 1]
            parts.append(source[done : starts[-1]])
        for code_field, encoded, name, encode in self._extras:
            if encoded is not None:
                parts.append(encoded[record.get(code_field)])
            else:
                parts.append(encode(record[name]))
        return b"".join(parts)


# (code field, {code: encoded run}, None, None) for a run of fields that follow from a code;
# (None, None, field name, encoder) for a field encoded per record.
Step = tuple[str | None, dict[Any, bytes] | None, str | None, Encoder | None]


def _extras_steps(fields: list[dict[str, Any]], tables: ReferenceTables) -> tuple[Step, ...]:
    """One step per run of extras fields: runs that follow from one code become one lookup.

    A field is reference-derived when a reference table row holds it (the agency, province or
    district row); each run of such fields is encoded for every code when the encoder is
    built. Other extras (key id, defects, lineage) are encoded per record.
    """
    sources = {
        "agency_code": tables.agencies,
        "province_code": tables.provinces,
        "district_code": {**tables.districts, None: NO_DISTRICT},
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
            steps.append((run_source, encoded, None, None))
            run = []
        run_source = source
        if source is not None:
            run.append((name, field_encoder(field["type"])))
        elif name:
            steps.append((None, None, name, _remember_last(field_encoder(field["type"]))))
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
