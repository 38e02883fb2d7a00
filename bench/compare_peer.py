"""Benchmark: a govpulse streams worker against a Quix Streams app on the same work.

One embedded broker and registry, raw.<type> pre-filled once (realistic traffic, 5 % dirty).
Then runs alternate — govpulse, Quix, govpulse, Quix … — each with a fresh consumer group
and fresh de-duplication state over the same raw records, producing to the same outcome
topics. Both run the same rule functions (`govpulse.streams.transform.Transformer`); the peer is
`bench/peer_quix.py` in its own virtual environment under .govpulse/bench/ (created here on
first use: Quix Streams pins another confluent-kafka than ours).

Both are measured alike, from outside: the outcome topics' (clean + dlq + dup) end offsets are
sampled with one ListOffsets request every 0.1 s; the rate runs from the first sample that
shows output to the last change, so neither side's start-up (group join, topic creation,
state recovery) counts. Each run must route exactly the pre-filled count (checked with exact
end offsets). Peak RSS is the process's VmHWM. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from bench._stack import QUIXSTREAMS, REPO, embedded_stack, peer_python
from bench.host import host_facts
from bench.streams import peak_rss_mb
from govpulse.embedded.process import free_port
from govpulse.producers.agency_producer import AgencyProducer
from govpulse.producers.traffic import TrafficGenerator
from govpulse.schemas import catalog
from govpulse.streams.keys import key_id_of
from govpulse.topics import ensure_topics, stage_counts


class OutcomeSampler:
    """Sum of the outcome topics' high watermarks, in one ListOffsets request."""

    def __init__(self, bootstrap: str, types: list[str], partitions: int) -> None:
        self.admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
        self.request = {
            TopicPartition(catalog.topic(stage, t), p): OffsetSpec.latest()
            for t in types
            for stage in catalog.OUTCOMES
            for p in range(partitions)
        }

    def __call__(self) -> int:
        futures = self.admin.list_offsets(self.request, request_timeout=10)
        return sum(future.result().offset for future in futures.values())


def fill(bootstrap: str, registry: str, events: int, types: list[str], dirty: float) -> None:
    generator = TrafficGenerator(seed=3, daily_rhythm=False, dirty_share=dirty, event_types=types)
    producer = AgencyProducer(
        bootstrap_servers=bootstrap,
        registry_url=registry,
        config={"linger.ms": 5},
        check_rules=False,
    )
    for _ in range(events):
        event_type, record, _ = generator.next_event()
        producer.send(event_type, record)
    producer.close()


def outcomes(bootstrap: str, types: list[str]) -> dict[str, int]:
    """Exact records in clean.*, dlq.* and dup.* (summed over types)."""
    return stage_counts(bootstrap, ("clean", "dlq", "dup"), types)


def measure(
    command: list[str],
    env: dict[str, str],
    log: Path,
    sample: OutcomeSampler,
    exact: Any,
    events: int,
    stop: signal.Signals,
) -> dict[str, Any]:
    """Start a worker, time its routing of `events` records, stop it; figures of the run."""
    base_exact, base = exact(), sample()
    total = lambda: sum(exact().values()) - sum(base_exact.values())  # noqa: E731
    load = os.getloadavg()[0]
    started = time.monotonic()
    with open(log, "wb") as out:
        worker = subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        first: tuple[float, int] | None = None
        last_change, last_value, done = started, 0, None
        while time.monotonic() - started < 600 and worker.poll() is None:
            value, now = sample() - base, time.monotonic()
            if value and first is None:
                first = (now, value)
            if value != last_value:
                last_change, last_value = now, value
            elif first is not None and now - last_change > 1.5:
                done = total()
                if done >= events:
                    break
            time.sleep(0.1)
        rss = peak_rss_mb(worker.pid) if worker.poll() is None else 0.0
    finally:
        worker.send_signal(stop)
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    if first is None or done is None or done < events:
        tail = log.read_text(errors="replace")[-2000:]
        sys.exit(f"{command[:3]}: routed {done} of {events}; log tail:\n{tail}")
    seconds = last_change - first[0]
    after = exact()
    return {
        "events_per_s": round((events - first[1]) / seconds) if seconds > 0 else 0,
        "routed": {stage: after[stage] - base_exact[stage] for stage in after},
        "exactly_once": done == events,
        "routing_s": round(seconds, 2),
        "startup_s": round(first[0] - started, 1),
        "peak_rss_mb": rss,
        "load_1m_before": round(load, 2),
    }


