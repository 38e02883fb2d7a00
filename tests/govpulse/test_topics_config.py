"""`topics.apply` hands confluent-kafka what it accepts, whatever mapping a spec holds."""

from __future__ import annotations

from types import MappingProxyType

from govpulse import topics


class _CreatingAdmin:
    """Takes `create_topics` as AdminClient would (its NewTopics are already built)."""

    def __init__(self) -> None:
        self.created: list[object] = []

    def create_topics(self, new_topics, **_):
        self.created += new_topics
        return {}


def test_a_topic_whose_config_is_a_read_only_mapping_is_created_with_it():
    # TopicSpec.config is a Mapping (the spec is frozen); NewTopic takes nothing but a dict
    config = MappingProxyType({"cleanup.policy": "compact"})
    plan = topics.TopicPlan(topics.TopicSpec("t.changelog", 1, 1, config), exists=False)
    admin = _CreatingAdmin()
    topics.apply(admin, [plan])
    [created] = admin.created
    assert (created.topic, created.config) == ("t.changelog", {"cleanup.policy": "compact"})
    assert plan.error is None
