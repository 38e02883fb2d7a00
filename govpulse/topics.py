"""The pipeline's Kafka topics, from one declarative file, applied idempotently to any Kafka.

`govpulse/topics.json` names every topic pattern with its partitions, replication and configs
(retention, cleanup policy, min.insync.replicas). `plan()` compares it with a cluster and
`apply()` closes the gap: it creates missing topics, sets configs that differ, and adds
partitions the file asks for. It never lowers a partition count (Kafka cannot remove
partitions: their records would go with them) and never changes a replication factor (that is
a reassignment of replicas between brokers, `kafka-reassign-partitions.sh`); both are reported.

Stream workers keep their de-duplication tables co-partitioned with `raw.<type>`, so all
topics of a type must have GOVPULSE_TOPIC_PARTITIONS partitions; `ensure_topics` (run by the
workers at start) creates missing ones from the same file and reports a count that differs,
naming the setting, instead of silently mis-routing.

Only client APIs every Kafka-protocol broker should answer are used: CreateTopics,
DescribeConfigs, IncrementalAlterConfigs (the legacy AlterConfigs is not: the embedded Tansu
broker refuses it) and CreatePartitions — which Tansu v0.6 refuses too, so adding partitions
there fails with a message saying so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib.resources import files
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from govpulse.offsets import record_counts
from govpulse.schemas import catalog
from govpulse.settings import SettingsError, env_name, get_settings

DEFAULT_APP_ID = "govpulse-streams"
MIN_ISR = "min.insync.replicas"


def pipeline_topics(event_types: tuple[str, ...] = catalog.EVENT_TYPES) -> list[str]:
    return [catalog.topic(s, event_type) for event_type in event_types for s in catalog.STAGES]


def stage_counts(
    bootstrap: str, stages: Sequence[str], event_types: Sequence[str], timeout: float = 30.0
) -> dict[str, int]:
    """stage → records in `<stage>.<type>` summed over `event_types` (raw, clean, dlq, dup)."""
    names = {s: [catalog.topic(s, t) for t in event_types] for s in stages}
    counts = record_counts(
        bootstrap, [name for topics in names.values() for name in topics], timeout
    )
    return {s: sum(counts[name] for name in topics) for s, topics in names.items()}


class TopicsFileError(SettingsError):
    """The topics file cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class TopicSpec:
    """What one topic should look like."""

    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str] = field(default_factory=dict)

    def with_replication(self, replication_factor: int) -> TopicSpec:
        """This spec with fewer copies; min.insync.replicas is capped so acks=all can succeed."""
        config = dict(self.config)
        if MIN_ISR in config and int(config[MIN_ISR]) > replication_factor:
            config[MIN_ISR] = str(replication_factor)
        return replace(self, replication_factor=replication_factor, config=config)


def packaged_file() -> Path:
    return Path(str(files("govpulse").joinpath("topics.json")))


def _config(values: object, where: str) -> dict[str, str]:
    if not isinstance(values, dict):
        raise TopicsFileError(f"{where}: config must be an object of topic configs")
    config = {}
    for key, value in values.items():
        if isinstance(value, bool):
            value = str(value).lower()
        if not isinstance(value, str | int | float):
            raise TopicsFileError(f"{where}: config {key!r} must be a string or a number")
        config[str(key)] = str(value)
    return config


