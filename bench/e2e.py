"""Benchmark: freshness end to end — simulator → streams → sink → ClickHouse, on one machine.

Starts its own embedded broker and registry, one stream worker (`govpulse streams`, a child
process) and one sink in this process on a fresh chdb directory. Then, for each rate of the
sweep, runs the simulator at that rate for --duration seconds and measures, per row,
(inserted_at − produced_at): the time from the agency publishing an event to the row being
visible in ClickHouse. `max` searches for the highest rate the pipeline keeps up with
(bisection between the highest rate kept up with and the lowest one not).

A step "kept up" when the simulator reached 95 % of the rate asked for, every clean record
arrived within 2 s of the simulator stopping, and the last 5-second window's p99 stayed under
2 s (a pipeline falling behind shows growing windows). The simulator runs on the same cores,
as the agencies' load. Prints one JSON object. No timed assertions: a benchmark reports.

    python -m bench.e2e                               # 1k, 5k, 20k events/s and the maximum
    python -m bench.e2e --rates 5000 --duration 30    # one rate
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench._stack import embedded_stack
from bench.host import host_facts, peak_rss_mb

GOVPULSE = [sys.executable, "-m", "govpulse"]
WINDOW_S = 5
TABLES = (
    "service_request",
    "complaint",
    "net_pracharat_usage",
    "digital_center_activity",
    "dataset_update",
)
UNION = " UNION ALL ".join(
    f"SELECT produced_at, processed_at, inserted_at FROM events_{t}" for t in TABLES
)
LATENCY = "dateDiff('millisecond', produced_at, inserted_at)"


def _clean_total(bootstrap: str) -> int:
    from govpulse.offsets import topic_ends
    from govpulse.schemas import catalog

    ends = topic_ends(bootstrap, [catalog.clean_topic(t) for t in catalog.EVENT_TYPES])
    return sum(end - low for low, end in ends.values())


def _events_stored(sink: Any) -> int:
    return sum(n for table, n in sink.stats.rows.items() if table != "dead_letters")


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)
    return True


def _rates(text: str) -> list[str]:
    rates = [r.strip() for r in text.split(",") if r.strip()]
    for rate in rates:
        if rate != "max" and not rate.replace(".", "", 1).isdigit():
            raise argparse.ArgumentTypeError(f"--rates: {rate!r} is neither a number nor 'max'")
    return rates


class Pipeline:
    """The running stack: one stream worker, one sink, and what a step needs to measure."""

    def __init__(self, env: dict[str, str], bootstrap: str, sink: Any, client: Any) -> None:
        self.env, self.bootstrap, self.sink, self.client = env, bootstrap, sink, client

    def simulate(self, rate: float, duration: float, dirty_share: float, seed: int) -> dict:
        run = subprocess.run(
            [*GOVPULSE, "simulate", "--flat", "--json", "--rate", str(rate),
             "--duration", str(duration), "--dirty-share", str(dirty_share),
             "--seed", str(seed)],
            env=self.env, capture_output=True, text=True, timeout=duration + 300,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-2000:]
        return json.loads(run.stdout)

    def drained(self, timeout: float) -> bool:
        """Every clean record so far is in ClickHouse (re-counted while the worker routes)."""
        clean = _clean_total(self.bootstrap)
        arrived = _wait_for(lambda: _events_stored(self.sink) >= clean, timeout)
        while (settled := _clean_total(self.bootstrap)) != clean:
            clean = settled
            time.sleep(0.5)
        return arrived and _wait_for(lambda: _events_stored(self.sink) >= clean, timeout)

    def step(self, rate: float, duration: float, dirty_share: float, seed: int) -> dict:
        clean_before = _clean_total(self.bootstrap)
        started_ms = time.time_ns() // 1_000_000
        simulated = self.simulate(rate, duration, dirty_share, seed)
        ended_ms = time.time_ns() // 1_000_000
        stopped = time.monotonic()
        drained = self.drained(120)
        drain_s = time.monotonic() - stopped
        where = (
            f"produced_at >= fromUnixTimestamp64Milli({started_ms}, 'UTC') AND "
            f"produced_at < fromUnixTimestamp64Milli({ended_ms}, 'UTC')"
        )
        rows, (p50, p90, p99), worst = self.client.query(
            f"SELECT count(), quantiles(0.5, 0.9, 0.99)({LATENCY}), max({LATENCY}) "
            f"FROM ({UNION}) WHERE {where}"
        ).result_rows[0]
        streams_ms, sink_ms = self.client.query(
            "SELECT quantiles(0.5, 0.99)(dateDiff('millisecond', produced_at, processed_at)), "
            "quantiles(0.5, 0.99)(dateDiff('millisecond', processed_at, inserted_at)) "
            f"FROM ({UNION}) WHERE {where}"
        ).result_rows[0]
        windows = self.client.query(
            f"SELECT intDiv(toUnixTimestamp64Milli(produced_at) - {started_ms}, "
            f"{WINDOW_S * 1000}) AS w, quantile(0.99)({LATENCY}), "
            "quantile(0.99)(dateDiff('millisecond', produced_at, processed_at)), "
            "quantile(0.99)(dateDiff('millisecond', processed_at, inserted_at)) "
            f"FROM ({UNION}) WHERE {where} GROUP BY w ORDER BY w"
        ).result_rows
        reached = simulated["rate_per_s"] >= 0.95 * rate
        return {
            "rate": rate,
            "simulator_rate_per_s": simulated["rate_per_s"],
            "sent": simulated["sent"],
            "clean_records": _clean_total(self.bootstrap) - clean_before,
            "rows_measured": rows,
            "latency_ms": {"p50": round(p50), "p90": round(p90), "p99": round(p99), "max": worst},
            "p99_ms_per_5s_window": [round(p) for _, p, _, _ in windows],
            "p99_ms_per_5s_window_by_stage": {
                "produced_to_clean": [round(p) for _, _, p, _ in windows],
                "clean_to_clickhouse": [round(p) for _, _, _, p in windows],
            },
            "produced_to_clean_ms": {"p50": round(streams_ms[0]), "p99": round(streams_ms[1])},
            "clean_to_clickhouse_ms": {"p50": round(sink_ms[0]), "p99": round(sink_ms[1])},
            "last_rows_after_simulator_stopped_s": round(drain_s, 2),
            "all_clean_stored": drained,
            "kept_up": reached and drained and drain_s < 2.0 and bool(windows)
            and windows[-1][1] < 2000,
        }  # fmt: skip


def sweep(pipeline: Pipeline, args: argparse.Namespace) -> tuple[list[dict], float | None]:
    """Every fixed rate, then (for `max`) a bisection; (steps, highest rate kept up with)."""
    steps: list[dict] = []
    seed = 3

    def run(rate: float, duration: float) -> dict:
        nonlocal seed
        seed += 1
        result = pipeline.step(rate, duration, args.dirty_share, seed)
        steps.append(result)
        print(f"{rate:,.0f}/s: kept up {result['kept_up']}, p99 {result['latency_ms']['p99']} ms",
              file=sys.stderr)  # fmt: skip
        return result

    for rate in args.rates:
        if rate != "max":
            run(float(rate), args.duration)
    if "max" not in args.rates:
        return steps, None
    kept = [s["rate"] for s in steps if s["kept_up"]]
    lost = [s["rate"] for s in steps if not s["kept_up"]]
    low, high = max(kept, default=0.0), min(lost, default=0.0)
    while not high:  # every fixed rate was kept up with: double until one is not
        result = run(max(low, 1000.0) * 2, args.duration / 2)
        low, high = (result["rate"], 0.0) if result["kept_up"] else (low, result["rate"])
    for _ in range(args.max_steps):
        if high - low <= max(500.0, 0.1 * high):
            break
        middle = round((low + high) / 2, -2)
        if run(middle, args.duration / 2)["kept_up"]:
            low = middle
        else:
            high = middle
    return steps, low or None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rates",
        type=_rates,
        default=_rates("1000,5000,20000,max"),
        help="comma-separated events/s, 'max' to search for the highest sustained rate",
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per rate")
    parser.add_argument("--max-steps", type=int, default=3, help="bisection steps for 'max'")
    parser.add_argument("--dirty-share", type=float, default=0.05)
    parser.add_argument(
        "--insert-threads", type=int, default=None, help="default GOVPULSE_SINK_INSERT_THREADS"
    )
    parser.add_argument("--max-wait-ms", type=int, default=None, help="sink batch wait")
    args = parser.parse_args()
    host = host_facts()  # before the run's own load

    from govpulse.clickhouse import make_client
    from govpulse.embedded.process import free_port
    from govpulse.settings import get_settings
    from govpulse.sinks.migrations import migrate
    from govpulse.sinks.sink import Sink
    from govpulse.topics import ensure_topics

    settings = get_settings()
    with embedded_stack() as (broker, registry), tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "key").write_bytes(os.urandom(48))
        env = dict(
            os.environ,
            GOVPULSE_DATA_DIR=str(root / "data"),
            GOVPULSE_BOOTSTRAP_SERVERS=broker.bootstrap,
            GOVPULSE_REGISTRY_URL=registry.url,
            GOVPULSE_PSEUDONYM_KEY_FILE=str(root / "key"),
            GOVPULSE_LOG_LEVEL="WARNING",
        )
        ensure_topics(broker.bootstrap, 4)
        dsn = f"chdb://{root / 'clickhouse'}"
        client = make_client(dsn)
        threads = args.insert_threads or settings.sink_insert_threads
        insert_clients = [make_client(dsn) for _ in range(threads - 1)]
        migrate(client)
        max_wait_ms = args.max_wait_ms or settings.sink_max_wait_ms
        sink = Sink(
            client,
            broker.bootstrap,
            registry.url,
            insert_clients=insert_clients,
            max_wait_ms=max_wait_ms,
        )
        stop = threading.Event()
        sink_thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
        sink_thread.start()
        with open(root / "streams.log", "wb") as log:
            worker = subprocess.Popen(
                [*GOVPULSE, "streams"],
                env={**env, "GOVPULSE_METRICS_PORT": str(free_port())},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        pipeline = Pipeline(env, broker.bootstrap, sink, client)
        try:
            # warm-up: the worker joins its group and the sink its own, then both see traffic
            pipeline.simulate(100, 2, 0.0, 1)
            ready = _wait_for(lambda: _events_stored(sink) > 0, 120)
            assert ready, (root / "streams.log").read_text()[-3000:]
            pipeline.drained(30)
            steps, highest = sweep(pipeline, args)
        finally:
            worker.terminate()
            worker.wait(60)
            stop.set()
            sink_thread.join(60)
            for each in (client, *insert_clients):
                each.close()
    print(
        json.dumps(
            {
                "benchmark": "e2e",
                "host": host,
                "duration_s_per_rate": args.duration,
                "sink_max_wait_ms": max_wait_ms,
                "insert_threads": threads,
                "steps": steps,
                "max_sustained_rate_per_s": highest,
                "sink_inserts": sink.stats.inserts,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    main()
