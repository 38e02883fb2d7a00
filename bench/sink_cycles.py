"""Benchmark: what the sink's live insert cycles cost ClickHouse, without Kafka or other load.

`bench/e2e.py` measures freshness through the whole pipeline, but on 2 shared cores its
figures move with everything else running (the simulator alone varied 2.7-4.3k events/s
between paired runs). This isolates the sink's ClickHouse side at a live rate: realistic clean
records (`tests.support.samples`), inserted the way the sink inserts them (`SinkStore.insert_clean`,
one Avro insert per type per cycle on `--connections` connections, ranges written to
`sink_batches` first), paced like the sink's cycles: a cycle starts `--max-wait-ms` after the
previous one started or when it finished, whichever is later, and holds the rows that arrived
meanwhile at `--rate`. Background merges run as they would and are counted.

Prints one JSON object: CPU per cycle and per second (this process, merges included), cycle
wall time p50/p99, the sink-stage latency that pacing gives (arrival → insert acknowledged,
arrivals uniform), active parts, and (`--dashboard`) the dashboard's reads on the store the run
leaves. `--drop-views` and `--table-setting` try a change of the data model without a
migration, e.g.

    python -m bench.sink_cycles                                       # the schema as migrated
    python -m bench.sink_cycles --drop-views '_hour|_day|district'    # without long-range views
    python -m bench.sink_cycles --table-setting 'merge_selector_base = 20' --dashboard
    python -m bench.sink_cycles --deferred-tier 2     # long-range rollups filled every 2 s
"""

from __future__ import annotations

import argparse
import contextlib
import json
import queue
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench._stack import add_what_if_options, apply_what_if
from bench.host import host_facts, peak_rss_mb


class _LocalSchemas:
    """Local schema ids → clean schema text, in place of the registry (`SinkStore` asks it)."""

    def __init__(self, event_types: list[str]) -> None:
        from govpulse.schemas import catalog

        self.ids = {t: i + 1 for i, t in enumerate(event_types)}
        self.texts = {i: json.dumps(catalog.clean_schema(t)) for t, i in self.ids.items()}

    def text(self, sid: int) -> str:
        return self.texts[sid]

    def frame(self, event_type: str, value: bytes) -> bytes:
        """A `tests.support.samples` value (framed with id 0) under this type's local id."""
        from govpulse.schemas.wire_format import HEADER_SIZE, header

        return header(self.ids[event_type]) + value[HEADER_SIZE:]


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


LONG_RANGE_VIEWS = re.compile(r"_hour|_day|district")


def _defer_long_range(client: Any, event_types: list[str]) -> list[str]:
    """What-if: the long-range views read a per-type Null feed the tier job fills, and the
    live insert only queues its rows (events_<type> → MV → rollup_queue_<type>)."""
    for t in event_types:
        client.command(
            f"CREATE TABLE rollup_queue_{t} ENGINE = MergeTree ORDER BY tuple() SETTINGS "
            "max_bytes_to_merge_at_max_space_in_pool = 1, "
            f"non_replicated_deduplication_window = 10000 EMPTY AS SELECT * FROM events_{t}"
        )
        client.command(f"CREATE TABLE rollup_feed_{t} AS rollup_queue_{t} ENGINE = Null")
        client.command(
            f"CREATE MATERIALIZED VIEW mv_rollup_queue_{t} TO rollup_queue_{t} "
            f"AS SELECT * FROM events_{t}"
        )
    moved = []
    views = client.query(
        "SELECT name, create_table_query FROM system.tables "
        "WHERE database = currentDatabase() AND engine = 'MaterializedView'"
    ).result_rows
    for name, create in views:
        if LONG_RANGE_VIEWS.search(name) and not name.startswith("mv_rollup_queue_"):
            client.command(f"DROP VIEW {name}")
            client.command(re.sub(r"FROM (\S+\.)?events_(\w+)", r"FROM \1rollup_feed_\2", create))
            moved.append(f"{name} reads rollup_feed_*")
    return moved


