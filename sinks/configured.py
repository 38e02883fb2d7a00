"""A `Sink` built from the settings: what `govpulse sink` and `govpulse serve` both run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from govpulse.clickhouse import make_client
from govpulse.kafka_config import client_config
from govpulse.schemas.catalog import EVENT_TYPES
from govpulse.settings import Settings
from govpulse.sinks.faults import crash_after_from_env, with_faults
from govpulse.sinks.sink import Sink
from govpulse.sinks.tiers import TierJob, TierLoop


class ConfiguredSink:
    """The sink and the extra insert connections it owns (closed with it)."""

    def __init__(
        self,
        settings: Settings,
        client: Any,
        *,
        dsn: str | None = None,
        event_types: Sequence[str] = EVENT_TYPES,
        max_rows: int | None = None,
        max_wait_ms: int | None = None,
    ) -> None:
        dsn = dsn or settings.clickhouse_dsn
        self.insert_clients = [
            with_faults(make_client(dsn)) for _ in range(settings.sink_insert_threads - 1)
        ]
        self.sink = Sink(
            with_faults(client),
            settings.bootstrap_servers,
            settings.registry_url,
            event_types=event_types,
            max_rows=max_rows or settings.sink_max_rows,
            max_wait_ms=max_wait_ms or settings.sink_max_wait_ms,
            session_timeout_ms=settings.kafka_session_timeout_ms,
            crash_after_inserts=crash_after_from_env(),
            consumer_config=client_config(settings),
            insert_clients=self.insert_clients,
        )

        # the tier job on its own connection, so its merges never hold up an insert cycle
        self.tiers: TierLoop | None = None
        self._tier_client: Any = None
        if settings.tier_interval_seconds > 0:
            self._tier_client = make_client(dsn)
            self.tiers = TierLoop(TierJob(self._tier_client), settings.tier_interval_seconds)

    def start_tiers(self) -> None:
        if self.tiers is not None:
            self.tiers.start()

    def close_clients(self) -> None:
        if self.tiers is not None:
            self.tiers.stop()
            if not self.tiers.running:  # never close an engine under a run still going
                self._tier_client.close()
        for client in self.insert_clients:
            client.close()
