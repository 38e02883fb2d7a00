"""The embedded registry against confluent-kafka's own SchemaRegistryClient."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError

pytestmark = pytest.mark.integration


def avro(*fields: dict, name: str = "Event") -> Schema:
    return Schema(json.dumps({"type": "record", "name": name, "fields": list(fields)}), "AVRO")


ID = {"name": "event_id", "type": "string"}
PROVINCE = {"name": "province_code", "type": "string"}
V1 = avro(ID, PROVINCE)
V2 = avro(ID, PROVINCE, {"name": "district_code", "type": ["null", "string"], "default": None})
BREAKING = avro(ID, PROVINCE, {"name": "district_code", "type": "string"})


@pytest.fixture
def client(registry) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": registry.url})


def _post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_register_and_fetch_by_id_and_by_subject_version(client, unique_name):
    subject = unique_name("raw.test") + "-value"
    first = client.register_schema(subject, V1)
    second = client.register_schema(subject, V2)
    assert first != second
    assert json.loads(client.get_schema(first).schema_str) == json.loads(V1.schema_str)
    assert client.get_version(subject, 2).schema_id == second
    latest = client.get_latest_version(subject)
    assert (latest.version, latest.schema_id) == (2, second)
    assert client.get_versions(subject) == [1, 2]
    assert subject in client.get_subjects()


def test_same_schema_again_keeps_its_id_even_with_other_whitespace(client, unique_name):
    subject = unique_name("s") + "-value"
    first = client.register_schema(subject, V1)
    spaced = Schema(json.dumps(json.loads(V1.schema_str), indent=4), "AVRO")
    fresh = SchemaRegistryClient({"url": client._rest_client.base_urls[0]})
    assert fresh.register_schema(subject, spaced) == first
    assert fresh.get_versions(subject) == [1]
    other_subject = unique_name("t") + "-value"
    assert fresh.register_schema(other_subject, V1) == first  # ids are global, like Confluent's


def test_incompatible_change_is_refused_with_409_under_backward(client, unique_name):
    subject = unique_name("s") + "-value"
    client.register_schema(subject, V1)
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema(subject, BREAKING)
    assert refused.value.http_status_code == 409
    assert "district_code" in refused.value.error_message
    assert client.get_versions(subject) == [1]


def test_compatibility_is_set_per_subject_and_globally(client, unique_name):
    subject = unique_name("s") + "-value"
    client.register_schema(subject, V1)
    assert client.get_compatibility() == "BACKWARD"
    client.set_compatibility(subject_name=subject, level="NONE")
    assert client.get_compatibility(subject) == "NONE"
    assert client.register_schema(subject, BREAKING) > 0  # NONE lets it in
    other = unique_name("s") + "-value"
    with pytest.raises(SchemaRegistryError) as not_configured:
        client.get_compatibility(other)
    assert not_configured.value.error_code == 40408


def test_test_compatibility_answers_without_registering(client, unique_name):
    subject = unique_name("s") + "-value"
    client.register_schema(subject, V1)
    assert client.test_compatibility(subject, V2) is True
    assert client.test_compatibility(subject, BREAKING) is False
    assert client.test_compatibility_all_versions(subject, V2) is True
    assert client.get_versions(subject) == [1]


def test_lookup_finds_the_registered_version(client, unique_name):
    subject = unique_name("s") + "-value"
    schema_id = client.register_schema(subject, V1)
    found = client.lookup_schema(subject, V1)
    assert (found.schema_id, found.version) == (schema_id, 1)


def test_ids_and_versions_survive_a_restart(registry, unique_name):
    subject = unique_name("durable") + "-value"
    before = SchemaRegistryClient({"url": registry.url})
    ids = [before.register_schema(subject, V1), before.register_schema(subject, V2)]
    registry.restart()
    after = SchemaRegistryClient({"url": registry.url})
    assert [after.get_version(subject, v).schema_id for v in (1, 2)] == ids
    assert json.loads(after.get_schema(ids[1]).schema_str) == json.loads(V2.schema_str)
    assert after.register_schema(subject, V2) == ids[1]


def test_unknown_subject_and_version_use_confluent_error_codes(client, registry, unique_name):
    with pytest.raises(SchemaRegistryError) as missing:
        client.get_latest_version(unique_name("nobody"))
    assert missing.value.error_code == 40401
    subject = unique_name("s") + "-value"
    client.register_schema(subject, V1)
    with pytest.raises(SchemaRegistryError) as no_version:
        client.get_version(subject, 7)
    assert no_version.value.error_code == 40402
    with pytest.raises(SchemaRegistryError) as no_id:
        client.get_schema(987654)
    assert no_id.value.error_code == 40403


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe",
        b'["a list"]',
        json.dumps({"schema": '{"type": "record", "name": "R"}'}).encode(),  # no fields
        json.dumps({"schema": '{"type": "nonsense"}'}).encode(),
        json.dumps({"schema": "x" * 10_000}).encode(),
        json.dumps({"schema": '"string"', "schemaType": "PROTOBUF"}).encode(),
    ],
)
def test_malformed_requests_get_the_confluent_error_shape_not_500(registry, unique_name, body):
    status, reply = _post(f"{registry.url}/subjects/{unique_name('bad')}/versions", body)
    assert status == 422
    assert reply["error_code"] == 42201
    assert isinstance(reply["message"], str) and reply["message"]


def test_invalid_compatibility_level_is_refused(client):
    with pytest.raises(SchemaRegistryError) as refused:
        client.set_compatibility(level="SIDEWAYS")
    assert refused.value.error_code == 42203
