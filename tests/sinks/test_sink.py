"""The ClickHouse sink against a real broker, registry and chdb engine.

One broker for this module, its clean.* topics filled directly with realistic clean records
(no stream worker needed). Sinks run in this process on the session's chdb engine, each test
in its own database with its own consumer group, so each reads the topics from the start. The
kill -9 test runs `govpulse sink` as a child process on its own chdb directory (a directory
opens in one process only) and inspects it afterwards from a fresh `python -c`.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence

import pytest
from confluent_kafka import Producer

from govpulse.embedded.broker import EmbeddedBroker
from govpulse.embedded.process import free_port
from govpulse.monitoring import metrics
from govpulse.offsets import committed_at_ends
from govpulse.schemas import catalog
from govpulse.sinks.batching import Batch, Range
from govpulse.sinks.columns import table_for
from govpulse.sinks.dead_letters import dead_letter_row
from govpulse.sinks.faults import FlakyClient
from govpulse.sinks.replay import RangeUnavailable, TokenRange
from govpulse.sinks.store import DEAD_LETTERS as DEAD_LETTERS_TABLE
from govpulse.sinks.store import SinkStore, staging_table_for
from govpulse.sinks.writer import Cycle, InsertGroup, Writer
from govpulse.topics import ensure_topics, stage_counts
from tests.support.in_process_sink import Sink, SinkThatNeverCommits, running
from tests.support.pipeline import wait_until
from tests.support.rollups import rollup_gaps
from tests.support.samples import clean_records, prefill
from tests.support.sink_crash import crash_then_restart, sink_env

pytestmark = pytest.mark.integration
TYPES = catalog.EVENT_TYPES
FIRST_FILL = 12_000
SECOND_FILL = 12_000
THIRD_FILL = 10_000
DEAD_LETTERS = 300
RAW_ID = b"1101700203450"


@pytest.fixture(scope="module")
def broker(tmp_path_factory) -> Iterator[EmbeddedBroker]:
    instance = EmbeddedBroker(
        "127.0.0.1", free_port(), tmp_path_factory.mktemp("sink") / "logs"
    ).start()
    ensure_topics(instance.bootstrap, 4)
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def pool() -> list[tuple[str, bytes, bytes]]:
    """Unique clean records (type, key, value), enough for every fill of this module."""
    records = clean_records(FIRST_FILL + SECOND_FILL + THIRD_FILL + 2_000, seed=11)
    flat = [(t, k, v) for t, items in records.items() for k, v in items]
    random.Random(11).shuffle(flat)  # every fill holds every type
    return flat


def fill(broker, registry, pool, start: int, count: int) -> None:
    chosen = pool[start : start + count]
    grouped: dict[str, list[tuple[bytes, bytes]]] = {}
    for event_type, key, value in chosen:
        grouped.setdefault(event_type, []).append((key, value))
    prefill(broker.bootstrap, registry.url, grouped, sum(len(v) for v in grouped.values()))


def produce_dead_letters(bootstrap: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    now_ms = time.time_ns() // 1_000_000  # recent: dead letters live 30 days
    for i in range(count):
        event_type = TYPES[i % len(TYPES)]
        headers = [
            ("source_topic", catalog.raw_topic(event_type).encode()),
            ("source_partition", str(i % 4).encode()),
            ("source_offset", str(i).encode()),
            ("first_seen", str(now_ms + i).encode()),
            ("reason", b"invalid_national_id"),
            ("detail", b"citizen_id '" + RAW_ID + b"' fails the checksum"),
        ]
        value = b"\x00\x00\x00\x00\x01raw bytes with " + RAW_ID
        producer.produce(catalog.dlq_topic(event_type), value, f"evt-{i}".encode(), headers=headers)
    assert producer.flush(30) == 0


@pytest.fixture(scope="module")
def filled(broker, registry, pool) -> int:
    """The first fill: clean records of every type plus dead letters; returns clean count."""
    fill(broker, registry, pool, 0, FIRST_FILL)
    produce_dead_letters(broker.bootstrap, DEAD_LETTERS)
    return FIRST_FILL


def topic_total(bootstrap: str, stage: str) -> int:
    return stage_counts(bootstrap, [stage], TYPES)[stage]


def caught_up(bootstrap: str, group: str) -> bool:
    """Whether `group` committed every non-empty clean/dlq partition up to its end."""
    topics = [f"{stage}.{t}" for stage in ("clean", "dlq") for t in TYPES]
    return committed_at_ends(bootstrap, group, topics)


def stored(client) -> tuple[int, int]:
    """(rows, distinct event ids) over every events_<type> table."""
    rows = ids = 0
    for event_type in TYPES:
        count, distinct = client.query(
            f"SELECT count(), uniqExact(event_id) FROM {table_for(event_type)}"
        ).result_rows[0]
        rows, ids = rows + count, ids + distinct
    return rows, ids


def gauge(metric) -> float:
    return next(s.value for m in metric.collect() for s in m.samples)


def test_staging_tables_mirror_the_events_tables_without_low_cardinality(database):
    client = database()
    for event_type in TYPES:

        def columns(table: str) -> list[tuple[str, str]]:
            return client.query(
                "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                "AND table = {t:String} ORDER BY position",
                parameters={"t": table},
            ).result_rows

        target = [
            (name, re.sub(r"LowCardinality\((.*)\)", r"\1", kind))
            for name, kind in columns(table_for(event_type))
            if name != "inserted_at"
        ]
        assert columns(staging_table_for(event_type)) == target


def test_records_land_exactly_once_and_offsets_are_committed_after(
    broker, registry, filled, database
):
    client = database()
    group = f"sink-{uuid.uuid4().hex[:8]}"
    sink = Sink(client, broker.bootstrap, registry.url, group_id=group, max_rows=5_000)
    with running(sink):
        wait_until(lambda: sink.stats.rows_total >= filled + DEAD_LETTERS, 60, "every row")
        wait_until(lambda: caught_up(broker.bootstrap, group), 30, "offsets committed to the end")
    assert stored(client) == (filled, filled)
    per_type = {
        t: client.query(f"SELECT count() FROM {table_for(t)}").result_rows[0][0] for t in TYPES
    }
    assert all(per_type.values()), per_type
    assert sink.stats.inserts >= 2  # several cycles, not one big insert
    rows = client.query(
        "SELECT payload, detail, event_id, reason, source_topic FROM dead_letters"
    ).result_rows
    assert len(rows) == DEAD_LETTERS
    for payload, detail, event_id, reason, source_topic in rows:
        assert payload == ""  # PDPA: the raw bytes stay in dlq.<type>
        assert RAW_ID.decode() not in detail and "[national_id]" in detail
        assert event_id.startswith("evt-") and reason == "invalid_national_id"
        assert source_topic.startswith("raw.")
    # the rollups saw every row once
    events = client.query("SELECT sum(events) FROM activity_minute").result_rows[0][0]
    assert events == filled


def test_clickhouse_outage_pauses_consumption_loses_nothing_and_lag_recovers(
    broker, registry, pool, filled, database, tmp_path
):
    fault = tmp_path / "clickhouse-down"
    client = FlakyClient(database(), fault)
    group = f"sink-{uuid.uuid4().hex[:8]}"
    max_rows = 2_000
    sink = Sink(
        client,
        broker.bootstrap,
        registry.url,
        group_id=group,
        max_rows=max_rows,
        backoff_s=0.2,
        max_backoff_s=1.0,
    )
    with running(sink):
        wait_until(lambda: sink.stats.rows_total >= filled + DEAD_LETTERS, 60, "the first fill")
        fault.touch()
        fill(broker, registry, pool, FIRST_FILL, SECOND_FILL)  # arrives during the outage
        outage_end = time.monotonic() + 10
        held = []
        while time.monotonic() < outage_end:
            held.append(sink.stats.held)
            time.sleep(0.2)
        assert sink.stats.paused and gauge(metrics.SINK_PAUSED) == 1
        assert client.failures >= 3  # retried with backoff, not once
        rows_during = sink.stats.rows_total
        fault.unlink()
        total = filled + SECOND_FILL
        wait_until(lambda: sink.stats.rows_total >= total + DEAD_LETTERS, 60, "catching up")
        wait_until(lambda: sink.stats.lag == 0, 10, "lag back to 0")
        assert not sink.stats.paused and gauge(metrics.SINK_PAUSED) == 0
    print(f"held at most {max(held)} records while {SECOND_FILL} arrived during the outage")
    assert rows_during == filled + DEAD_LETTERS  # nothing inserted while ClickHouse was away
    bound = 2 * (max_rows + min(max_rows, 10_000))  # one cycle in flight, one being read
    assert max(held) <= bound < SECOND_FILL  # bounded, not everything that arrived
    assert stored(client) == (total, total)  # none lost, none twice


def sink_in_an_outage(broker, registry, database, tmp_path, *, max_rows, backoff_s):
    """A sink of a fresh group whose ClickHouse is away from the start (the fault file is
    there): returns the fault file, the faulty client, the group and the sink."""
    fault = tmp_path / "clickhouse-down"
    fault.touch()
    client = FlakyClient(database(), fault)
    group = f"sink-{uuid.uuid4().hex[:8]}"
    sink = Sink(
        client, broker.bootstrap, registry.url, group_id=group, max_rows=max_rows,
        backoff_s=backoff_s, max_backoff_s=backoff_s,
    )  # fmt: skip
    return fault, client, group, sink


def test_closing_while_an_insert_is_given_up_commits_nothing_past_it(
    broker, registry, filled, database, tmp_path
):
    """Close during an outage that ends just then: the cycle in flight is given up, and the
    final flush, which now could insert, must not store and commit later records of the same
    partitions past it — the next sink would start after the records never stored."""
    expected = topic_total(broker.bootstrap, "clean")
    fault, client, group, sink = sink_in_an_outage(
        broker, registry, database, tmp_path, max_rows=500, backoff_s=30.0
    )
    with running(sink):
        wait_until(lambda: client.failures >= 1 and sink.stats.held > 0, 30, "a failed insert")
        fault.unlink()  # ClickHouse is back, but the cycle in flight waits out its backoff
    assert sink.writer.stats.failures >= 1

    after = Sink(database(), broker.bootstrap, registry.url, group_id=group, max_rows=2_000)
    with running(after):
        wait_until(lambda: caught_up(broker.bootstrap, group), 60, "the next sink to catch up")
    assert stored(client) == (expected, expected)  # none skipped, none twice


def test_kill_minus_9_between_insert_and_commit_loses_nothing_and_doubles_nothing(
    broker, registry, filled, tmp_path
):
    """`govpulse sink` dies right after its 3rd insert (before committing it), restarts."""
    # make sure the second fill is there even when this test runs alone
    expected_clean = topic_total(broker.bootstrap, "clean")
    expected_dead = topic_total(broker.bootstrap, "dlq")
    store = tmp_path / "clickhouse"
    env = sink_env(tmp_path, broker.bootstrap, registry.url, store, GOVPULSE_SINK_MAX_ROWS="3000")
    _, second_run = crash_then_restart(env, tmp_path / "sink.log", 3)
    assert "re-inserting an interrupted insert under its original token" in second_run, second_run[
        -3000:
    ]
    inspect = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys\n"
            "from govpulse.clickhouse import make_client\n"
            "from govpulse.schemas.catalog import EVENT_TYPES\n"
            f"c = make_client('chdb://{store}')\n"
            "q = lambda s: c.query(s).result_rows[0]\n"
            "rows = [q(f'SELECT count(), uniqExact(event_id) FROM events_{t}') for t in "
            "EVENT_TYPES]\n"
            "dead = q('SELECT count(), uniqExact(source_topic, source_partition, source_offset,"
            " event_id) FROM dead_letters')\n"
            "events = q('SELECT sum(events) FROM activity_minute')[0]\n"
            "print(json.dumps({'rows': sum(r[0] for r in rows), 'ids': sum(r[1] for r in rows),"
            " 'dead': list(dead), 'rollup_events': events}))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert inspect.returncode == 0, inspect.stderr
    found = json.loads(inspect.stdout)
    assert found["rows"] == found["ids"] == expected_clean  # none lost, none twice
    assert found["rollup_events"] == expected_clean  # the rollups too
    assert found["dead"] == [expected_dead, expected_dead]


def test_an_insert_cut_short_in_its_rollups_is_completed_by_the_replay(
    broker, registry, filled, database
):
    """A crash can land an insert in events_<type> but not yet in a rollup view.

    Made deterministic: the first sink inserts with one rollup view detached and never
    commits; the view is attached again; the second sink replays the recorded ranges under
    their original tokens — the rollup gets exactly the missing rows, nothing doubles.
    """
    client = database()
    group = f"sink-{uuid.uuid4().hex[:8]}"
    expected = topic_total(broker.bootstrap, "clean")
    view = "mv_activity_minute_service_request"
    client.command(f"DETACH TABLE {view}")
    first = SinkThatNeverCommits(
        client, broker.bootstrap, registry.url, group_id=group, max_rows=2_000
    )
    with running(first):
        wait_until(lambda: first.stats.rows_total >= expected + DEAD_LETTERS, 60, "every row")
    client.command(f"ATTACH TABLE {view}")
    missing = rollup_gaps(client)
    assert list(missing) == ["service_request"] and missing["service_request"][1] == 0, missing

    second = Sink(client, broker.bootstrap, registry.url, group_id=group, max_rows=2_000)
    with running(second):
        wait_until(lambda: caught_up(broker.bootstrap, group), 60, "the replay to commit")
    assert second.stats.replays_reinserted > 0
    assert rollup_gaps(client) == {}
    assert stored(client) == (expected, expected)
    dead = client.query("SELECT count() FROM dead_letters").result_rows[0][0]
    assert dead == topic_total(broker.bootstrap, "dlq")


class SinkAfterRetention(Sink):
    """A sink for which every range it reads back is gone from Kafka, as after retention."""

    def _read_back(self, ranges: Sequence[TokenRange]) -> list:
        raise RangeUnavailable(f"{ranges[0]} is no longer in Kafka")


def test_a_replay_whose_other_ranges_are_gone_stores_nothing_twice(
    broker, registry, filled, database
):
    """The fallback when an interrupted insert cannot be rebuilt: replayed ranges already in
    events_<type> are committed without a second insert (the rollup rows they missed stay
    missing), and nothing is lost or doubled."""
    client = database()
    group = f"sink-{uuid.uuid4().hex[:8]}"
    expected = topic_total(broker.bootstrap, "clean")
    view = "mv_activity_minute_service_request"
    client.command(f"DETACH TABLE {view}")
    first = SinkThatNeverCommits(
        client, broker.bootstrap, registry.url, group_id=group, max_rows=2_000
    )
    with running(first):
        wait_until(lambda: first.stats.rows_total >= expected + DEAD_LETTERS, 60, "every row")
    client.command(f"ATTACH TABLE {view}")

    second = SinkAfterRetention(
        client, broker.bootstrap, registry.url, group_id=group, max_rows=2_000
    )
    with running(second):
        wait_until(lambda: caught_up(broker.bootstrap, group), 60, "the replay to commit")
    assert second.stats.replays_skipped > 0  # stored ranges it could not rebuild: set aside
    assert stored(client) == (expected, expected)
    gaps = rollup_gaps(client)  # groups holding all their token's ranges were still rebuilt
    assert set(gaps) <= {"service_request"}
    assert all(counted < rows for rows, counted in gaps.values())  # short, never doubled


def test_a_restarted_embedded_broker_is_a_new_cluster_and_its_offsets_are_new_records(
    broker, registry, pool, filled, database, tmp_path
):
    """`govpulse up` again on the same store: the embedded broker starts empty, offsets from 0.
    What the last run recorded about its offsets (ranges never committed, insert tokens) must
    not be taken for this run's records: none replayed, none dropped as a duplicate."""
    client = database()
    group = f"sink-{uuid.uuid4().hex[:8]}"
    before = topic_total(broker.bootstrap, "clean")
    last_run = SinkThatNeverCommits(
        client, broker.bootstrap, registry.url, group_id=group, max_rows=2_000
    )
    with running(last_run):  # it dies, as far as Kafka knows, before any commit
        wait_until(lambda: last_run.stats.rows_total >= before + DEAD_LETTERS, 60, "every row")
    assert stored(client) == (before, before)

    restarted = EmbeddedBroker("127.0.0.1", free_port(), tmp_path).start()
    try:
        ensure_topics(restarted.bootstrap, 4)
        fill(restarted, registry, pool, FIRST_FILL + SECOND_FILL + THIRD_FILL, 2_000)
        this_run = Sink(client, restarted.bootstrap, registry.url, group_id=group, max_rows=500)
        assert this_run.scope != last_run.scope
        with running(this_run):
            wait_until(lambda: caught_up(restarted.bootstrap, group), 60, "this run to commit")
        assert this_run.stats.replays_reinserted == this_run.stats.replays_skipped == 0
    finally:
        restarted.stop()
    assert stored(client) == (before + 2_000, before + 2_000)


