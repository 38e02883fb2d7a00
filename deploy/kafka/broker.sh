#!/bin/sh
# One node of the compose Kafka cluster: KRaft, broker + controller in one process.
#
# Why a script and not the image's KAFKA_* variables: the SCRAM users must exist before the
# first start (KRaft stores them in the metadata log, so `kafka-storage.sh format
# --add-scram` writes them), and the passwords come from Docker secret files, which the
# image's variable-to-property mapping cannot read. Nothing secret is passed in the
# environment; the generated properties file is readable by the kafka user only.
#
# Listeners: CLIENT 9092 (SASL_SSL, SCRAM-SHA-512: every govpulse process and the schema
# registry), EXTERNAL 9094 (the same, advertised as KAFKA_EXTERNAL_HOST:<port> for agency
# systems outside the compose network), BROKER 19092 (SASL_SSL between brokers, user admin),
# CONTROLLER 9093 (TLS between the KRaft controllers).
set -eu

: "${KAFKA_NODE_ID:?set KAFKA_NODE_ID (1, 2 or 3)}"
: "${KAFKA_CLUSTER_ID:?set KAFKA_CLUSTER_ID in .env (kafka-storage.sh random-uuid)}"
: "${KAFKA_EXTERNAL_HOST:=localhost}"
: "${KAFKA_EXTERNAL_PORT:=2909${KAFKA_NODE_ID}}"
SECRETS=/run/secrets
HOST="kafka-${KAFKA_NODE_ID}"
DATA=/var/lib/kafka/data
CONFIG=/tmp/govpulse-kafka/server.properties
ADMIN_CONFIG=/tmp/govpulse-kafka/admin.properties

read_secret() {
    [ -s "$SECRETS/$1" ] || { echo "broker.sh: secret $1 missing or empty (run deploy/make-secrets.sh)" >&2; exit 1; }
    tr -d '\r\n' < "$SECRETS/$1"
}
ADMIN_PASSWORD=$(read_secret kafka_admin_password)
GOVPULSE_PASSWORD=$(read_secret kafka_govpulse_password)
REGISTRY_PASSWORD=$(read_secret kafka_registry_password)

umask 077
mkdir -p "$(dirname "$CONFIG")"
cat > "$CONFIG" <<PROPERTIES
node.id=${KAFKA_NODE_ID}
process.roles=broker,controller
controller.quorum.voters=1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093
log.dirs=${DATA}

listeners=CLIENT://:9092,EXTERNAL://:9094,BROKER://:19092,CONTROLLER://:9093
advertised.listeners=CLIENT://${HOST}:9092,EXTERNAL://${KAFKA_EXTERNAL_HOST}:${KAFKA_EXTERNAL_PORT},BROKER://${HOST}:19092
listener.security.protocol.map=CLIENT:SASL_SSL,EXTERNAL:SASL_SSL,BROKER:SASL_SSL,CONTROLLER:SSL
inter.broker.listener.name=BROKER
controller.listener.names=CONTROLLER

sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.broker.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${ADMIN_PASSWORD}";
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.external.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;

ssl.keystore.type=PEM
ssl.keystore.location=${SECRETS}/kafka_keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=${SECRETS}/kafka_ca.pem
ssl.endpoint.identification.algorithm=https

# govpulse topics: 3 copies, writes need 2 in sync (acks=all); topics come from
# govpulse topics apply, never from a client's typo.
default.replication.factor=3
min.insync.replicas=2
auto.create.topics.enable=false
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
num.partitions=12
PROPERTIES

# The client settings the health check and an operator's kafka-*.sh tools use inside this
# container (e.g. kafka-consumer-groups.sh --command-config ${ADMIN_CONFIG}).
cat > "$ADMIN_CONFIG" <<PROPERTIES
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${ADMIN_PASSWORD}";
ssl.truststore.type=PEM
ssl.truststore.location=${SECRETS}/kafka_ca.pem
PROPERTIES

# First start only: format the log directory with the cluster id and the SCRAM users.
if [ ! -f "$DATA/meta.properties" ]; then
    /opt/kafka/bin/kafka-storage.sh format --config "$CONFIG" --cluster-id "$KAFKA_CLUSTER_ID" \
        --add-scram "SCRAM-SHA-512=[name=admin,password=${ADMIN_PASSWORD}]" \
        --add-scram "SCRAM-SHA-512=[name=govpulse,password=${GOVPULSE_PASSWORD}]" \
        --add-scram "SCRAM-SHA-512=[name=schema-registry,password=${REGISTRY_PASSWORD}]"
fi

exec /opt/kafka/bin/kafka-server-start.sh "$CONFIG"