def profiled(command: list[str], folder: str | None, name: str) -> list[str]:
    """`command` under `py-spy record` (writing DIR/name.txt) when profiling, else as is."""
    if folder is None:
        return command
    Path(folder).mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    output = str(Path(folder).resolve() / f"{name}.txt")
    return [spy, "record", "-r", "97", "-f", "raw", "-o", output, "--", *command]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="records to pre-fill")
    parser.add_argument("--runs", type=int, default=2, help="runs of each side, alternating")
    parser.add_argument("--types", default=",".join(catalog.EVENT_TYPES))
    parser.add_argument("--dirty-share", type=float, default=0.05)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=5000, help="govpulse worker batch")
    parser.add_argument(
        "--py-spy",
        metavar="DIR",
        help="profile every run with py-spy into DIR (collapsed stacks; RSS is then py-spy's)",
    )
    parser.add_argument(
        "--peer-no-dedup",
        action="store_true",
        help="the peer skips its State look-up (shows State's cost; not the same work)",
    )
    args = parser.parse_args()
    host = host_facts()  # before the run's own load
    types = args.types.split(",")
    peer = peer_python()

    with embedded_stack() as (broker, registry), tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        ensure_topics(broker.bootstrap, args.partitions)
        fill(broker.bootstrap, registry.url, args.events, types, args.dirty_share)
        key = root / "key"
        key.write_bytes(os.urandom(48))
        sample = OutcomeSampler(broker.bootstrap, types, args.partitions)
        exact = lambda: outcomes(broker.bootstrap, types)  # noqa: E731
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("GOVPULSE_")}
        runs: dict[str, list[dict[str, Any]]] = {"govpulse": [], "quix": []}
        for run in range(args.runs):
            env = dict(
                base_env,
                GOVPULSE_BOOTSTRAP_SERVERS=broker.bootstrap,
                GOVPULSE_REGISTRY_URL=registry.url,
                GOVPULSE_DATA_DIR=str(root / f"govpulse-{run}"),
                GOVPULSE_PSEUDONYM_KEY_FILE=str(key),
                GOVPULSE_METRICS_PORT=str(free_port()),
                GOVPULSE_TOPIC_PARTITIONS=str(args.partitions),
                GOVPULSE_STREAMS_BATCH_SIZE=str(args.batch_size),
                GOVPULSE_STREAMS_APP_ID=f"govpulse-peer-{run}",
                GOVPULSE_LOG_LEVEL="WARNING",
            )
            command = [sys.executable, "-m", "govpulse", "streams", "--types", args.types]
            command = profiled(command, args.py_spy, f"govpulse-{run}")
            log = root / f"govpulse-{run}.log"
            figures = measure(command, env, log, sample, exact, args.events, signal.SIGINT)
            runs["govpulse"].append(figures)
            peer_env = dict(base_env, PYTHONPATH=str(REPO))
            command = [str(peer), "-m", "bench.peer_quix"]  # `-m`: bench/streams.py ≠ streams
            command += ["--bootstrap", broker.bootstrap, "--registry", registry.url]
            command += ["--types", args.types, "--group", f"quix-peer-{run}"]
            command += ["--state-dir", str(root / f"quix-state-{run}"), "--key-file", str(key)]
            command += ["--key-id", key_id_of(key.read_bytes().strip())]
            command += ["--no-dedup"] if args.peer_no_dedup else []
            command = profiled(command, args.py_spy, f"quix-{run}")
            log = root / f"quix-{run}.log"
            stop = signal.SIGINT if args.py_spy else signal.SIGTERM  # py-spy saves on SIGINT
            figures = measure(command, peer_env, log, sample, exact, args.events, stop)
            runs["quix"].append(figures)

    ours = round(median(r["events_per_s"] for r in runs["govpulse"]))
    theirs = round(median(r["events_per_s"] for r in runs["quix"]))
    print(
        json.dumps(
            {
                "benchmark": "compare_peer",
                "host": host,
                "events": args.events,
                "types": types,
                "partitions": args.partitions,
                "dirty_share": args.dirty_share,
                "quixstreams": QUIXSTREAMS,
                "govpulse_events_per_s": ours,
                "quix_events_per_s": theirs,
                "ratio": round(ours / theirs, 2) if theirs else None,
                "govpulse_peak_rss_mb": max(r["peak_rss_mb"] for r in runs["govpulse"]),
                "quix_peak_rss_mb": max(r["peak_rss_mb"] for r in runs["quix"]),
                "dedup": "govpulse: Faust table (changelogged per batch); quix: "
                + (
                    "NONE (--peer-no-dedup: not the same work)"
                    if args.peer_no_dedup
                    else "State (RocksDB + changelog) keyed by the message key = event id"
                ),
                "runs": runs,
            }
        )
    )


if __name__ == "__main__":
    main()
