"""Benchmark: `govpulse sink` against a hand-written Quix Streams sink and the engine's limit.

ClickHouse's own Kafka table engine would be the natural peer, but it cannot run in chdb. So
the sink is measured against what a Python team would write instead, and against what the
engine itself takes. One embedded broker and registry; clean.<type> pre-filled once with
realistic clean records under distinct event ids (as `bench.sink` fills them). Then, in turn:

- govpulse: the `govpulse sink` command as a process, on a fresh chdb store it migrates
  itself, consumer group `govpulse-sink` rewound to the start before each run;
- peer: `bench/peer_quix_sink.py` (Quix Streams `BatchingSink` + clickhouse-connect,
  at-least-once, no tokens; see its docstring) in the peer venv, on a fresh store migrated
  here with `govpulse.sinks.migrations.migrate`, a fresh consumer group per run;

alternating for `--rounds`. Both are timed alike, from outside: the clock and the process's
CPU (user + system, all threads: chdb runs inside it) start when it says it began — the
sink's `assigned N partitions` log line (before its first fetch: counts against govpulse),
the peer's first record handed to its sink — and stop when its group has committed every
clean partition at its true end (both commit only after ClickHouse acknowledged), sampled
every 0.1 s. Then the store is counted: rows against the pre-filled count, and distinct
event ids (duplicates or losses are reported, not fatal).

Then, each on a fresh store, with every record read into memory first (not timed):
- limit: the same rows inserted in one statement per table, as the Avro object container
  govpulse builds, into the same `events_<type>_avro` tables and views;
- exactly-once cost: govpulse's insert cycles (rows per insert from its runs) replayed from
  memory twice, sequentially on one connection — at-least-once (Avro inserts, nothing else)
  and exactly-once (plus govpulse's own `SinkStore` steps: event keys, look-up of stored
  ids, the `sink_batches` intents, the deduplication token). The difference is what
  exactly-once costs per row.

Prints one JSON object. The acceptance figures are `govpulse_per_peer_rows_per_s` (rows/s,
medians of the rounds) and `govpulse_share_of_limit`; `exactly_once_cost` says what the
guarantee the peer lacks costs govpulse. `bench_seconds` is the whole run's wall time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from statistics import median
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from bench._stack import QUIXSTREAMS, REPO, embedded_stack, peer_python
from bench.host import host_facts
from bench.sink import _prefill_in_child
from bench.streams import cpu_seconds, peak_rss_mb
from govpulse.embedded.process import free_port
from govpulse.offsets import topic_ends
from govpulse.schemas import catalog
from govpulse.topics import ensure_topics

GOVPULSE_GROUP = "govpulse-sink"  # govpulse.sinks.sink.GROUP_ID: the command has no option
GOVPULSE_STARTED = re.compile(r"assigned \d+ partitions")
GOVPULSE_STOPPED = re.compile(r"stopped: ([\d,]+) rows stored in ([\d,]+) inserts")
PEER_STARTED = re.compile(r"^first record$")
PEER_DONE = re.compile(r"done: (\d+) rows in (\d+) inserts")
Ends = dict[tuple[str, int], tuple[int, int]]


# -- measuring a sink process from outside -------------------------------------------------------
class Committed:
    """Whether a consumer group has committed every clean partition at its true end."""

    def __init__(self, bootstrap: str, group: str, ends: Ends) -> None:
        self.consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group, "log_level": 0}
        )
        self.spans = ends
        self.ends = {key: end for key, (_low, end) in ends.items() if end > 0}
        self.partitions = [TopicPartition(t, p) for t, p in self.ends]

    def __call__(self) -> bool:
        found = self.consumer.committed(self.partitions, timeout=10)
        return all(self.ends[(tp.topic, tp.partition)] == tp.offset for tp in found)

    def rewind(self) -> None:
        """Commit every partition's first offset: the group reads it all again."""
        start = [TopicPartition(t, p, low) for (t, p), (low, _end) in self.spans.items()]
        self.consumer.commit(offsets=start, asynchronous=False)

    def close(self) -> None:
        self.consumer.close()


def _per_row(seconds: float, cpu: float, rows: int) -> dict[str, Any]:
    """Rate and CPU figures of `rows` stored in `seconds` using `cpu` seconds of CPU."""
    return {
        "rows_per_s": round(rows / seconds) if seconds > 0 else None,
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),
        "cpu_us_per_row": round(cpu / rows * 1e6, 2) if rows else None,
    }


