#!/bin/bash
# Starts the Confluent Schema Registry of docker-compose.yml with its Kafka password read from
# a Docker secret: the image takes the SASL login (JAAS) only from an environment variable,
# so it is built here, in the registry's own process environment, instead of in the compose
# file. Kafka's client masks it in the registry's logged configuration.
set -euo pipefail
password="$(tr -d '\r\n' < /run/secrets/kafka_registry_password)"
export SCHEMA_REGISTRY_KAFKASTORE_SASL_JAAS_CONFIG="org.apache.kafka.common.security.scram.ScramLoginModule required username=\"schema-registry\" password=\"${password}\";"
exec /etc/confluent/docker/run
