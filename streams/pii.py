"""Personal data out, pseudonyms in — driven by each field's `"pii"` attribute, never its name.

A field tagged `"pii": "national_id"` must hold a valid 13-digit ID (separators allowed) or the
record is dead-lettered; other kinds are normalised (`phone`: digits only, +66 → 0) and then
pseudonymised. The clean field is `<name>_pseudonym` (see `schemas.catalog.clean_schema`). Every
ID-shaped number written into any other string field (a complaint's subject, say) is masked,
valid ID or not — a mistyped ID is still personal data — so no ID reaches a clean topic (PDPA);
dead-letter details are masked the same way (`redact_ids`).

An ID-shaped number is 13 digits read as one number, in any spelling an ID field accepts
(`_ID_SHAPED`, the one definition). Digits are 0-9 or Thai ๐-๙; separators are what cleaning
and `national_id.normalise` drop from an ID field: '-', whitespace (space, NBSP, tab, line
break) and zero-width characters, any run of them between two digits. Digits with no separator
between form a group; an ID-shaped number is whole groups, joined by separators, of 13 digits
in all — or a group of 14 digits or more, which may hold an ID run into another number. So
`1101700230708`, `1-1017-00230-70-8`, `1 1017 00230 70 8`, `๑๑๐๑๗๐๐๒๓๐๗๐๘` and `1-1017-` + line
break + `00230-70-8` are all masked, and next to another number an ID still is: in
`1101700230708 0812345678` the first group alone makes 13. Any other character ends a group
and a number: letters, '/', ',', '.', ':'. Groups are never split, so what cannot make exactly
13 stays: dates (2567-01-01), amounts (1,234,567), phones (02-123-4567, 081 234 5678),
`1111-670614-0007` (a complaint number: 4 + 6 + 4), a card in groups of four, years in a row.
Masking too much is the safe side: other numbers whose groups add up to 13 are masked too
(`02-123-4567 1234`; `081 234 5678 082 345 6789` → `[national_id] 345 6789`). The mask keeps
nothing of the number (`ID_MASK`): its ends or length would only help to guess it. Dashes
other than '-' (en dash, minus sign) are no separators: an ID field does not accept them either.
"""

from __future__ import annotations

import hashlib
import operator
import re
from binascii import b2a_base64
from typing import Any

from govpulse.monitoring import metrics
from govpulse.schemas.catalog import PSEUDONYM_SUFFIX
from govpulse.schemas.layout import EventLayout, layout_of
from govpulse.streams.clean import Fix
from govpulse.streams.reasons import Reason
from govpulse.streams.rules import national_id
from govpulse.streams.rules.pseudonymise import PseudonymKey
from govpulse.streams.rules.text import ZERO_WIDTH
from govpulse.streams.rules.thai_digits import THAI_DIGITS

Failure = tuple[Reason, str]

NATIONAL_ID = "national_id"
PHONE = "phone"
ID_MASK = "[national_id]"
_DIGIT = f"[0-9{THAI_DIGITS}]"
_ID_SEPARATOR = rf"[-\s{ZERO_WIDTH}]"
# See the module docstring. From a digit that starts a group (the lookbehind): 13 more digits,
# or 12 more across separators ending where a group ends. Starting with the digit class lets
# the engine skip to digits; a possessive separator run is never given back.
_ID_SHAPED = re.compile(
    rf"{_DIGIT}(?<!{_DIGIT}{_DIGIT})"
    rf"(?:{_DIGIT}{{13,}}|(?:{_ID_SEPARATOR}*+{_DIGIT}){{12}}(?!{_DIGIT}))"
)
_NON_DIGITS = re.compile(r"[^0-9]")
_ID_WEIGHTS = tuple(range(13, 1, -1))
_ID_ASCII_OFFSET = ord("0") * sum(_ID_WEIGHTS)
# A payload's digit shape, for a C-speed pre-check: ASCII digit → 0, '-' and ' ' deleted, any
# other byte → 1. An ID-shaped number in a clean string is then 13 zeros in a row.
_DIGIT_SHAPE = bytes(0 if 48 <= b <= 57 else 1 for b in range(256))
_SEPARATOR_BYTES = b"- "
_THIRTEEN_DIGITS = bytes(13)
_URL_SAFE = bytes.maketrans(b"+/", b"-_")
_SHA256_BLOCK = 64
_INNER_PAD = bytes(byte ^ 0x36 for byte in range(256))
_OUTER_PAD = bytes(byte ^ 0x5C for byte in range(256))


def mask(value: str) -> str:
    """'1101700203450' → '1xxxxxxxxxxx0': enough to find the record again, not the person."""
    if len(value) <= 4:
        return "x" * len(value)
    return value[0] + "x" * (len(value) - 2) + value[-1]


def scrub_national_ids(text: str) -> str:
    """`text` with every ID-shaped number (valid ID or not) replaced by `ID_MASK`."""
    return _ID_SHAPED.sub(ID_MASK, text) if len(text) >= 13 else text


def redact_ids(text: str) -> str:
    """`text` with every ID-shaped number masked, for dead-letter details: as in free text."""
    return _ID_SHAPED.sub(ID_MASK, text) if len(text) >= 13 else text


def is_valid_id(value: str) -> bool:
    """`national_id.is_valid`, 3× faster (bytes and `operator.mul`); a test pins the two."""
    if len(value) != 13 or not value.isascii() or not value.isdigit():
        return False
    digits = value.encode()
    total: int = sum(map(operator.mul, digits[:12], _ID_WEIGHTS)) - _ID_ASCII_OFFSET
    return (11 - total % 11) % 10 == digits[12] - 48


