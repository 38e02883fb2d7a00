"""The peer of `bench.compare_peer`: a Quix Streams app doing the govpulse worker's job.

Run by the peer virtual environment's python (Quix Streams pins its own confluent-kafka),
with PYTHONPATH at the repository so it runs the very same rules: `govpulse.streams.transform`
(decode → clean → validate → pseudonymise → enrich → encode) and the writer-schema cache,
neither of which imports Faust. Per raw.<type>: one stateful `apply` transforms the record
and de-duplicates by event id in Quix's State (RocksDB with a changelog topic, keyed by the
message key, which the agencies' producer sets to the event id), then `set_headers` and one
`to_topic` route it to clean.<type> (key = event id), dlq.<type> (the original bytes, with
lineage, reason and detail headers) or dup.<type> (empty, with lineage headers), as the
govpulse worker does. At-least-once (Quix's default); output producer configured like
govpulse's (idempotent, acks=all, lz4, linger 5 ms). Runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any, NamedTuple

from confluent_kafka.schema_registry import SchemaRegistryClient
from quixstreams import Application, State, message_context
from quixstreams.models.serializers import SerializationContext, Serializer

from govpulse.schemas import catalog
from govpulse.schemas.writer_schemas import WriterSchemas, register_clean_schema
from govpulse.streams.rules.pseudonymise import PseudonymKey
from govpulse.streams.transform import Cleaned, Transformer

QUIXSTREAMS_VERSION = "3.28.1"  # bench.compare_peer installs exactly this one


class Routed(NamedTuple):
    """Where one raw record goes: the stage (clean, dlq, dup), key, value and headers."""

    stage: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] | None


class RoutedValue(Serializer):
    """The value bytes of a `Routed` (the stage and headers travel beside it)."""

    def __call__(self, value: Routed, ctx: SerializationContext) -> bytes:
        return value.value


def _lineage(raw_topic: str, partition: int, offset: int, now_ms: int) -> list[tuple[str, bytes]]:
    return [
        ("source_topic", raw_topic.encode()),
        ("source_partition", str(partition).encode()),
        ("source_offset", str(offset).encode()),
        ("first_seen", str(now_ms).encode()),
    ]


def router(event_type: str, transformer: Transformer, dedup: bool = True) -> Any:
    """The stateful apply callback of one type: transform, de-duplicate, choose the stage.

    `dedup=False` skips the State look-up (every clean record goes to clean.<type>): only to
    show what Quix's State costs, not the same work as govpulse."""
    raw_topic = catalog.raw_topic(event_type)
    process = transformer.process

    def route(
        value: bytes, key: bytes | None, timestamp: int, headers: Any, state: State
    ) -> Routed:
        context = message_context()
        partition, offset = context.partition, context.offset
        now_ms = time.time_ns() // 1_000_000
        result = process(value or b"", partition, offset, now_ms)
        if type(result) is Cleaned:
            if dedup:
                if state.get("seen") is not None:
                    return Routed("dup", key, b"", _lineage(raw_topic, partition, offset, now_ms))
                state.set("seen", now_ms)
            return Routed("clean", result.event_id.encode(), result.value, None)
        reason = str(result.reason)
        lineage = _lineage(raw_topic, partition, offset, now_ms)
        lineage += [("reason", reason.encode()), ("detail", result.detail.encode())]
        return Routed("dlq", key, value or b"", lineage)

    return route


def build(args: argparse.Namespace) -> Application:
    """The Quix app: one StreamingDataFrame per raw topic, all in one consumer group."""
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=args.state_dir,
        loglevel="WARNING",
        processing_guarantee="at-least-once",
        producer_extra_config={
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": "lz4",
            "linger.ms": 5,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 500_000,
        },
    )
    registry = SchemaRegistryClient({"url": args.registry})
    writer_schemas = WriterSchemas(registry)
    secret = Path(args.key_file).read_bytes().strip()
    key = PseudonymKey(args.key_id, secret)
    for event_type in args.types.split(","):
        transformer = Transformer(
            event_type, writer_schemas, register_clean_schema(registry, event_type), key
        )
        outputs = {
            stage: app.topic(
                catalog.topic(stage, event_type),
                value_serializer=RoutedValue(),
                key_serializer="bytes",
            )
            for stage in catalog.OUTCOMES
        }
        raw = app.topic(
            catalog.raw_topic(event_type), value_deserializer="bytes", key_deserializer="bytes"
        )
        sdf = app.dataframe(raw)
        route = router(event_type, transformer, dedup=not args.no_dedup)
        sdf = sdf.apply(route, stateful=True, metadata=True)
        sdf = sdf.set_headers(lambda value, key, timestamp, headers: value.headers)
        sdf.to_topic(_stage_topic(outputs), key=_key)
    return app


def _stage_topic(outputs: dict[str, Any]) -> Any:
    return lambda value, key, timestamp, headers: outputs[value.stage]


def _key(value: Routed) -> bytes | None:
    return value.key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--registry", required=True)
    parser.add_argument("--types", default=",".join(catalog.EVENT_TYPES))
    parser.add_argument("--group", required=True, help="a fresh consumer group per run")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--key-file", required=True, help="the pseudonymisation secret")
    parser.add_argument(
        "--key-id", required=True, help="its public id (govpulse.streams.keys.key_id_of)"
    )
    parser.add_argument("--no-dedup", action="store_true", help="skip State: not the same work")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    build(args).run()


if __name__ == "__main__":
    main()
