#!/usr/bin/env bash
# The compose stack's Kafka: one KRaft node that lets in only its SASL/SCRAM-SHA-512 principals,
# set up as `batchline broker --auth` sets up the local one (batchline/broker/auth.py):
#   admin           super user: the broker itself and the ACL grants (grant-acls.sh)
#   batchline       the API and the workers
#   results-reader  reads <prefix>.results
#   producer        writes <prefix>.requests only (event-driven producers)
# The passwords come from the environment. The log volume is formatted once, with their SCRAM
# credentials; the controller listener uses PLAIN (a controller cannot check SCRAM, whose
# credentials live in the metadata it serves), with the admin as its one user.
set -euo pipefail
: "${KAFKA_ADMIN_PASSWORD:?}" "${KAFKA_BATCHLINE_PASSWORD:?}" "${KAFKA_READER_PASSWORD:?}" "${KAFKA_PRODUCER_PASSWORD:?}"
KAFKA_HOME=${KAFKA_HOME:-/opt/kafka}
DATA_DIR=${KAFKA_DATA_DIR:-/var/lib/kafka/data}
HOST=${KAFKA_ADVERTISED_HOST:-kafka}
LISTEN_HOST=${KAFKA_LISTEN_HOST:-}  # every interface of the container
PORT=${KAFKA_PORT:-9092}
CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
EXTERNAL_PORT=${KAFKA_EXTERNAL_PORT:-29092}
CONFIG_DIR=${KAFKA_CONFIG_DIR:-/tmp/kafka-config}
MECHANISM=SCRAM-SHA-512

umask 077
mkdir -p "$CONFIG_DIR"

jaas() {  # module user password [extra options]
  printf 'org.apache.kafka.common.security.%s required username="%s" password="%s"%s;' \
    "$1" "$2" "$3" "${4:-}"
}
scram_admin=$(jaas scram.ScramLoginModule admin "$KAFKA_ADMIN_PASSWORD")

cat > "$CONFIG_DIR/server.properties" <<PROPERTIES
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
controller.listener.names=CONTROLLER
listeners=INTERNAL://$LISTEN_HOST:$PORT,CONTROLLER://$LISTEN_HOST:$CONTROLLER_PORT,EXTERNAL://$LISTEN_HOST:$EXTERNAL_PORT
advertised.listeners=INTERNAL://$HOST:$PORT,EXTERNAL://localhost:$EXTERNAL_PORT
inter.broker.listener.name=INTERNAL
listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,INTERNAL:SASL_PLAINTEXT,EXTERNAL:SASL_PLAINTEXT
sasl.enabled.mechanisms=$MECHANISM
sasl.mechanism.inter.broker.protocol=$MECHANISM
listener.name.internal.scram-sha-512.sasl.jaas.config=$scram_admin
listener.name.external.scram-sha-512.sasl.jaas.config=$scram_admin
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=$(jaas plain.PlainLoginModule admin "$KAFKA_ADMIN_PASSWORD" " user_admin=\"$KAFKA_ADMIN_PASSWORD\"")
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
log.dirs=$DATA_DIR
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPERTIES

# Kafka's own tools (the healthcheck, grant-acls.sh) log in as the admin with this.
cat > "$CONFIG_DIR/admin.properties" <<PROPERTIES
security.protocol=SASL_PLAINTEXT
sasl.mechanism=$MECHANISM
sasl.jaas.config=$scram_admin
PROPERTIES

if [ ! -f "$DATA_DIR/meta.properties" ]; then
  # Its output lists the SCRAM keys it stores: not for the container log.
  "$KAFKA_HOME/bin/kafka-storage.sh" format \
    --cluster-id "$("$KAFKA_HOME/bin/kafka-storage.sh" random-uuid)" \
    --config "$CONFIG_DIR/server.properties" \
    --add-scram "$MECHANISM=[name=admin,password=$KAFKA_ADMIN_PASSWORD]" \
    --add-scram "$MECHANISM=[name=batchline,password=$KAFKA_BATCHLINE_PASSWORD]" \
    --add-scram "$MECHANISM=[name=results-reader,password=$KAFKA_READER_PASSWORD]" \
    --add-scram "$MECHANISM=[name=producer,password=$KAFKA_PRODUCER_PASSWORD]" > /dev/null
  echo "formatted $DATA_DIR with the SCRAM users admin, batchline, results-reader, producer"
fi
exec "$KAFKA_HOME/bin/kafka-server-start.sh" "$CONFIG_DIR/server.properties"
