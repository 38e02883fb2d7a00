#!/usr/bin/env bash
# Creates the secrets docker-compose.yml mounts, in deploy/secrets/ (git-ignored, mode 0700):
# random passwords, the pseudonymisation key, and a private CA with one TLS certificate per
# Kafka broker. Run once before the first `docker compose up`; run again after adding a
# broker or changing KAFKA_EXTERNAL_HOST. It never overwrites a file that exists: a new
# pseudonym_key would make every pseudonym unjoinable with the old ones, and a new password
# would lock the services out of stores that already have the old one.
#
#   deploy/make-secrets.sh                 # KAFKA_EXTERNAL_HOST from .env, else localhost
#   KAFKA_EXTERNAL_HOST=kafka.example.go.th deploy/make-secrets.sh
#
# Files are world-readable inside the 0700 directory: Docker Compose bind-mounts file secrets
# as they are, and the services run as different unprivileged users.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$here/secrets"
if [[ -z "${KAFKA_EXTERNAL_HOST:-}" && -f "$here/../.env" ]]; then
    KAFKA_EXTERNAL_HOST="$(sed -n 's/^KAFKA_EXTERNAL_HOST=//p' "$here/../.env" | tail -n 1)"
fi
external="${KAFKA_EXTERNAL_HOST:-localhost}"
command -v openssl >/dev/null || { echo "make-secrets.sh needs openssl" >&2; exit 1; }
mkdir -p "$out"
chmod 0700 "$out"
umask 022

new() {  # new NAME COMMAND...: write the command's output to NAME unless it exists
    local name="$1"
    shift
    if [[ -e "$out/$name" ]]; then
        echo "kept     $name"
    else
        "$@" > "$out/$name.tmp" && mv "$out/$name.tmp" "$out/$name"
        echo "created  $name"
    fi
}

password() { openssl rand -hex 24; }  # hex: safe in JAAS strings, URLs and SQL literals

# The HMAC key that turns national IDs into pseudonyms (>= 32 bytes; 64 hex characters).
new pseudonym_key openssl rand -hex 32
for name in kafka_admin_password kafka_govpulse_password kafka_registry_password \
    clickhouse_admin_password clickhouse_writer_password clickhouse_dashboard_password \
    clickhouse_grafana_password clickhouse_cluster_secret grafana_admin_password; do
    new "$name" password
done

# A private CA for the Kafka listeners; clients trust it through GOVPULSE_KAFKA_CA_FILE.
if [[ ! -e "$out/kafka_ca.pem" ]]; then
    openssl req -x509 -newkey rsa:3072 -sha256 -days 3650 -nodes -subj "/CN=govpulse Kafka CA" \
        -keyout "$out/kafka_ca.key" -out "$out/kafka_ca.pem" 2>/dev/null
    chmod 0600 "$out/kafka_ca.key"
    echo "created  kafka_ca.pem (and kafka_ca.key, which no container mounts)"
else
    echo "kept     kafka_ca.pem"
fi

# One key + certificate per broker, in one PEM file (Kafka's ssl.keystore.type=PEM): the names
# clients use inside the compose network, the external name, and localhost.
for node in 1 2 3; do
    name="kafka_${node}_keystore.pem"
    if [[ -e "$out/$name" ]]; then
        echo "kept     $name"
        continue
    fi
    work="$(mktemp -d)"
    openssl req -newkey rsa:2048 -sha256 -nodes -subj "/CN=kafka-${node}" \
        -keyout "$work/key.pem" -out "$work/req.pem" 2>/dev/null
    names="DNS:kafka-${node},DNS:localhost"
    [[ "$external" == localhost ]] || names="$names,DNS:${external}"
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$names" > "$work/ext.cnf"
    openssl x509 -req -in "$work/req.pem" -CA "$out/kafka_ca.pem" -CAkey "$out/kafka_ca.key" \
        -CAcreateserial -days 825 -sha256 -extfile "$work/ext.cnf" -out "$work/cert.pem" 2>/dev/null
    cat "$work/key.pem" "$work/cert.pem" "$out/kafka_ca.pem" > "$out/$name"
    rm -rf "$work"
    echo "created  $name (${names//DNS:/})"
done
rm -f "$out/kafka_ca.srl"
echo "secrets in $out"
