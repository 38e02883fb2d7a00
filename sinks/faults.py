"""Test hooks for the sink's failure paths; off unless a test turns them on.

- `FlakyClient`: a ClickHouse client whose inserts fail, as a server that went away would,
  while a file exists (`GOVPULSE_SINK_FAULT_FILE`). A file, so a test can switch the fault on
  and off in a sink running in another process.
- `GOVPULSE_SINK_CRASH_AFTER_INSERTS=N`: the sink process dies (`os._exit(137)`, like kill -9)
  right after its Nth acknowledged insert, before committing offsets — the one moment a crash
  can leave rows stored but not committed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.exceptions import OperationalError

FAULT_FILE_ENV = "GOVPULSE_SINK_FAULT_FILE"
CRASH_AFTER_ENV = "GOVPULSE_SINK_CRASH_AFTER_INSERTS"


class FlakyClient:
    """Delegates to `client`; `insert` and `raw_insert` raise while `fault_file` exists."""

    def __init__(self, client: Any, fault_file: Path | str) -> None:
        self._client = client
        self.fault_file = Path(fault_file)
        self.failures = 0

    def _check(self) -> None:
        if self.fault_file.exists():
            self.failures += 1
            raise OperationalError(
                f"injected fault: ClickHouse unavailable while {self.fault_file} exists "
                "(HTTP 503, as a server restarting would answer)"
            )

    def insert(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return self._client.insert(*args, **kwargs)

    def raw_insert(self, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return self._client.raw_insert(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def fault_file_from_env() -> Path | None:
    value = os.environ.get(FAULT_FILE_ENV, "")
    return Path(value) if value else None


def crash_after_from_env() -> int | None:
    """N from GOVPULSE_SINK_CRASH_AFTER_INSERTS; None when unset; ValueError naming it."""
    value = os.environ.get(CRASH_AFTER_ENV, "")
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{CRASH_AFTER_ENV}={value!r}: expected a whole number >= 1")
    return int(value)


def with_faults(client: Any, fault_file: Path | None = None) -> Any:
    """`client`, wrapped in a `FlakyClient` when a fault file is configured."""
    fault_file = fault_file or fault_file_from_env()
    return FlakyClient(client, fault_file) if fault_file else client