def normalise_phone(value: str) -> str:
    """Digits only, so '081-234-5678', '081 234 5678' and '+66 81 234 5678' are one person."""
    digits = value if value.isascii() and value.isdigit() else _NON_DIGITS.sub("", value)
    if value.lstrip().startswith("+66") and digits.startswith("66"):
        return "0" + digits[2:]
    return digits


class Pseudonymiser:
    """Replaces the PII fields of one schema by keyed pseudonyms.

    The HMAC is `streams.rules.pseudonymise.pseudonym` with the key's inner and outer SHA-256
    states computed once instead of per value (3× faster; a test pins the two together).
    """

    def __init__(self, layout: EventLayout | dict[str, Any], key: PseudonymKey) -> None:
        """`layout`: the event type's layout (or its raw schema): its PII fields and kinds."""
        self.key_id = key.key_id
        self.fields = tuple(
            (name, kind, name + PSEUDONYM_SUFFIX) for name, kind in layout_of(layout).pii
        )
        secret = key.secret
        if len(secret) > _SHA256_BLOCK:
            secret = hashlib.sha256(secret).digest()
        secret = secret.ljust(_SHA256_BLOCK, b"\0")
        self._inner = hashlib.sha256(secret.translate(_INNER_PAD))
        self._outer = hashlib.sha256(secret.translate(_OUTER_PAD))

    def pseudonym(self, value: str) -> str:
        """HMAC-SHA256(key, value), base64url without padding (43 characters)."""
        inner = self._inner.copy()
        inner.update(value.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return b2a_base64(outer.digest(), newline=False)[:43].translate(_URL_SAFE).decode()

    def apply(self, record: dict[str, Any]) -> Failure | None:
        """Pseudonymise `record` in place and set `pseudonym_key_id`; a failure for a bad ID."""
        present = False
        for name, kind, target in self.fields:
            raw = record.pop(name, None)
            if raw is None:
                record[target] = None
                continue
            if kind == NATIONAL_ID:
                value = national_id.normalise(raw)
                if not is_valid_id(value):
                    return Reason.INVALID_NATIONAL_ID, _id_problem(name, value)
            else:
                value = normalise_phone(raw) if kind == PHONE else raw
                if not value:  # nothing personal left to join on: same as absent
                    record[target] = None
                    continue
            record[target] = self.pseudonym(value)
            present = True
        record["pseudonym_key_id"] = self.key_id if present else None
        return None


class IdMasker:
    """Masks ID-shaped numbers written into the non-PII string fields of one schema.

    Fields whose type is a UUID (the event id: validated, the record's key) are not free text
    and are left alone: the digits of about one random UUID in 80 are ID-shaped across its dashes.

    Scanning every string with a regular expression costs more than the rest of cleaning, so
    a record read by the compiled reader is first checked on its payload bytes: unchanged
    fields are byte-identical to the clean ones, so their only separators are '-' and ' '
    (cleaning changes a field with any other whitespace, a zero-width character or a Thai
    digit), and after one `bytes.translate` that deletes those two an ID-shaped number is 13
    zero bytes in a row. Only fields that cleaning changed, or all of them when the shape shows
    up, go through the regex. Each masked number counts in govpulse_streams_ids_masked_total.
    """

    def __init__(self, layout: EventLayout | dict[str, Any], event_type: str | None = None) -> None:
        """`layout`: the event type's layout (or its raw schema): its free-text fields and the
        payload spans that hold them (`EventLayout.text_spans`). `event_type` labels the
        metric; without it, each record's (validated) event_type."""
        layout = layout_of(layout)
        self.text_fields = layout.text_fields
        self._text = frozenset(self.text_fields)
        self._spans = layout.text_spans
        self._event_type = event_type
        # Metric children by field, resolved once; given the event type, all at once (at 0).
        self._masked: dict[str, Any] = {}
        if event_type is not None:
            for name in self.text_fields:
                self._masked[name] = metrics.STREAMS_IDS_MASKED.labels(event_type, name)

    def may_hold_ids(self, payload: bytes, starts: tuple[int, ...]) -> bool:
        """True when the payload outside the PII and UUID fields has an ID-shaped number."""
        for first, end in self._spans:
            shape = payload[starts[first] : starts[end]].translate(_DIGIT_SHAPE, _SEPARATOR_BYTES)
            if _THIRTEEN_DIGITS in shape:
                return True
        return False

    def mask(
        self,
        record: dict[str, Any],
        payload: bytes,
        starts: tuple[int, ...] | None,
        changed: set[str],
        fixes: set[Fix],
    ) -> None:
        """Mask IDs in `record`'s text in place; note masked fields in `changed` and `fixes`."""
        if starts is None or self.may_hold_ids(payload, starts):
            names: Any = self.text_fields
        elif changed:
            names = self._text.intersection(changed)
        else:
            return
        for name in names:
            value = record.get(name)
            if value is not None and len(value) >= 13:
                masked, count = _ID_SHAPED.subn(ID_MASK, value)
                if count:
                    record[name] = masked
                    changed.add(name)
                    fixes.add(Fix.NATIONAL_ID_IN_TEXT)
                    counter = self._masked.get(name)
                    if counter is None:
                        event_type = self._event_type or record["event_type"]
                        counter = metrics.STREAMS_IDS_MASKED.labels(event_type, name)
                        self._masked[name] = counter
                    counter.inc(count)


def _id_problem(name: str, value: str) -> str:
    if len(value) != 13 or not value.isascii() or not value.isdigit():
        return f"{name} {mask(value)!r} ({len(value)} characters) is not 13 digits 0-9"
    return f"{name} {mask(value)!r} fails the national ID check digit"