def measure(
    command: list[str],
    env: dict[str, str],
    log: Path,
    started: re.Pattern[str],
    done: Callable[[], bool],
    rows: int,
    timeout: float,
) -> dict[str, Any]:
    """Run a sink process; time it from its `started` line on stderr to `done()`; stop it.

    The process's CPU (/proc: user + system of all its threads) is read at both moments.
    """
    stamps: dict[str, tuple[float, float]] = {}
    rss, load = 0.0, os.getloadavg()[0]
    ended = threading.Event()
    launched = time.monotonic()
    process = subprocess.Popen(
        command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )

    def watch() -> None:
        assert process.stderr is not None
        with log.open("w") as out:
            for line in process.stderr:
                if "start" not in stamps and started.search(line):
                    stamps["start"] = (time.monotonic(), cpu_seconds(process.pid))
                out.write(line)
                out.flush()
        ended.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    deadline = time.monotonic() + timeout
    try:
        while "end" not in stamps and time.monotonic() < deadline and not ended.is_set():
            if "start" in stamps and done():
                stamps["end"] = (time.monotonic(), cpu_seconds(process.pid))
                rss = peak_rss_mb(process.pid)
            else:
                time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)  # govpulse: flush, commit, close; the peer: exit
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        watcher.join(10)
    if "end" not in stamps:
        tail = log.read_text(errors="replace")[-3000:]
        sys.exit(f"{' '.join(command[:4])}: did not store {rows} rows; log tail:\n{tail}")
    (t0, cpu0), (t1, cpu1) = stamps["start"], stamps["end"]
    return {
        **_per_row(t1 - t0, cpu1 - cpu0, rows),
        "startup_s": round(t0 - launched, 1),
        "peak_rss_mb": rss,
        "load_1m_before": round(load, 2),
    }


