"""Thai digits (๐–๙) become Arabic digits (0–9).

Python's `str.isdigit`, `\\d` and `int()` all accept Thai digits, so validate with `[0-9]`
after this conversion, never before.
"""

from __future__ import annotations

THAI_DIGITS = "๐๑๒๓๔๕๖๗๘๙"
_TO_ARABIC = str.maketrans(THAI_DIGITS, "0123456789")


def has_thai_digits(text: str) -> bool:
    return any(char in THAI_DIGITS for char in text)


def to_arabic(text: str) -> str:
    """`text` with every Thai digit replaced by its Arabic digit; everything else unchanged."""
    return text.translate(_TO_ARABIC)
