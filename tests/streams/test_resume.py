"""A worker taking a raw partition over finds what its predecessor wrote past the commit."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from govpulse.schemas import catalog
from govpulse.schemas.wire_format import encode
from govpulse.streams.resume import TailReader, Written, same_key
from govpulse.streams.rules.pseudonymise import PseudonymKey
from govpulse.streams.transform import Cleaned, Transformer
from tests.support import examples
from tests.support.samples import _LocalSchemas

pytestmark = pytest.mark.integration
TYPE = "complaint"


def _outcome(transformer: Transformer, local: _LocalSchemas, partition: int, offset: int):
    """(key, clean value) of a fresh complaint read from raw `partition` at `offset`."""
    now = datetime.now(UTC)
    record = {**examples.example(TYPE), "event_id": str(uuid.uuid4())}
    record.update({"occurred_at": now, "produced_at": now})
    schema_id = local.raw_ids[TYPE]
    result = transformer.process(
        encode(schema_id, local(schema_id), record), partition, offset, time.time_ns() // 10**6
    )
    assert isinstance(result, Cleaned)
    return result.event_id.encode(), result.value


def _lineage(partition: int, offset: int) -> list[tuple[str, bytes]]:
    return [("source_partition", str(partition).encode()), ("source_offset", str(offset).encode())]


def test_the_outcomes_past_the_commit_are_found_on_every_output_however_interleaved(
    isolated_pipeline, tmp_path
):
    broker, _ = isolated_pipeline(tmp_path)
    topics = [catalog.topic(stage, TYPE) for stage in catalog.STAGES]
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics([NewTopic(t, 2, 1) for t in topics]).values():
        future.result(30)
    local = _LocalSchemas()
    transformer = Transformer(TYPE, local, local.clean_ids[TYPE], PseudonymKey("t", b"k" * 32))
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5})
    clean_ids: dict[int, bytes] = {}

    def write(offset: int) -> None:
        """Raw partition 1's outcome of `offset` on partition 1 of its output topic."""
        if offset % 10 == 0:
            producer.produce(catalog.dlq_topic(TYPE), b"raw", b"k", 1, headers=_lineage(1, offset))
        elif offset % 10 == 5:
            producer.produce(catalog.dup_topic(TYPE), b"", b"k", 1, headers=_lineage(1, offset))
        else:
            key, value = _outcome(transformer, local, 1, offset)
            clean_ids[offset] = key
            producer.produce(catalog.clean_topic(TYPE), value, key, 1)

    committed, batch = 3000, 200
    for offset in range(committed - batch):  # committed long ago
        write(offset)
    # the last committed batch interleaves with the two routed after it, then the worker died
    tail = list(range(committed - batch, committed + 2 * batch - 7))
    for offset in tail[::2] + tail[1::2]:
        write(offset)
    # a record of another raw partition on this one (written before outputs were partitioned
    # by their raw partition) is not this partition's to skip
    key, value = _outcome(transformer, local, 0, committed + 5)
    producer.produce(catalog.clean_topic(TYPE), value, key, 1)
    assert producer.flush(30) == 0

    reader = TailReader(broker.bootstrap, "test-resume", {}, local)
    try:
        ends = reader.ends([TYPE])
        written = reader.written(TYPE, 1, committed, batch, ends)
        nothing = reader.written(TYPE, 0, 0, batch, ends)
    finally:
        reader.close()

    expected = set(range(committed, committed + 2 * batch - 7))
    assert written.offsets == expected
    assert written.clean_ids == {o: clean_ids[o].decode() for o in expected if o in clean_ids}
    assert not nothing  # partition 0 of every output is empty


def test_a_raw_key_matches_its_outcomes_key_in_any_uuid_spelling():
    canonical = b"6e2f4a1b-3c8d-4e6f-9b2e-0d3c4b5a6f7e"
    assert same_key(canonical, canonical)  # a dead letter or a duplicate marker: the raw key
    assert same_key(canonical.upper(), canonical)  # a clean record: the canonical event id
    assert same_key(b"{" + canonical + b"}", canonical)
    assert not same_key(b"another-key", canonical)
    assert not same_key(None, None)  # keyless records prove nothing


def test_with_nothing_committed_only_a_record_whose_key_matches_its_outcome_is_skipped():
    """A recreated raw topic reuses offsets its kept outputs name: new records there differ."""
    written = Written(offsets={5, 6}, keys={5: b"k5", 6: b"k6"})
    assert written.written(5, b"other") and not written.written(7, b"k7")
    written.verify_keys = True
    assert written.written(5, b"k5") and not written.written(6, b"new record")