def test_a_second_sink_joining_the_group_takes_over_partitions_without_loss_or_duplicates(
    broker, registry, pool, filled, database
):
    group = f"sink-{uuid.uuid4().hex[:8]}"
    first = Sink(database(), broker.bootstrap, registry.url, group_id=group, max_rows=1_000)
    with running(first):
        wait_until(lambda: first.stats.rows_total > 0, 30, "the first sink to insert")
        second = Sink(database(), broker.bootstrap, registry.url, group_id=group, max_rows=1_000)
        with running(second):
            start = FIRST_FILL + SECOND_FILL
            fill(broker, registry, pool, start, THIRD_FILL)  # arrives while the group rebalances
            expected = topic_total(broker.bootstrap, "clean")
            wait_until(lambda: second.stats.assigned > 0, 60, "the rebalance")
            wait_until(lambda: caught_up(broker.bootstrap, group), 60, "both sinks to finish")
            split = (first.stats.assigned, second.stats.assigned)
            assert 0 < split[0] < 40 and sum(split) == 40, split
    assert stored(database()) == (expected, expected)


def test_a_rebalance_during_an_outage_loses_nothing_and_doubles_nothing(
    broker, registry, filled, database, tmp_path
):
    """The first sink's insert keeps failing when a second sink joins: its revoked cycle is
    given up, the partitions move or come back, and every record still lands exactly once."""
    expected = topic_total(broker.bootstrap, "clean")
    fault, client, group, first = sink_in_an_outage(
        broker, registry, database, tmp_path, max_rows=1_000, backoff_s=2.0
    )
    with running(first):
        wait_until(lambda: client.failures >= 1 and first.stats.held > 0, 30, "a failed insert")
        second = Sink(database(), broker.bootstrap, registry.url, group_id=group, max_rows=1_000)
        with running(second):
            wait_until(lambda: second.stats.assigned > 0, 60, "the rebalance")
            fault.unlink()
            wait_until(lambda: caught_up(broker.bootstrap, group), 60, "both sinks to finish")
    assert client.failures >= 1
    assert stored(client) == (expected, expected)


