"""Avro writers compiled once per schema: check and encode a record in one pass.

fastavro's writer interprets the schema for every record and does not check everything (it
truncates an int that is too big, writes any truthy value as a boolean, any string as a uuid);
its validator checks all of it but costs several times the encoding. A writer generated here as
straight-line Python (one function per schema, `exec`'d once, the way
`govpulse.schemas.flat_avro` builds its readers) does both, and writes the same bytes as
`fastavro.schemaless_writer` for every record both accept. `bench.producer` keeps the
baseline: on the simulator's records it writes ~3x as many events/s as fastavro's
`schemaless_writer` alone and ~13x as many as fastavro's `validate` + `schemaless_writer`
(bench/RESULTS.md, "One codec").

Where fastavro would write a wrong value, it refuses: ints and longs must be `int` (not bool)
within range, booleans `bool`, floats `int` or `float` (not bool), uuids `uuid.UUID` or the
8-4-4-4-12 hex form, decimals must fit their precision. Decimals are judged by value, so
Decimal('1.230') is written as 1.23 for scale 2 (fastavro refuses it for its three decimals).
A bad record raises `ValueError` naming the top-level field.

Supported: what the contracts in `schemas/avro/` use — a top-level record of primitives,
enums, arrays, `["null", X]` unions and the logical types uuid, timestamp-millis and decimal
on bytes. Anything else (maps, fixed, nested records, named-type references, other unions,
other logical types) raises `UnsupportedSchema` when compiling, so a caller can fall back to
fastavro.
"""

from __future__ import annotations

import datetime
import decimal
import re
import struct
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from govpulse.schemas.flat_avro import INT32, INT64, PRIMITIVES, UnsupportedSchema, encode_long
from govpulse.schemas.timestamps import EPOCH, MILLISECOND

Writer = Callable[..., bytes]

# logical types fastavro converts when writing; the ones not supported here refuse to compile
_FASTAVRO_LOGICAL = {
    ("long", "timestamp-millis"),
    ("long", "local-timestamp-millis"),
    ("long", "timestamp-micros"),
    ("long", "local-timestamp-micros"),
    ("int", "date"),
    ("bytes", "decimal"),
    ("fixed", "decimal"),
    ("string", "uuid"),
    ("int", "time-millis"),
    ("long", "time-micros"),
}
_SUPPORTED_LOGICAL = {
    ("long", "timestamp-millis"),
    ("bytes", "decimal"),
    ("string", "uuid"),
}
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_SIZES = 2048  # lengths below this get a precomputed varint


class _Invalid(Exception):
    """Raised inside generated code; the writer turns it into a ValueError naming the field."""


# -- runtime helpers used by the generated code -----------------------------------------------
_SIZE = tuple(encode_long(size) for size in range(_SIZES))
# -64 .. 63 by index: negative values index from the end
_SMALL = tuple(encode_long(n) for n in range(64)) + tuple(encode_long(n) for n in range(-64, 0))


def _uuid_text(value: Any) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        return value
    raise _Invalid