def _count(value: object, where: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TopicsFileError(f"{where}: {what} must be a whole number >= 1, got {value!r}")
    return value


@dataclass(frozen=True)
class TopicsFile:
    """A topics file read and expanded: its defaults and every declared topic."""

    source: Path
    defaults: TopicSpec  # name "": what an undeclared topic gets
    topics: list[TopicSpec]

    def spec(self, name: str) -> TopicSpec:
        """The declared spec of `name`, else the defaults under that name."""
        for spec in self.topics:
            if spec.name == name:
                return spec
        return replace(self.defaults, name=name)


def read_topics_file(
    path: Path | None = None,
    *,
    partitions: int,
    app_id: str = DEFAULT_APP_ID,
    event_types: Sequence[str] = catalog.EVENT_TYPES,
) -> TopicsFile:
    """The file (default: the packaged one) with its patterns expanded, in file order.

    `partitions` is the count of topics that give none (GOVPULSE_TOPIC_PARTITIONS).
    """
    source = Path(path or packaged_file())
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TopicsFileError(f"topics file {source}: cannot read it: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise TopicsFileError(f"topics file {source}: not valid JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("topics"), list):
        raise TopicsFileError(f"topics file {source}: expected an object with a 'topics' list")
    defaults = document.get("defaults", {})
    where = f"topics file {source}, defaults"
    if not isinstance(defaults, dict):
        raise TopicsFileError(f"{where}: must be an object")
    base = TopicSpec(
        name="",
        partitions=partitions,
        replication_factor=_count(defaults.get("replication_factor", 1), where, "replicas"),
        config=_config(defaults.get("config", {}), where),
    )
    specs: dict[str, TopicSpec] = {}
    for number, entry in enumerate(document["topics"], start=1):
        where = f"topics file {source}, topic {number}"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise TopicsFileError(f"{where}: expected an object with a 'name'")
        unknown = set(entry) - {"name", "why", "partitions", "replication_factor", "config"}
        if unknown:
            raise TopicsFileError(f"{where} ({entry['name']}): unknown keys {sorted(unknown)}")
        pattern = entry["name"]
        count = _count(entry.get("partitions", partitions), where, "partitions")
        copies = _count(entry.get("replication_factor", base.replication_factor), where, "replicas")
        config = {**base.config, **_config(entry.get("config", {}), where)}
        for event_type in event_types if "{event_type}" in pattern else [""]:
            try:
                name = pattern.format(event_type=event_type, app_id=app_id)
            except (KeyError, IndexError, ValueError) as exc:
                raise TopicsFileError(
                    f"{where}: name {pattern!r} may only use {{event_type}} and {{app_id}} ({exc})"
                ) from None
            if name in specs:
                raise TopicsFileError(f"{where}: {name} is declared twice")
            specs[name] = TopicSpec(name, count, copies, config)
    return TopicsFile(source, base, list(specs.values()))


@dataclass
class TopicPlan:
    """What apply does to one topic; `error` is set when that could not be done, and `hint`
    says what to do about it (printed once however many topics share it)."""

    spec: TopicSpec
    exists: bool
    partitions_now: int | None = None
    replicas_now: int | None = None
    config_changes: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    add_partitions: tuple[int, int] | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    hint: str | None = None

    @property
    def create(self) -> bool:
        return not self.exists

    @property
    def changes(self) -> bool:
        return self.create or bool(self.config_changes) or self.add_partitions is not None

    def describe(self) -> str:
        """One line: what is (to be) done to this topic."""
        spec = self.spec
        if self.create:
            configs = ", ".join(f"{k}={v}" for k, v in sorted(spec.config.items()))
            what = (
                f"create: {_plural(spec.partitions, 'partition')} x "
                f"{_plural(spec.replication_factor, 'replica')}"
            )
            what += f"; {configs}" if configs else ""
        else:
            parts = [
                f"{key} {current if current is not None else '(unset)'} → {wanted}"
                for key, (current, wanted) in sorted(self.config_changes.items())
            ]
            if self.add_partitions:
                before, after = self.add_partitions
                parts.append(f"partitions {before} → {after} (new records' keys move)")
            what = "; ".join(parts) if parts else "unchanged"
        return what


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def admin_client(bootstrap: str, security: Mapping[str, Any] | None = None) -> AdminClient:
    """An AdminClient with this process's TLS/SASL settings unless `security` is given."""
    if security is None:
        from govpulse.kafka_config import client_config

        security = client_config()
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0, **security})


def _describe_configs(
    admin: AdminClient, names: Iterable[str], timeout: float
) -> dict[str, dict[str, str | None]]:
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
    if not resources:
        return {}
    found: dict[str, dict[str, str | None]] = {}
    for resource, future in admin.describe_configs(resources, request_timeout=timeout).items():
        entries = future.result(timeout)
        found[resource.name] = {key: entry.value for key, entry in entries.items()}
    return found


