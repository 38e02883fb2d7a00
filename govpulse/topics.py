"""The pipeline's topics exist, with the partition count every stage agrees on.

Stream workers keep their de-duplication tables co-partitioned with `raw.<type>`, so all
topics of a type must have GOVPULSE_TOPIC_PARTITIONS partitions; a topic auto-created by a
producer with another count is reported, naming the setting, instead of silently mis-routing.
"""

from __future__ import annotations

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from govpulse.settings import SettingsError
from schemas import catalog

STAGES = ("raw", "clean", "dlq", "dup")


def pipeline_topics(event_types: tuple[str, ...] = catalog.EVENT_TYPES) -> list[str]:
    return [f"{stage}.{event_type}" for event_type in event_types for stage in STAGES]


def ensure_topics(
    bootstrap: str, partitions: int, topics: list[str] | None = None, timeout: float = 15.0
) -> list[str]:
    """Create the missing topics; return the names created. Idempotent."""
    topics = topics or pipeline_topics()
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    existing = admin.list_topics(timeout=timeout).topics
    wrong = {
        name: len(existing[name].partitions)
        for name in topics
        if name in existing and len(existing[name].partitions) != partitions
    }
    if wrong:
        found = ", ".join(f"{name} has {count}" for name, count in sorted(wrong.items()))
        raise SettingsError(
            f"GOVPULSE_TOPIC_PARTITIONS={partitions}, but {found}: set the variable to the "
            "existing count, or recreate the topics"
        )
    missing = [NewTopic(name, partitions, 1) for name in topics if name not in existing]
    if missing:
        for future in admin.create_topics(missing, operation_timeout=timeout).values():
            try:
                future.result(timeout)
            except KafkaException as error:
                if error.args[0].code() != error.args[0].TOPIC_ALREADY_EXISTS:
                    raise
    return [topic.topic for topic in missing]