class GatedClient:
    """Fault injection like `sinks.faults.FlakyClient`: inserts wait until `gate` is set, as
    inserts into a ClickHouse that stopped answering would."""

    def __init__(self, client, gate: threading.Event) -> None:
        self._client, self.gate = client, gate

    def insert(self, *args, **kwargs):
        self.gate.wait()
        return self._client.insert(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._client, name)


def test_a_cycle_abandoned_while_its_intents_are_written_inserts_nothing(database):
    """Revoked (or closing) while the cycle's first write hangs: once that write lands, its
    inserts must not start — the partitions' next owner may already have read its plans."""
    client, gate = database(), threading.Event()
    writer = Writer(SinkStore(GatedClient(client, gate), None, "stuck-writer"))  # type: ignore[arg-type]
    topic = catalog.dlq_topic("complaint")

    def cycle(offset: int) -> Cycle:
        row = dead_letter_row("complaint", b"k", None, topic, 0, offset, int(time.time() * 1000))
        batch = Batch(topic, 0, offset, offset, 0.0, [row])
        return Cycle([InsertGroup(DEAD_LETTERS_TABLE, None, [batch])])

    writer.submit(cycle(0))
    writer.abandon()  # as a revoke does
    assert not writer.wait(0.5)
    gate.set()
    assert writer.wait(30)
    assert client.query("SELECT count() FROM dead_letters").result_rows[0][0] == 0
    assert writer.outbox.empty()  # nothing reported stored: nothing of it gets committed
    assert writer.unstored == {(topic, 0)}  # its partition is re-read by its next owner

    gate.clear()
    writer.submit(cycle(1))
    assert not writer.stop(timeout=0.5)  # the sink must not close what the thread still uses
    gate.set()
    assert writer.stop(timeout=30)
    assert client.query("SELECT count() FROM dead_letters").result_rows[0][0] == 0