def plan(admin: AdminClient, specs: Sequence[TopicSpec], timeout: float = 30.0) -> list[TopicPlan]:
    """Compare `specs` with the cluster; nothing is changed."""
    metadata = admin.list_topics(timeout=timeout)
    brokers = len(metadata.brokers)
    existing = {s.name: metadata.topics[s.name] for s in specs if s.name in metadata.topics}
    configs = _describe_configs(admin, existing, timeout)
    plans = []
    for spec in specs:
        topic = existing.get(spec.name)
        if topic is None:
            item = TopicPlan(spec, exists=False)
            if spec.replication_factor > brokers:
                item.error = (
                    f"needs {_plural(spec.replication_factor, 'replica')}, the cluster has "
                    f"{_plural(brokers, 'broker')}"
                )
                item.hint = (
                    f"the file asks more replicas than there are brokers: start more brokers, "
                    f"or pass --replication-factor {brokers} on a small development Kafka"
                )
            plans.append(item)
            continue
        partitions = len(topic.partitions)
        replicas = min((len(p.replicas) for p in topic.partitions.values()), default=0)
        item = TopicPlan(spec, exists=True, partitions_now=partitions, replicas_now=replicas)
        current = configs.get(spec.name, {})
        for key, wanted in spec.config.items():
            if current.get(key) != wanted:
                item.config_changes[key] = (current.get(key), wanted)
        if spec.partitions > partitions:
            item.add_partitions = (partitions, spec.partitions)
        elif spec.partitions < partitions:
            item.notes.append(
                f"has {partitions} partitions, the file asks {spec.partitions}: left as is "
                "(Kafka cannot remove partitions; to shrink, create a new topic and replay)"
            )
        if replicas != spec.replication_factor:
            item.notes.append(
                f"has {replicas} replicas, the file asks {spec.replication_factor}: left as is "
                "(reassign replicas with kafka-reassign-partitions.sh)"
            )
        plans.append(item)
    return plans


_UNSUPPORTED_HINT = {
    "CreatePartitions": "recreate the topic with the new count (its records are lost), or "
    "run against Apache Kafka",
    "IncrementalAlterConfigs": "set the config with the broker's own tools",
    "CreateTopics": "create the topic with the broker's own tools",
}


def _explain(exc: BaseException, request: str) -> tuple[str, str | None]:
    """(error, hint) for a failed request; an API the broker lacks is named as such."""
    error = exc.args[0] if isinstance(exc, KafkaException) and exc.args else None
    if isinstance(error, KafkaError):
        if error.code() == KafkaError._UNSUPPORTED_FEATURE:
            return (
                f"the broker does not support {request} [{error.str()}]",
                f"the broker does not support {request} (the embedded Tansu broker does not; "
                f"Apache Kafka does): {_UNSUPPORTED_HINT[request]}",
            )
        return f"{request} failed: {error.str()}", None
    return f"{request} failed: {exc}", None


def apply(admin: AdminClient, plans: Sequence[TopicPlan], timeout: float = 30.0) -> None:
    """Carry out `plans` (from `plan()`); a step that fails sets that plan's `error`."""
    by_name = {p.spec.name: p for p in plans if p.error is None}
    create = [
        NewTopic(
            p.spec.name, p.spec.partitions, p.spec.replication_factor, config=dict(p.spec.config)
        )
        for p in by_name.values()
        if p.create
    ]
    if create:
        futures = admin.create_topics(
            create, operation_timeout=timeout, request_timeout=timeout
        ).items()
        for name, future in futures:
            try:
                future.result(timeout)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    by_name[name].error, by_name[name].hint = _explain(exc, "CreateTopics")
    alter = [
        ConfigResource(
            ResourceType.TOPIC,
            p.spec.name,
            incremental_configs=[
                ConfigEntry(key, wanted, incremental_operation=AlterConfigOpType.SET)
                for key, (_, wanted) in sorted(p.config_changes.items())
            ],
        )
        for p in by_name.values()
        if p.config_changes
    ]
    if alter:
        for resource, future in admin.incremental_alter_configs(
            alter, request_timeout=timeout
        ).items():
            try:
                future.result(timeout)
            except KafkaException as exc:
                item = by_name[resource.name]
                item.error, item.hint = _explain(exc, "IncrementalAlterConfigs")
    grow = [
        NewPartitions(p.spec.name, p.add_partitions[1])
        for p in by_name.values()
        if p.add_partitions is not None and p.error is None
    ]
    if grow:
        futures = admin.create_partitions(
            grow, operation_timeout=timeout, request_timeout=timeout
        ).items()
        for name, future in futures:
            try:
                future.result(timeout)
            except KafkaException as exc:
                by_name[name].error, by_name[name].hint = _explain(exc, "CreatePartitions")


