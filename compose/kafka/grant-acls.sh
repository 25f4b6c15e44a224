#!/usr/bin/env bash
# Grants the compose stack's principals their ACLs, as `batchline broker --auth` does for the
# local broker (batchline/broker/auth.py, acl_arguments); run once the broker is healthy. Adding
# an ACL that exists is a no-op, so running it again is harmless.
set -euo pipefail
: "${KAFKA_ADMIN_PASSWORD:?}"
KAFKA_HOME=${KAFKA_HOME:-/opt/kafka}
BOOTSTRAP=${KAFKA_BOOTSTRAP:-kafka:9092}
PREFIX=${BATCHLINE_TOPIC_PREFIX:-batchline}
umask 077
config=$(mktemp)
trap 'rm -f "$config"' EXIT
cat > "$config" <<PROPERTIES
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$KAFKA_ADMIN_PASSWORD";
PROPERTIES

acls() {
  "$KAFKA_HOME/bin/kafka-acls.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$config" \
    --add "$@" > /dev/null
}
# The API and the workers own everything named <prefix>.* or <prefix>-*.
acls --allow-principal User:batchline --operation All --topic "$PREFIX." --topic "$PREFIX-" --group "$PREFIX-" --transactional-id "$PREFIX-" --resource-pattern-type prefixed
# Results consumers read the results topic, in groups named <prefix>.results.*.
acls --allow-principal User:results-reader --operation Read --operation Describe --topic "$PREFIX.results" --topic "$PREFIX.record-results"
acls --allow-principal User:results-reader --operation Read --group "$PREFIX.results." --resource-pattern-type prefixed
# Event-driven producers write chunks and stream records, and nothing else (their API key's
# signature says which batches a chunk may touch: streams/owners.py).
acls --allow-principal User:producer --operation Write --operation Describe --topic "$PREFIX.requests" --topic "$PREFIX.records"
echo "ACLs granted for topic prefix $PREFIX"
