"""Benchmark: events/s one `govpulse streams` worker routes from pre-filled raw topics.

Starts its own embedded broker and registry, fills raw.<type> with realistic traffic (5 %
dirty by default), then starts one worker process and samples the outcome topics' end
offsets: the rate is measured between the first and the last routed record, so the worker's
start-up (joining the group, recovering tables) is not counted. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._stack import embedded_stack
from embedded.process import free_port
from govpulse.offsets import end_offsets
from govpulse.topics import ensure_topics
from monitoring.scrape import sample_total
from producers.agency_producer import AgencyProducer
from producers.traffic import TrafficGenerator
from schemas import catalog


def routed(bootstrap: str, types: list[str]) -> int:
    return sum(
        end - low
        for t in types
        for stage in ("clean", "dlq", "dup")
        for low, end in end_offsets(bootstrap, f"{stage}.{t}").values()
    )


def consumed(port: int) -> int:
    """Records the worker has routed, from its own counter (cheap enough to poll 4×/s)."""
    url = f"http://127.0.0.1:{port}/metrics"
    return int(sample_total(url, "govpulse_streams_consumed_total"))


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def batch_figures(port: int) -> dict[str, float]:
    """Mean batch size and processing time, from the worker's own histograms."""
    url = f"http://127.0.0.1:{port}/metrics"
    count = sample_total(url, "govpulse_streams_batch_size_count", timeout=5)
    batches = count or 1.0
    return {
        "batches": int(count),
        "mean_batch_size": round(sample_total(url, "govpulse_streams_batch_size_sum") / batches, 1),
        "mean_batch_ms": round(
            1000 * sample_total(url, "govpulse_streams_batch_seconds_sum") / batches, 2
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="records to pre-fill")
    parser.add_argument("--types", default=",".join(catalog.EVENT_TYPES))
    parser.add_argument("--dirty-share", type=float, default=0.05)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument(
        "--linger-ms", type=int, default=5, help="pre-fill producer linger: record-batch size"
    )
    parser.add_argument(
        "--py-spy", metavar="FILE", help="profile the worker with py-spy (collapsed stacks to FILE)"
    )
    args = parser.parse_args()
    types = args.types.split(",")

    with embedded_stack() as (broker, registry), tempfile.TemporaryDirectory() as folder:
        ensure_topics(broker.bootstrap, args.partitions)
        generator = TrafficGenerator(
            seed=3, daily_rhythm=False, dirty_share=args.dirty_share, event_types=types
        )
        producer = AgencyProducer(
            bootstrap_servers=broker.bootstrap,
            registry_url=registry.url,
            config={"linger.ms": args.linger_ms},
        )
        for _ in range(args.events):
            event_type, record, _ = generator.next_event()
            producer.send(event_type, record)
        producer.close()
        metrics_port = free_port()
        key = Path(folder) / "key"
        key.write_bytes(os.urandom(48))
        env = dict(
            os.environ,
            GOVPULSE_BOOTSTRAP_SERVERS=broker.bootstrap,
            GOVPULSE_REGISTRY_URL=registry.url,
            GOVPULSE_DATA_DIR=folder,
            GOVPULSE_PSEUDONYM_KEY_FILE=str(key),
            GOVPULSE_METRICS_PORT=str(metrics_port),
            GOVPULSE_TOPIC_PARTITIONS=str(args.partitions),
            GOVPULSE_STREAMS_BATCH_SIZE=str(args.batch_size),
            GOVPULSE_LOG_LEVEL="WARNING",
        )
        started = time.monotonic()
        with open(Path(folder) / "worker.log", "wb") as log:
            command = [sys.executable, "-m", "govpulse", "streams", "--types", args.types]
            if args.py_spy:
                command = [
                    "py-spy",
                    "record",
                    "--idle",
                    "-f",
                    "raw",
                    "-r",
                    "97",
                    "-o",
                    args.py_spy,
                    "--",
                ]
                command += [sys.executable, "-m", "govpulse", "streams", "--types", args.types]
            worker = subprocess.Popen(
                command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            first = last = None
            samples: list[tuple[float, int]] = []
            deadline = started + 600
            while time.monotonic() < deadline:
                done = consumed(metrics_port)
                now = time.monotonic()
                samples.append((now, done))
                if done and first is None:
                    first = (now, done)
                if done >= args.events:
                    last = (now, done)
                    break
                time.sleep(0.25)
            rss = peak_rss_mb(worker.pid)
            outcomes = routed(broker.bootstrap, types)  # clean + dlq + dup, from the topics
            batches = batch_figures(metrics_port)
        finally:
            worker.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
            worker.wait(30)
    if first is None or last is None:
        sys.exit(f"the worker did not route every record; last sample {samples[-1:]}")
    rate = (last[1] - first[1]) / (last[0] - first[0]) if last[0] > first[0] else 0.0
    print(
        json.dumps(
            {
                "benchmark": "streams",
                "events": args.events,
                "types": types,
                "partitions": args.partitions,
                "batch_size": args.batch_size,
                "events_per_s": round(rate),
                "startup_s": round(first[0] - started, 1),
                "routing_s": round(last[0] - first[0], 2),
                "routed_to_topics": outcomes,
                "worker_peak_rss_mb": rss,
                **batches,
            }
        )
    )


if __name__ == "__main__":
    main()