def test_a_range_recorded_twice_replays_under_its_newest_token(database):
    """A range whose first insert could not be rebuilt is re-recorded under the token it was
    then inserted with; a later replay must use that one (the older sorts after it here)."""
    store = SinkStore(database(), None, "two-tokens")  # type: ignore[arg-type]
    topic = catalog.clean_topic("complaint")
    batch = Batch(topic, 2, 100, 199, 0.0)
    older = f"events_complaint|{topic}:2:100-199,{topic}:3:0-9"
    newer = f"events_complaint|{topic}:2:100-199"
    store.write_intents([(older, batch)])
    time.sleep(0.01)
    store.write_intents([(newer, batch)])
    assert older > newer
    assert store.pending_ranges({(topic, 2): 100}) == {(topic, 2): [Range(100, 199, newer)]}
    assert store.pending_ranges({(topic, 2): 200}) == {}  # committed past it: nothing to replay


def test_the_range_reader_reads_every_range_of_an_insert_at_once(broker, unique_name):
    """Two ranges on one partition and one on another come back exactly, in order; an offset
    before the partition's start (deleted by retention) is RangeUnavailable, not a short read."""
    from confluent_kafka.admin import AdminClient, NewTopic

    from govpulse.sinks.replay import RangeReader

    topic = unique_name("ranges")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(15)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for partition in (0, 1):
        for offset in range(20):
            producer.produce(topic, f"{partition}-{offset}".encode(), partition=partition)
        producer.flush(10)  # a batch per partition, then the next
    reader = RangeReader({"bootstrap.servers": broker.bootstrap, "group.id": "reader"}, 15)
    try:
        wanted = [
            TokenRange(topic, 0, 3, 7),
            TokenRange(topic, 1, 0, 19),
            TokenRange(topic, 0, 12, 12),
        ]
        runs = reader.read(wanted)
        assert [[m.value().decode() for m in run] for run in runs] == [
            [f"0-{o}" for o in range(3, 8)],
            [f"1-{o}" for o in range(20)],
            ["0-12"],
        ]
        with pytest.raises(RangeUnavailable, match="no longer in Kafka"):
            reader.read([TokenRange(topic, 0, -5, 2)])
    finally:
        reader.close()


