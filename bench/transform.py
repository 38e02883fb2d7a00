"""Benchmark: events/s the pure record transform cleans on one core (no Kafka, no registry).

Pre-generates realistic raw payloads with the traffic simulator (its mix of types, agencies
and provinces, and its share of dirty records: Thai digits, Buddhist Era years, zero-width
characters, bad IDs, unknown provinces, future timestamps), a share of them written with the
v1 schemas, framed in the Confluent wire format. Then times `Transformer.process` over the
whole mixed stream, and over each type's payloads alone. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from fastavro import parse_schema

from bench.host import host_facts, peak_rss_mb
from govpulse.producers.traffic import TrafficGenerator
from govpulse.schemas import catalog
from govpulse.schemas.timestamps import epoch_millis
from govpulse.schemas.wire_format import encode
from govpulse.streams.rules.pseudonymise import PseudonymKey
from govpulse.streams.transform import Cleaned, Transformer

CLOCK = datetime(2024, 6, 14, 3, 30, tzinfo=UTC)
NOW_MS = epoch_millis(CLOCK + timedelta(seconds=1))


class Registry:
    """Schema ids as a registry would hand them out: raw v1, raw latest, clean, per type."""

    def __init__(self) -> None:
        self.parsed: dict[int, Any] = {}
        self.raw_ids: dict[tuple[str, int], int] = {}
        self.clean_ids: dict[str, int] = {}
        for event_type in catalog.EVENT_TYPES:
            for version in catalog.versions(event_type):
                schema_id = len(self.parsed) + 1
                self.raw_ids[event_type, version] = schema_id
                self.parsed[schema_id] = parse_schema(catalog.raw_schema(event_type, version))
            self.clean_ids[event_type] = len(self.parsed) + 1
            self.parsed[len(self.parsed) + 1] = parse_schema(catalog.clean_schema(event_type))

    def __call__(self, schema_id: int) -> Any:
        return self.parsed[schema_id]


def payloads(
    registry: Registry, events: int, dirty_share: float, v1_share: float, seed: int
) -> list[tuple[str, bytes]]:
    """(event_type, framed raw value) for `events` simulated records."""
    generator = TrafficGenerator(
        seed=seed, daily_rhythm=False, dirty_share=dirty_share, clock=lambda: CLOCK
    )
    fields = {
        (t, v): {f["name"] for f in catalog.raw_schema(t, v)["fields"]}
        for t in catalog.EVENT_TYPES
        for v in catalog.versions(t)
    }
    out = []
    for _ in range(events):
        event_type, record, _defect = generator.next_event()
        record = {"produced_at": CLOCK, **record}
        version = 1 if generator.rng.random() < v1_share else catalog.versions(event_type)[-1]
        names = fields[event_type, version]
        record = {name: value for name, value in record.items() if name in names}
        schema_id = registry.raw_ids[event_type, version]
        out.append((event_type, encode(schema_id, registry(schema_id), record)))
    return out


def run(
    transformers: dict[str, Transformer], batch: list[tuple[str, bytes]]
) -> tuple[float, float, Counter]:
    """Wall and CPU seconds to process `batch`, and outcomes (clean or the reason)."""
    outcomes: Counter[str] = Counter()
    started, cpu_started = time.perf_counter(), time.process_time()
    for offset, (event_type, payload) in enumerate(batch):
        result = transformers[event_type].process(payload, 0, offset, NOW_MS)
        outcomes["clean" if type(result) is Cleaned else result.reason.value] += 1
    return time.perf_counter() - started, time.process_time() - cpu_started, outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="payloads to transform")
    parser.add_argument("--dirty-share", type=float, default=0.05, help="share with a defect")
    parser.add_argument("--v1-share", type=float, default=0.1, help="share written with v1")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    host = host_facts()  # before the run's own load

    registry = Registry()
    batch = payloads(registry, args.events, args.dirty_share, args.v1_share, args.seed)
    key = PseudonymKey("bench", b"b" * 32)
    started = time.perf_counter()
    transformers = {
        t: Transformer(t, registry, registry.clean_ids[t], key) for t in catalog.EVENT_TYPES
    }
    build_s = time.perf_counter() - started
    run(transformers, batch[:2_000])  # first look-ups of each writer schema id

    seconds, cpu_seconds, outcomes = run(transformers, batch)
    per_type = {}
    for event_type in catalog.EVENT_TYPES:
        own = [item for item in batch if item[0] == event_type]
        type_s, _, type_outcomes = run(transformers, own)
        per_type[event_type] = {
            "n": len(own),
            "events_per_s": round(len(own) / type_s) if own else 0,
            "seconds": round(type_s, 3),
            "outcomes": dict(sorted(type_outcomes.items())),
        }
    print(
        json.dumps(
            {
                "benchmark": "transform",
                "host": host,
                "events_per_s": round(len(batch) / seconds),
                "n": len(batch),
                "seconds": round(seconds, 3),
                "us_per_event": round(seconds / len(batch) * 1e6, 2),
                "events_per_cpu_s": round(len(batch) / cpu_seconds),
                "peak_rss_mb": peak_rss_mb(),
                "dirty_share": args.dirty_share,
                "v1_share": args.v1_share,
                "build_transformers_s": round(build_s, 3),
                "outcomes": dict(sorted(outcomes.items())),
                "per_type": per_type,
            }
        )
    )


if __name__ == "__main__":
    main()
