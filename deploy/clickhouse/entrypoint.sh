#!/bin/bash
# Entrypoint of the ClickHouse containers: reads the admin password (and, on a cluster node,
# the inter-server secret) from Docker secrets into the environment of the server process
# only, then hands over to the image's own /entrypoint.sh. The image creates the admin user
# from CLICKHOUSE_USER/CLICKHOUSE_PASSWORD; this keeps both out of docker-compose.yml and out
# of `docker inspect`.
set -euo pipefail
CLICKHOUSE_PASSWORD="$(tr -d '\r\n' < /run/secrets/clickhouse_admin_password)"
export CLICKHOUSE_PASSWORD
if [[ -r /run/secrets/clickhouse_cluster_secret ]]; then
    CLICKHOUSE_CLUSTER_SECRET="$(tr -d '\r\n' < /run/secrets/clickhouse_cluster_secret)"
    export CLICKHOUSE_CLUSTER_SECRET  # read by cluster/cluster.xml (from_env)
fi
exec /entrypoint.sh "$@"
