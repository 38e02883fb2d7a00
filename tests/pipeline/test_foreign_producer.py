"""Records from a producer that is not ours — a plain confluent-kafka producer writing what the
schemas admit — through a stream worker and a sink, reconciled by `govpulse audit`.

The mix is the data-correctness issue's list: an event older than the retention, one UUID in
four spellings, mistyped and printed IDs in free text, an abolished district code, a village
code that does not exist, a decimal ClickHouse refuses, garbage and unknown schema ids, one
event sent to two raw partitions — plus valid records. Every record must end up stored once,
dead-lettered with its reason, dropped as a duplicate, or outside retention; ClickHouse must
hold no ID-shaped number anywhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema
from fastavro import parse_schema

from govpulse.embedded.process import free_port
from govpulse.offsets import topic_ends
from govpulse.registry import registry_client
from govpulse.schemas import catalog, reference
from govpulse.schemas.wire_format import encode
from tests.support import examples
from tests.support.pipeline import Child, audit, routed, sink_caught_up, wait_until

pytestmark = pytest.mark.integration
TYPES = catalog.EVENT_TYPES
VALID_ID = "1101700230708"
ID = "6e2f4a1b-3c8d-4e6f-9b2e-0d3c4b5a6f7e"


def legacy_district() -> tuple[str, str, str]:
    """(abolished district code, its one successor, the successor's province)."""
    rows = json.loads(Path(reference.__file__).with_name("abolished.json").read_text())["rows"]
    districts = reference.districts()
    for row in rows:
        if row["level"] == "district" and len(row["successors"]) == 1:
            successor = row["successors"][0]
            if successor in districts:
                return row["code"], successor, districts[successor].province_code
    raise AssertionError("no abolished district with one successor in the reference data")


def record(event_type: str, **changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    base = {**examples.example(event_type), "event_id": str(uuid.uuid4())}
    return {**base, "occurred_at": now, "produced_at": now, **changes}


def mix() -> list[tuple[str, dict[str, Any] | bytes, str]]:
    """(event type, record or raw bytes, the outcome expected) — the outcome is documentation
    and a check of the audit's reason counts."""
    old, _, province = legacy_district()
    subjects = [
        "ร้องเรียน เลขบัตร 1101700203451 ผิด",  # checksum fails: still personal data
        "เลขบัตร 1-1017-00230-70-8 ครับ",  # printed
        "บัตร ๑๑๐๑๗๐๐๒๓๐๗๐๘",  # Thai digits
        "บัตร 1\u00a01017\u00a000230\u00a070\u00a08",  # NBSP separators
        "เลข 1-1017-\n00230-70-8 โทร 0812345678",  # broken across a line
    ]
    cases: list[tuple[str, dict[str, Any] | bytes, str]] = []
    cases += [(t, record(t), "clean") for t in TYPES for _ in range(4)]
    cases += [("complaint", record("complaint", subject=s), "clean") for s in subjects]
    cases.append(
        ("service_request", record("service_request", occurred_at=datetime(2023, 3, 1, tzinfo=UTC)),
         "outside_retention")
    )  # fmt: skip
    spellings = [ID, ID.upper(), ID.replace("-", ""), "{" + ID + "}"]
    cases += [("complaint", record("complaint", event_id=s), "clean") for s in spellings[:1]]
    cases += [("complaint", record("complaint", event_id=s), "duplicate") for s in spellings[1:]]
    cases.append(
        ("service_request", record("service_request", district_code=old, province_code=province),
         "clean")
    )  # fmt: skip
    cases.append(
        ("net_pracharat_usage", record("net_pracharat_usage", village_code="99999999"),
         "unknown_subdistrict")
    )  # fmt: skip
    wide = b"\x7f" + b"\xff" * 15
    cases.append(("service_request", record("service_request", fee_thb=wide), "store_rejected"))
    # schema id 2^31-1: unknown to the session's registry whatever the other modules registered
    # before this one (id 7 was, once they had registered seven schemas)
    cases.append(("complaint", b"\x00\x7f\xff\xff\xffnot avro at all", "unknown_schema"))
    cases.append(("complaint", b"garbage without framing", "undecodable"))
    cases.append(
        ("complaint", record("complaint", complainant_id="1101700203451"), "invalid_national_id")
    )
    return cases


def produce_mix(bootstrap: str, registry_url: str) -> list[tuple[str, dict | bytes, str]]:
    registry = registry_client(registry_url)
    ids, parsed = {}, {}
    for event_type in TYPES:
        text = catalog.raw_schema_json(event_type)
        topic = catalog.raw_topic(event_type)
        ids[event_type] = registry.register_schema(catalog.subject(topic), Schema(text, "AVRO"))
        parsed[event_type] = parse_schema(json.loads(text))
    producer = Producer({"bootstrap.servers": bootstrap})  # a plain client, not our SDK
    cases = mix()
    for event_type, value, _ in cases:
        if isinstance(value, dict):
            key = value["event_id"].encode()
            value = encode(ids[event_type], parsed[event_type], value)
        else:
            key = None
        producer.produce(catalog.raw_topic(event_type), value, key)
    # one event on two raw partitions, as two agencies' clients with different partitioners
    # (librdkafka's CRC32, Java's murmur2) would send it: stored once whoever routes it
    twice = record("dataset_update")
    framed = encode(ids["dataset_update"], parsed["dataset_update"], twice)
    for partition, expected in ((0, "clean"), (1, "duplicate")):
        topic = catalog.raw_topic("dataset_update")
        producer.produce(topic, framed, twice["event_id"].encode(), partition)
        cases.append(("dataset_update", twice, expected))
    assert producer.flush(30) == 0
    return cases


SCAN = """
import json, sys
from govpulse.clickhouse import make_client
from govpulse.streams.pii import redact_ids  # the one definition of an ID-shaped number
client = make_client(sys.argv[1])
found, tables = [], {}
columns = client.query(
    "SELECT table, name FROM system.columns WHERE database = currentDatabase() "
    "AND type LIKE '%String%' AND table NOT LIKE '%_avro' AND name != 'event_id' "
    "AND table != 'schema_migrations'"  # sha256 checksums of our own DDL, hex
).result_rows
for table, column in columns:
    values = client.query(f"SELECT DISTINCT toString(`{column}`) FROM `{table}`").result_rows
    found += [(table, column, v) for (v,) in values if v and redact_ids(v) != v]
for event_type in sys.argv[2].split(","):
    rows, ids = client.query(
        f"SELECT count(), uniqExact(event_id) FROM events_{event_type}"
    ).result_rows[0]
    tables[event_type] = [int(rows), int(ids)]
subjects = [r[0] for r in client.query("SELECT subject FROM events_complaint").result_rows]
places = client.query(
    "SELECT district_code, province_code, defects_fixed FROM events_service_request "
    "WHERE has(defects_fixed, 'legacy_district')"
).result_rows
print(json.dumps({"id_shaped": found, "tables": tables, "subjects": subjects,
                  "repaired": [[d, p, list(f)] for d, p, f in places]}))
"""


@pytest.fixture(scope="module")
def outcome(isolated_pipeline, registry, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("foreign")
    broker, env = isolated_pipeline(workdir)
    dsn = f"chdb://{workdir / 'clickhouse'}"
    env["GOVPULSE_CLICKHOUSE_DSN"] = dsn
    worker = Child(["streams"], {**env, "GOVPULSE_METRICS_PORT": str(free_port())}, workdir / "w")
    sink = Child(["sink"], {**env, "GOVPULSE_METRICS_PORT": str(free_port())}, workdir / "s")
    try:
        raw_topics = [catalog.raw_topic(t) for t in TYPES]
        wait_until(
            lambda: len({t for t, _ in topic_ends(broker.bootstrap, raw_topics)}) == len(TYPES),
            60,
            "the worker to create the topics",
        )
        cases = produce_mix(broker.bootstrap, registry.url)

        def all_routed() -> bool:
            counts = routed(broker.bootstrap).values()
            done = all(c["clean"] + c["dlq"] + c["dup"] >= c["raw"] for c in counts)
            return done and sum(c["raw"] for c in counts) == len(cases)

        wait_until(all_routed, 180, "the stream worker to route every record")
        wait_until(lambda: sink_caught_up(broker.bootstrap), 90, "the sink to commit everything")
        assert sink.stop() == 0, sink.log.read_text()[-3000:]
        code, result, stderr = audit(env)
        scan = subprocess.run(
            [sys.executable, "-c", SCAN, dsn, ",".join(TYPES)],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        assert scan.returncode == 0, scan.stderr
        yield cases, (code, result, stderr), json.loads(scan.stdout)
    finally:
        worker.stop()
        sink.stop()


def test_the_audit_balances_every_record_of_a_foreign_producer(outcome):
    cases, (code, result, stderr), _ = outcome
    assert code == 0, stderr
    assert result["ok"]
    totals = {"produced": 0, "clean": 0, "dead_lettered": 0, "duplicates": 0, "unaccounted": 0}
    reasons: dict[str, int] = {}
    for counts in result["types"].values():
        for name in totals:
            totals[name] += counts[name]
        for reason, n in counts["dead_letter_reasons"].items():
            reasons[reason] = reasons.get(reason, 0) + n
    assert totals["produced"] == len(cases) and totals["unaccounted"] == 0
    expected = [outcome for _, _, outcome in cases]
    assert totals["duplicates"] == expected.count("duplicate")
    dead = {r: expected.count(r) for r in set(expected) - {"clean", "duplicate", "store_rejected"}}
    assert reasons == dead, result["types"]["complaint"]
    assert totals["clean"] == expected.count("clean") + expected.count("store_rejected")
    refused = sum(counts["stored_refused"] for counts in result["types"].values())
    assert refused == expected.count("store_rejected") == 1


def test_clickhouse_holds_each_event_once_and_no_id_shaped_number(outcome):
    _, _, scan = outcome
    for event_type, (rows, ids) in scan["tables"].items():
        assert rows == ids, event_type
    assert scan["id_shaped"] == []
    assert sum(subject.count("[national_id]") for subject in scan["subjects"]) == 5
    assert any("0812345678" in subject for subject in scan["subjects"])  # a phone is not an ID


def test_an_abolished_district_is_stored_under_its_successor(outcome):
    _, successor, province = legacy_district()
    _, _, scan = outcome
    assert [row[:2] for row in scan["repaired"]] == [[successor, province]]
