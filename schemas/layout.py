"""`EventLayout`: what the record transform needs to know of an event type's contract, once.

Decoding, cleaning, validation, pseudonymisation, ID masking and encoding each act on some of
a raw schema's fields — its strings, its timestamps, its `*_year` fields, its PII fields and
their kinds, its free text — and on where those fields stand in the Avro binary. They all
receive one layout, computed from the contract once per event type (`event_layout`), instead
of deriving their own lists from the schema. Fields are chosen by type and attribute, never
from a list of names: a field added to a contract is handled by every step at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from govpulse.schemas import catalog
from govpulse.schemas.flat_avro import is_type, logical_type


def _is_year(field: dict[str, Any]) -> bool:
    name = field["name"]
    return (name == "year" or name.endswith("_year")) and (
        is_type(field["type"], "int") or is_type(field["type"], "long")
    )


def _is_village(field: dict[str, Any]) -> bool:
    """`village_code` or `*_village_code`: 8 digits, a 6-digit DOPA subdistrict code and a
    2-digit village (muban) number."""
    name = field["name"]
    return (name == "village_code" or name.endswith("_village_code")) and is_type(
        field["type"], "string"
    )


@dataclass(frozen=True, slots=True, eq=False)
class EventLayout:
    """The fields of one raw schema each step of the transform acts on, in schema order.

    Positions index the schema's fields, which is also the order of the Avro binary: the
    compiled reader's field starts (`govpulse.schemas.flat_avro.compile_reader`) use them.
    """

    schema: dict[str, Any]  # the raw schema itself (the latest, for an event type)
    event_type: str | None  # None for a layout of an ad-hoc schema
    names: tuple[str, ...]
    index: dict[str, int]  # field name → position
    string_fields: tuple[str, ...]  # string, alone or nullable: what cleaning's text rules see
    timestamp_fields: tuple[str, ...]  # timestamp-millis: Buddhist Era instants shifted back
    year_fields: tuple[str, ...]  # int/long named `year` or `*_year`: BE years made CE
    village_fields: tuple[str, ...]  # `village_code`, `*_village_code` (string)
    other_province_fields: tuple[str, ...]  # string fields named `*_province_code`
    has_district: bool  # the schema has a `district_code`
    pii: tuple[tuple[str, str], ...]  # (field, kind) of every field tagged `"pii"`
    pii_positions: tuple[int, ...]
    # non-PII strings that are not UUIDs: where an ID-shaped number may be written
    text_fields: tuple[str, ...]
    # payload spans that hold the free text, as (first, end) positions: from a text field to
    # the last text field reached without crossing a PII field or a UUID
    text_spans: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, schema: dict[str, Any], event_type: str | None = None) -> EventLayout:
        """The layout of a raw schema (any flat record schema)."""
        fields = schema["fields"]
        names = tuple(f["name"] for f in fields)
        strings = [is_type(f["type"], "string") for f in fields]
        scanned = ["pii" not in f and logical_type(f["type"]) != "uuid" for f in fields]
        text = [scan and string for scan, string in zip(scanned, strings, strict=True)]
        spans: list[tuple[int, int]] = []
        for position, is_text in enumerate(text):
            if is_text:
                if spans and all(scanned[spans[-1][1] : position]):
                    spans[-1] = (spans[-1][0], position + 1)
                else:
                    spans.append((position, position + 1))
        return cls(
            schema=schema,
            event_type=event_type,
            names=names,
            index={name: position for position, name in enumerate(names)},
            string_fields=tuple(n for n, s in zip(names, strings, strict=True) if s),
            timestamp_fields=tuple(
                f["name"] for f in fields if logical_type(f["type"]) == "timestamp-millis"
            ),
            year_fields=tuple(f["name"] for f in fields if _is_year(f)),
            village_fields=tuple(f["name"] for f in fields if _is_village(f)),
            other_province_fields=tuple(
                n for n, s in zip(names, strings, strict=True) if s and n.endswith("_province_code")
            ),
            has_district="district_code" in names,
            pii=tuple((f["name"], f["pii"]) for f in fields if "pii" in f),
            pii_positions=tuple(i for i, f in enumerate(fields) if "pii" in f),
            text_fields=tuple(n for n, t in zip(names, text, strict=True) if t),
            text_spans=tuple(spans),
        )


@cache
def event_layout(event_type: str) -> EventLayout:
    """The layout of `event_type`'s latest raw schema; ValueError for an unknown type."""
    return EventLayout.of(catalog.raw_schema(event_type), event_type)


def layout_of(contract: EventLayout | str | dict[str, Any]) -> EventLayout:
    """A layout as given, an event type's, or that of a raw schema."""
    if isinstance(contract, EventLayout):
        return contract
    if isinstance(contract, str):
        return event_layout(contract)
    return EventLayout.of(contract)
