"""The schema registry client every govpulse process uses: the URL, and a request timeout.

confluent-kafka's client waits forever by default (httpx with no timeout): a registry that
accepts connections but never answers would hang a producer's first send, or a worker's
start, past any Ctrl-C the process handles itself.
"""

from __future__ import annotations

from confluent_kafka.schema_registry import SchemaRegistryClient

REQUEST_TIMEOUT_S = 10


def registry_client(url: str) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": url, "timeout": REQUEST_TIMEOUT_S})
