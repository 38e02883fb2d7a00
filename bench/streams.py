"""Benchmark: events/s `govpulse streams` workers route from pre-filled raw topics.

Starts its own embedded broker and registry, fills raw.<type> with realistic traffic (5 %
dirty by default), then starts one worker process (or `--workers N`, one group) and samples
their routed counters: the rate is measured between the first and the last routed record, so
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
from bench.host import host_facts
from govpulse.embedded.process import free_port
from govpulse.monitoring.scrape import sample_total
from govpulse.producers.agency_producer import AgencyProducer
from govpulse.producers.traffic import TrafficGenerator
from govpulse.schemas import catalog
from govpulse.topics import ensure_topics, stage_counts


def routed(bootstrap: str, types: list[str]) -> int:
    return sum(stage_counts(bootstrap, ("clean", "dlq", "dup"), types).values())


def consumed(port: int) -> int:
    """Records the worker has routed, from its own counter (cheap enough to poll 4×/s)."""
    url = f"http://127.0.0.1:{port}/metrics"
    return int(sample_total(url, "govpulse_streams_consumed_total"))


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (robust to other load, unlike a rate)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    parser.add_argument("--workers", type=int, default=1, help="worker processes, one group")
    parser.add_argument(
        "--py-spy", metavar="FILE", help="profile the worker with py-spy (collapsed stacks to FILE)"
    )
    args = parser.parse_args()
    host = host_facts()  # before the run's own load
    types = args.types.split(",")

    with embedded_stack() as (broker, registry), tempfile.TemporaryDirectory() as folder:
        ensure_topics(broker.bootstrap, args.partitions)
        generator = TrafficGenerator(
            seed=3, daily_rhythm=False, dirty_share=args.dirty_share, event_types=types
        )
        producer = AgencyProducer(
            check_rules=False,
            bootstrap_servers=broker.bootstrap,
            registry_url=registry.url,
            config={"linger.ms": args.linger_ms},
        )
        for _ in range(args.events):
            event_type, record, _ = generator.next_event()
            producer.send(event_type, record)
        producer.close()
        metrics_ports = [free_port() for _ in range(args.workers)]
        key = Path(folder) / "key"
        key.write_bytes(os.urandom(48))
        env = dict(
            os.environ,
            GOVPULSE_BOOTSTRAP_SERVERS=broker.bootstrap,
            GOVPULSE_REGISTRY_URL=registry.url,
            GOVPULSE_DATA_DIR=folder,
            GOVPULSE_PSEUDONYM_KEY_FILE=str(key),
            GOVPULSE_TOPIC_PARTITIONS=str(args.partitions),
            GOVPULSE_STREAMS_BATCH_SIZE=str(args.batch_size),
            GOVPULSE_LOG_LEVEL="WARNING",
        )
        started = time.monotonic()
        workers = []
        for number, port in enumerate(metrics_ports):
            command = [sys.executable, "-m", "govpulse", "streams", "--types", args.types]
            if args.py_spy:
                output = args.py_spy if number == 0 else f"{args.py_spy}.{number}"
                spy = ["py-spy", "record", "--idle", "-f", "raw", "-r", "97", "-o", output, "--"]
                command = spy + command
            with open(Path(folder) / f"worker{number}.log", "wb") as log:
                workers.append(
                    subprocess.Popen(
                        command,
                        env={**env, "GOVPULSE_METRICS_PORT": str(port)},
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        try:
            first = last = None
            cpu_first = cpu_last = 0.0
            samples: list[tuple[float, int]] = []
            deadline = started + 600
            while time.monotonic() < deadline:
                done = sum(consumed(port) for port in metrics_ports)
                now = time.monotonic()
                samples.append((now, done))
                if done and first is None:
                    first = (now, done)
                    cpu_first = sum(cpu_seconds(worker.pid) for worker in workers)
                if done >= args.events:
                    last = (now, done)
                    cpu_last = sum(cpu_seconds(worker.pid) for worker in workers)
                    break
                time.sleep(0.25)
            rss = [peak_rss_mb(worker.pid) for worker in workers]
            shares = [consumed(port) for port in metrics_ports]
            outcomes = routed(broker.bootstrap, types)  # clean + dlq + dup, from the topics
            batches = batch_figures(metrics_ports[0])
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
            for worker in workers:
                worker.wait(30)
    if first is None or last is None:
        sys.exit(f"the workers did not route every record; last sample {samples[-1:]}")
    rate = (last[1] - first[1]) / (last[0] - first[0]) if last[0] > first[0] else 0.0
    print(
        json.dumps(
            {
                "benchmark": "streams",
                "host": host,
                "events": args.events,
                "types": types,
                "partitions": args.partitions,
                "batch_size": args.batch_size,
                "workers": args.workers,
                "events_per_s": round(rate),
                "worker_cpu_us_per_event": round(
                    1e6 * (cpu_last - cpu_first) / max(1, last[1] - first[1]), 1
                ),
                "startup_s": round(first[0] - started, 1),
                "routing_s": round(last[0] - first[0], 2),
                "routed_to_topics": outcomes,
                "consumed_by_worker": shares,
                "worker_peak_rss_mb": rss[0] if args.workers == 1 else rss,
                **batches,
            }
        )
    )


if __name__ == "__main__":
    main()