# -- children in .venv: each opens one chdb store (one process per directory) -------------------
def _child(function: str, *args: str) -> Any:
    """`function(*args)` of this module in a fresh .venv python; the JSON it printed last."""
    code = f"import sys; from bench.compare_sink import {function}; {function}(*sys.argv[1:])"
    run = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=REPO
    )
    if run.returncode:
        sys.exit(f"compare_sink: {function}{args} failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def migrate_store(store: str) -> None:
    """Create and migrate a fresh chdb store (for the peer, which has no govpulse)."""
    from govpulse.clickhouse import make_client
    from govpulse.sinks.migrations import migrate

    client = make_client(f"chdb://{store}")
    migrate(client)
    client.close()
    print(json.dumps(True))


def count_store(store: str, types: str) -> None:
    """Rows and distinct event ids per events_<type>, as JSON on stdout."""
    from govpulse.clickhouse import make_client

    client = make_client(f"chdb://{store}")
    counts = {
        t: list(client.query(f"SELECT count(), uniqExact(event_id) FROM events_{t}").result_rows[0])
        for t in types.split(",")
    }
    client.close()
    print(json.dumps(counts))


def stored(store: str, types: Sequence[str], expected: dict[str, int]) -> dict[str, Any]:
    """What a sink left in `store`: rows, duplicates and losses against `expected` per type."""
    counts = _child("count_store", store, ",".join(types))
    rows = sum(c[0] for c in counts.values())
    distinct = sum(c[1] for c in counts.values())
    return {
        "rows": rows,
        "duplicates": rows - distinct,
        "lost": sum(expected.values()) - distinct,
        "exact": all(counts[t] == [n, n] for t, n in expected.items()),
    }


def cycles(
    records: list[tuple[int, int, bytes]], rows_per_insert: int
) -> list[list[tuple[int, int, list[bytes]]]]:
    """One type's (partition, offset, value) records cut into govpulse-like insert cycles:
    each cycle takes the next `rows_per_insert` / partitions records of every partition, as
    (partition, first offset, values) batches."""
    by_partition: dict[int, list[tuple[int, bytes]]] = {}
    for partition, offset, value in sorted(records, key=lambda r: (r[0], r[1])):
        by_partition.setdefault(partition, []).append((offset, value))
    if not by_partition:
        return []
    share = max(1, math.ceil(rows_per_insert / len(by_partition)))
    longest = max(len(items) for items in by_partition.values())
    out = []
    for start in range(0, longest, share):
        cycle = []
        for partition, items in sorted(by_partition.items()):
            part = items[start : start + share]
            if part:
                cycle.append((partition, part[0][0], [value for _, value in part]))
        out.append(cycle)
    return out


def engine(store: str, bootstrap: str, registry_url: str, types: str, mode: str) -> None:
    """Insert every clean record from memory on a fresh store; timings as JSON on stdout.

    `limit`: one statement per table. `at-least-once:N` / `exactly-once:N`: insert cycles of
    N rows per table (see `cycles`), the second with govpulse's exactly-once steps.
    """
    from govpulse.clickhouse import make_client
    from govpulse.offsets import position, read_ranges
    from govpulse.registry import registry_client
    from govpulse.schemas.writer_schemas import WriterSchemas
    from govpulse.sinks.avro_container import container, split_by_schema
    from govpulse.sinks.batching import Batch
    from govpulse.sinks.columns import columns_for, table_for
    from govpulse.sinks.migrations import migrate
    from govpulse.sinks.store import _INSERT_SETTINGS, SinkStore, staging_table_for

    chosen = types.split(",")
    topics = [catalog.clean_topic(t) for t in chosen]
    ends = topic_ends(bootstrap, topics)
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": "compare-sink-engine"})
    records: dict[str, list[tuple[int, int, bytes]]] = {t: [] for t in chosen}
    for message in read_ranges(reader, ends, timeout=300):
        topic, partition, offset = position(message)
        records[topic.split(".", 1)[1]].append((partition, offset, message.value() or b""))
    reader.close()
    client = make_client(f"chdb://{store}")
    migrate(client)
    schemas = WriterSchemas(registry_client(registry_url))
    rows = sum(len(r) for r in records.values())

    def avro(event_type: str, values: list[bytes]) -> list[tuple[str, list[str], bytes]]:
        return [
            (staging_table_for(event_type), columns_for(event_type), container(schemas.text(s), g))
            for s, g in split_by_schema(values).items()
        ]

    kind, _, size = mode.partition(":")
    if kind == "limit":  # the Avro bytes built first: only the statements are timed
        bodies = [b for t in chosen for b in avro(t, [r[2] for r in records[t]])]
        wall, cpu = time.perf_counter(), time.process_time()
        for table, columns, body in bodies:
            client.raw_insert(table, columns, body, settings=_INSERT_SETTINGS, fmt="Avro")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        statements = len(bodies)
    else:
        plan = {t: cycles(records[t], int(size)) for t in chosen}
        sink_store = SinkStore(client, schemas, "compare-sink")
        statements = 0
        wall, cpu = time.perf_counter(), time.process_time()
        for n in range(max(len(c) for c in plan.values())):
            groups = []
            for t in chosen:
                if n >= len(plan[t]):
                    continue
                topic = catalog.clean_topic(t)
                batches = [
                    Batch(topic, p, first, first + len(values) - 1, 0.0, values)
                    for p, first, values in plan[t][n]
                ]
                groups.append((t, batches, [v for b in batches for v in b.records]))
            if kind == "at-least-once":
                for t, _, values in groups:
                    for table, columns, body in avro(t, values):
                        client.raw_insert(
                            table, columns, body, settings=_INSERT_SETTINGS, fmt="Avro"
                        )
                        statements += 1
                continue
            tokens = {}  # what sinks/writer.py does per cycle, in its order
            for t, batches, values in groups:
                tokens[t] = f"{table_for(t)}|" + ",".join(b.describe() for b in batches)
                keys = [k for k in sink_store.event_keys(values) if k is not None]
                if sink_store.stored_event_ids(t, keys):
                    raise RuntimeError(f"{t}: ids of cycle {n} already stored")
            sink_store.write_intents(
                ((tokens[t], b) for t, batches, _ in groups for b in batches),
                [(tokens[t], batches[0], []) for t, batches, _ in groups],
            )
            for t, _, values in groups:
                sink_store.insert_clean(t, values, tokens[t])
                statements += 1
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    client.close()
    print(json.dumps({**_per_row(wall, cpu, rows), "rows": rows, "statements": statements}))


# -- the comparison -------------------------------------------------------------------------------
def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the runs' figures, and the runs."""
    keys = ("rows_per_s", "seconds", "cpu_seconds", "cpu_us_per_row")
    return {**{k: round(median(r[k] for r in runs), 3) for k in keys}, "runs": runs}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=200_000, help="clean records pre-filled")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each side, alternating")
    parser.add_argument("--pool", type=int, default=60_000, help="unique records generated")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--types", default=",".join(catalog.EVENT_TYPES))
    parser.add_argument("--max-rows", type=int, help="govpulse sink --max-rows (its default)")
    parser.add_argument(
        "--peer-commit-interval", type=float, default=5.0, help="Quix's checkpoint, s (default)"
    )
    parser.add_argument("--timeout", type=float, default=600, help="per run, s")
    args = parser.parse_args()
    host = host_facts()  # before the run's own load
    types = args.types.split(",")
    peer = peer_python("clickhouse-connect", "chdb")  # the same engine build on both sides
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("GOVPULSE_")}
    runs: dict[str, list[dict[str, Any]]] = {"govpulse": [], "peer": []}
    began = time.perf_counter()

    with embedded_stack() as (broker, registry), tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        ensure_topics(broker.bootstrap, args.partitions)
        prefill_s = time.perf_counter()
        counts = _prefill_in_child(broker.bootstrap, registry.url, args.pool, args.events, False)
        counts = {t: counts[t] for t in types}
        prefill_s = time.perf_counter() - prefill_s
        ends = topic_ends(broker.bootstrap, [catalog.clean_topic(t) for t in types])
        for n in range(args.rounds):
            store = str(root / f"govpulse-{n}")
            committed = Committed(broker.bootstrap, GOVPULSE_GROUP, ends)
            committed.rewind()
            env = dict(
                base_env,
                GOVPULSE_BOOTSTRAP_SERVERS=broker.bootstrap,
                GOVPULSE_REGISTRY_URL=registry.url,
                GOVPULSE_DATA_DIR=store,
                GOVPULSE_CLICKHOUSE_DSN=f"chdb://{store}",
                GOVPULSE_METRICS_PORT=str(free_port()),
                GOVPULSE_TOPIC_PARTITIONS=str(args.partitions),
                GOVPULSE_LOG_LEVEL="INFO",
            )
            command = [sys.executable, "-m", "govpulse", "sink", "--types", args.types]
            command += ["--max-rows", str(args.max_rows)] if args.max_rows else []
            log = root / f"govpulse-{n}.log"
            figures = measure(
                command, env, log, GOVPULSE_STARTED, committed, args.events, args.timeout
            )
            committed.close()
            found = GOVPULSE_STOPPED.search(log.read_text())
            inserts = int(found.group(2).replace(",", "")) if found else 0
            figures |= {"inserts": inserts, "stored": stored(store, types, counts)}
            runs["govpulse"].append(figures)

            store = str(root / f"peer-{n}")
            _child("migrate_store", store)
            group = f"quix-sink-{n}"
            committed = Committed(broker.bootstrap, group, ends)
            command = [str(peer), "-m", "bench.peer_quix_sink"]
            command += ["--bootstrap", broker.bootstrap, "--registry", registry.url]
            command += ["--store", store, "--types", args.types, "--group", group]
            command += ["--state-dir", str(root / f"quix-state-{n}"), "--count", str(args.events)]
            command += ["--commit-interval", str(args.peer_commit_interval)]
            log = root / f"peer-{n}.log"
            figures = measure(
                command, base_env, log, PEER_STARTED, committed, args.events, args.timeout
            )
            committed.close()
            found = PEER_DONE.search(log.read_text())
            inserts = int(found.group(2)) if found else 0
            figures |= {"inserts": inserts, "stored": stored(store, types, counts)}
            runs["peer"].append(figures)

        rows_per_insert = round(
            median(args.events / max(1, r["inserts"]) for r in runs["govpulse"])
        )
        engine_args = (broker.bootstrap, registry.url, args.types)
        engine_s = time.perf_counter()
        limit = _child("engine", str(root / "limit"), *engine_args, "limit")
        plain = _child(
            "engine", str(root / "alo"), *engine_args, f"at-least-once:{rows_per_insert}"
        )
        exact = _child("engine", str(root / "eo"), *engine_args, f"exactly-once:{rows_per_insert}")
        engine_s = time.perf_counter() - engine_s

    ours, theirs = _summary(runs["govpulse"]), _summary(runs["peer"])
    eo_us = exact["cpu_us_per_row"] - plain["cpu_us_per_row"]
    print(
        json.dumps(
            {
                "benchmark": "compare_sink",
                "host": host,
                "events": args.events,
                "types": types,
                "partitions": args.partitions,
                "rounds": args.rounds,
                "quixstreams": QUIXSTREAMS,
                "peer_commit_interval_s": args.peer_commit_interval,
                "govpulse_per_peer_rows_per_s": _ratio(ours["rows_per_s"], theirs["rows_per_s"]),
                "govpulse_share_of_limit": _ratio(ours["rows_per_s"], limit["rows_per_s"]),
                "peer_share_of_limit": _ratio(theirs["rows_per_s"], limit["rows_per_s"]),
                "peer_per_govpulse_cpu_per_row": _ratio(
                    theirs["cpu_us_per_row"], ours["cpu_us_per_row"]
                ),
                "govpulse": ours,
                "peer": theirs,
                "limit": limit,
                "exactly_once_cost": {
                    "rows_per_insert": rows_per_insert,
                    "at_least_once": plain,
                    "exactly_once": exact,
                    "cpu_us_per_row": round(eo_us, 2),
                    "wall_share": _ratio(exact["seconds"] - plain["seconds"], plain["seconds"]),
                    "share_of_govpulse_cpu": _ratio(eo_us, ours["cpu_us_per_row"]),
                },
                "prefill_seconds": round(prefill_s, 1),
                "engine_seconds": round(engine_s, 1),  # the three engine children
                "bench_seconds": round(time.perf_counter() - began, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
