"""Fixtures of the sink tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from govpulse.clickhouse import make_client
from govpulse.sinks.migrations import migrate


@pytest.fixture
def database(clickhouse) -> Iterator[Callable[..., object]]:
    """A migrated database of its own on the session engine; yields a client factory."""
    name = f"sink_{uuid.uuid4().hex[:10]}"
    migrate(clickhouse, database=name)
    clients = []

    def client(**kwargs):
        made = make_client(f"chdb://{clickhouse.path}", database=name, **kwargs)
        clients.append(made)
        return made

    yield client
    for made in clients:
        made.close()