# -- records ClickHouse refuses --------------------------------------------------------------
# A decimal wider than its column: the Avro schema admits any length of bytes, the stream
# worker passes them on, ClickHouse's Decimal(12, 2) refuses more than 8 (VALUE_IS_OUT_OF_RANGE).
TOO_WIDE_FEE = b"\x7f" + b"\xff" * 15


def test_a_record_clickhouse_refuses_is_dead_lettered_and_the_rest_stored(
    registry, database, tmp_path
):
    """One such record used to fail its insert for ever: the sink retried every 10 s with every
    partition paused, so records sent afterwards were never stored."""
    from tests.support.samples import clean_value

    own = EmbeddedBroker("127.0.0.1", free_port(), tmp_path / "logs").start()
    try:
        ensure_topics(own.bootstrap, 2)
        good = [clean_value("service_request") for _ in range(40)]
        bad_key, bad_value = clean_value("service_request", fee_thb=TOO_WIDE_FEE)
        records = [*good[:20], (bad_key, bad_value), *good[20:]]
        prefill(own.bootstrap, registry.url, {"service_request": records})
        client = database()
        refused = metrics.SINK_ROWS_REFUSED.labels("events_service_request")
        refused_before = refused._value.get()
        group = f"sink-{uuid.uuid4().hex[:8]}"
        sink = Sink(client, own.bootstrap, registry.url, group_id=group, max_rows=5_000)
        with running(sink):
            wait_until(lambda: sink.stats.rows_total >= 40, 60, "the 40 good rows")
            later = [clean_value("service_request") for _ in range(5)]
            prefill(own.bootstrap, registry.url, {"service_request": later})
            wait_until(lambda: sink.stats.rows_total >= 45, 60, "records sent afterwards")
            wait_until(lambda: caught_up(own.bootstrap, group), 30, "offsets committed to the end")
            assert not sink.stats.paused
        table = table_for("service_request")
        rows, ids = client.query(f"SELECT count(), uniqExact(event_id) FROM {table}").result_rows[0]
        assert (rows, ids) == (45, 45)
        [row] = client.query(
            "SELECT reason, detail, source_topic, event_id FROM dead_letters"
        ).result_rows
        assert row[0] == "store_rejected" and "Decimal(12, 2)" in row[1]
        assert row[2] == "raw.service_request" and row[3] == bad_key.decode()
        assert refused._value.get() - refused_before == 1
        assert sink.stats.refused == 1
        events = client.query(
            "SELECT sum(events) FROM activity_minute WHERE event_type = 'service_request'"
        ).result_rows[0][0]
        assert events == 45  # the rollups hold the stored rows, not the refused one
    finally:
        own.stop()


