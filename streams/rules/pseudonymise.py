"""Keyed pseudonyms for personal data (PDPA): HMAC-SHA256(secret key, value) with a key id.

An unsalted hash of a national ID is reversible by brute force (only ~10^12 IDs exist); a
keyed HMAC is not without the key, yet the same person maps to the same pseudonym, so
agencies' records can still be joined. The key id records which key made a pseudonym, so
keys can be rotated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass


@dataclass(frozen=True)
class PseudonymKey:
    key_id: str
    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) < 32:
            raise ValueError(
                f"pseudonymisation key {self.key_id!r} has {len(self.secret)} bytes; "
                "at least 32 are required"
            )

    def __repr__(self) -> str:  # never print the secret
        return f"PseudonymKey(key_id={self.key_id!r}, secret=<{len(self.secret)} bytes>)"


def pseudonym(key: PseudonymKey, value: str) -> str:
    """HMAC-SHA256 of `value` under `key`, base64url without padding (43 characters).

    Not hex: one hex digest in ten would hold a run of 13 decimal digits, which a PDPA
    scan for national IDs cannot tell from a leaked ID; in base64url such a run is ~1e-10.
    """
    digest = hmac.new(key.secret, value.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
