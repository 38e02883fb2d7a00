"""The Avro contracts: every schema parses, is documented, carries the envelope and evolves."""

from __future__ import annotations

import io
import json
import shutil
from importlib.resources import files

import avro.schema
import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer

from govpulse.schemas import catalog
from govpulse.schemas.compatibility import check
from tests.support import examples

TYPES = catalog.EVENT_TYPES
RAW = [(t, v) for t in TYPES for v in catalog.versions(t)]


def _all_fields(schema: dict) -> list[dict]:
    return schema["fields"]


@pytest.mark.parametrize(("event_type", "version"), RAW)
def test_every_raw_schema_parses_with_fastavro_and_apache_avro(event_type, version):
    parse_schema(catalog.raw_schema(event_type, version))
    parsed = avro.schema.parse(catalog.raw_schema_json(event_type, version))
    assert parsed.fullname.startswith(catalog.NAMESPACE)


@pytest.mark.parametrize("event_type", TYPES)
def test_every_clean_schema_parses_in_the_clean_namespace(event_type):
    parse_schema(catalog.clean_schema(event_type))
    assert (
        avro.schema.parse(catalog.clean_schema_json(event_type)).namespace == "th.go.govpulse.clean"
    )


@pytest.mark.parametrize("event_type", TYPES)
def test_every_field_of_every_schema_has_a_doc(event_type):
    schemas = [catalog.raw_schema(event_type, v) for v in catalog.versions(event_type)]
    for schema in [*schemas, catalog.clean_schema(event_type)]:
        undocumented = [f["name"] for f in _all_fields(schema) if not f.get("doc")]
        assert undocumented == [], f"{schema['name']}: {undocumented}"


@pytest.mark.parametrize(("event_type", "version"), RAW)
def test_every_event_starts_with_the_envelope(event_type, version):
    envelope = [f["name"] for f in catalog.envelope_fields()]
    names = [f["name"] for f in catalog.raw_schema(event_type, version)["fields"]]
    assert names[: len(envelope)] == envelope
    assert len(set(names)) == len(names)


def _enums(node) -> list[dict]:
    if isinstance(node, dict):
        found = [node] if node.get("type") == "enum" else []
        return found + [e for value in node.values() for e in _enums(value)]
    if isinstance(node, list):
        return [e for item in node for e in _enums(item)]
    return []


@pytest.mark.parametrize("event_type", TYPES)
def test_every_enum_has_a_default_for_forward_compatibility(event_type):
    enums = _enums(catalog.raw_schema(event_type))
    assert enums
    for enum in enums:
        assert enum.get("default") in enum["symbols"], enum["name"]


def test_personal_fields_are_tagged_and_found_by_their_pii_attribute():
    assert catalog.pii_fields(catalog.raw_schema("service_request")) == {
        "citizen_id": "national_id",
        "applicant_phone": "phone",
    }
    assert catalog.pii_fields(catalog.raw_schema("complaint")) == {
        "complainant_id": "national_id",
        "complainant_phone": "phone",
    }
    assert catalog.pii_fields(catalog.raw_schema("digital_center_activity")) == {
        "participant_id": "national_id"
    }


@pytest.mark.parametrize("event_type", TYPES)
def test_clean_schema_has_no_personal_field_only_pseudonyms(event_type):
    raw_pii = catalog.pii_fields(catalog.raw_schema(event_type))
    clean = {f["name"] for f in catalog.clean_schema(event_type)["fields"]}
    assert not clean & set(raw_pii)
    assert {name + catalog.PSEUDONYM_SUFFIX for name in raw_pii} <= clean
    assert {"province_name_th", "ministry_code", "region_code", "processed_at"} <= clean


def test_tagging_a_new_field_pii_removes_it_from_the_clean_schema(tmp_path):
    folder = tmp_path / "avro"
    shutil.copytree(str(files("govpulse.schemas.avro")), folder)
    v2 = folder / "dataset_update.v2.avsc"
    schema = json.loads(v2.read_text())
    schema["fields"].append(
        {"name": "email", "type": ["null", "string"], "default": None, "pii": "email", "doc": "x"}
    )
    v2.write_text(json.dumps(schema))
    names = {f["name"] for f in catalog.clean_schema("dataset_update", folder)["fields"]}
    assert "email_pseudonym" in names and "email" not in names


def _roundtrip(schema: dict, record: dict, reader: dict | None = None) -> dict:
    buffer = io.BytesIO()
    schemaless_writer(buffer, parse_schema(schema), record)
    buffer.seek(0)
    return schemaless_reader(buffer, parse_schema(schema), parse_schema(reader) if reader else None)


@pytest.mark.parametrize("event_type", TYPES)
def test_example_record_roundtrips_through_the_latest_schema(event_type):
    record = examples.example(event_type)
    decoded = _roundtrip(catalog.raw_schema(event_type), record)
    assert str(decoded["event_id"]) == record["event_id"]
    assert decoded["province_code"] == record["province_code"]
    assert decoded["occurred_at"] == record["occurred_at"]


@pytest.mark.parametrize("event_type", TYPES)
def test_v2_reads_data_written_with_v1_filling_the_new_field_with_its_default(event_type):
    v1, v2 = catalog.raw_schema(event_type, 1), catalog.raw_schema(event_type, 2)
    record = {k: v for k, v in examples.example(event_type).items()
              if k in {f["name"] for f in v1["fields"]}}  # fmt: skip
    decoded = _roundtrip(v1, record, reader=v2)
    added = [f for f in v2["fields"] if f["name"] not in record]
    assert added
    for field in added:
        assert decoded[field["name"]] == field["default"]


@pytest.mark.parametrize("event_type", TYPES)
def test_v1_to_v2_passes_backward_transitive(event_type):
    v1, v2 = (catalog.raw_schema_json(event_type, v) for v in (1, 2))
    assert check(v2, [v1], "BACKWARD_TRANSITIVE") == []


def test_unknown_type_or_version_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown event type"):
        catalog.raw_schema("parking_ticket")
    with pytest.raises(ValueError, match="no schema version 9"):
        catalog.raw_schema("complaint", 9)


def test_registered_text_is_one_self_contained_json_document():
    text = catalog.raw_schema_json("dataset_update")
    assert json.loads(text)["fields"][0]["name"] == "event_id"
    assert "พ.ศ." in text  # Thai kept readable, not \\u-escaped
