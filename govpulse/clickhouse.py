"""The one place a ClickHouse client is built. Callers never ask which engine is behind it.

`chdb:///dir` gives the embedded ClickHouse engine in this process; `http(s)://…` a server.
Only one process may open a chdb directory, so on the embedded stack the store-owning
process (sink + dashboard) is the only caller with a chdb DSN.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from govpulse import dedup_log_repair
from govpulse.settings import SettingsError, get_settings


def chdb_directory(dsn: str) -> str | None:
    """The engine directory of a `chdb://` DSN; None for a server DSN."""
    parts = urlsplit(dsn)
    return (parts.path or parts.netloc) if parts.scheme == "chdb" else None


ENGINE_DIR_HEADER = "X-Govpulse-Engine-Dir"


def served_engine_url(dsn: str, port: int) -> str | None:
    """The HTTP URL at which a running `govpulse serve` offers this chdb DSN's engine, if any.

    The endpoint names the directory it serves, so another stack's serve on the same port
    is never mistaken for this one.
    """
    import urllib.request

    path = chdb_directory(dsn)
    if not path or not port:
        return None
    url = f"http://127.0.0.1:{port}"
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
            served = response.headers.get(ENGINE_DIR_HEADER, "")
    except OSError:
        return None
    return url if served == os.path.realpath(path) else None


SERVE_MARKER = "govpulse-serve.json"  # in the engine directory while serve shares it


def mark_served(directory: str, port: int) -> Path:
    """Record that `govpulse serve` (this process) shares this engine directory on `port`.

    Left behind when serve is killed: a `govpulse sink` started meanwhile then waits for
    serve to come back instead of opening the directory itself (it would keep serve out).
    """
    marker = Path(directory) / SERVE_MARKER
    marker.write_text(json.dumps({"pid": os.getpid(), "http_port": port}))
    return marker


def serve_marker(dsn: str) -> dict[str, int] | None:
    """What the last `govpulse serve` of this chdb DSN's directory recorded, if it shares it
    and was not stopped cleanly; None otherwise (or for a server DSN)."""
    path = chdb_directory(dsn)
    if not path:
        return None
    try:
        found = json.loads((Path(path) / SERVE_MARKER).read_text())
        return {"pid": int(found["pid"]), "http_port": int(found["http_port"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def make_client(dsn: str | None = None, **kwargs: Any) -> Client:
    """A clickhouse-connect client for `dsn` (default: GOVPULSE_CLICKHOUSE_DSN)."""
    dsn = dsn or get_settings().clickhouse_dsn
    parts = urlsplit(dsn)
    if parts.scheme == "chdb":
        path = chdb_directory(dsn)
        if not path:
            raise SettingsError(f"GOVPULSE_CLICKHOUSE_DSN={dsn!r}: chdb DSN needs a directory")
        Path(path).mkdir(parents=True, exist_ok=True)
        # before the engine opens it: a replayed insert must reach every view it missed
        dedup_log_repair.repair(path)
    try:
        return clickhouse_connect.get_client(dsn=dsn, **kwargs)
    except Exception as exc:  # connection refused, bad credentials, bad path …
        safe = dsn.replace(parts.password or "\0", "***") if parts.password else dsn
        raise SettingsError(f"GOVPULSE_CLICKHOUSE_DSN={safe!r}: cannot connect: {exc}") from exc
