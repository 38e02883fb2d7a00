"""The one place a ClickHouse client is built. Callers never ask which engine is behind it.

`chdb:///dir` gives the embedded ClickHouse engine in this process; `http(s)://…` a server.
Only one process may open a chdb directory, so on the embedded stack the store-owning
process (sink + dashboard) is the only caller with a chdb DSN.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from govpulse.settings import SettingsError, get_settings


def make_client(dsn: str | None = None, **kwargs: object) -> Client:
    """A clickhouse-connect client for `dsn` (default: GOVPULSE_CLICKHOUSE_DSN)."""
    dsn = dsn or get_settings().clickhouse_dsn
    parts = urlsplit(dsn)
    if parts.scheme == "chdb":
        path = parts.path or parts.netloc
        if not path:
            raise SettingsError(f"GOVPULSE_CLICKHOUSE_DSN={dsn!r}: chdb DSN needs a directory")
        from pathlib import Path

        Path(path).mkdir(parents=True, exist_ok=True)
    try:
        return clickhouse_connect.get_client(dsn=dsn, **kwargs)
    except Exception as exc:  # connection refused, bad credentials, bad path …
        safe = dsn.replace(parts.password or "\0", "***") if parts.password else dsn
        raise SettingsError(f"GOVPULSE_CLICKHOUSE_DSN={safe!r}: cannot connect: {exc}") from exc
