"""The Faust app: a changelogged de-duplication table per event type, one task routing batches.

Faust owns what a framework is for — consumer groups and partition assignment, tables with
changelogs and their recovery after a restart or rebalance. The raw partitions that go with
this worker's changelog partitions are read by `DirectReader` (not a Faust agent: see
`build_app`); the per-record work is `govpulse.streams.batch` (the pure transform
underneath), and output leaves through confluent-kafka producers whose acknowledgements the
worker awaits before it commits the batch's raw offsets. Batches are pipelined over two
producers: batch N+1 is transformed while the broker acknowledges batch N.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Coroutine
from typing import Any, cast

import faust
from confluent_kafka import Message

from govpulse.kafka_config import client_config, faust_credentials
from govpulse.logs import quiet_chatty_loggers
from govpulse.monitoring import metrics
from govpulse.registry import registry_client
from govpulse.schemas import catalog
from govpulse.schemas.writer_schemas import WriterSchemas, register_clean_schema
from govpulse.settings import Settings
from govpulse.streams.batch import BatchProcessor, Output, Persist, RawMessage
from govpulse.streams.direct_reader import DirectReader
from govpulse.streams.rules.pseudonymise import PseudonymKey
from govpulse.streams.transform import Transformer
from govpulse.streams.validate import DAY_MS

log = logging.getLogger("govpulse.streams")
APP_ID = "govpulse-streams"  # the default of GOVPULSE_STREAMS_APP_ID
PRUNE_EVERY_S = 30.0
LAG_EVERY_S = 2.0  # govpulse_streams_consumer_lag refresh (from cached ends: no broker call)
CHANGELOG_TIMEOUT_S = 30.0  # dedup entries not acknowledged by then: the batch is not committed


class TableDedup:
    """`Dedup` on a Faust table whose entries are whole batches, changelogged per partition.

    One changelog record per (partition, batch) — key "<partition>:<first offset>", value the
    first-seen time and the batch's event ids — instead of one per event: Faust sends each
    changelog record through aiokafka with ~100 µs of Python around it, which capped a worker
    at ~3k events/s. Lookups go to an in-memory index rebuilt from the table after every
    recovery. Entries are written to the partition of the records they hold, so the table
    stays co-partitioned with raw.<type> and recovers on whichever worker gets the partition.
    A replayed batch rewrites the same key: idempotent.
    """

    IDS_PER_ENTRY = 10_000  # keeps a changelog record well under Kafka's 1 MB default

    def __init__(self, table: faust.Table, window_ms: int) -> None:
        self.table = table
        self.window_ms = window_ms
        self.index: dict[str, int] = {}
        self._pending: dict[int, tuple[int, list[str]]] = {}

    def seen(self, event_id: str) -> bool:
        return event_id in self.index

    def remember(self, event_id: str, partition: int, offset: int, now_ms: int) -> None:
        self.index[event_id] = now_ms
        pending = self._pending.get(partition)
        if pending is None:
            self._pending[partition] = (offset, [event_id])
        else:
            pending[1].append(event_id)

    def flush(self, now_ms: int) -> Persist:
        """Seal the batch's remembered ids; the returned call writes them to the table and its
        changelog (on the event loop, once the batch's output is acknowledged) and returns the
        changelog sends, to be awaited before the batch's input is committed."""
        entries = []
        sealed: list[str] = []
        for partition, (first_offset, ids) in self._pending.items():
            sealed += ids
            for start in range(0, len(ids), self.IDS_PER_ENTRY):
                key = f"{partition}:{first_offset}:{start}".encode()
                value = "\n".join([str(now_ms), *ids[start : start + self.IDS_PER_ENTRY]])
                entries.append((partition, key, value.encode()))
        self._pending.clear()

        def persist() -> list[Awaitable[Any]]:
            # A recovery since the batch was routed rebuilt the index from the table, which did
            # not hold these ids yet: put them back, or their duplicates would pass.
            self.index.update(dict.fromkeys(sealed, now_ms))
            sends: list[Awaitable[Any]] = []
            for partition, key, value in entries:
                self.table.data[key] = value
                sends.append(self.table.send_changelog(partition, key, value))
            return sends

        return persist

    def rebuild(self) -> None:
        """The index from the table's entries (after Faust recovered them from the changelog),
        and the ids remembered but not persisted yet: Faust ends the recovery before it calls
        this, so the worker may already have remembered the ids its predecessor wrote past
        the commit (streams/resume.py) — dropping them would let their duplicates through."""
        index: dict[str, int] = {}
        for value in self.table.data.values():
            first_seen, *ids = _text(value).split("\n")
            index.update(dict.fromkeys(ids, int(first_seen)))
        for _, ids in self._pending.values():
            index.update({event_id: self.index.get(event_id, 0) for event_id in ids})
        self.index = index

    def prune(self, now_ms: int) -> int:
        """Forget batches older than the window (entries are kept in arrival order)."""
        store, cutoff = self.table.data, now_ms - self.window_ms
        expired: list[tuple[bytes, list[str]]] = []
        for key, value in store.items():
            first_seen, *ids = _text(value).split("\n")
            if int(first_seen) >= cutoff:
                break
            expired.append((key, ids))
        for key, ids in expired:
            del store[key]
            partition = int(_text(key).split(":", 1)[0])
            self.table.send_changelog(partition, key, None, value_serializer="raw")
            for event_id in ids:
                self.index.pop(event_id, None)
        return len(expired)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def build_app(settings: Settings, key: PseudonymKey, event_types: tuple[str, ...]) -> faust.App:
    """The Faust app: dedup tables per type, and one task routing raw records in batches.

    Faust owns membership, the co-partitioned assignment of the tables' changelogs and their
    recovery; the raw partitions that go with this worker's active changelog partitions are
    read by `DirectReader` (see there why not a Faust agent: 3-4k vs 8.5k+ events/s).
    """
    servers = [f"kafka://{server}" for server in settings.bootstrap_servers.split(",")]
    session_s = settings.kafka_session_timeout_ms / 1000
    security = client_config(settings)  # validated before Faust starts connecting
    app = faust.App(
        settings.streams_app_id,
        broker=servers,
        broker_credentials=faust_credentials(settings),
        store="memory://",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=session_s,
        broker_heartbeat_interval=max(0.5, session_s / 4),
        broker_rebalance_timeout=max(session_s * 2, 10.0),
        broker_commit_interval=1.0,
        broker_max_poll_records=settings.streams_batch_size,
        stream_buffer_maxsize=settings.streams_batch_size * 20,
        stream_wait_empty=False,
        table_cleanup_interval=PRUNE_EVERY_S,
        table_standby_replicas=0,
        producer_acks=-1,
        logging_config=None,
    )
    registry = registry_client(settings.registry_url)
    writer_schemas = WriterSchemas(registry)
    dedups = {t: _dedup_table(app, settings, t) for t in event_types}
    batch_size, within = settings.streams_batch_size, settings.streams_batch_ms / 1000
    processors: dict[str, BatchProcessor] = {}
    outputs: list[Output] = []

    def processors_by_topic() -> dict[str, BatchProcessor]:
        if not processors:  # built at the first batch: the registry answers once we run
            queue = {"queue.buffering.max.messages": max(500_000, 4 * batch_size)}
            for _ in range(2):
                outputs.append(Output(settings.bootstrap_servers, queue, security=security))
            for event_type in event_types:
                transformer = Transformer(
                    event_type,
                    writer_schemas,
                    register_clean_schema(registry, event_type),
                    key,
                    future_tolerance_ms=settings.future_tolerance_s * 1000,
                    retention_ms=settings.raw_ttl_days * DAY_MS,
                )
                processors[catalog.raw_topic(event_type)] = BatchProcessor(
                    event_type, transformer, dedups[event_type]
                )
        return processors

    in_flight = InFlight()

    # mypy matches no coroutine function to mode's SignalHandlerT union; Faust awaits it
    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def finish_in_flight(sender: faust.App, revoked: set[Any], **_: object) -> None:
        """Faust awaits this before the group moves on: the batch in flight commits (or is
        cancelled) now, not after the partitions' next owner has recovered and started."""
        await in_flight.drain(timeout=session_s / 2)
        await in_flight.settle(timeout=session_s / 2)

    @app.task
    async def clean() -> None:
        """raw.<type> → clean.<type> | dlq.<type> | dup.<type>, a batch at a time.

        While the broker acknowledges batch N (a thread waits; then N's dedup entries are
        written and its offsets committed, see `_finish`), batch N+1 is read and transformed
        into the other output; N+2 starts only once N is committed, and the assignment
        changes only with no batch in flight.
        """
        quiet_chatty_loggers(settings.log_level)
        loop = asyncio.get_running_loop()
        reader = DirectReader(
            app, settings.bootstrap_servers, event_types, security, writer_schemas, 2 * batch_size
        )
        last_prune = last_lag = time.monotonic()
        turn = 0
        try:
            while not app.should_stop:
                if reader.wanted() != reader.owned:
                    await in_flight.drain()
                    await in_flight.settle()
                    try:
                        changed = await loop.run_in_executor(None, reader.sync)
                    except Exception as error:  # broker or registry unreachable: own nothing,
                        log.warning("taking partitions over failed (%s); trying again", error)
                        reader.forget()  # and try again (Faust keeps them assigned here)
                        await asyncio.sleep(1.0)
                        continue
                    if changed:
                        log.info("raw partitions owned: %s", sorted(reader.owned))
                        await _remember_written(reader, dedups, time.time_ns() // 1_000_000)
                if not reader.owned:
                    await asyncio.sleep(0.2)
                    continue
                messages = await loop.run_in_executor(None, reader.take, batch_size, within)
                if reader.wanted() != reader.owned:  # a rebalance began while reading
                    reader.forget()  # not processed: read again from the committed offsets
                    continue
                now_ms = time.time_ns() // 1_000_000
                if messages:
                    started = time.perf_counter()
                    by_topic = processors_by_topic()
                    output = outputs[turn % 2]
                    turn += 1
                    persist = _route(reader.unwritten(messages), by_topic, output, now_ms)
                    delivered = in_flight.routed(loop, output)
                    await in_flight.drain()
                    if reader.wanted() != reader.owned:
                        # A rebalance began while the batch before finished: this one's output
                        # is confirmed but neither persisted nor committed; the partitions'
                        # next owner reads it back and does not route it again.
                        await in_flight.settle()
                        reader.forget()
                        continue
                    in_flight.start(_finish(delivered, persist, reader, messages, started))
                else:
                    await in_flight.drain()
                if time.monotonic() - last_lag > LAG_EVERY_S:
                    last_lag = time.monotonic()
                    reader.update_lag()
                if time.monotonic() - last_prune > PRUNE_EVERY_S:
                    last_prune = time.monotonic()
                    for dedup in dedups.values():
                        dedup.prune(now_ms)
        finally:
            try:
                await in_flight.drain(timeout=30)  # let the last batch commit
            except Exception:  # stopping anyway: its input is read again
                log.exception("the last batch failed; its records are read again")
            await in_flight.settle(timeout=30)  # nothing of ours lands after we are gone
            reader.close()

    return app


class InFlight:
    """The one batch whose output is being acknowledged and whose input is then committed,
    and the batch routed after it, whose output is on its way.

    Both must be on the broker before this worker lets its partitions go (the revoke handler
    waits for them): the next owner reads back what was written to skip it, and output
    landing after that read would be written twice. Output given up on is purged from its
    producer and the requests already sent are waited for (`Output.purge`); one the broker
    still appends after that (a timeout on a slow broker) is the case this cannot exclude.
    """

    def __init__(self) -> None:
        self._task: asyncio.Future[None] | None = None
        self._task_output: Output | None = None
        self._routed: tuple[asyncio.Future[None], Output] | None = None

    def routed(self, loop: asyncio.AbstractEventLoop, output: Output) -> asyncio.Future[None]:
        """Start acknowledging a routed batch's output (in a thread); its future."""
        delivered = loop.run_in_executor(None, output.deliver)
        self._routed = (delivered, output)
        return delivered

    def start(self, finish: Coroutine[Any, Any, None]) -> None:
        if self._task is not None:
            raise RuntimeError("a batch is still in flight")
        self._task = asyncio.ensure_future(finish)
        if self._routed is not None:  # its delivery is the task's now
            self._task_output = self._routed[1]
            self._routed = None

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for the batch in flight to commit; its failure is raised (the worker stops
        and its input is read again). After `timeout`, cancel it rather than let it commit
        late, for partitions that may have moved on (at least once: they are read again),
        and purge what its producer still holds."""
        task, output = self._task, self._task_output
        if task is None:
            return
        done, _ = await asyncio.wait([task], timeout=timeout)  # several may wait: the revoke
        if self._task is task:  # handler and the loop
            self._task = self._task_output = None
        if not done:
            task.cancel()
            if output is not None:
                await asyncio.get_running_loop().run_in_executor(None, output.purge)
            log.warning("the batch in flight took over %.0f s; cancelled, not committed", timeout)
            return
        if task.cancelled():  # by the other waiter's timeout: read again, not a failure here
            return
        task.result()

    async def settle(self, timeout: float | None = None) -> None:
        """Wait until the routed batch's output is acknowledged (or, after `timeout` or a
        failure, purged); it is neither persisted nor committed: its raw records are read
        again. The loop and the revoke handler may both wait: the batch is let go of only
        once it is settled."""
        if self._routed is None:
            return
        routed = self._routed
        delivered, output = routed
        done, _ = await asyncio.wait([delivered], timeout=timeout)
        if not done:
            await asyncio.get_running_loop().run_in_executor(None, output.purge)
            log.warning("a routed batch was not acknowledged in %.0f s; purged", timeout)
        elif delivered.exception() is not None:
            await asyncio.get_running_loop().run_in_executor(None, output.purge)
            log.warning("a routed batch failed (%s); it is read again", delivered.exception())
        if self._routed is routed:
            self._routed = None


async def _remember_written(
    reader: DirectReader, dedups: dict[str, TableDedup], now_ms: int
) -> None:
    """Event ids of clean records the previous owner wrote past the committed offsets: into
    the de-duplication table and its changelog before anything is routed (it may have died
    before persisting them, and their records are skipped and committed, never routed again:
    a later duplicate of one must still be seen after the next restart)."""
    types = set()
    for (topic, partition), written in reader.written.items():
        event_type = reader.type_of[topic]
        for offset, event_id in sorted(written.clean_ids.items()):
            dedups[event_type].remember(event_id, partition, offset, now_ms)
            types.add(event_type)
    sends = [send for t in types for send in dedups[t].flush(now_ms)()]
    await asyncio.wait_for(asyncio.gather(*map(asyncio.shield, sends)), CHANGELOG_TIMEOUT_S)


def _route(
    messages: list[Message], processors: dict[str, BatchProcessor], output: Output, now_ms: int
) -> list[Persist]:
    """Transform and produce one batch, by topic (acknowledged later, by `output.deliver`).

    Returns what makes the batch's dedup entries durable, per type (see `_finish`).
    """
    by_topic: dict[str, list[Message]] = {}
    for message in messages:
        by_topic.setdefault(message.topic() or "", []).append(message)
    return [
        # confluent-kafka types partition() and offset() Optional; a consumed record has both
        processors[topic].route(cast(list[RawMessage], records), output, now_ms).persist
        for topic, records in by_topic.items()
    ]


async def _finish(
    delivered: asyncio.Future[None],
    persist: list[Persist],
    reader: DirectReader,
    messages: list[Message],
    started: float,
) -> None:
    """Once the broker acknowledged a batch's output: its dedup entries, then its input's ack.

    In this order a crash leaves no event id in the dedup changelog whose clean record was not
    acknowledged (the replay would call it a duplicate: lost); the worst case is a clean
    record written twice (acknowledged, crash before its entry was written). The entries'
    changelog sends are awaited before the commit: committed input whose ids never reached
    the changelog would let a later duplicate of them through after a restart. A failed send
    raises here, and the batch is not committed.
    """
    await delivered
    sends = [send for each in persist for send in each()]  # on the loop: tables aren't thread-safe
    # shielded: cancelling the batch must not cancel Faust's own futures (it completes them)
    await asyncio.wait_for(asyncio.gather(*map(asyncio.shield, sends)), CHANGELOG_TIMEOUT_S)
    await asyncio.get_running_loop().run_in_executor(None, reader.commit, messages)
    metrics.STREAMS_BATCH_SECONDS.observe(time.perf_counter() - started)
    metrics.STREAMS_BATCH_SIZE.observe(len(messages))


def _dedup_table(app: faust.App, settings: Settings, event_type: str) -> TableDedup:
    """The changelogged de-duplication table of one type, indexed after each recovery."""

    async def rebuild_index() -> None:
        dedup.rebuild()
        log.info("dedup-%s: %d event ids remembered", event_type, len(dedup.index))

    table = app.Table(
        f"dedup-{event_type}",
        default=None,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.topic_partitions,
        help=f"batches of event ids seen, for dropping duplicates of {event_type}",
        on_recover=rebuild_index,
    )
    dedup = TableDedup(cast(faust.Table, table), settings.dedup_window_s * 1000)
    return dedup