BACKLOG_AGE_S = 20.0


def test_the_data_age_is_how_old_the_stored_records_are_not_the_time_since_the_insert(
    registry, database, tmp_path
):
    """Issue 18: 7,700 records behind, the freshness figure said 0.2 s. A backlog its agency
    produced 20 s ago, not yet stored when the sink starts: once stored, the sink's data age
    and the dashboard's read the records' age, the time since the insert next to nothing."""
    from datetime import UTC, datetime, timedelta

    from prometheus_client import REGISTRY

    from govpulse.dashboard.queries import DashboardQueries
    from tests.support.samples import clean_value

    own = EmbeddedBroker("127.0.0.1", free_port(), tmp_path / "logs").start()
    try:
        ensure_topics(own.bootstrap, 2)
        produced = datetime.now(UTC) - timedelta(seconds=BACKLOG_AGE_S)
        backlog = [
            clean_value(event_type, produced_at=produced, occurred_at=produced)
            for event_type in ("complaint", "service_request")
            for _ in range(25)
        ]
        by_type = {"complaint": backlog[:25], "service_request": backlog[25:]}
        prefill(own.bootstrap, registry.url, by_type)
        client = database()
        sink = Sink(client, own.bootstrap, registry.url, group_id=f"sink-{uuid.uuid4().hex[:8]}")
        with running(sink):
            wait_until(lambda: sink.stats.rows_total >= 50, 60, "the backlog stored")
            exported = {
                t: REGISTRY.get_sample_value("govpulse_sink_data_age_seconds", {"event_type": t})
                for t in by_type
            }
            answer = DashboardQueries(client).freshness()
        elapsed = (datetime.now(UTC) - produced).total_seconds()
        assert all(
            age is not None and BACKLOG_AGE_S <= age <= elapsed for age in exported.values()
        ), exported
        assert BACKLOG_AGE_S <= answer["data_age_seconds"] <= elapsed + 0.1
        assert answer["seconds_since_last_insert"] < BACKLOG_AGE_S / 2
        assert set(answer["data_age_by_type"]) == set(by_type)
        assert all(age >= BACKLOG_AGE_S for age in answer["data_age_by_type"].values())
    finally:
        own.stop()


