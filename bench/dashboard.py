"""Benchmark: latency of every dashboard API endpoint over 10 million stored events.

Loads events straight into ClickHouse (the fast path, no Kafka): a few thousand realistic
clean records per type come from the traffic simulator (`dashboard.synthetic`), then
`INSERT … SELECT … FROM numbers(N)` replicates them with fresh event ids and timestamps spread
over the chosen span, in chunks like the sink's batches, so the materialized views fill the
rollups as they do in production. Then the app is served on a loopback port (response cache
off: every request runs its queries) and each endpoint is requested sequentially over one
keep-alive connection, for each time range. Prints one JSON object; target p95 ≤ 50 ms.

    python -m bench.dashboard                       # 10M events over 7 days, temp chdb dir
    python -m bench.dashboard --events 1000000 --requests 20
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from dashboard.app import build_app
from dashboard.background import BackgroundServer
from dashboard.synthetic import SyntheticTraffic, insert_dead_letters
from govpulse.clickhouse import make_client
from producers.traffic import profile
from schemas.catalog import EVENT_TYPES
from sinks.columns import columns_for, table_for, to_columns
from sinks.migrations import migrate

DATABASE = "bench_dashboard"
SAMPLE_PER_TYPE = 4000
TARGET_P95_MS = 50.0
WINDOWED = (
    "/api/overview",
    "/api/timeseries",
    "/api/ministries",
    "/api/provinces",
    "/api/province/10",
    "/api/service-requests",
    "/api/complaints",
    "/api/net-pracharat",
    "/api/digital-centers",
    "/api/breakdown?by=channel",
    "/api/overview?province=10",
)
UNWINDOWED = ("/api/meta", "/api/freshness")
RANGES = ("15m", "1h", "24h", "7d")


def _shift(column: str, base: str) -> str:
    """Keep a timestamp's distance to the sample's occurred_at, moved to the new occurred_at."""
    return f"addMilliseconds(occurred_at_new, dateDiff('millisecond', s.{base}, s.{column}))"


def load(client: Client, events: int, span_seconds: int, chunk: int) -> dict[str, Any]:
    """Insert `events` events spread over the last `span_seconds`; return what was loaded."""
    traffic = SyntheticTraffic(seed=10)
    now = datetime.now(UTC)
    mix = profile()["type_mix"]
    total_weight = sum(mix[t] for t in EVENT_TYPES)
    counts = {t: events * mix[t] // total_weight for t in EVENT_TYPES}
    counts["service_request"] += events - sum(counts.values())
    # Samples: realistic, internally consistent records (province ↔ names ↔ district …).
    samples: dict[str, list[dict]] = {t: [] for t in EVENT_TYPES}
    while any(len(samples[t]) < SAMPLE_PER_TYPE for t in EVENT_TYPES):
        for event_type, records in traffic.events(5000, now - timedelta(minutes=1), now).items():
            samples[event_type].extend(records[: SAMPLE_PER_TYPE - len(samples[event_type])])
    started = time.perf_counter()
    for event_type in EVENT_TYPES:
        table, columns = table_for(event_type), columns_for(event_type)
        sample = f"{DATABASE}.sample_{event_type}"
        client.command(f"DROP TABLE IF EXISTS {sample}")
        client.command(
            f"CREATE TABLE {sample} ENGINE = Memory AS "
            f"SELECT * EXCEPT (inserted_at) FROM {DATABASE}.{table} LIMIT 0"
        )
        client.insert(
            sample,
            to_columns(event_type, samples[event_type]),
            column_names=columns,
            column_oriented=True,
        )
        overrides = {
            "event_id": "generateUUIDv4(g.number)",
            "occurred_at": "occurred_at_new",
            "produced_at": _shift("produced_at", "occurred_at"),
            "processed_at": _shift("processed_at", "occurred_at"),
            "interval_start": _shift("interval_start", "occurred_at"),
            "source_offset": "toInt64(g.number)",
        }
        select = ", ".join(overrides.get(c, f"s.{c}") for c in columns)
        done = 0
        while done < counts[event_type]:
            rows = min(chunk, counts[event_type] - done)
            client.command(
                f"""
                INSERT INTO {DATABASE}.{table} ({", ".join(columns)})
                SELECT {select}
                FROM (
                    SELECT number,
                           now64(3) - toIntervalMillisecond(
                               cityHash64(number, {{salt:UInt64}}) % {{span_ms:UInt64}}
                           ) AS occurred_at_new
                    FROM numbers({{offset:UInt64}}, {{rows:UInt64}})
                ) AS g
                INNER JOIN (
                    SELECT rowNumberInAllBlocks() AS idx, * FROM {sample}
                ) AS s ON s.idx = g.number % {{size:UInt64}}
                """,
                parameters={
                    "salt": EVENT_TYPES.index(event_type),
                    "span_ms": span_seconds * 1000,
                    "offset": done,
                    "rows": rows,
                    "size": len(samples[event_type]),
                },
            )
            done += rows
        client.command(f"DROP TABLE {sample}")
    dead = max(1, events // 200)
    insert_dead_letters(
        client, DATABASE, traffic.dead_letters(dead, now - timedelta(seconds=span_seconds), now)
    )
    seconds = time.perf_counter() - started
    tables = ("activity_minute", "service_request_minute", "complaint_minute")
    rows = {
        table: int(client.command(f"SELECT count() FROM {DATABASE}.{table}"))
        for table in (*(table_for(t) for t in EVENT_TYPES), *tables)
    }
    parts = int(
        client.command(
            "SELECT count() FROM system.parts WHERE database = {db:String} "
            "AND table = 'activity_minute' AND active",
            parameters={"db": DATABASE},
        )
    )
    return {
        "events_by_type": counts,
        "load_seconds": round(seconds, 1),
        "events_per_s": round(events / seconds),
        "rows": rows,
        "activity_minute_parts": parts,
    }


def hourly_rollup_experiment(client: Client) -> dict[str, Any]:
    """What an hourly rollup beside activity_minute would do for the day and week views.

    Builds `activity_hour` from `activity_minute` once, already aggregated (bench database
    only; the real one would be an AggregatingMergeTree migration with its own views) and
    times the week's two heaviest queries on both. Per-minute rollup rows are bounded by
    minutes × dimension combinations, so at a low event rate they hardly compress events,
    and at a high one a week holds up to 10,080 × ~8,500 rows; an hourly table at most 1/60.
    """
    client.command(f"DROP TABLE IF EXISTS {DATABASE}.activity_hour")
    client.command(
        f"""
        CREATE TABLE {DATABASE}.activity_hour
        ENGINE = MergeTree
        ORDER BY (hour, event_type, province_code, agency_code, channel, ministry_code,
            region_code)
        AS SELECT toStartOfHour(minute) AS hour, event_type, province_code, agency_code,
               channel, ministry_code, region_code,
               sum(events) AS events, uniqMergeState(citizens) AS citizens,
               sum(amount_thb) AS amount_thb
        FROM {DATABASE}.activity_minute
        GROUP BY hour, event_type, province_code, agency_code, channel, ministry_code,
            region_code
        """
    )
    since = "now() - INTERVAL 7 DAY"
    queries = {
        "overview": "SELECT sum(events), uniqMerge(citizens), sum(amount_thb) FROM {t} "
        "WHERE {c} >= " + since,
        "ministries": "SELECT agency_code, ministry_code, event_type, sum(events) FROM {t} "
        "WHERE {c} >= " + since + " GROUP BY agency_code, ministry_code, event_type",
    }
    result: dict[str, Any] = {
        "rows": {
            t: int(client.command(f"SELECT count() FROM {DATABASE}.{t}"))
            for t in ("activity_minute", "activity_hour")
        }
    }
    for name, sql in queries.items():
        for table, column in (("activity_minute", "minute"), ("activity_hour", "hour")):
            timings = []
            for _ in range(5):
                started = time.perf_counter()
                client.query(sql.format(t=f"{DATABASE}.{table}", c=column))
                timings.append((time.perf_counter() - started) * 1000)
            result[f"{name}_7d_{table}_ms"] = round(min(timings), 1)
    client.command(f"DROP TABLE {DATABASE}.activity_hour")
    return result


def time_endpoint(connection: http.client.HTTPConnection, path: str, requests: int) -> dict:
    """p50/p95/max in ms of `requests` sequential GETs (after 3 warm-up requests)."""
    timings = []
    for i in range(requests + 3):
        started = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status}: {body[:200]!r}")
        if i >= 3:
            timings.append(elapsed)
    timings.sort()
    return {
        "p50_ms": round(statistics.median(timings), 1),
        "p95_ms": round(timings[max(0, int(len(timings) * 0.95) - 1)], 1),
        "max_ms": round(timings[-1], 1),
        "bytes": len(body),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=float, default=7.0, help="span the events cover")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per case")
    parser.add_argument("--chunk", type=int, default=1_000_000, help="rows per INSERT … SELECT")
    parser.add_argument("--dsn", help="ClickHouse DSN (default: a temporary chdb directory)")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the data already loaded under --dsn"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="govpulse-bench-dashboard-") as folder:
        client = make_client(args.dsn or f"chdb://{folder}/clickhouse")
        if args.reuse and args.dsn:
            loaded = {"reused": True}
        else:
            client.command(f"DROP DATABASE IF EXISTS {DATABASE}")
            migrate(client, database=DATABASE)
            loaded = load(client, args.events, int(args.days * 86400), args.chunk)
        results = []
        app = build_app(client, DATABASE, cache_seconds=0)
        with BackgroundServer(app) as server:
            connection = http.client.HTTPConnection(server.host, server.port, timeout=60)
            cases = [(path, None) for path in UNWINDOWED] + [
                (path, r) for r in RANGES for path in WINDOWED
            ]
            for path, time_range in cases:
                url = path if time_range is None else _with_range(path, time_range)
                results.append(
                    {"endpoint": path, "range": time_range}
                    | time_endpoint(connection, url, args.requests)
                )
            connection.close()
        experiment = hourly_rollup_experiment(client)
        client.close()
    over = [r for r in results if r["p95_ms"] > TARGET_P95_MS]
    refresh = {r: round(sum(x["p50_ms"] for x in results if x["range"] == r), 1) for r in RANGES}
    print(
        json.dumps(
            {
                "benchmark": "dashboard",
                "events": args.events,
                "span_days": args.days,
                "requests_per_case": args.requests,
                **loaded,
                "target_p95_ms": TARGET_P95_MS,
                "cases_over_target": [f"{r['endpoint']} {r['range']}" for r in over],
                "sum_p50_ms_by_range": refresh,
                "results": results,
                "hourly_rollup_experiment": experiment,
            },
            indent=1,
        )
    )


def _with_range(path: str, time_range: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}range={time_range}"


if __name__ == "__main__":
    main()
