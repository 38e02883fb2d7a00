"""AgencyProducer against the real broker and registry: wire format, validation, no loss.

The records are the 2024 examples, older than the default retention, so the worker's verdict
is off here (`check_rules=False`); test_producer_verdicts.py tests it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from govpulse.embedded.broker import EmbeddedBroker
from govpulse.embedded.process import free_port
from govpulse.producers import (
    AgencyProducer,
    AsyncAgencyProducer,
    ProducerBufferFull,
    ProducerDeliveryFailed,
)
from govpulse.schemas import catalog
from tests.support import examples

pytestmark = pytest.mark.integration


def _fresh(event_type: str) -> dict:
    record = examples.example(event_type)
    record["event_id"] = str(uuid.uuid4())
    return record


@pytest.fixture
def producer(broker, registry):
    with AgencyProducer(
        check_rules=False, bootstrap_servers=broker.bootstrap, registry_url=registry.url
    ) as made:
        yield made


def test_every_type_is_delivered_in_confluent_wire_format_keyed_by_event_id(
    producer, broker, registry, read_topic
):
    sent = {t: [_fresh(t) for _ in range(5)] for t in catalog.EVENT_TYPES}
    for event_type, records in sent.items():
        for record in records:
            producer.send(event_type, record)
    assert producer.flush(10) == 0
    assert producer.stats.delivered >= 25 and producer.stats.failed == 0

    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry.url}))
    for event_type, records in sent.items():
        topic = catalog.raw_topic(event_type)
        wanted = {r["event_id"] for r in records}
        got = [m for m in read_topic(broker.bootstrap, topic) if m.key().decode() in wanted]
        assert len(got) == 5
        for message in got:
            assert message.value()[0] == 0  # magic byte
            decoded = deserializer(message.value(), SerializationContext(topic, MessageField.VALUE))
            assert str(decoded["event_id"]) == message.key().decode()
            assert decoded["event_type"] == event_type


def test_a_record_that_breaks_its_schema_is_refused_naming_the_field(producer):
    record = _fresh("service_request")
    record["processing_seconds"] = "quick"
    with pytest.raises(ValueError, match="'processing_seconds'"):
        producer.send("service_request", record)
    record = _fresh("complaint")
    del record["province_code"]
    with pytest.raises(ValueError, match="'province_code'"):
        producer.send("complaint", record)
    record = _fresh("complaint")
    record["event_id"] = "not-a-uuid"
    with pytest.raises(ValueError, match=r"'event_id'.*UUID"):
        producer.send("complaint", record)
    with pytest.raises(ValueError, match="unknown event type"):
        producer.send("parking_ticket", {})
    record = _fresh("complaint")
    record["complainantphone"] = record.pop("complainant_phone", None)  # a typo is not a null
    with pytest.raises(ValueError, match="not in the schema: complainantphone"):
        producer.send("complaint", record)
    with pytest.raises(ValueError, match="'service_request' sent as 'complaint'"):
        producer.send("complaint", {**_fresh("complaint"), "event_type": "service_request"})
    assert producer.stats.sent == 0


def test_an_int_out_of_range_is_refused_not_silently_written(producer):
    record = _fresh("net_pracharat_usage")
    record["sessions"] = 2**40  # fastavro's writer alone would write it
    with pytest.raises(ValueError, match="'sessions'"):
        producer.send("net_pracharat_usage", record)


def test_records_are_kept_while_the_broker_is_paused_and_delivered_after(
    tmp_path, registry, read_topic
):
    """SIGSTOP the broker for 5 s mid-stream: every record is kept, then delivered, once."""
    lonely = EmbeddedBroker("127.0.0.1", free_port(), tmp_path).start()
    try:
        producer = AgencyProducer(
            check_rules=False, bootstrap_servers=lonely.bootstrap, registry_url=registry.url
        )
        sent: list[str] = []

        def send() -> None:
            record = _fresh("complaint")
            producer.send("complaint", record)
            sent.append(record["event_id"])

        for _ in range(500):
            send()
        producer.flush(10)
        os.kill(lonely.process.pid, signal.SIGSTOP)
        try:
            paused_at = time.monotonic()
            while time.monotonic() - paused_at < 5:
                send()
                time.sleep(0.002)
        finally:
            os.kill(lonely.process.pid, signal.SIGCONT)
        for _ in range(500):
            send()
        stats = producer.close(30)
        assert stats.sent == len(sent) > 1500
        assert stats.delivered == stats.sent and stats.failed == 0 and stats.in_flight == 0
        stored = [m.key().decode() for m in read_topic(lonely.bootstrap, "raw.complaint")]
        assert sorted(stored) == sorted(sent)  # every record, none twice (idempotence)
    finally:
        lonely.stop()


def test_a_full_buffer_raises_a_clear_error_and_drops_nothing(tmp_path, registry, read_topic):
    """Broker paused, buffer bounded: send() raises ProducerBufferFull; what was queued lands."""
    lonely = EmbeddedBroker("127.0.0.1", free_port(), tmp_path).start()
    try:
        producer = AgencyProducer(
            check_rules=False,
            bootstrap_servers=lonely.bootstrap,
            registry_url=registry.url,
            max_buffered=50,
            buffer_timeout_s=0.5,
        )
        producer.send("complaint", _fresh("complaint"))
        producer.flush(10)
        queued = [_fresh("complaint") for _ in range(50)]
        os.kill(lonely.process.pid, signal.SIGSTOP)
        try:
            for record in queued:
                producer.send("complaint", record)
            started = time.monotonic()
            with pytest.raises(ProducerBufferFull, match="Nothing was dropped"):
                producer.send("complaint", _fresh("complaint"))
            assert time.monotonic() - started >= 0.5  # it waited buffer_timeout_s first
        finally:
            os.kill(lonely.process.pid, signal.SIGCONT)
        stats = producer.close(30)
        assert stats.as_dict() == {"sent": 51, "delivered": 51, "failed": 0, "in_flight": 0}
        stored = {m.key().decode() for m in read_topic(lonely.bootstrap, "raw.complaint")}
        assert {r["event_id"] for r in queued} <= stored and len(stored) == 51
    finally:
        lonely.stop()


def test_records_the_broker_never_acknowledges_are_reported_not_dropped(tmp_path, registry):
    """Broker gone for longer than the delivery timeout: each record is reported failed."""
    lonely = EmbeddedBroker("127.0.0.1", free_port(), tmp_path).start()
    producer = AgencyProducer(
        check_rules=False,
        bootstrap_servers=lonely.bootstrap,
        registry_url=registry.url,
        delivery_timeout_ms=2000,
    )
    producer.send("complaint", _fresh("complaint"))
    assert producer.flush(10) == 0
    lonely.stop()
    for _ in range(50):
        producer.send("complaint", _fresh("complaint"))
    stats = producer.close(15)
    assert stats.as_dict() == {"sent": 51, "delivered": 1, "failed": 50, "in_flight": 0}
    assert len(producer.failures) == 50
    assert all(f.topic == "raw.complaint" and f.error for f in producer.failures)


def test_async_send_returns_after_the_broker_acknowledged(broker, registry):
    async def run() -> tuple[list, dict]:
        async with AsyncAgencyProducer(
            check_rules=False, bootstrap_servers=broker.bootstrap, registry_url=registry.url
        ) as producer:
            acks = await asyncio.gather(
                *(producer.send("dataset_update", _fresh("dataset_update")) for _ in range(20))
            )
            return acks, producer.stats.as_dict()

    acks, stats = asyncio.run(run())
    assert len(acks) == 20 and all(m.topic() == "raw.dataset_update" for m in acks)
    assert all(m.offset() >= 0 for m in acks)
    assert stats["delivered"] == 20 and stats["in_flight"] == 0


def test_prometheus_counters_equal_the_delivery_stats_after_flush(producer):
    from prometheus_client import REGISTRY

    def sample(name: str) -> float:
        return REGISTRY.get_sample_value(name, {"event_type": "complaint"}) or 0.0

    before = {
        n: sample(n) for n in ("govpulse_producer_sent_total", "govpulse_producer_delivered_total")
    }
    for _ in range(300):  # not a multiple of the sync interval
        producer.send("complaint", _fresh("complaint"))
    assert producer.flush(10) == 0
    assert sample("govpulse_producer_sent_total") - before["govpulse_producer_sent_total"] == 300
    delivered = sample("govpulse_producer_delivered_total")
    assert delivered - before["govpulse_producer_delivered_total"] == 300


def test_a_callers_callback_is_called_once_and_a_uuid_object_is_keyed_by_its_text(producer):
    record = _fresh("complaint")
    record["event_id"] = uuid.UUID(record["event_id"])
    reports = []
    producer.send("complaint", record, lambda error, message: reports.append((error, message)))
    assert producer.flush(10) == 0
    [(error, message)] = reports
    assert error is None and message.key().decode() == str(record["event_id"])
    assert producer.stats.as_dict() == {"sent": 1, "delivered": 1, "failed": 0, "in_flight": 0}


def test_a_producer_left_unclosed_is_garbage_collected(broker, registry):
    """The producer-wide delivery callback refers back to the SDK object: a cycle gc must break."""
    import gc
    import weakref

    made = AgencyProducer(
        check_rules=False, bootstrap_servers=broker.bootstrap, registry_url=registry.url
    )
    made.send("complaint", _fresh("complaint"))
    made.flush(10)
    gone = weakref.ref(made)
    del made
    gc.collect()
    assert gone() is None


def test_records_still_unacknowledged_at_close_are_reported_failed_and_a_with_block_raises(
    tmp_path, registry
):
    """Broker paused past close()'s timeout: the records are purged into `failures` (reported,
    not dropped with the producer), and leaving a `with` block with them raises."""
    lonely = EmbeddedBroker("127.0.0.1", free_port(), tmp_path).start()
    try:
        producer = AgencyProducer(
            check_rules=False,
            bootstrap_servers=lonely.bootstrap,
            registry_url=registry.url,
            close_timeout_s=1.0,
        )
        with pytest.raises(ProducerDeliveryFailed, match="3 of the records"), producer:
            producer.send("complaint", _fresh("complaint"))
            assert producer.flush(10) == 0
            os.kill(lonely.process.pid, signal.SIGSTOP)
            for _ in range(3):
                producer.send("complaint", _fresh("complaint"))
        os.kill(lonely.process.pid, signal.SIGCONT)
        assert producer.stats.as_dict() == {"sent": 4, "delivered": 1, "failed": 3, "in_flight": 0}
        assert len(producer.failures) == 3 and all("urge" in f.error for f in producer.failures)
    finally:
        os.kill(lonely.process.pid, signal.SIGCONT)
        lonely.stop()


def test_failures_reach_the_metrics_without_a_flush_and_a_zero_buffer_wait_is_kept(
    tmp_path, registry
):
    """What the ProducerDeliveryFailures alert reads moves as reports are served, not only
    every POLL_EVERY sends; buffer_timeout_s=0 means "do not wait", not the default."""
    from prometheus_client import REGISTRY

    def failed_total() -> float:
        labels = {"event_type": "dataset_update"}
        return REGISTRY.get_sample_value("govpulse_producer_failed_total", labels) or 0.0

    lonely = EmbeddedBroker("127.0.0.1", free_port(), tmp_path).start()
    producer = AgencyProducer(
        check_rules=False,
        bootstrap_servers=lonely.bootstrap,
        registry_url=registry.url,
        delivery_timeout_ms=1000,
        max_buffered=5,
        buffer_timeout_s=0,
    )
    producer.send("dataset_update", _fresh("dataset_update"))
    assert producer.flush(10) == 0
    # The first record may itself time out on a slow host (1 s to a broker just started):
    # count from here, whatever became of it.
    before, failed_before = failed_total(), producer.stats.failed
    lonely.stop()
    for _ in range(5):
        producer.send("dataset_update", _fresh("dataset_update"))
    started = time.monotonic()
    with pytest.raises(ProducerBufferFull):
        producer.send("dataset_update", _fresh("dataset_update"))
    assert time.monotonic() - started < 0.5
    deadline = time.monotonic() + 15
    while producer.stats.failed - failed_before < 5 and time.monotonic() < deadline:
        producer.poll(0.2)
    assert producer.stats.failed - failed_before == 5
    assert failed_total() - before == 5


def test_a_callers_callback_that_raises_breaks_no_other_call(producer):
    def broken(error, message) -> None:
        raise RuntimeError("the caller's bug")

    producer.send("complaint", _fresh("complaint"), broken)
    producer.send("complaint", _fresh("complaint"))
    assert producer.flush(10) == 0  # did not raise the callback's error
    assert producer.stats.as_dict() == {"sent": 2, "delivered": 2, "failed": 0, "in_flight": 0}
