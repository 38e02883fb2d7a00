#!/bin/sh
# Starts Grafana with the ClickHouse password of its data source read from a Docker secret.
# monitoring/grafana/provisioning/datasources/govpulse.yml reads it from the environment
# (${GOVPULSE_CLICKHOUSE_PASSWORD}); setting it here keeps it out of docker-compose.yml and
# out of `docker inspect`.
set -eu
GOVPULSE_CLICKHOUSE_PASSWORD="$(tr -d '\r\n' < /run/secrets/clickhouse_grafana_password)"
export GOVPULSE_CLICKHOUSE_PASSWORD
exec /run.sh "$@"
