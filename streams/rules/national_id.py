"""The 13-digit Thai national ID and its check digit.

d13 = (11 − Σ_{i=1..12} (14 − i)·d_i mod 11) mod 10. Call after Thai digits were converted:
only ASCII digits pass.
"""

from __future__ import annotations

import re

_THIRTEEN_DIGITS = re.compile(r"[0-9]{13}")
_WEIGHTS = tuple(range(13, 1, -1))  # 13, 12, …, 2 for d1 … d12


def check_digit(first_twelve: str) -> int:
    total = sum(int(d) * w for d, w in zip(first_twelve, _WEIGHTS, strict=True))
    return (11 - total % 11) % 10


def is_valid(national_id: str) -> bool:
    """True for 13 ASCII digits whose last digit is the check digit of the first twelve."""
    if _THIRTEEN_DIGITS.fullmatch(national_id) is None:
        return False
    return check_digit(national_id[:12]) == int(national_id[12])


def normalise(raw: str) -> str:
    """Strip the separators agencies write (`1-2345-67890-12-1`, spaces) — not other chars."""
    return raw.replace("-", "").replace(" ", "")
