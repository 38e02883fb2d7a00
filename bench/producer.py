"""Benchmark: events/s one process validates, serialises and gets acknowledged by the broker.

Starts its own embedded broker and registry on free loopback ports, pre-generates realistic
records (generation is the simulator's cost, not the SDK's), then times `AgencyProducer.send`
for all of them plus the final flush. Prints one JSON object.

Before that, the baseline of the SDK's own Avro writer (`govpulse.schemas.avro_writer`, which
checks and encodes in one pass): the same records, framed the same way, written by fastavro's
`schemaless_writer` alone and by fastavro's `validate` + `schemaless_writer` (what replacing
the writer would take to keep refusing bad values). The three are timed in alternating rounds
on one core (`writers` in the JSON: events/s, best and median of the rounds); `--writers-only`
skips the broker.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from fastavro import parse_schema, schemaless_writer
from fastavro.validation import validate

from bench._stack import embedded_stack
from bench.host import host_facts, peak_rss_mb
from govpulse.producers.agency_producer import FILLED_IN, AgencyProducer
from govpulse.producers.traffic import TrafficGenerator
from govpulse.producers.verdict import RecordRejected
from govpulse.schemas import catalog
from govpulse.schemas.avro_writer import compile_writer
from govpulse.schemas.wire_format import header

Events = list[tuple[str, dict[str, Any]]]


def writer_rounds(events: Events, rounds: int) -> dict[str, Any]:
    """Events/s of the project's writer and of fastavro on the same records, alternating."""
    produced_at = time.time_ns() // 1_000_000
    full = [(t, {**r, "event_type": t, "produced_at": r.get("produced_at", produced_at)})
            for t, r in events]  # fmt: skip
    ours, theirs, heads = {}, {}, {}
    for schema_id, event_type in enumerate(catalog.EVENT_TYPES, start=1):
        schema = catalog.raw_schema(event_type)
        heads[event_type] = header(schema_id)
        ours[event_type] = compile_writer(schema, heads[event_type], FILLED_IN)
        theirs[event_type] = parse_schema(schema)

    def project() -> list[bytes]:
        return [ours[t](r, t, produced_at) for t, r in full]

    def fastavro(check: bool) -> Callable[[], list[bytes]]:
        def write() -> list[bytes]:
            out = []
            for t, r in full:
                if check:
                    validate(r, theirs[t], raise_errors=True)
                buffer = io.BytesIO()
                buffer.write(heads[t])
                schemaless_writer(buffer, theirs[t], r)
                out.append(buffer.getvalue())
            return out

        return write

    runs = {
        "project_writer": project,
        "fastavro_schemaless_writer": fastavro(False),
        "fastavro_validate_and_write": fastavro(True),
    }
    if project() != runs["fastavro_schemaless_writer"]():
        raise SystemExit("the project's writer and fastavro wrote different bytes")
    rates: dict[str, list[int]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.process_time()
            run()
            rates[name].append(round(len(full) / (time.process_time() - started)))
    return {
        "events": len(full),  # all generated records: the check's refusals are valid Avro
        "rounds": rounds,
        **{
            name: {"best": max(r), "median": round(statistics.median(r)), "runs": r}
            for name, r in rates.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="records to send")
    parser.add_argument("--dirty-share", type=float, default=0.05)
    parser.add_argument("--writer-rounds", type=int, default=5, help="rounds of each writer")
    parser.add_argument(
        "--writers-only", action="store_true", help="time the writers only (no broker)"
    )
    parser.add_argument(
        "--no-check-rules",
        action="store_true",
        help="send without the stream worker's verdict (AgencyProducer(check_rules=False))",
    )
    args = parser.parse_args()
    host = host_facts()  # before the run's own load

    generator = TrafficGenerator(seed=1, daily_rhythm=False, dirty_share=args.dirty_share)
    events = [generator.next_event()[:2] for _ in range(args.events)]
    writers = writer_rounds(events, args.writer_rounds)
    if args.writers_only:
        print(json.dumps({"benchmark": "producer", "host": host, "events": len(events),
                          "writers": writers, "peak_rss_mb": peak_rss_mb()}))  # fmt: skip
        return
    with embedded_stack() as (broker, registry):
        producer = AgencyProducer(
            bootstrap_servers=broker.bootstrap,
            registry_url=registry.url,
            check_rules=not args.no_check_rules,
        )
        # the records the worker would dead-letter are refused at send() when checking: time
        # the ones that pass (the simulator's unfixable defects are ~half of its dirty share)
        passing = []
        for event_type, record in events:
            try:
                producer.prepare(event_type, record)
                passing.append((event_type, record))
            except RecordRejected:
                pass
        refused = len(events) - len(passing)
        events = passing
        for event_type, record in events[:1000]:  # registry look-ups, connections, topics
            producer.send(event_type, record)
        producer.flush(30)
        warm = producer.stats.delivered

        started = time.perf_counter()
        for event_type, record in events:
            producer.prepare(event_type, record)
        prepare_s = time.perf_counter() - started

        started = time.perf_counter()
        for event_type, record in events:
            producer.send(event_type, record)
        sent_s = time.perf_counter() - started
        left = producer.flush(60)
        total_s = time.perf_counter() - started
        stats = producer.close()
    print(
        json.dumps(
            {
                "benchmark": "producer",
                "host": host,
                "events": len(events),
                "check_rules": not args.no_check_rules,
                "writers": writers,
                "refused_by_check": refused,
                "validated_and_serialised_per_s": round(len(events) / prepare_s),
                "sent_per_s": round(len(events) / sent_s),
                "delivered_per_s": round((stats.delivered - warm) / total_s),
                "delivered": stats.delivered - warm,
                "failed": stats.failed,
                "in_flight_after_flush": left,
                "seconds": round(total_s, 3),
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    main()
