"""The SDK gives the stream worker's verdict at send(): same rule code, same answer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from govpulse.producers.agency_producer import AgencyProducer
from govpulse.producers.verdict import RecordRejected
from govpulse.registry import registry_client
from govpulse.schemas import catalog
from govpulse.schemas.writer_schemas import WriterSchemas, register_clean_schema
from govpulse.streams.rules.pseudonymise import PseudonymKey
from govpulse.streams.transform import Cleaned, Transformer
from govpulse.streams.validate import DAY_MS
from tests.support import examples

pytestmark = pytest.mark.integration
TYPES = catalog.EVENT_TYPES
TOLERANCE_S, RETENTION_DAYS = 300, 400  # the settings' defaults, which both sides read


@pytest.fixture(scope="module")
def producers(broker, registry):
    checking = AgencyProducer(bootstrap_servers=broker.bootstrap, registry_url=registry.url)
    plain = AgencyProducer(
        bootstrap_servers=broker.bootstrap, registry_url=registry.url, check_rules=False
    )
    yield checking, plain
    checking.close(5)
    plain.close(5)


@pytest.fixture(scope="module")
def workers(registry) -> dict[str, Transformer]:
    """The worker's transformers, reading writer schemas from the registry as it does."""
    client = registry_client(registry.url)
    lookup = WriterSchemas(client)
    key = PseudonymKey("k-test", b"w" * 32)
    return {
        t: Transformer(
            t, lookup, register_clean_schema(client, t), key, TOLERANCE_S * 1000,
            RETENTION_DAYS * DAY_MS,
        )
        for t in TYPES
    }  # fmt: skip


def fresh(event_type: str, **changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    record = {**examples.example(event_type), "event_id": str(uuid.uuid4())}
    return {**record, "occurred_at": now, "produced_at": now, **changes}


@pytest.mark.parametrize(
    ("changes", "reason", "field"),
    [
        ({"citizen_id": "1101700203451"}, "invalid_national_id", "citizen_id"),
        ({"agency_code": "MOI-NOPE"}, "unknown_agency", "agency_code"),
        ({"district_code": "1001"}, "unknown_district", "district_code"),  # Bangkok's, not 76
        ({"province_code": "99"}, "unknown_province", "province_code"),
        (
            {"occurred_at": datetime.now(UTC) + timedelta(hours=2)},
            "future_timestamp",
            "occurred_at",
        ),
        (
            {"occurred_at": datetime(2020, 1, 1, tzinfo=UTC)},
            "outside_retention",
            "occurred_at",
        ),
    ],
)
def test_send_refuses_what_the_worker_would_dead_letter_naming_field_and_rule(
    producers, changes, reason, field
):
    checking, plain = producers
    record = fresh("service_request", **changes)
    sent = checking.stats.sent
    with pytest.raises(RecordRejected) as refused:
        checking.send("service_request", record)
    assert refused.value.reason == reason
    assert reason in str(refused.value) and field in str(refused.value)
    assert checking.stats.sent == sent  # nothing queued
    plain.send("service_request", record)  # a back-fill may send it anyway


def test_send_keys_a_record_by_its_canonical_event_id(producers):
    checking, _ = producers
    upper = str(uuid.uuid4()).upper()
    _, key, _ = checking.prepare("complaint", fresh("complaint", event_id=upper))
    assert key == upper.lower()


# -- any record the schema admits: the SDK's verdict is the worker's -----------------------------
def _admitted(field: dict[str, Any]) -> st.SearchStrategy[Any]:
    kind = field["type"]
    if isinstance(kind, list):
        other = next(t for t in kind if t != "null")
        return st.none() | _admitted({**field, "type": other})
    if isinstance(kind, dict):
        logical = kind.get("logicalType")
        if logical == "timestamp-millis":
            return st.datetimes(
                min_value=datetime(1900, 1, 1),
                max_value=datetime(2700, 1, 1),
                timezones=st.just(UTC),
            )
        if logical == "decimal":
            return st.decimals(min_value=-(10**9), max_value=10**9, places=2)
        if logical == "uuid":
            return (
                st.uuids().map(str) | st.uuids().map(lambda u: u.hex.upper()) | st.text(max_size=5)
            )
        if kind["type"] == "enum":
            return st.sampled_from(kind["symbols"])
        return _admitted({**field, "type": kind["type"]})
    return {
        "string": st.text(alphabet="0123456789๐๑๒-ABCกข \u200b", max_size=16),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**40), 2**40),
        "boolean": st.booleans(),
        "float": st.floats(width=32, allow_nan=False),
        "double": st.floats(allow_nan=False),
        "bytes": st.binary(max_size=8),
    }[kind]


@st.composite
def admitted_records(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A valid example with any of its fields replaced by anything its type admits."""
    event_type = draw(st.sampled_from(TYPES))
    record = fresh(event_type)
    for field in catalog.raw_schema(event_type)["fields"]:
        if field["name"] != "event_type" and draw(st.integers(0, 4)) == 0:
            record[field["name"]] = draw(_admitted(field))
    return event_type, record


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(admitted_records())
def test_for_any_record_the_sdk_verdict_is_the_worker_verdict(producers, workers, case):
    checking, plain = producers
    event_type, record = case
    try:
        _, _, value = plain.prepare(event_type, record)
    except ValueError:
        return  # not of the schema's shape: never sent, so the worker never judges it
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    worker = workers[event_type].process(value, 0, 0, now_ms)
    try:
        checking.prepare(event_type, record)
        sdk = None
    except RecordRejected as refused:
        sdk = refused.reason
    assert sdk == (None if isinstance(worker, Cleaned) else worker.reason)
