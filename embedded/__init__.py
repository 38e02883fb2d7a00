"""The one-machine stack: Kafka-protocol broker, schema registry, embedded ClickHouse.

Each part is reached through the same client libraries as in production, so nothing
outside this package can tell which stack it runs on.
"""
