"""An event id's one spelling: the lowercase 8-4-4-4-12 UUID ClickHouse stores.

De-duplication, the clean topic's key, the sink's look-ups and the audit all compare ids as
text, so the same UUID written `ABCD…`, `abcd…` or without dashes would be three events.
Accepted spellings (the contract in `schemas/avro/envelope.avsc`), any letter case:
- `6f1c2a8e-1b2c-4d5e-8f90-123456789abc` (canonical),
- `6f1c2a8e1b2c4d5e8f90123456789abc` (32 hex digits, no dashes),
- either of those in braces `{…}` or after `urn:uuid:`.
Anything else — dashes elsewhere, other characters — is not an event id (`invalid_value`),
although Python's `uuid.UUID` would take some of it: it also drops dashes wherever they are.
"""

from __future__ import annotations

import re

_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_SPELLING = re.compile(
    r"(?:urn:uuid:)?(\{)?"
    r"([0-9a-f]{8})(-?)([0-9a-f]{4})\3([0-9a-f]{4})\3([0-9a-f]{4})\3([0-9a-f]{12})"
    r"(?(1)\})",
    re.IGNORECASE,
)


def canonical_event_id(value: str) -> str | None:
    """`value` as a lowercase canonical UUID, or None when it is no accepted spelling."""
    if _CANONICAL.fullmatch(value):
        return value  # the common case: one C-speed match, no new string
    match = _SPELLING.fullmatch(value)
    if match is None:
        return None
    return "-".join(match.group(2, 4, 5, 6, 7)).lower()