def test_a_bisected_insert_replayed_whole_stores_each_row_once(registry, database):
    """After a crash the sink re-inserts the original insert under its token: it fails the
    same way, splits the same way, and ClickHouse drops the halves it holds — events table
    and rollup views alike."""
    from govpulse.registry import registry_client
    from govpulse.schemas.writer_schemas import WriterSchemas, register_clean_schema
    from govpulse.sinks.isolate import insert_isolating
    from tests.support.samples import clean_value

    sid = register_clean_schema(registry_client(registry.url), "service_request")
    head = b"\x00" + sid.to_bytes(4, "big")
    values = [head + clean_value("service_request")[1][5:] for _ in range(30)]
    values[7] = head + clean_value("service_request", fee_thb=TOO_WIDE_FEE)[1][5:]
    values[22] = head + clean_value("service_request", fee_thb=TOO_WIDE_FEE)[1][5:]
    client = database()
    store = SinkStore(client, WriterSchemas(registry_client(registry.url)), "g")

    def insert(part, token):
        return store.insert_clean("service_request", part, token)

    for _ in range(2):
        stored_rows, refused = insert_isolating(insert, values, "events_service_request|t")
        assert stored_rows == 28 and [r.index for r in refused] == [7, 22]
    table = table_for("service_request")
    assert client.query(f"SELECT count() FROM {table}").result_rows[0][0] == 28
    events = client.query(
        "SELECT sum(events) FROM activity_minute WHERE event_type = 'service_request'"
    ).result_rows[0][0]
    assert events == 28
