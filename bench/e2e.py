"""Benchmark: freshness end to end — simulator → streams → sink → ClickHouse, on one machine.

Starts its own embedded broker and registry, one stream worker (`govpulse streams`, a child
process) and one sink in this process on a fresh chdb directory; then runs the simulator at
--rate events/s for --duration seconds and measures, per row, (inserted_at − produced_at): the
time from the agency publishing an event to the row being visible in ClickHouse. Prints one
JSON object: p50/p90/p99/max overall and per 5-second window (a pipeline that does not keep up
shows growing windows), how long the last rows took to arrive after the simulator stopped, and
whether every clean record arrived. No timed assertions: a benchmark reports, tests assert.
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

from bench._stack import embedded_stack, peak_rss_mb

GOVPULSE = [sys.executable, "-m", "govpulse"]
WINDOW_S = 5


def _clean_total(bootstrap: str) -> int:
    from schemas import catalog
    from sinks.audit import topic_ends

    ends = topic_ends(bootstrap, [catalog.clean_topic(t) for t in catalog.EVENT_TYPES])
    return sum(end - low for low, end in ends.values())


def _events_stored(sink) -> int:
    return sum(n for table, n in sink.stats.rows.items() if table != "dead_letters")


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=5000.0, help="simulated events/s")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of traffic")
    parser.add_argument("--dirty-share", type=float, default=0.05)
    parser.add_argument("--max-wait-ms", type=int, default=None, help="sink batch wait")
    args = parser.parse_args()

    from embedded.process import free_port
    from govpulse.clickhouse import make_client
    from govpulse.topics import ensure_topics
    from sinks.migrations import migrate
    from sinks.sink import DEFAULT_MAX_WAIT_MS, Sink

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
        client = make_client(f"chdb://{root / 'clickhouse'}")
        migrate(client)
        sink = Sink(
            client,
            broker.bootstrap,
            registry.url,
            max_wait_ms=args.max_wait_ms or DEFAULT_MAX_WAIT_MS,
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
        try:
            # warm-up: the worker joins its group and the sink its own, then both see traffic
            warm = subprocess.run(
                [*GOVPULSE, "simulate", "--flat", "--rate", "100", "--duration", "2"],
                env=env, capture_output=True, timeout=120,
            )  # fmt: skip
            assert warm.returncode == 0, warm.stderr.decode()[-2000:]
            ready = _wait_for(lambda: _events_stored(sink) > 0, 120)
            assert ready, (root / "streams.log").read_text()[-3000:]
            _wait_for(lambda: _events_stored(sink) >= _clean_total(broker.bootstrap), 30)
            clean_before = _clean_total(broker.bootstrap)
            started_ms = time.time_ns() // 1_000_000
            run = subprocess.run(
                [*GOVPULSE, "simulate", "--flat", "--json", "--rate", str(args.rate),
                 "--duration", str(args.duration), "--dirty-share", str(args.dirty_share),
                 "--seed", "3"],
                env=env, capture_output=True, text=True, timeout=args.duration + 300,
            )  # fmt: skip
            assert run.returncode == 0, run.stderr[-2000:]
            simulated = json.loads(run.stdout)
            sent, achieved_rate = simulated["sent"], simulated["rate_per_s"]
            stopped = time.monotonic()
            clean = _clean_total(broker.bootstrap)
            drained = _wait_for(lambda: _events_stored(sink) >= clean, 120)
            drain_s = time.monotonic() - stopped
            # the worker may still be routing: count again once it settled
            while (settled := _clean_total(broker.bootstrap)) != clean:
                clean = settled
                time.sleep(1)
            drained = drained and _wait_for(lambda: _events_stored(sink) >= clean, 60)
        finally:
            worker.terminate()
            worker.wait(60)
            stop.set()
            sink_thread.join(60)
        union = " UNION ALL ".join(
            f"SELECT produced_at, processed_at, inserted_at FROM events_{t}"
            for t in ("service_request", "complaint", "net_pracharat_usage",
                      "digital_center_activity", "dataset_update")
        )  # fmt: skip
        latency = "dateDiff('millisecond', produced_at, inserted_at)"
        where = f"produced_at >= fromUnixTimestamp64Milli({started_ms}, 'UTC')"
        overall = client.query(
            f"SELECT count(), quantiles(0.5, 0.9, 0.99)({latency}), max({latency}) "
            f"FROM ({union}) WHERE {where}"
        ).result_rows[0]
        streams_ms, sink_ms = client.query(
            "SELECT quantiles(0.5, 0.99)(dateDiff('millisecond', produced_at, processed_at)), "
            "quantiles(0.5, 0.99)(dateDiff('millisecond', processed_at, inserted_at)) "
            f"FROM ({union}) WHERE {where}"
        ).result_rows[0]
        windows = client.query(
            f"SELECT intDiv(toUnixTimestamp64Milli(produced_at) - {started_ms}, "
            f"{WINDOW_S * 1000}) AS w, count(), quantile(0.99)({latency}) "
            f"FROM ({union}) WHERE {where} GROUP BY w ORDER BY w"
        ).result_rows
        client.close()
    rows, (p50, p90, p99), worst = overall
    print(
        json.dumps(
            {
                "benchmark": "e2e",
                "rate": args.rate,
                "duration_s": args.duration,
                "sent": sent,
                "simulator_rate_per_s": achieved_rate,
                "rows_measured": rows,
                "clean_records": clean - clean_before,
                "all_clean_stored": drained,
                "latency_ms": {"p50": p50, "p90": p90, "p99": p99, "max": worst},
                "p99_ms_per_5s_window": [round(p) for _, _, p in windows],
                "produced_to_clean_ms": {"p50": streams_ms[0], "p99": streams_ms[1]},
                "clean_to_clickhouse_ms": {"p50": sink_ms[0], "p99": sink_ms[1]},
                "last_rows_after_simulator_stopped_s": round(drain_s, 2),
                # bounded latency at the end of the run, and nothing left behind
                "kept_up": drained and drain_s < 2.0 and bool(windows) and windows[-1][2] < 2000,
                "sink_inserts": sink.stats.inserts,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )


if __name__ == "__main__":
    main()