def _millis(value: Any) -> int:
    """Epoch milliseconds of a datetime, as fastavro computes them (naive = local time)."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            return (value - EPOCH) // MILLISECOND
        return int(time.mktime(value.timetuple())) * 1000 + value.microsecond // 1000
    if type(value) is int:
        return value
    raise _Invalid


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise _Invalid


def _decimal_writer(precision: int, scale: int) -> Callable[[Any], bytes]:
    """Length-prefixed two's-complement unscaled value, byte for byte as fastavro writes it.

    A Decimal is accepted when its value has at most `scale` decimals and `precision` digits
    (fastavro also refuses Decimal('1.230') for scale 2, but writes 10**20 into 12 digits).
    The bytes then depend on the value alone, so they are cached by value: the same few
    amounts recur.
    """
    exact = decimal.Context(
        prec=precision + 1, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow]
    )
    limit = 10**precision
    cache: dict[decimal.Decimal, bytes] = {}

    def write(value: Any) -> bytes:
        if type(value) is decimal.Decimal:
            data = cache.get(value)
            if data is not None:
                return data
        elif not isinstance(value, decimal.Decimal):
            data = _as_bytes(value)  # fastavro writes bytes given for a decimal as they are
            return encode_long(len(data)) + data
        scaled = value.scaleb(scale, exact)  # raises when digits would be lost
        unscaled = int(scaled)  # raises for NaN and infinities
        magnitude = -unscaled if unscaled < 0 else unscaled
        if scaled != unscaled or magnitude >= limit:
            raise _Invalid
        data = unscaled.to_bytes((magnitude.bit_length() + 8) // 8, "big", signed=True)
        data = _SIZE[len(data)] + data
        if len(cache) >= 4096:
            cache.clear()
        cache[value] = data
        return data

    return write


# -- schema reading ----------------------------------------------------------------------------
def _describe(schema: Any) -> str:
    """What a field expects, in words for the error message."""
    if isinstance(schema, list):
        return " or ".join(_describe(branch) for branch in schema)
    if isinstance(schema, str):
        return {"int": "int (32-bit)", "long": "long (64-bit)"}.get(schema, schema)
    kind, logical = schema["type"], schema.get("logicalType")
    if kind == "enum":
        return "one of " + ", ".join(schema["symbols"])
    if (kind, logical) == ("string", "uuid"):
        return "a UUID string"
    if (kind, logical) == ("long", "timestamp-millis"):
        return "datetime or epoch milliseconds (long)"
    if (kind, logical) == ("bytes", "decimal"):
        return f"Decimal of at most {schema['precision']} digits, {schema.get('scale', 0)} decimals"
    if kind == "array":
        return "array"
    return _describe(kind)


# -- code generation ---------------------------------------------------------------------------
class _Generator:
    """Emits Python source for one schema; helpers and constants go into `env`."""

    def __init__(self) -> None:
        self.env: dict[str, Any] = {
            "_Invalid": _Invalid,
            "_long": encode_long,
            "_SMALL": _SMALL,
            "_datetime": datetime.datetime,
            "_EPOCH": EPOCH,
            "_MILLISECOND": MILLISECOND,
            "_SIZE": _SIZE,
            "_uuid_text": _uuid_text,
            "_is_uuid": _UUID.fullmatch,
            "_millis": _millis,
            "_as_bytes": _as_bytes,
            "_pack_float": struct.Struct("<f").pack,
            "_pack_double": struct.Struct("<d").pack,
        }
        self.count = 0
        self.functions: list[str] = []

    def fresh(self, stem: str) -> str:
        self.count += 1
        return f"{stem}{self.count}"

    def constant(self, value: Any, stem: str = "_K") -> str:
        name = self.fresh(stem)
        self.env[name] = value
        return name

    def emit(self, schema: Any, value: str) -> tuple[list[str], list[str]]:
        """(statements, piece expressions): code that checks `value` and names its bytes."""
        if isinstance(schema, list):
            return self._union(schema, value)
        if isinstance(schema, str) and schema not in PRIMITIVES:
            raise UnsupportedSchema(f"named type {schema!r} (fastavro writes references)")
        kind = schema if isinstance(schema, str) else schema["type"]
        logical = None if isinstance(schema, str) else schema.get("logicalType")
        if isinstance(kind, dict | list):  # {"type": {...}} wrapper
            return self.emit(kind, value)
        if (kind, logical) in _FASTAVRO_LOGICAL and (kind, logical) not in _SUPPORTED_LOGICAL:
            raise UnsupportedSchema(f"logical type {logical} on {kind} (fastavro writes it)")
        piece = self.fresh("p")
        if kind == "null":
            return [f"if {value} is not None: raise _Invalid"], []
        if kind == "boolean":
            return [
                f"if {value} is True: {piece} = b'\\x01'",
                f"elif {value} is False: {piece} = b'\\x00'",
                "else: raise _Invalid",
            ], [piece]
        if kind in ("int", "long"):
            return self._integer(kind, logical, value, piece), [piece]
        if kind in ("float", "double"):
            return [
                f"if type({value}) is not float and type({value}) is not int: raise _Invalid",
                f"{piece} = _pack_{kind}({value})",
            ], [piece]
        if kind in ("string", "bytes"):
            return self._sized(kind, logical, schema, value, piece)
        if kind == "enum":
            table = {symbol: encode_long(i) for i, symbol in enumerate(schema["symbols"])}
            return [f"{piece} = {self.constant(table, '_ENUM')}[{value}]"], [piece]
        if kind == "array":
            return self._array(schema, value, piece), [piece]
        raise UnsupportedSchema(f"type {kind!r} is not supported (fastavro writes it)")

    def _integer(self, kind: str, logical: str | None, value: str, piece: str) -> list[str]:
        low, high = INT32 if kind == "int" else INT64
        if logical == "timestamp-millis":
            return self._millis(value, piece)
        return [
            f"if type({value}) is not int: raise _Invalid",
            f"if -64 <= {value} < 64: {piece} = _SMALL[{value}]",
            f"elif {low} <= {value} <= {high}: {piece} = _long({value})",
            "else: raise _Invalid",
        ]

    def _millis(self, value: str, piece: str) -> list[str]:
        """Aware datetimes converted inline; this century's epoch ms written without a call."""
        last = self.constant([(None, b"")], "_LAST")  # one tuple: replaced atomically
        seen = self.fresh("c")
        six_bytes = ", ".join(
            [*(f"z >> {shift} & 127 | 128" for shift in range(0, 35, 7)), "z >> 35"]
        )
        return [
            f"if type({value}) is _datetime and {value}.tzinfo is not None:",
            f"    {value} = ({value} - _EPOCH) // _MILLISECOND",
            f"elif type({value}) is not int: {value} = _millis({value})",
            f"{seen} = {last}[0]",  # consecutive records often share the millisecond
            f"if {value} == {seen}[0]: {piece} = {seen}[1]",
            "else:",
            f"    if {2**34} <= {value} < {2**41}:",  # zig-zag varints of 6 bytes (1970-07 .. 2039)
            f"        z = {value} << 1",
            f"        {piece} = bytes(({six_bytes}))",
            f"    elif {INT64[0]} <= {value} <= {INT64[1]}: {piece} = _long({value})",
            "    else: raise _Invalid",
            f"    {last}[0] = ({value}, {piece})",
        ]

    def _sized(
        self, kind: str, logical: str | None, schema: Any, value: str, piece: str
    ) -> tuple[list[str], list[str]]:
        size = self.fresh("s")
        if logical == "uuid":
            return [
                f"if type({value}) is not str: {value} = _uuid_text({value})",
                f"if _is_uuid({value}) is None: raise _Invalid",
                f"{piece} = {value}.encode()",  # ASCII, 36 bytes
                f"{size} = {_SIZE[36]!r}",
            ], [size, piece]
        if logical == "decimal":
            writer = _decimal_writer(int(schema["precision"]), int(schema.get("scale", 0)))
            return [f"{piece} = {self.constant(writer, '_decimal')}({value})"], [piece]
        data = f"{value}.encode()" if kind == "string" else value
        lines = (
            []
            if kind == "string"
            else [f"if type({value}) is not bytes: {value} = _as_bytes({value})"]
        )
        return [
            *lines,
            f"{piece} = {data}",
            f"{size} = len({piece})",
            f"{size} = _SIZE[{size}] if {size} < {_SIZES} else _long({size})",
        ], [size, piece]

    def _union(self, schema: list[Any], value: str) -> tuple[list[str], list[str]]:
        nulls = [i for i, branch in enumerate(schema) if branch == "null"]
        if len(schema) != 2 or len(nulls) != 1 or isinstance(schema[1 - nulls[0]], list):
            raise UnsupportedSchema(f"union {schema!r} is not ['null', X] (fastavro writes it)")
        null_index = nulls[0]
        lines, pieces = self.emit(schema[1 - null_index], value)
        tag = self.fresh("t")
        return [
            f"if {value} is None:",
            f"    {tag} = {encode_long(null_index)!r}",
            *(f"    {piece} = b''" for piece in pieces),
            "else:",
            f"    {tag} = {encode_long(1 - null_index)!r}",
            *(f"    {line}" for line in lines),
        ], [tag, *pieces]

    def _array(self, schema: dict[str, Any], value: str, piece: str) -> list[str]:
        item = self.function(schema["items"])
        return [
            f"if type({value}) is not list and type({value}) is not tuple: raise _Invalid",
            f"{piece} = _long(len({value})) + b''.join(map({item}, {value})) + b'\\x00' "
            f"if {value} else b'\\x00'",
        ]

    def function(self, schema: Any) -> str:
        """A generated `f(value) -> bytes` for array items."""
        name = self.fresh("_write")
        lines, pieces = self.emit(schema, "value")
        self.functions.append(
            "\n".join(
                [
                    f"def {name}(value):",
                    *(f"    {line}" for line in lines),
                    f"    return b''.join(({''.join(p + ', ' for p in pieces)}))",
                ]
            )
        )
        return name


