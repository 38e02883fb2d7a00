"""The project's one Avro binary codec: zig-zag varints, flat-record readers and field encoders.

Every piece of Avro binary the project writes or reads by hand goes through here: the stream
processor's compiled readers and field encoders (its hot path), the producer's compiled writer
(`govpulse.schemas.avro_writer`) and the sink's object-container header
(`govpulse.sinks.avro_container`) all take their varints from `encode_long`.

fastavro interprets the schema for every record (~0.3 µs a field, plus datetime and Decimal
conversions). Our event schemas are flat — primitives, enums and `["null", X]` unions at the
top level — so a reader generated as straight-line Python (one function per schema, the way
`dataclasses` builds `__init__`) reads a record ~35 % faster, and it also returns where each
field starts, so an unchanged field can be copied byte for byte into the clean record instead of
being encoded again. Logical types are not applied: timestamps stay epoch-millisecond ints,
decimals stay their unscaled two's-complement bytes, uuids stay strings — exactly the values the
binary holds, so copying them is lossless.

Schemas outside that shape raise `UnsupportedSchema`; callers fall back to fastavro.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from fastavro.schema import to_parsing_canonical_form

Reader = Callable[[bytes, int], tuple[dict[str, Any], tuple[int, ...]]]
Encoder = Callable[[Any], bytes]

PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
_FLOAT = struct.Struct("<f")
_DOUBLE = struct.Struct("<d")


class UnsupportedSchema(ValueError):
    """The schema uses something the compiled codecs do not handle (fastavro must)."""


class Truncated(EOFError):
    """The Avro body ends before the record does."""


# -- schema helpers ----------------------------------------------------------------------------
def strip_logical_types(schema: Any) -> Any:
    """A plain copy of `schema` without logicalType and fastavro's private `__…` keys.

    fastavro applies logical types from the writer schema; reading and writing with this copy
    keeps the primitive values, which costs nothing to convert and writes the same bytes.
    """
    if isinstance(schema, dict):
        return {
            key: strip_logical_types(value)
            for key, value in schema.items()
            if key != "logicalType" and not key.startswith("__")
        }
    if isinstance(schema, list):
        return [strip_logical_types(item) for item in schema]
    return schema


def binary_layout(schema: Any) -> str:
    """The Parsing Canonical Form: two schemas with the same form read the same bytes alike."""
    return to_parsing_canonical_form(strip_logical_types(schema))


def _type_name(field_type: Any) -> str:
    """'string', 'enum', 'union', … of a field type, looking through {"type": "long"} wrappers."""
    if isinstance(field_type, list):
        return "union"
    if isinstance(field_type, dict):
        inner = field_type["type"]
        return inner if inner in ("enum", "array", "record", "map", "fixed") else _type_name(inner)
    name: str = field_type  # a primitive's name
    return name


def nullable_branch(field_type: Any) -> tuple[int, int, Any] | None:
    """For `["null", X]` or `[X, "null"]`: (null index, X index, X); None for other unions."""
    if not isinstance(field_type, list) or len(field_type) != 2 or "null" not in field_type:
        return None
    null_index = field_type.index("null")
    other = field_type[1 - null_index]
    if _type_name(other) in ("union", "null"):
        return None
    return null_index, 1 - null_index, other


def is_type(field_type: Any, name: str) -> bool:
    """True when the field holds `name` values, alone or in a nullable union."""
    branch = nullable_branch(field_type)
    return _type_name(branch[2] if branch else field_type) == name


def logical_type(field_type: Any) -> str | None:
    """The logicalType of a field, alone or in a nullable union; None when it has none."""
    branch = nullable_branch(field_type)
    inner = branch[2] if branch else field_type
    return inner.get("logicalType") if isinstance(inner, dict) else None


# -- reading -----------------------------------------------------------------------------------
_ONE_BYTE_VALUE = tuple((byte >> 1) ^ -(byte & 1) for byte in range(128))  # one-byte varints


def _read_long(buf: bytes, pos: int) -> tuple[int, int]:
    """A zig-zag varint of more than one byte (one-byte ones are read inline)."""
    byte = buf[pos]
    pos += 1
    value = byte & 0x7F
    shift = 7
    while byte & 0x80:
        if shift > 63:
            raise ValueError("varint is longer than 10 bytes")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
    return (value >> 1) ^ -(value & 1), pos


def _long_lines(target: str, indent: str) -> list[str]:
    """Inline one- and two-byte varints (small ints, string lengths up to 8 KB)."""
    return [
        f"{indent}b = buf[pos]",
        f"{indent}if b < 128:",
        f"{indent}    {target} = _ONE_BYTE_VALUE[b]",
        f"{indent}    pos += 1",
        f"{indent}elif buf[pos + 1] < 128:",
        f"{indent}    z = buf[pos + 1] << 7 | b & 127",
        f"{indent}    {target} = (z >> 1) ^ -(z & 1)",
        f"{indent}    pos += 2",
        f"{indent}else:",
        f"{indent}    {target}, pos = _read_long(buf, pos)",
    ]


def _value_lines(field_type: Any, target: str, indent: str, env: dict[str, Any]) -> list[str]:
    kind = _type_name(field_type)
    if kind == "null":
        return [f"{indent}{target} = None"]
    if kind == "boolean":
        return [
            f"{indent}b = buf[pos]",
            f"{indent}pos += 1",
            f"{indent}if b > 1:",
            f"{indent}    raise ValueError(f'boolean byte is {{b}}, expected 0 or 1')",
            f"{indent}{target} = b == 1",
        ]
    if kind in ("int", "long"):
        return _long_lines(target, indent)
    if kind in ("float", "double"):
        size, unpack = (4, "_FLOAT") if kind == "float" else (8, "_DOUBLE")
        return [f"{indent}({target},) = {unpack}(buf, pos)", f"{indent}pos += {size}"]
    if kind in ("string", "bytes"):
        value = "buf[pos:e].decode()" if kind == "string" else "buf[pos:e]"
        return [
            *_long_lines("n", indent),
            f"{indent}e = pos + n",
            f"{indent}if n < 0 or e > end:",
            f"{indent}    raise Truncated(f'{{n}} bytes announced, {{end - pos}} left')",
            f"{indent}{target} = {value}",
            f"{indent}pos = e",
        ]
    if kind == "enum":
        if len(field_type["symbols"]) > 64:
            raise UnsupportedSchema(f"enum {field_type.get('name')} has more than 64 symbols")
        symbols = f"_SYMBOLS_{len(env)}"  # keyed by the one-byte zig-zag index
        env[symbols] = {index * 2: symbol for index, symbol in enumerate(field_type["symbols"])}
        return [
            f"{indent}{target} = {symbols}.get(buf[pos])",
            f"{indent}if {target} is None:",
            f"{indent}    raise ValueError(f'enum index byte {{buf[pos]}} out of range')",
            f"{indent}pos += 1",
        ]
    if kind == "union" and (branch := nullable_branch(field_type)):
        null_index, other_index, other = branch  # one-byte zig-zag tags: 0 → 0x00, 1 → 0x02
        return [
            f"{indent}b = buf[pos]",
            f"{indent}pos += 1",
            f"{indent}if b == {null_index * 2}:",
            f"{indent}    {target} = None",
            f"{indent}elif b == {other_index * 2}:",
            *_value_lines(other, target, indent + "    ", env),
            f"{indent}else:",
            f"{indent}    raise ValueError(f'union index byte {{b}} out of range')",
        ]
    raise UnsupportedSchema(f"field type {field_type!r} is not flat (fastavro reads it)")


def compile_reader(schema: dict[str, Any]) -> Reader:
    """`read(buf, pos) -> (record, starts)` for a flat record schema.

    `starts[i]` is where field i begins and `starts[-1]` where the record ends. Malformed input
    raises (IndexError, Truncated, ValueError, UnicodeDecodeError, struct.error); a caller that
    must not raise catches them.
    """
    names = [field["name"] for field in schema["fields"]]
    if not all(name.isidentifier() for name in names):
        raise UnsupportedSchema(f"field names {names} are not all identifiers")
    env: dict[str, Any] = {
        "_read_long": _read_long,
        "_FLOAT": _FLOAT.unpack_from,
        "_DOUBLE": _DOUBLE.unpack_from,
        "Truncated": Truncated,
        "_ONE_BYTE_VALUE": _ONE_BYTE_VALUE,
    }
    lines = ["def read(buf, pos):", "    end = len(buf)", "    p0 = pos"]
    for index, field in enumerate(schema["fields"]):
        lines += _value_lines(field["type"], f"v{index}", "    ", env)
        lines.append(f"    p{index + 1} = pos")
    record = ", ".join(f"{name!r}: v{index}" for index, name in enumerate(names))
    starts = ", ".join(f"p{index}" for index in range(len(names) + 1))
    lines.append(f"    return {{{record}}}, ({starts},)")
    source = "\n".join(lines)
    exec(compile(source, f"<flat_avro reader {schema.get('name')}>", "exec"), env)
    read: Reader = env["read"]
    read.__doc__ = f"Generated reader of {schema.get('name')}.\n\n{source}"
    return read


# -- writing -----------------------------------------------------------------------------------
_ONE_BYTE = tuple(bytes([byte]) for byte in range(128))


def encode_long(value: int) -> bytes:
    """Zig-zag varint of a 64-bit integer (unrolled up to 6 bytes: this century's epoch ms).

    The project's only varint encoder; a value outside 64 bits raises ValueError.
    """
    z = (value << 1) ^ (value >> 63)
    if z < 0x80:  # z >= 0 for every int
        return _ONE_BYTE[z]
    if z < 0x4000:
        return bytes((z & 127 | 128, z >> 7))
    if z < 0x200000:
        return bytes((z & 127 | 128, z >> 7 & 127 | 128, z >> 14))
    if z < 0x10000000:
        return bytes((z & 127 | 128, z >> 7 & 127 | 128, z >> 14 & 127 | 128, z >> 21))
    if z < 0x40000000000:
        low = (z & 127 | 128, z >> 7 & 127 | 128, z >> 14 & 127 | 128, z >> 21 & 127 | 128)
        if z < 0x800000000:
            return bytes((*low, z >> 28))
        return bytes((*low, z >> 28 & 127 | 128, z >> 35))
    if not INT64[0] <= value <= INT64[1]:
        raise ValueError(f"{value} does not fit an Avro long")
    out = bytearray()
    while z > 127:
        out.append(z & 127 | 128)
        z >>= 7
    out.append(z)
    return bytes(out)


def _encode_int(value: int) -> bytes:
    if not INT32[0] <= value <= INT32[1]:
        raise ValueError(f"{value} does not fit an Avro int")
    return encode_long(value)


def encode_bytes(value: bytes) -> bytes:
    return encode_long(len(value)) + value


def encode_string(value: str) -> bytes:
    data = value.encode()
    return encode_long(len(data)) + data


def _encode_null(value: None) -> bytes:
    if value is not None:
        raise ValueError(f"{value!r} is not null")
    return b""


def _encode_boolean(value: bool) -> bytes:
    if value is True:
        return b"\x01"
    if value is False:
        return b"\x00"
    raise ValueError(f"{value!r} is not a boolean")


def _enum_encoder(symbols: list[str]) -> Encoder:
    table = {symbol: encode_long(index) for index, symbol in enumerate(symbols)}

    def encode(value: str) -> bytes:
        try:
            return table[value]
        except KeyError:
            raise ValueError(f"{value!r} is not one of {symbols}") from None

    return encode


def _array_encoder(items: Encoder) -> Encoder:
    def encode(values: list[Any]) -> bytes:
        if not values:
            return b"\x00"
        return b"".join([encode_long(len(values)), *map(items, values), b"\x00"])

    return encode


def _nullable_encoder(null_index: int, other_index: int, other: Encoder) -> Encoder:
    null_tag, other_tag = encode_long(null_index), encode_long(other_index)

    def encode(value: Any) -> bytes:
        return null_tag if value is None else other_tag + other(value)

    return encode


_PRIMITIVE_ENCODERS: dict[str, Encoder] = {
    "null": _encode_null,
    "boolean": _encode_boolean,
    "int": _encode_int,
    "long": encode_long,
    "float": _FLOAT.pack,
    "double": _DOUBLE.pack,
    "bytes": encode_bytes,
    "string": encode_string,
}


def field_encoder(field_type: Any) -> Encoder:
    """`encode(value) -> bytes` for one field of a flat record (arrays of flat items too)."""
    kind = _type_name(field_type)
    if kind in _PRIMITIVE_ENCODERS:
        return _PRIMITIVE_ENCODERS[kind]
    if kind == "enum":
        return _enum_encoder(field_type["symbols"])
    if kind == "array":
        return _array_encoder(field_encoder(field_type["items"]))
    if kind == "union" and (branch := nullable_branch(field_type)):
        null_index, other_index, other = branch
        return _nullable_encoder(null_index, other_index, field_encoder(other))
    raise UnsupportedSchema(f"field type {field_type!r} is not flat (fastavro writes it)")
