"""Free text clean-up: zero-width characters out, whitespace collapsed, Unicode NFC.

NFC, not NFKC: NFKC decomposes SARA AM (ำ) into NIKHAHIT + SARA AA and changes Thai text.
"""

from __future__ import annotations

import re
import unicodedata

# ZWSP, ZWNJ, ZWJ, word joiner, BOM/ZWNBSP, soft hyphen: invisible, break search and joins.
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_ZERO_WIDTH_RE = re.compile(f"[{ZERO_WIDTH}]")
_WHITESPACE_RE = re.compile(r"\s+")


def has_zero_width(text: str) -> bool:
    return _ZERO_WIDTH_RE.search(text) is not None


def clean_text(text: str) -> str:
    """Zero-width characters removed, runs of whitespace made one space, trimmed, NFC."""
    text = _ZERO_WIDTH_RE.sub("", text)
    text = _WHITESPACE_RE.sub(" ", text).strip()
    return unicodedata.normalize("NFC", text)
