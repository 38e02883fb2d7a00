"""The embedded schema registry: the Confluent Schema Registry REST API that
`confluent_kafka.schema_registry.SchemaRegistryClient` uses, durable under a data directory."""