def _fetch(field: dict[str, Any], record: str, generator: _Generator, fallback: str = "") -> str:
    """How a field's value is read: fastavro's rule is `record.get(name, field default)`."""
    name = repr(field["name"])
    if fallback:
        return f"{record}.get({name}, {fallback})"
    if "default" in field:
        default = field["default"]
        if default is None:
            return f"{record}.get({name})"
        return f"{record}.get({name}, {generator.constant(default, '_DEFAULT')})"
    kind = field["type"]
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return f"{record}.get({name})"
    return f"{record}[{name}]"


def compile_writer(
    schema: dict[str, Any], prefix: bytes = b"", fallbacks: tuple[str, ...] = ()
) -> Writer:
    """`write(record, *fallback_values) -> prefix + Avro binary` for a record schema.

    `fallbacks` names top-level fields whose value is passed as an extra argument, used when
    the record lacks the field (the producer fills `produced_at` this way without copying the
    record). A bad record raises ValueError: "field 'x' has 'y' (str), expected long (64-bit)".
    """
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise UnsupportedSchema("the top-level schema must be a record")
    generator = _Generator()
    fields = schema["fields"]
    unknown = set(fallbacks) - {field["name"] for field in fields}
    if unknown:
        raise ValueError(f"fallback fields {sorted(unknown)} are not in the schema")
    arguments = {name: f"f{index}" for index, name in enumerate(fallbacks)}
    generator.env["_Mapping"] = Mapping
    body = ["if type(record) is not dict and not isinstance(record, _Mapping): raise _Invalid"]
    pieces: list[str] = [generator.constant(prefix, "_PREFIX")]
    for index, field in enumerate(fields):
        local = generator.fresh("v")
        body.append(f"i = {index}")
        body.append(
            f"{local} = {_fetch(field, 'record', generator, arguments.get(field['name'], ''))}"
        )
        field_lines, field_pieces = generator.emit(field["type"], local)
        body += field_lines
        pieces += field_pieces
    generator.env["_explain"] = _explainer(fields, fallbacks)
    signature = ", ".join(["record", *arguments.values()])
    given = "".join(f"{argument}, " for argument in arguments.values())
    source = "\n".join(
        [
            *generator.functions,
            f"def write({signature}):",
            "    i = -1",
            "    try:",
            *(f"        {line}" for line in body),
            f"        return b''.join(({''.join(p + ', ' for p in pieces)}))",
            "    except Exception as error:",
            f"        raise _explain(i, record, error, ({given})) from None",
        ]
    )
    exec(compile(source, f"<avro writer {schema.get('name')}>", "exec"), generator.env)
    write: Writer = generator.env["write"]
    write.__doc__ = f"Generated writer of {schema.get('name')}.\n\n{source}"
    return write


def _explainer(
    fields: list[dict[str, Any]], fallbacks: tuple[str, ...]
) -> Callable[[int, Any, Exception, tuple[Any, ...]], ValueError]:
    names = [field["name"] for field in fields]
    expected = [_describe(field["type"]) for field in fields]
    fallback_index = {name: index for index, name in enumerate(fallbacks)}

    def explain(index: int, record: Any, error: Exception, values: tuple[Any, ...]) -> ValueError:
        if index < 0:
            return ValueError(f"record is {type(record).__name__}, expected a mapping")
        name = names[index]
        detail = f" ({error})" if isinstance(error, ValueError | ArithmeticError) else ""
        if name in record:
            value = record[name]
        elif name in fallback_index:
            value = values[fallback_index[name]]
        else:
            return ValueError(f"field '{name}' is missing, expected {expected[index]}")
        return ValueError(
            f"field '{name}' has {value!r} ({type(value).__name__}), "
            f"expected {expected[index]}{detail}"
        )

    return explain
