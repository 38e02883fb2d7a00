"""Benchmark: events/s one process validates, serialises and gets acknowledged by the broker.

Starts its own embedded broker and registry on free loopback ports, pre-generates realistic
records (generation is the simulator's cost, not the SDK's), then times `AgencyProducer.send`
for all of them plus the final flush. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

from bench._stack import embedded_stack
from bench.host import host_facts, peak_rss_mb
from govpulse.producers.agency_producer import AgencyProducer
from govpulse.producers.traffic import TrafficGenerator
from govpulse.producers.verdict import RecordRejected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="records to send")
    parser.add_argument("--dirty-share", type=float, default=0.05)
    parser.add_argument(
        "--no-check-rules",
        action="store_true",
        help="send without the stream worker's verdict (AgencyProducer(check_rules=False))",
    )
    args = parser.parse_args()
    host = host_facts()  # before the run's own load

    generator = TrafficGenerator(seed=1, daily_rhythm=False, dirty_share=args.dirty_share)
    events = [generator.next_event()[:2] for _ in range(args.events)]
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
