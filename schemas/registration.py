"""`govpulse schemas register` and `govpulse schemas check`: the contracts meet the registry.

`check` is the CI gate for a changed `.avsc`: it decides compatibility locally with Apache
Avro's checker (`govpulse.schemas.compatibility`), so its message names the field to fix — the
registry's own test endpoint only answers yes or no. Offline, it checks the versions on disk
against each other; online, the latest file against every version the registry holds under
the subject's compatibility level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from govpulse.schemas import catalog
from govpulse.schemas.compatibility import check

PROJECT_LEVEL = "BACKWARD_TRANSITIVE"
SUBJECT_NOT_FOUND = 40401
SUBJECT_LEVEL_NOT_SET = 40408


@dataclass(frozen=True)
class Registered:
    subject: str
    schema_id: int
    version: int


@dataclass
class CheckResult:
    """Per subject: the level used and why the new schema may not follow (empty = fine)."""

    subject: str
    level: str
    compared_with: int
    problems: list[str] = field(default_factory=list)


def _contracts(schema_dir: Path | None) -> list[tuple[str, list[str]]]:
    """(subject, schema texts oldest first) for every raw and clean contract."""
    found = []
    for event_type in catalog.EVENT_TYPES:
        raw = [
            catalog.raw_schema_json(event_type, v, schema_dir)
            for v in catalog.versions(event_type, schema_dir)
        ]
        found.append((catalog.subject(catalog.raw_topic(event_type)), raw))
        found.append(
            (
                catalog.subject(catalog.clean_topic(event_type)),
                [catalog.clean_schema_json(event_type, schema_dir)],
            )
        )
    return found


def register_all(client: SchemaRegistryClient) -> list[Registered]:
    """Register every version of every contract in order; set BACKWARD_TRANSITIVE per subject.

    Idempotent: a schema already registered keeps its id and version.
    """
    done = []
    for subject, texts in _contracts(None):
        client.set_compatibility(subject, PROJECT_LEVEL)
        for text in texts:
            schema_id = client.register_schema(subject, Schema(text, "AVRO"))
            version = client.lookup_schema(subject, Schema(text, "AVRO")).version
            if version is None:
                raise ValueError(f"the registry gave {subject} id {schema_id} no version")
            done.append(Registered(subject, schema_id, version))
    return done


def _registered_text(client: SchemaRegistryClient, subject: str, version: int) -> str:
    """The schema text the registry holds as `subject`'s `version`."""
    text = client.get_version(subject, version).schema.schema_str
    if text is None:
        raise ValueError(f"the registry gave {subject} v{version} no schema text")
    return text


def subject_level(client: SchemaRegistryClient, subject: str) -> str:
    """The subject's compatibility level, falling back to the global one."""
    try:
        return client.get_compatibility(subject)
    except SchemaRegistryError as error:
        if error.error_code not in (SUBJECT_NOT_FOUND, SUBJECT_LEVEL_NOT_SET):
            raise
        return client.get_compatibility()


def check_against_registry(
    client: SchemaRegistryClient, schema_dir: Path | None = None
) -> list[CheckResult]:
    """The latest contract on disk of each subject against what the registry holds."""
    results = []
    for subject, texts in _contracts(schema_dir):
        level = subject_level(client, subject)
        try:
            versions = client.get_versions(subject)
        except SchemaRegistryError as error:
            if error.error_code != SUBJECT_NOT_FOUND:
                raise
            versions = []
        existing = [_registered_text(client, subject, v) for v in sorted(versions)]
        results.append(
            CheckResult(subject, level, len(existing), check(texts[-1], existing, level))
        )
    return results


def check_on_disk(schema_dir: Path | None = None, level: str = PROJECT_LEVEL) -> list[CheckResult]:
    """Each raw type's newest file against its older files, without a registry."""
    results = []
    for subject, texts in _contracts(schema_dir):
        if subject.startswith("raw."):
            results.append(
                CheckResult(subject, level, len(texts) - 1, check(texts[-1], texts[:-1], level))
            )
    return results
