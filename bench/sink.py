"""Benchmark: rows/s one sink inserts into ClickHouse (embedded chdb) from pre-filled topics.

Starts its own embedded broker and registry, fills every clean.<type> topic with realistic
clean records (the simulator's traffic run through the real transform, framed under the
registered clean schemas; a pool of unique records is repeated to reach --events, each repeat
under a new event id — the sink stores an event id once — unless `--repeat-ids`), then runs
one `Sink` in this process on a fresh chdb directory and times it from its first consumed
record until ClickHouse holds every row. Prints one JSON object; `--profile` also prints a
pyinstrument profile of the sink loop to stderr. `--drop-views` / `--table-setting` measure
a change of the data model without a migration (see bench/sink_cycles.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench._stack import add_what_if_options, apply_what_if, embedded_stack
from bench.host import host_facts, peak_rss_mb


def distinct_events(records: dict[str, list[tuple[bytes, bytes]]], events: int) -> dict:
    """`events` records cycling through `records` (type → [(key, value)]), each repeat under a
    new event id (the key, and the envelope's first field: 36 characters, replaced in place)."""
    import uuid

    flat = [(t, k, v) for t, items in records.items() for k, v in items]
    out: dict[str, list[tuple[bytes, bytes]]] = {t: [] for t in records}
    for i in range(events):
        event_type, key, value = flat[i % len(flat)]
        if i >= len(flat):
            start = value.index(key)  # the id as the body holds it, right after its length
            key = str(uuid.uuid4()).encode()
            value = value[:start] + key + value[start + len(key) :]
        out[event_type].append((key, value))
    return out


def _prefill_in_child(
    bootstrap: str, registry_url: str, pool: int, events: int, repeat_ids: bool
) -> dict:
    """Generate and produce in a child process, so peak RSS here is the sink's (and chdb's)."""
    code = (
        "import json, sys\n"
        "from bench.sink import distinct_events\n"
        "from tests.support.samples import clean_records, prefill\n"
        "bootstrap, url, pool, events = sys.argv[1], sys.argv[2], int(sys.argv[3]), "
        "int(sys.argv[4])\n"
        "records = clean_records(min(pool, events))\n"
        "if sys.argv[5] != 'repeat':\n"
        "    records = distinct_events(records, events)\n"
        "print(json.dumps(prefill(bootstrap, url, records, events)))\n"
    )
    mode = "repeat" if repeat_ids else "distinct"
    run = subprocess.run(
        [sys.executable, "-c", code, bootstrap, registry_url, str(pool), str(events), mode],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(run.stdout)


def _histogram_sum(metric: Any) -> float:
    return sum(s.value for m in metric.collect() for s in m.samples if s.name.endswith("_sum"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000, help="clean records to insert")
    parser.add_argument("--pool", type=int, default=60_000, help="unique records generated")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--max-rows", type=int, default=None, help="sink batch rows")
    parser.add_argument(
        "--insert-threads", type=int, default=None, help="default GOVPULSE_SINK_INSERT_THREADS"
    )
    parser.add_argument("--max-wait-ms", type=int, default=None)
    parser.add_argument("--profile", action="store_true", help="pyinstrument profile to stderr")
    parser.add_argument(
        "--repeat-ids",
        action="store_true",
        help="repeat the pool with its event ids: every record past --pool is a duplicate the "
        "sink drops (measures the drop path)",
    )
    add_what_if_options(parser)
    args = parser.parse_args()
    host = host_facts()  # before the run's own load

    from govpulse.clickhouse import make_client
    from govpulse.monitoring import metrics
    from govpulse.settings import get_settings
    from govpulse.sinks.migrations import migrate
    from govpulse.sinks.sink import DEFAULT_MAX_ROWS, DEFAULT_MAX_WAIT_MS, Sink
    from govpulse.topics import ensure_topics

    with embedded_stack() as (broker, registry), tempfile.TemporaryDirectory() as store:
        ensure_topics(broker.bootstrap, args.partitions)
        started = time.perf_counter()
        counts = _prefill_in_child(
            broker.bootstrap, registry.url, args.pool, args.events, args.repeat_ids
        )
        prefill_s = time.perf_counter() - started
        client = make_client(f"chdb://{store}")
        threads = args.insert_threads or get_settings().sink_insert_threads
        insert_clients = [make_client(f"chdb://{store}") for _ in range(threads - 1)]
        migrate(client)
        changed = apply_what_if(client, args)
        sink = Sink(
            client,
            broker.bootstrap,
            registry.url,
            insert_clients=insert_clients,
            max_rows=args.max_rows or DEFAULT_MAX_ROWS,
            max_wait_ms=args.max_wait_ms or DEFAULT_MAX_WAIT_MS,
        )
        profiler = None
        while sink.stats.assigned == 0 or sink.batcher.rows == 0:  # group join (~3 s on Tansu)
            sink.poll_once()
        if args.profile:
            from pyinstrument import Profiler

            profiler = Profiler()
            profiler.start()
        started, cpu = time.perf_counter(), time.process_time()
        while sink.stats.rows_total + sink.stats.duplicates_dropped < args.events:
            sink.poll_once()
            if time.perf_counter() - started > 600:
                break
        seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        if profiler is not None:
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False), file=sys.stderr)
        insert_s = _histogram_sum(metrics.SINK_INSERT_SECONDS)
        stored = {
            t: client.query(f"SELECT count() FROM events_{t}").result_rows[0][0] for t in counts
        }
        inserts = sink.stats.inserts
        sink.close()
        for each in (client, *insert_clients):
            each.close()
    print(
        json.dumps(
            {
                "benchmark": "sink",
                "host": host,
                "rows": sink.stats.rows_total,
                "rows_per_s": round(sink.stats.rows_total / seconds),
                "records_per_s": round(
                    (sink.stats.rows_total + sink.stats.duplicates_dropped) / seconds
                ),
                "duplicates_dropped": sink.stats.duplicates_dropped,
                "seconds": round(seconds, 3),
                "cpu_seconds": round(cpu_s, 3),
                "insert_seconds": round(insert_s, 3),
                "inserts": inserts,
                "rows_per_insert": round(sink.stats.rows_total / max(1, inserts)),
                "max_rows": sink.max_rows,
                "insert_threads": threads,
                "what_if": changed,
                "stored_per_type": stored,
                "all_stored": sum(stored.values()) + sink.stats.duplicates_dropped == args.events,
                "prefill_seconds": round(prefill_s, 1),
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    main()
