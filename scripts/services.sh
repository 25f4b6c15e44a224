#!/usr/bin/env bash
# Installs (when missing) and starts PostgreSQL and Redis from Debian's packages on loopback,
# reusing servers that already answer. Idempotent: run it as often as you like.
# Prints the URLs the tests read, as shell assignments.
# BATCHLINE_PG_PORT, BATCHLINE_PG_CLUSTER (default main) and BATCHLINE_REDIS_PORT choose others.
#   scripts/services.sh          start (prints the URLs)
#   scripts/services.sh stop     stop only what an earlier start started
set -euo pipefail

STARTED_FILE="${BATCHLINE_SERVICES_STATE:-${TMPDIR:-/tmp}/batchline-services-started}"

PG_PORT="${BATCHLINE_PG_PORT:-5432}"
PG_CLUSTER="${BATCHLINE_PG_CLUSTER:-main}"
REDIS_PORT="${BATCHLINE_REDIS_PORT:-6379}"
PG_USER=batchline
PG_PASSWORD=batchline
PG_DB=batchline_test

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  # apt-get update only when something is missing, so a provisioned machine starts fast.
  as_root apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

if [ "${1:-start}" = "stop" ]; then
  [ -f "$STARTED_FILE" ] || exit 0
  while read -r what arg cluster; do
    case "$what" in
      postgresql) as_root pg_ctlcluster "$arg" "${cluster:-main}" stop || true ;;
      redis) redis-cli -h 127.0.0.1 -p "$arg" shutdown nosave >/dev/null 2>&1 || true ;;
    esac
  done < "$STARTED_FILE"
  rm -f "$STARTED_FILE"
  exit 0
fi

# Only the URL assignments below reach standard output, which callers eval. What the tools
# print goes to stderr: pg_ctlcluster says "Removed stale pid file." after an unclean stop, for
# one. A function with its stdout redirected, rather than a saved descriptor, so that the
# servers it daemonizes never inherit the caller's pipe (eval "$(...)" would wait for them).
start_services() {
  missing=()
  command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "services: installing ${missing[*]} from Debian's packages" >&2
    apt_install "${missing[@]}"
  fi

  if ! pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$version $PG_CLUSTER$"; then
      as_root pg_createcluster "$version" "$PG_CLUSTER" -p "$PG_PORT" >/dev/null
    fi
    as_root pg_ctlcluster "$version" "$PG_CLUSTER" start
    echo "postgresql $version $PG_CLUSTER" >> "$STARTED_FILE"
    for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p "$PG_PORT" && break; sleep 0.2; done
  fi
  pg_isready -q -h 127.0.0.1 -p "$PG_PORT" || { echo "services: PostgreSQL did not start" >&2; exit 1; }

  psql_admin() { as_root su postgres -c "psql -p $PG_PORT -qtAX -c \"$1\""; }
  if [ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname='$PG_USER'")" != "1" ]; then
    psql_admin "CREATE ROLE $PG_USER LOGIN PASSWORD '$PG_PASSWORD' CREATEDB" >/dev/null
  fi
  if [ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname='$PG_DB'")" != "1" ]; then
    psql_admin "CREATE DATABASE $PG_DB OWNER $PG_USER" >/dev/null
  fi

  if ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --save "" --appendonly no \
      --logfile /tmp/batchline-redis.log >/dev/null
    echo "redis $REDIS_PORT" >> "$STARTED_FILE"
    for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null || { echo "services: Redis did not start" >&2; exit 1; }
}
start_services >&2

echo "BATCHLINE_TEST_POSTGRES_URL=postgresql+asyncpg://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB"
echo "BATCHLINE_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