def _run_tier(client: Any, event_type: str, job: int) -> int:
    """Move the queued parts of one type through the feed under one token; rows moved."""
    parts = client.query(
        "SELECT groupArray(name), sum(rows) FROM system.parts "
        f"WHERE database = currentDatabase() AND table = 'rollup_queue_{event_type}' AND active"
    ).result_rows[0]
    names, rows = parts
    if not names:
        return 0
    client.command(
        f"INSERT INTO rollup_feed_{event_type} SELECT * FROM rollup_queue_{event_type} "
        "WHERE _part IN {parts:Array(String)}",
        parameters={"parts": sorted(names)},
        settings={
            "insert_deduplication_token": f"tier|{event_type}|{job}",
            "min_insert_block_size_rows": 10_000_000,
            "min_insert_block_size_bytes": 0,
        },
    )
    for name in names:
        client.command(f"ALTER TABLE rollup_queue_{event_type} DROP PART '{name}'")
    return int(rows)


def _dashboard_reads(client: Any, repeats: int = 7) -> dict[str, dict[str, float]]:
    """Median ms of the main dashboard reads per time range, on the store as the run left it."""
    from govpulse.dashboard.params import RANGES, Query, Window
    from govpulse.dashboard.queries import DashboardQueries

    queries = DashboardQueries(client)
    endpoints = ("overview", "timeseries", "provinces", "service_requests", "net_pracharat")
    result = {}
    for name in ("15m", "1h", "24h", "7d"):
        query, window = Query(RANGES[name]), Window.of(RANGES[name])
        times: dict[str, list[float]] = {e: [] for e in endpoints}
        for _ in range(repeats):
            for endpoint in endpoints:
                started = time.perf_counter()
                getattr(queries, endpoint)(query, window)
                times[endpoint].append((time.perf_counter() - started) * 1000)
        result[name] = {e: round(_quantile(t, 0.5), 1) for e, t in times.items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=5000, help="clean records/s arriving")
    parser.add_argument("--duration", type=float, default=30, help="seconds of cycles")
    parser.add_argument("--max-wait-ms", type=int, default=None, help="default: the sink's")
    parser.add_argument("--connections", type=int, default=None, help="default: the sink's")
    add_what_if_options(parser)
    parser.add_argument(
        "--deferred-tier",
        type=float,
        metavar="SECONDS",
        help="what-if: fill the long-range rollups every SECONDS from a queue (see RESULTS.md)",
    )
    parser.add_argument("--dashboard", action="store_true", help="time dashboard reads after")
    args = parser.parse_args()
    host = host_facts()  # before the run's own load
    if args.rate <= 0 or args.duration <= 0:
        parser.error("--rate and --duration must be positive")

    from govpulse.clickhouse import make_client
    from govpulse.schemas import catalog
    from govpulse.settings import get_settings
    from govpulse.sinks.batching import Batch
    from govpulse.sinks.migrations import migrate
    from govpulse.sinks.sink import DEFAULT_MAX_WAIT_MS, GROUP_ID
    from govpulse.sinks.store import SinkStore
    from tests.support.samples import clean_records

    settings = get_settings()
    max_wait = (args.max_wait_ms or DEFAULT_MAX_WAIT_MS) / 1000
    connections = args.connections or settings.sink_insert_threads
    records = clean_records(int(args.rate * (args.duration + 5)) + 1000)
    total = sum(len(v) for v in records.values())
    share = {t: len(v) / total for t, v in records.items()}
    schemas = _LocalSchemas(list(records))
    framed = {t: [schemas.frame(t, v) for _, v in items] for t, items in records.items()}

    with tempfile.TemporaryDirectory(prefix="govpulse-bench-") as store_dir:
        clients = [make_client(f"chdb://{store_dir}") for _ in range(connections)]
        migrate(clients[0])
        changed = apply_what_if(clients[0], args)
        if args.deferred_tier:
            changed += _defer_long_range(clients[0], list(records))
        stores: queue.SimpleQueue[SinkStore] = queue.SimpleQueue()
        for client in clients:
            stores.put(SinkStore(client, schemas, GROUP_ID))  # type: ignore[arg-type]
        pool = ThreadPoolExecutor(connections)
        position = dict.fromkeys(records, 0)
        owed = dict.fromkeys(records, 0.0)

        @contextlib.contextmanager
        def borrowed() -> Iterator[SinkStore]:
            """A free connection, as the sink's writer takes one per insert."""
            store = stores.get()
            try:
                yield store
            finally:
                stores.put(store)

        def insert(event_type: str, values: list[bytes], token: str) -> None:
            with borrowed() as store:
                store.insert_clean(event_type, values, token)

        walls, latencies, rows_per_cycle, tier_walls = [], [], [], []
        cycles = 0
        stop_tier = threading.Event()
        tier_thread = None
        if args.deferred_tier:
            tier_client = make_client(f"chdb://{store_dir}")

            def tier_loop() -> None:
                """The tier beside the cycles, on its own connection, every --deferred-tier s."""
                job = 0
                while not stop_tier.wait(args.deferred_tier):
                    job += 1
                    started_at = time.monotonic()
                    for event_type in framed:
                        _run_tier(tier_client, event_type, job)
                    tier_walls.append(time.monotonic() - started_at)

            tier_thread = threading.Thread(target=tier_loop, daemon=True)
            tier_thread.start()
        cpu_started, started = time.process_time(), time.monotonic()
        previous = started
        while time.monotonic() - started < args.duration:
            due = previous + max_wait
            if (now := time.monotonic()) < due:
                time.sleep(due - now)
            cycle_start = time.monotonic()
            span, previous = cycle_start - previous, cycle_start
            cycles += 1
            batches, futures = [], []
            for event_type, items in framed.items():
                owed[event_type] += args.rate * span * share[event_type]
                n = int(owed[event_type])
                if not n:
                    continue
                owed[event_type] -= n
                first = position[event_type]
                values = items[first : first + n]
                position[event_type] += n
                batch = Batch(catalog.clean_topic(event_type), 0, first, first + n - 1, 0.0)
                token = f"events_{event_type}|{batch.describe()}"
                batches.append((token, batch))
                futures.append((event_type, values, token))
            with borrowed() as store:
                store.write_intents(batches)
            for future in [pool.submit(insert, *each) for each in futures]:
                future.result()
            finished = time.monotonic()
            walls.append(finished - cycle_start)
            rows_per_cycle.append(sum(len(v) for _, v, _ in futures))
            # arrivals spread evenly over [cycle_start - span, cycle_start]: ten samples a cycle
            latencies += [finished - cycle_start + span * (i + 0.5) / 10 for i in range(10)]
        run_s = time.monotonic() - started
        cpu_run = time.process_time() - cpu_started
        stop_tier.set()
        if tier_thread is not None:
            tier_thread.join()
            for event_type in framed:  # what the last job did not take
                _run_tier(tier_client, event_type, 0)
            checks = {
                t: clients[0]
                .query(
                    f"SELECT (SELECT count() FROM events_{t}), "
                    f"(SELECT sum(events) FROM activity_hour WHERE event_type = '{t}'), "
                    f"(SELECT sum(events) FROM activity_minute WHERE event_type = '{t}')"
                )
                .result_rows[0]
                for t in framed
            }
            tier_client.close()
        time.sleep(5)  # merges the run started
        cpu_with_tail = time.process_time() - cpu_started
        parts = (
            clients[0]
            .query("SELECT count() FROM system.parts WHERE active AND database = currentDatabase()")
            .result_rows[0][0]
        )
        reads = _dashboard_reads(clients[0]) if args.dashboard else None
        pool.shutdown()
        for client in clients:
            client.close()
    out: dict[str, Any] = {
        "benchmark": "sink_cycles",
        "host": host,
        "rate": args.rate,
        "max_wait_ms": round(max_wait * 1000),
        "connections": connections,
        "what_if": changed,
        "cycles": cycles,
        "cycles_per_s": round(cycles / run_s, 2),
        "rows_per_cycle": round(sum(rows_per_cycle) / max(1, cycles)),
        "cpu_ms_per_cycle": round(cpu_with_tail / max(1, cycles) * 1000),
        "cpu_cores_during_run": round(cpu_run / run_s, 2),
        "cycle_wall_ms": {
            "p50": round(_quantile(walls, 0.5) * 1000),
            "p99": round(_quantile(walls, 0.99) * 1000),
        },
        "sink_stage_latency_ms": {
            "p50": round(_quantile(latencies, 0.5) * 1000),
            "p99": round(_quantile(latencies, 0.99) * 1000),
        },
        "active_parts": parts,
        "peak_rss_mb": peak_rss_mb(),
    }
    if args.deferred_tier:
        out["tier_jobs"] = len(tier_walls)
        out["events_hour_minute_rows"] = checks
        out["tier_wall_ms"] = {
            "p50": round(_quantile(tier_walls, 0.5) * 1000),
            "max": round(max(tier_walls, default=0) * 1000),
        }
    if reads is not None:
        out["dashboard_read_ms_median"] = reads
    print(json.dumps(out))


if __name__ == "__main__":
    main()
