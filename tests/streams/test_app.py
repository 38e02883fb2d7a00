"""The stream worker against a real broker and registry, fed by the simulator's dirty traffic.

One broker for this module (so the ground truth is exactly the simulator's report), one
worker process started once (a Faust worker needs ~5-20 s to join its group).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import urllib.request
from collections import Counter

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from govpulse.monitoring.scrape import sum_samples
from govpulse.producers.defects import Defect, Outcome
from govpulse.schemas import catalog
from govpulse.streams.rules import national_id
from tests.support.pipeline import GOVPULSE, Child, wait_until
from tests.support.pipeline import routed as routed_now

pytestmark = pytest.mark.integration
TYPES = catalog.EVENT_TYPES
GARBAGE = 5  # records the garbage test sends, all dead-lettered
THIRTEEN_DIGITS = re.compile(rb"(?<![0-9])[0-9]{13}(?![0-9])")


def wait_until_routed(bootstrap: str, timeout: float = 120) -> dict[str, dict[str, int]]:
    """Wait until every raw record has an outcome (clean + dlq + dup = raw) for every type."""
    deadline = time.monotonic() + timeout
    while True:
        counts = routed_now(bootstrap)
        if all(c["raw"] and c["clean"] + c["dlq"] + c["dup"] >= c["raw"] for c in counts.values()):
            return counts
        if time.monotonic() > deadline:
            pytest.fail(f"streams did not route every record within {timeout} s: {counts}")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def stack(isolated_pipeline, tmp_path_factory):
    """Own broker, key, env; yields (broker, env, workdir)."""
    workdir = tmp_path_factory.mktemp("streams")
    broker, env = isolated_pipeline(workdir)
    return broker, env, workdir


def simulate(env: dict[str, str], *args: str) -> dict:
    run = subprocess.run(
        [*GOVPULSE, "simulate", "--flat", "--json", *args],
        env={**env, "GOVPULSE_METRICS_PORT": "0"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.fixture(scope="module")
def routed(stack):
    """Simulate dirty traffic, run one worker over it: (report, counts per type and stage)."""
    broker, env, workdir = stack
    report = simulate(
        env, "--rate", "3000", "--duration", "5", "--dirty-share", "0.3", "--seed", "5"
    )
    worker = Child(["streams"], env, workdir / "worker.log")
    try:
        counts = wait_until_routed(broker.bootstrap)
        time.sleep(2)  # metrics of the last batch
        with urllib.request.urlopen(
            f"http://127.0.0.1:{env['GOVPULSE_METRICS_PORT']}/metrics"
        ) as r:
            exposition = r.read().decode()
        yield report, counts, exposition, worker
    finally:
        worker.stop()


def test_every_record_ends_in_exactly_one_place(routed):
    report, counts, _, _ = routed
    for event_type in TYPES:
        sent = report["by_type"][event_type]["sent"]
        c = counts[event_type]
        assert c["raw"] == sent
        assert c["clean"] + c["dlq"] + c["dup"] == sent, (event_type, c)


def _expected(report: dict, event_type: str, outcome: Outcome) -> Counter:
    defects = report["by_type"][event_type]["defects"]
    return Counter({k: v for k, v in defects.items() if Defect(k).outcome is outcome})


def test_dead_letter_reasons_and_duplicates_match_the_simulators_defects(routed, stack, read_topic):
    report, counts, _, _ = routed
    broker, _, _ = stack
    for event_type in TYPES:
        dead = read_topic(broker.bootstrap, catalog.dlq_topic(event_type))
        reasons = Counter(dict(m.headers())["reason"].decode() for m in dead)
        assert reasons == _expected(report, event_type, Outcome.DEAD_LETTER), event_type
        assert counts[event_type]["dup"] == report["by_type"][event_type]["defects"].get(
            "duplicate", 0
        )
        for message in dead[:50]:
            headers = dict(message.headers())
            assert headers["source_topic"] == catalog.raw_topic(event_type).encode()
            assert int(headers["source_offset"]) >= 0 and headers["detail"]
            assert message.value()[0] == 0  # the original bytes, unchanged


def test_no_valid_national_id_reaches_a_clean_topic(routed, stack, registry, read_topic):
    broker, _, _ = stack
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry.url}))
    scanned = 0
    for event_type in TYPES:
        topic = catalog.clean_topic(event_type)
        for message in read_topic(broker.bootstrap, topic):
            for run in THIRTEEN_DIGITS.findall(message.value()):
                assert not national_id.is_valid(run.decode())
            record = deserializer(message.value(), SerializationContext(topic, MessageField.VALUE))
            for value in record.values():
                if isinstance(value, str):
                    for run in re.findall(r"[0-9]{13}", value):
                        assert not national_id.is_valid(run), (event_type, value)
            scanned += 1
    assert scanned == sum(routed[1][t]["clean"] for t in TYPES)


def test_clean_records_are_repaired_and_enriched(routed, stack, registry, read_topic):
    broker, _, _ = stack
    topic = catalog.clean_topic("service_request")
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry.url}))
    records = [
        deserializer(m.value(), SerializationContext(topic, MessageField.VALUE))
        for m in read_topic(broker.bootstrap, topic)
    ]
    fixed = Counter(d for r in records for d in r["defects_fixed"])
    assert fixed["thai_digits"] and fixed["buddhist_era"] and fixed["zero_width"]
    for record in records:
        assert re.fullmatch("[0-9]{2}", record["province_code"])
        assert record["occurred_at"].year < 2500
        assert record["province_name_en"] and record["ministry_code"] and record["region_code"]
        assert "\u200b" not in record["service_name"]
        if record["citizen_id_pseudonym"]:
            assert record["pseudonym_key_id"].startswith("k-")


def test_metrics_reconcile_consumed_with_clean_dead_lettered_and_duplicates(routed):
    _, counts, exposition, _ = routed

    def total(name: str, event_type: str) -> float:
        return sum_samples(exposition, name, event_type=event_type)

    for event_type in TYPES:
        consumed = total("govpulse_streams_consumed_total", event_type)
        assert consumed == counts[event_type]["raw"]
        assert consumed == (
            total("govpulse_streams_clean_total", event_type)
            + total("govpulse_streams_dead_lettered_total", event_type)
            + total("govpulse_streams_duplicates_total", event_type)
        )


def test_the_backlog_per_raw_partition_is_exported_and_empty_once_routed(routed):
    """govpulse_streams_consumer_lag (StreamsLagHigh reads it): a series per owned raw
    partition, 0 once every record is routed and committed."""
    from prometheus_client.parser import text_string_to_metric_families

    _, _, exposition, _ = routed
    lag = {
        (sample.labels["topic"], sample.labels["partition"]): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "govpulse_streams_consumer_lag"
    }
    assert {topic for topic, _ in lag} == {catalog.raw_topic(t) for t in TYPES}
    assert set(lag.values()) == {0.0}


def test_garbage_bytes_are_dead_lettered_and_the_worker_keeps_going(routed, stack, read_topic):
    broker, _, _ = stack
    before = routed_now(broker.bootstrap)["complaint"]
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    # the last: its dead-letter copy (+ lineage headers) is over the output producer's limit
    huge = b"Z" * 999_900
    for payload in (b"", b"\x00", b"not avro at all", b"\x00\x7f\xff\xff\xffgarbage", huge):
        producer.produce(catalog.raw_topic("complaint"), payload, b"k")
    producer.flush(10)
    deadline = time.monotonic() + 30
    while routed_now(broker.bootstrap)["complaint"]["dlq"] < before["dlq"] + GARBAGE:
        assert time.monotonic() < deadline, "garbage was not dead-lettered"
        time.sleep(0.5)
    dead = [
        m for m in read_topic(broker.bootstrap, catalog.dlq_topic("complaint")) if m.key() == b"k"
    ]
    assert len(dead) == GARBAGE
    reasons = Counter(dict(m.headers())["reason"].decode() for m in dead)
    assert reasons == {"undecodable": 4, "unknown_schema": 1}
    omitted = [m for m in dead if "payload_omitted" in dict(m.headers())]
    assert [(m.value(), dict(m.headers())["payload_omitted"]) for m in omitted] == [
        (b"", str(len(huge)).encode())
    ]
    assert routed[3].proc.poll() is None  # still running


def _clean_ids(bootstrap: str, read_topic) -> Counter:
    """event_id → how many times it is in clean.* (keys are event ids)."""
    return Counter(
        m.key().decode() for t in TYPES for m in read_topic(bootstrap, catalog.clean_topic(t))
    )


def _expected_clean(report: dict) -> int:
    return sum(
        t["sent"]
        - sum(n for k, n in t["defects"].items() if Defect(k).outcome is not Outcome.CLEAN)
        for t in report["by_type"].values()
    )


def test_a_worker_killed_mid_stream_loses_nothing_and_keeps_its_dedup_state(
    routed, stack, read_topic
):
    first_report, _, _, first_worker = routed
    broker, env, workdir = stack
    running = subprocess.Popen(
        [
            *GOVPULSE,
            "simulate",
            "--flat",
            "--json",
            "--rate",
            "3000",
            "--duration",
            "8",
            "--dirty-share",
            "0.3",
            "--seed",
            "9",
        ],
        env={**env, "GOVPULSE_METRICS_PORT": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    time.sleep(4)
    first_worker.stop(signal.SIGKILL)
    second = Child(["streams"], env, workdir / "worker2.log")
    try:
        out, _ = running.communicate(timeout=60)
        assert running.returncode == 0
        second_report = json.loads(out)
        deadline = time.monotonic() + 150
        expected = _expected_clean(first_report) + _expected_clean(second_report)
        while len(ids := _clean_ids(broker.bootstrap, read_topic)) < expected:
            assert time.monotonic() < deadline, f"{len(ids)} of {expected} clean ids"
            time.sleep(0.5)
        assert len(ids) == expected  # no clean record lost, none invented
        # exactly once: what the killed worker wrote past its last commit is read back by
        # its successor and not routed again — one outcome record per raw record
        assert sum(n - 1 for n in ids.values()) == 0
        wait_until(
            lambda: all(c["raw"] == c["clean"] + c["dlq"] + c["dup"] for c in routed_now(
                broker.bootstrap).values()), 60, "one outcome per raw record")  # fmt: skip

        # the restarted worker recovered the dedup table: old events resent are dropped
        topic = catalog.raw_topic("service_request")
        old = read_topic(broker.bootstrap, topic)[:100]
        before = routed_now(broker.bootstrap)["service_request"]
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        for message in old:
            producer.produce(topic, message.value(), message.key())
        producer.flush(10)
        deadline = time.monotonic() + 60
        while (after := routed_now(broker.bootstrap)["service_request"])["dup"] + after[
            "clean"
        ] + after["dlq"] < before["raw"] + 100:
            assert time.monotonic() < deadline, f"resent records not routed: {after}"
            time.sleep(0.25)
        clean_bound = sum(1 for m in old if m.key().decode() in ids)
        assert after["clean"] == before["clean"]
        assert after["dup"] - before["dup"] == clean_bound
    finally:
        second.stop()
