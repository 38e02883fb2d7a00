"""`govpulse schemas check --offline`: the CI gate for a changed .avsc, without a registry."""

from __future__ import annotations

import json
import shutil
from importlib.resources import files
from pathlib import Path

from click.testing import CliRunner

from govpulse.cli import main
from govpulse.schemas.registration import check_on_disk


def _copy_of_schemas(tmp_path: Path) -> Path:
    folder = tmp_path / "avro"
    shutil.copytree(str(files("govpulse.schemas.avro")), folder)
    return folder


def _add_version(folder: Path, event_type: str, change) -> None:
    latest = max(folder.glob(f"{event_type}.v*.avsc"))
    schema = json.loads(latest.read_text())
    change(schema["fields"])
    version = int(latest.stem.rsplit(".v", 1)[1]) + 1
    (folder / f"{event_type}.v{version}.avsc").write_text(json.dumps(schema, ensure_ascii=False))


def test_the_v1_to_v2_evolution_passes_the_gate():
    results = check_on_disk()
    assert len(results) == 5
    assert all(r.problems == [] and r.compared_with == 1 for r in results)
    outcome = CliRunner().invoke(main, ["schemas", "check", "--offline"])
    assert outcome.exit_code == 0, outcome.output
    assert outcome.output.count(" ok ") == 5


def test_a_new_required_field_fails_the_gate_naming_the_field(tmp_path):
    folder = _copy_of_schemas(tmp_path)
    _add_version(
        folder,
        "complaint",
        lambda fields: fields.append({"name": "officer_badge", "type": "string", "doc": "new"}),
    )
    outcome = CliRunner().invoke(main, ["schemas", "check", "--offline", "--schema-dir", folder])
    assert outcome.exit_code == 1
    assert "raw.complaint-value" in outcome.output and "incompatible" in outcome.output
    assert "'officer_badge'" in outcome.output
    assert "raw.service_request-value" in outcome.output  # the others are still reported


def test_a_changed_field_type_fails_against_every_older_version(tmp_path):
    folder = _copy_of_schemas(tmp_path)

    def retype(fields: list[dict]) -> None:
        next(f for f in fields if f["name"] == "sessions")["type"] = "string"

    _add_version(folder, "net_pracharat_usage", retype)
    [result] = [r for r in check_on_disk(folder) if r.subject.startswith("raw.net_pracharat")]
    assert result.compared_with == 2
    assert any("version 1" in p for p in result.problems)
    assert any("version 2" in p for p in result.problems)
    assert all("sessions" in p for p in result.problems)


def test_an_unreadable_schema_file_is_reported_not_a_traceback(tmp_path):
    folder = _copy_of_schemas(tmp_path)
    (folder / "dataset_update.v3.avsc").write_text("{not json")
    outcome = CliRunner().invoke(main, ["schemas", "check", "--offline", "--schema-dir", folder])
    assert outcome.exit_code == 2
    assert "dataset_update.v3.avsc" in outcome.output and "not valid JSON" in outcome.output
