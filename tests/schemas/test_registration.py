"""`govpulse schemas register` / `check` against the real registry."""

from __future__ import annotations

import json
import shutil
from importlib.resources import files

import pytest
from click.testing import CliRunner
from confluent_kafka.schema_registry import SchemaRegistryClient

from govpulse.cli import main
from govpulse.schemas import catalog
from govpulse.schemas.registration import check_against_registry, register_all

pytestmark = pytest.mark.integration


def test_register_puts_every_version_under_backward_transitive_and_is_idempotent(registry):
    client = SchemaRegistryClient({"url": registry.url})
    first = register_all(client)
    again = register_all(SchemaRegistryClient({"url": registry.url}))
    assert first == again
    assert len(first) == 15  # 5 types × (raw v1, raw v2, clean v1)
    subject = catalog.subject(catalog.raw_topic("complaint"))
    assert client.get_versions(subject)[:2] == [1, 2]
    assert client.get_compatibility(subject) == "BACKWARD_TRANSITIVE"
    assert all(r.problems == [] for r in check_against_registry(client))


def test_check_fails_naming_the_field_when_a_changed_file_breaks_what_is_registered(
    registry, tmp_path
):
    register_all(SchemaRegistryClient({"url": registry.url}))
    folder = tmp_path / "avro"
    shutil.copytree(str(files("govpulse.schemas.avro")), folder)
    v2 = folder / "service_request.v2.avsc"
    schema = json.loads(v2.read_text())
    next(f for f in schema["fields"] if f["name"] == "fee_thb")["type"] = "double"
    v2.write_text(json.dumps(schema))
    outcome = CliRunner().invoke(
        main,
        ["schemas", "check", "--registry-url", registry.url, "--schema-dir", str(folder)],
    )
    assert outcome.exit_code == 1
    assert "raw.service_request-value" in outcome.output
    assert "'fee_thb'" in outcome.output
    assert "clean.service_request-value" in outcome.output  # the clean contract changed too


def test_an_unreachable_registry_is_a_clear_error():
    outcome = CliRunner().invoke(
        main, ["schemas", "register", "--registry-url", "http://127.0.0.1:9"]
    )
    assert outcome.exit_code == 1
    assert "govpulse schemas register:" in outcome.output
