"""Schema compatibility under the Confluent levels, decided by Apache Avro's own checker.

Used by the embedded registry (to accept or refuse a new version) and by
`govpulse schemas check` (a CI gate); messages name the field a person has to fix.
"""

from __future__ import annotations

import json
from typing import Any

from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType
from avro.errors import AvroException
from avro.schema import Schema, parse

LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)

_EXPLAIN = {
    "reader_field_missing_default_value": "field {field} has no default, so data written "
    "without it cannot be read",
    "type_mismatch": "{message} at {field}",
    "missing_enum_symbols": "enum at {field} lacks symbols {message} and has no default",
    "missing_union_branch": "union at {field} lacks a branch: {message}",
    "name_mismatch": "name differs at {field}: {message}",
    "fixed_size_mismatch": "fixed size differs at {field}: {message}",
}


class InvalidSchema(ValueError):
    """The text is not a valid Avro schema."""


def parse_schema(text: str) -> Schema:
    """Parse Avro schema JSON; `InvalidSchema` with the parser's reason otherwise."""
    try:
        return parse(text)
    except (AvroException, json.JSONDecodeError, TypeError, ValueError) as error:
        raise InvalidSchema(f"invalid Avro schema: {error}") from None


def _field_at(schema_json: Any, location: str) -> str:
    """'/fields/3/type' → "'district_code'" (the named field), else the location itself."""
    node, names = schema_json, []
    parts = [part for part in location.split("/") if part]
    for index, part in enumerate(parts):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            if parts[index - 1] == "fields" and isinstance(node, dict) and "name" in node:
                names.append(str(node["name"]))
        else:
            break
    return f"'{'.'.join(names)}' ({location})" if names else location


def _incompatibilities(reader: str, writer: str) -> list[str]:
    result = ReaderWriterCompatibilityChecker().get_compatibility(
        parse_schema(reader), parse_schema(writer)
    )
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    reader_json = json.loads(reader)
    messages = sorted(result.messages) or [""]
    # The checker also reports every enclosing record ("/"); keep only the most precise places.
    locations = sorted(result.locations - {"/"}) or sorted(result.locations)
    found = []
    for kind in result.incompatibilities:
        for location in locations:
            template = _EXPLAIN.get(kind.value, kind.value + " at {field}: {message}")
            found.append(
                template.format(field=_field_at(reader_json, location), message="; ".join(messages))
            )
    return sorted(set(found))


def check(new: str, existing: list[str], level: str) -> list[str]:
    """Why `new` may not follow `existing` (oldest first) under `level`; [] when it may."""
    level = level.upper()
    if level not in LEVELS:
        raise ValueError(f"unknown compatibility level {level!r}; expected one of {LEVELS}")
    parse_schema(new)
    if level == "NONE" or not existing:
        return []
    against = existing if level.endswith("_TRANSITIVE") else existing[-1:]
    mode = level.removesuffix("_TRANSITIVE")
    problems: list[str] = []
    for position, old in enumerate(against, start=len(existing) - len(against) + 1):
        if mode in ("BACKWARD", "FULL"):
            problems += [
                f"BACKWARD vs version {position}: new schema reading old data: {p}"
                for p in _incompatibilities(new, old)
            ]
        if mode in ("FORWARD", "FULL"):
            problems += [
                f"FORWARD vs version {position}: old schema reading new data: {p}"
                for p in _incompatibilities(old, new)
            ]
    return problems
