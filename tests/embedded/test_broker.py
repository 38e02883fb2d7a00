"""The embedded Tansu broker speaks enough Kafka for the pipeline: topics, produce, groups."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from govpulse.embedded.broker import EmbeddedBroker
from govpulse.embedded.process import ServiceError
from tests.support.pipeline import SESSION_TIMEOUT_MS

pytestmark = pytest.mark.integration


def _create(broker, name: str, partitions: int = 3, config: dict | None = None) -> AdminClient:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1, config=config or {})])
    futures[name].result(timeout=10)
    return admin


def _consume(consumer: Consumer, want: int, timeout: float = 30.0) -> list:
    got, deadline = [], time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is not None and message.error() is None:
            got.append(message)
    return got


def _group_consumer(broker, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": 500,
        }
    )


def test_created_topic_appears_in_metadata_with_its_partitions(broker, unique_name):
    name = unique_name("topic")
    admin = _create(broker, name, partitions=4)
    metadata = admin.list_topics(name, timeout=10)
    assert len(metadata.topics[name].partitions) == 4


def test_compacted_topic_keeps_its_cleanup_policy(broker, unique_name):
    name = unique_name("compacted")
    admin = _create(broker, name, partitions=1, config={"cleanup.policy": "compact"})
    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    configs = admin.describe_configs([resource])[resource].result(timeout=10)
    assert configs["cleanup.policy"].value == "compact"


def test_idempotent_producer_messages_are_consumed_with_keys_and_values(broker, unique_name):
    name = unique_name("roundtrip")
    _create(broker, name)
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "acks": "all"}
    )
    delivered = []
    for i in range(200):
        producer.produce(
            name, key=f"k{i}", value=f"v{i}".encode(), on_delivery=lambda e, m: delivered.append(e)
        )
    assert producer.flush(10) == 0
    assert delivered == [None] * 200

    consumer = _group_consumer(broker, unique_name("group"))
    consumer.subscribe([name])
    messages = _consume(consumer, 200)
    consumer.close()
    assert sorted(m.value() for m in messages) == sorted(f"v{i}".encode() for i in range(200))
    assert all(m.value() == b"v" + m.key()[1:] for m in messages)


def test_consumer_group_resumes_after_its_committed_offsets(broker, unique_name):
    name, group = unique_name("resume"), unique_name("group")
    _create(broker, name, partitions=2)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(100):
        producer.produce(name, value=str(i).encode())
    producer.flush(10)

    first = _group_consumer(broker, group)
    first.subscribe([name])
    seen = _consume(first, 100)
    first.commit(asynchronous=False)
    first.close()
    assert len(seen) == 100

    for i in range(100, 130):
        producer.produce(name, value=str(i).encode())
    producer.flush(10)
    second = _group_consumer(broker, group)
    second.subscribe([name])
    resumed = _consume(second, 30)
    assert sorted(int(m.value()) for m in resumed) == list(range(100, 130))
    assert second.poll(2.0) is None  # nothing before the committed offsets comes back
    second.close()


def test_starting_a_second_broker_on_a_taken_port_names_the_port(broker, tmp_path):
    with pytest.raises(ServiceError, match=f"{broker.port} is already in use"):
        EmbeddedBroker("127.0.0.1", broker.port, tmp_path).start()


def test_missing_tansu_binary_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("GOVPULSE_TANSU_BIN", str(tmp_path / "no-such-tansu"))
    with pytest.raises(ServiceError, match="GOVPULSE_TANSU_BIN"):
        EmbeddedBroker("127.0.0.1", 1, tmp_path)


def test_producing_to_a_stopped_broker_fails_instead_of_hanging(tmp_path):
    from govpulse.embedded.process import free_port

    lonely = EmbeddedBroker("127.0.0.1", free_port(), tmp_path).start()
    lonely.stop()
    admin = AdminClient({"bootstrap.servers": lonely.bootstrap})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=1)
