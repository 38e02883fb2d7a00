"""Clean events written straight into ClickHouse, without Kafka or the stream processor.

For the dashboard's API and browser tests, and for trying the page without the pipeline:
records come from the traffic simulator (`govpulse.producers.traffic.TrafficGenerator`, no defects)
and are turned into what the stream processor would emit (pseudonyms instead of personal
fields, names from reference data, lineage), then inserted the way the sink inserts
(`govpulse.sinks.columns.to_columns`). The materialized views fill the minute rollups as in
production, and the tier job (`settle_tiers`) the hour and day ones.

Not a second implementation of the cleaning rules: the pseudonyms here are plain hashes of
fake IDs, good for counting distinct citizens, never for real data.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from govpulse.producers.traffic import TrafficGenerator
from govpulse.schemas import catalog
from govpulse.schemas.reference import agencies, districts, ministry_of, provinces, region_of
from govpulse.sinks.columns import DEAD_LETTER_COLUMNS, columns_for, table_for, to_columns
from govpulse.sinks.tiers import TierJob

DEAD_LETTER_REASONS = ("invalid_national_id", "unknown_province", "future_timestamp")


def _pseudonym(value: str) -> str:
    return hashlib.sha256(b"synthetic:" + value.encode()).hexdigest()[:43]


def to_clean(event_type: str, raw: dict[str, Any], processed_at: datetime, offset: int) -> dict:
    """The clean record the stream processor would emit for a defect-free raw record."""
    record = dict(raw)
    for name in catalog.pii_fields(catalog.raw_schema(event_type)):
        value = record.pop(name, None)
        record[name + catalog.PSEUDONYM_SUFFIX] = None if value is None else _pseudonym(value)
    agency = agencies()[record["agency_code"]]
    ministry = ministry_of(agency.code)
    province = provinces()[record["province_code"]]
    region = region_of(province.code)
    district = districts().get(record.get("district_code") or "")
    has_pii = any(
        record.get(name + catalog.PSEUDONYM_SUFFIX)
        for name in catalog.pii_fields(catalog.raw_schema(event_type))
    )
    record |= {
        "pseudonym_key_id": "synthetic" if has_pii else None,
        "agency_name_th": agency.name_th,
        "agency_name_en": agency.name_en,
        "ministry_code": ministry.code,
        "ministry_name_th": ministry.name_th,
        "ministry_name_en": ministry.name_en,
        "province_name_th": province.name_th,
        "province_name_en": province.name_en,
        "district_name_th": district.name_th if district else None,
        "district_name_en": district.name_en if district else None,
        "region_code": region.code,
        "region_name_th": region.name_th,
        "region_name_en": region.name_en,
        "defects_fixed": [],
        "processed_at": processed_at,
        "source_partition": 0,
        "source_offset": offset,
    }
    return record


class SyntheticTraffic:
    """Reproducible clean events at chosen moments; `offset` keeps lineage unique."""

    def __init__(self, seed: int = 6) -> None:
        self.generator = TrafficGenerator(dirty_share=0.0, seed=seed, daily_rhythm=False)
        self.rng = random.Random(seed)
        self.offset = 0

    def events(self, count: int, start: datetime, end: datetime) -> dict[str, list[dict]]:
        """`count` clean events with occurred_at spread uniformly over [start, end)."""
        span = (end - start).total_seconds()
        by_type: dict[str, list[dict]] = {}
        for _ in range(count):
            event_type, raw, _ = self.generator.next_event()
            occurred = start + timedelta(seconds=self.rng.uniform(0, span))
            raw = dict(raw)
            raw["occurred_at"] = occurred
            produced = occurred + timedelta(milliseconds=self.rng.randint(5, 400))
            raw["produced_at"] = produced
            if event_type == "net_pracharat_usage":
                minute = occurred.replace(second=0, microsecond=0)
                raw["interval_start"] = minute - timedelta(minutes=raw["interval_minutes"])
            processed = produced + timedelta(milliseconds=self.rng.randint(20, 1500))
            self.offset += 1
            by_type.setdefault(event_type, []).append(
                to_clean(event_type, raw, processed, self.offset)
            )
        return by_type

    def dead_letters(self, count: int, start: datetime, end: datetime) -> list[list[Any]]:
        """Rows for `dead_letters` (payload left empty, as the sink must for PDPA)."""
        span = (end - start).total_seconds()
        rows = []
        for _ in range(count):
            event_type = self.rng.choice(catalog.EVENT_TYPES)
            self.offset += 1
            first_seen = start + timedelta(seconds=self.rng.uniform(0, span))
            rows.append(
                [
                    event_type,
                    self.rng.choice(DEAD_LETTER_REASONS),
                    "synthetic dead letter",
                    catalog.dlq_topic(event_type),
                    0,
                    self.offset,
                    first_seen,
                    "",
                    None,
                ]
            )
        return rows


def insert_events(
    client: Client,
    database: str,
    by_type: dict[str, list[dict]],
    *,
    token: str | None = None,
    settle: bool = True,
) -> int:
    """Insert clean records like the sink does (one insert per type; `token`: the sink's
    deduplication token of the batch, per type), then (`settle`) run the tier job once, as
    the sink's tier loop would within seconds; returns how many."""
    total = 0
    for event_type, records in by_type.items():
        if not records:
            continue
        client.insert(
            f"{database}.{table_for(event_type)}",
            to_columns(event_type, records),
            column_names=columns_for(event_type),
            column_oriented=True,
            settings={"insert_deduplication_token": f"{token}:{event_type}"} if token else None,
        )
        total += len(records)
    if total and settle:
        settle_tiers(client, database)
    return total


def settle_tiers(client: Client, database: str) -> None:
    """Run the tier job once, as the sink's would within seconds: the hours the inserts just
    reached (late ones included) merged into the hour and day tiers."""
    TierJob(client, database).run_once()


def insert_dead_letters(client: Client, database: str, rows: Iterable[list[Any]]) -> int:
    rows = list(rows)
    if rows:
        client.insert(f"{database}.dead_letters", rows, column_names=list(DEAD_LETTER_COLUMNS))
    return len(rows)


def load_recent(
    client: Client,
    database: str,
    events: int,
    *,
    seconds: float = 3600.0,
    dead_letter_share: float = 0.02,
    traffic: SyntheticTraffic | None = None,
    now: datetime | None = None,
) -> int:
    """Insert `events` clean events (and some dead letters) spread over the last `seconds`."""
    traffic = traffic or SyntheticTraffic()
    end = now or datetime.now(UTC)
    start = end - timedelta(seconds=seconds)
    inserted = insert_events(client, database, traffic.events(events, start, end))
    insert_dead_letters(
        client, database, traffic.dead_letters(int(events * dead_letter_share), start, end)
    )
    return inserted
