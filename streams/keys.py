"""The pseudonymisation key: read from a secret file, never printed, never defaulted silently.

Outside the embedded stack a worker without a key refuses to start; `govpulse up` writes a
random development key under the data directory and points its workers at it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from govpulse.settings import SettingsError
from govpulse.streams.rules.pseudonymise import PseudonymKey

SETTING = "GOVPULSE_PSEUDONYM_KEY_FILE"
DEV_KEY_NAME = "dev-pseudonym.key"


def key_id_of(secret: bytes) -> str:
    """A public id for a key (recorded with each pseudonym so keys can rotate)."""
    return "k-" + hashlib.sha256(b"govpulse-key-id:" + secret).hexdigest()[:12]


def load_key(path: Path | None) -> PseudonymKey:
    """The key in `path`; a `SettingsError` naming GOVPULSE_PSEUDONYM_KEY_FILE otherwise."""
    if path is None:
        raise SettingsError(
            f"{SETTING} is not set: the streams worker needs a secret HMAC key (a file of at "
            "least 32 random bytes, e.g. `head -c 32 /dev/urandom > key`) to pseudonymise "
            "national IDs; `govpulse up` generates a development key"
        )
    try:
        secret = path.read_bytes().strip()
    except OSError as error:
        raise SettingsError(f"{SETTING}={str(path)!r}: cannot read the key: {error}") from None
    if len(secret) < 32:
        raise SettingsError(f"{SETTING}={str(path)!r}: the key has {len(secret)} bytes, need 32+")
    return PseudonymKey(key_id_of(secret), secret)


def ensure_dev_key(data_dir: Path) -> Path:
    """A random development key under `data_dir`, created once (mode 0600)."""
    path = data_dir / DEV_KEY_NAME
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(secrets.token_bytes(48))
    return path
