"""`govpulse simulate` against the real broker and registry: the printed count is what lands."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from govpulse.offsets import topic_ends
from govpulse.schemas import catalog
from govpulse.schemas.wire_format import schema_id_of
from tests.support.pipeline import GOVPULSE

pytestmark = pytest.mark.integration
# Debian's kcat links librdkafka 2.0.2, which cannot parse Tansu's ApiVersions v3 answer:
# with version probing off and a 0.9 protocol baseline it reads metadata and fetches, and
# absolute offsets (-o N) avoid the ListOffsets v0 call it also cannot parse.
KCAT_COMPAT = ["-X", "api.version.request=false", "-X", "broker.version.fallback=0.9.0"]


def _ends(bootstrap: str) -> dict[str, dict[int, int]]:
    ends = topic_ends(bootstrap, [catalog.raw_topic(t) for t in catalog.EVENT_TYPES])
    found: dict[str, dict[int, int]] = {t: {} for t in catalog.EVENT_TYPES}
    for (topic, partition), (_, end) in ends.items():
        found[topic.removeprefix("raw.")][partition] = end
    return found


@pytest.fixture(scope="module")
def simulated(broker, registry, tmp_path_factory):
    """One 10 s run at 2,000 events/s: (report, raw-topic offsets before, after)."""
    import os

    env = dict(
        os.environ,
        GOVPULSE_DATA_DIR=str(tmp_path_factory.mktemp("sim")),
        GOVPULSE_BOOTSTRAP_SERVERS=broker.bootstrap,
        GOVPULSE_REGISTRY_URL=registry.url,
    )
    before = _ends(broker.bootstrap)
    run = subprocess.run(
        [
            *GOVPULSE,
            "simulate",
            "--rate",
            "2000",
            "--duration",
            "10",
            "--flat",
            "--json",
            "--dirty-share",
            "0.1",
            "--seed",
            "11",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "sent" in run.stderr and "/s)" in run.stderr  # progress was shown
    return json.loads(run.stdout), before, _ends(broker.bootstrap)


def test_the_printed_count_is_exactly_what_landed_in_the_raw_topics(simulated):
    report, before, after = simulated
    assert 19_000 <= report["sent"] <= 21_000
    assert report["delivered"] == report["sent"] and report["failed"] == 0
    for event_type in catalog.EVENT_TYPES:
        landed = sum(end - before[event_type].get(p, 0) for p, end in after[event_type].items())
        assert landed == report["by_type"][event_type]["sent"], event_type
    defects = {k for t in report["by_type"].values() for k in t["defects"]}
    assert {"thai_digits", "buddhist_era", "invalid_national_id", "duplicate"} <= defects


def test_every_message_decodes_with_confluents_avro_deserializer(
    simulated, broker, registry, read_topic
):
    _, before, _ = simulated
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry.url}))
    decoded = 0
    for event_type in catalog.EVENT_TYPES:
        topic = catalog.raw_topic(event_type)
        for message in read_topic(broker.bootstrap, topic, start=before[event_type]):
            record = deserializer(message.value(), SerializationContext(topic, MessageField.VALUE))
            assert record["event_type"] == event_type
            assert str(record["event_id"]) == message.key().decode()
            decoded += 1
    assert decoded >= 19_000


def _kcat_messages(
    bootstrap: str, topic: str, partition: int, start: int, count: int
) -> list[tuple[str, bytes]]:
    """(key, value) of `count` messages read by kcat, framed by the size it prints."""
    out = subprocess.run(
        [
            "kcat",
            *KCAT_COMPAT,
            "-b",
            bootstrap,
            "-C",
            "-t",
            topic,
            "-p",
            str(partition),
            "-o",
            str(start),
            "-c",
            str(count),
            "-e",
            "-f",
            "%k %S\n%s",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    messages, at = [], 0
    while at < len(out):
        line_end = out.index(b"\n", at)
        key, size = out[at:line_end].decode().rsplit(" ", 1)
        value = out[line_end + 1 : line_end + 1 + int(size)]
        messages.append((key, value))
        at = line_end + 1 + int(size)
    return messages


def test_kcat_an_independent_client_sees_magic_byte_and_a_registered_schema_id(
    simulated, broker, registry
):
    assert shutil.which("kcat"), "Debian's kcat is missing: `make test` installs it"
    _, before, after = simulated
    client = SchemaRegistryClient({"url": registry.url})
    topic = catalog.raw_topic("service_request")
    seen = 0
    for partition, end in after["service_request"].items():
        start = before["service_request"].get(partition, 0)
        if end <= start:
            continue
        for key, value in _kcat_messages(broker.bootstrap, topic, partition, start, end - start):
            assert value[0] == 0
            assert client.get_schema(schema_id_of(value)).schema_type == "AVRO"
            assert len(key) == 36
            seen += 1
    assert seen == sum(after["service_request"].values()) - sum(before["service_request"].values())