def report(plans: Sequence[TopicPlan], *, dry_run: bool) -> tuple[list[str], bool]:
    """Lines for a person (one per topic, then a summary) and whether everything succeeded."""
    width = max((len(p.spec.name) for p in plans), default=10)
    lines = []
    for item in plans:
        mark = "!" if item.error else "+" if item.create else "~" if item.changes else "="
        lines.append(f"{mark} {item.spec.name:<{width}}  {item.describe()}")
        lines.extend(f"  {'':<{width}}  note: {note}" for note in item.notes)
        if item.error:
            lines.append(f"  {'':<{width}}  FAILED: {item.error}")
    done = [p for p in plans if p.changes and p.error is None]
    created = sum(p.create for p in done)
    altered = sum(bool(p.config_changes) for p in done if not p.create)
    grown = sum(p.add_partitions is not None for p in done)
    failed = sum(p.error is not None for p in plans)
    unchanged = sum(not p.changes and p.error is None for p in plans)
    verb = "would be" if dry_run else "were"
    summary = (
        f"{created} topic(s) {verb} created, {altered} altered, {grown} given more partitions, "
        f"{unchanged} unchanged"
    )
    if failed:
        summary += f", {failed} FAILED"
    lines.append(summary + (" (dry run: nothing changed)" if dry_run else ""))
    hints = dict.fromkeys(p.hint for p in plans if p.hint)
    lines.extend(f"what to do: {hint}" for hint in hints if hint)
    return lines, not failed


def ensure_topics(
    bootstrap: str,
    partitions: int,
    topics: list[str] | None = None,
    timeout: float = 15.0,
    *,
    security: Mapping[str, Any] | None = None,
) -> list[str]:
    """Create the missing topics from the topics file; return the names created. Idempotent.

    What a worker needs at start on any cluster: replication is capped at the brokers there
    (the embedded broker is one), a topic not in the file gets the file's defaults, and a
    partition count that differs from `partitions` stops the worker naming the setting.
    Configs of existing topics are `govpulse topics apply`'s business, not a worker's.
    """
    names = topics or pipeline_topics()
    admin = admin_client(bootstrap, security)
    metadata = admin.list_topics(timeout=timeout)
    existing = metadata.topics
    wrong = {
        name: len(existing[name].partitions)
        for name in names
        if name in existing and len(existing[name].partitions) != partitions
    }
    if wrong:
        found = ", ".join(f"{name} has {count}" for name, count in sorted(wrong.items()))
        raise SettingsError(
            f"{env_name('topic_partitions')}={partitions}, but {found}: set the variable to the "
            "existing count, or recreate the topics"
        )
    missing = [name for name in names if name not in existing]
    if not missing:
        return []
    settings = get_settings()
    declared = read_topics_file(
        settings.topics_file, partitions=partitions, app_id=settings.streams_app_id
    )
    brokers = max(1, len(metadata.brokers))
    create = []
    for name in missing:
        spec = replace(declared.spec(name), partitions=partitions)
        spec = spec.with_replication(min(spec.replication_factor, brokers))
        create.append(
            NewTopic(name, spec.partitions, spec.replication_factor, config=dict(spec.config))
        )
    for name, future in admin.create_topics(create, operation_timeout=timeout).items():
        try:
            future.result(timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                error, hint = _explain(exc, "CreateTopics")
                raise SettingsError(
                    f"cannot create topic {name}: {error}" + (f"; {hint}" if hint else "")
                ) from None
    return missing
