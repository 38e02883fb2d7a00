#!/bin/bash
# Creates (or updates) the govpulse users of deploy/clickhouse/users.sql from the Docker
# secrets: each password is turned into its SHA-256 here, so only the hash ever reaches the
# server, and no password sits in a file of the repository or in the environment. Run by the
# image's entrypoint from /docker-entrypoint-initdb.d while the server listens on localhost
# only; CLICKHOUSE_ALWAYS_RUN_INITDB_SCRIPTS=1 (docker-compose.yml) runs it at every start,
# which is what makes a rotated secret take effect.
# The image's entrypoint sources a .sh that is not executable: a subshell keeps `set -u` and
# the helper out of the entrypoint itself either way, and a failure still stops the start.
(
    set -euo pipefail

    sha256_of() {  # the hex SHA-256 of a secret file's content, without its trailing newline
        local file="/run/secrets/$1"
        [[ -s "$file" ]] || { echo "10-govpulse-users.sh: secret $1 missing (deploy/make-secrets.sh)" >&2; exit 1; }
        printf '%s' "$(tr -d '\r\n' < "$file")" | sha256sum | cut -d' ' -f1
    }

    sql="$(cat /etc/govpulse/clickhouse/users.sql)"
    sql="${sql//'{{writer_sha256}}'/$(sha256_of clickhouse_writer_password)}"
    sql="${sql//'{{dashboard_sha256}}'/$(sha256_of clickhouse_dashboard_password)}"
    sql="${sql//'{{grafana_sha256}}'/$(sha256_of clickhouse_grafana_password)}"
    clickhouse-client --host 127.0.0.1 --user "${CLICKHOUSE_USER:-admin}" --password "$CLICKHOUSE_PASSWORD" \
        --multiquery <<< "$sql"
    echo "10-govpulse-users.sh: users govpulse_writer, dashboard, grafana are up to date"
)
