"""The peer of `bench.compare_sink`: the ClickHouse sink a Python team would write with Quix.

Run by the peer virtual environment's python (`bench._stack.peer_python`: Quix Streams pins
its own confluent-kafka), and imports nothing of govpulse — it is the hand-written app, not
ours. The caller migrates its store (`govpulse.sinks.migrations.migrate`) beforehand.

- Input: one StreamingDataFrame per clean.<type> topic, all in one consumer group, values
  decoded by Quix's own `AvroDeserializer` given the schema registry (Confluent's
  deserializer under it: fastavro with the writer schema fetched once per id). That is the
  documented way to read Confluent-framed Avro in Quix; passing the raw bytes on would need
  the Avro container framing govpulse builds (sinks/avro_container.py), which no Quix sink
  does.
- Output: one `BatchingSink` whose `write(batch)` inserts the batch's decoded rows with
  clickhouse-connect's `client.insert` into `events_<type>`: the table the team queries and
  the one its materialized views (the rollups) read, so they fire as they do for govpulse.
  A team would not know of the `events_<type>_avro` Null tables govpulse inserts through
  (0006_sink_ingest.sql): they are a measured optimisation of ours, not the obvious design.
- Guarantee: at-least-once, Quix's default. Quix flushes every sink at each checkpoint
  (`--commit-interval`, Quix's default 5 s) and commits the offsets after; no deduplication
  token, no look-up of stored ids: a crash between an insert and its commit stores the
  batch again. Otherwise Quix's defaults, but for the session timeout, set as govpulse's.

For the benchmark only: `run(count=N)` stops after N records, whose final checkpoint flushes
and commits at once (the last partial interval is not idle time); `first record` goes to
stderr when the sink gets its first record (the caller's clock starts there); after the run
the process waits for SIGTERM, so the caller can read its CPU time.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any

import clickhouse_connect
from quixstreams import Application
from quixstreams.models.serializers.avro import AvroDeserializer
from quixstreams.models.serializers.schema_registry import SchemaRegistryClientConfig
from quixstreams.sinks import BatchingSink, SinkBatch


class ClickHouseSink(BatchingSink):
    """Inserts each topic-partition batch into `events_<type>` (from `clean.<type>`)."""

    def __init__(self, client: Any) -> None:
        super().__init__()
        self.client = client
        self.rows = 0
        self.inserts = 0
        self._started = False

    def add(self, *args: Any, **kwargs: Any) -> None:
        if not self._started:  # the benchmark's start signal, once
            self._started = True
            print("first record", file=sys.stderr, flush=True)
        super().add(*args, **kwargs)

    def write(self, batch: SinkBatch) -> None:
        records = [item.value for item in batch]
        columns = list(records[0])
        self.client.insert(
            "events_" + batch.topic.split(".", 1)[1],
            [[record.get(name) for name in columns] for record in records],
            column_names=columns,
        )
        self.rows += len(records)
        self.inserts += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--registry", required=True)
    parser.add_argument("--store", required=True, help="chdb directory, migrated")
    parser.add_argument("--types", required=True, help="comma-separated event types")
    parser.add_argument("--group", required=True, help="a fresh consumer group per run")
    parser.add_argument("--state-dir", required=True, help="Quix's state folder (unused)")
    parser.add_argument("--count", type=int, required=True, help="records to sink, then stop")
    parser.add_argument("--commit-interval", type=float, default=5.0, help="seconds")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    client = clickhouse_connect.get_client(dsn=f"chdb://{args.store}")
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        commit_interval=args.commit_interval,
        state_dir=args.state_dir,
        loglevel="WARNING",
        processing_guarantee="at-least-once",
        # as govpulse's consumers (GOVPULSE_KAFKA_SESSION_TIMEOUT_MS): librdkafka's 45 s makes
        # the first assignment on the embedded broker take ~23 s instead of ~3 s
        consumer_extra_config={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1500},
    )
    registry = SchemaRegistryClientConfig(url=args.registry)
    sink = ClickHouseSink(client)
    for event_type in args.types.split(","):
        topic = app.topic(
            f"clean.{event_type}",
            key_deserializer="str",
            value_deserializer=AvroDeserializer(schema_registry_client_config=registry),
        )
        app.dataframe(topic).sink(sink)
    app.run(count=args.count, collect=False)
    print(f"done: {sink.rows} rows in {sink.inserts} inserts", file=sys.stderr, flush=True)
    client.close()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # Quix's handler only stops a running app
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
