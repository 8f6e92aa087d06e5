#!/usr/bin/env bash
# Runs the whole test suite: unit tests, every service's integration tests against real
# Postgres, Redis and RabbitMQ (installed and started first if missing), and the end-to-end
# tests of the whole suite. Extra arguments go to `cargo nextest run` (e.g. a test filter).
#
# Each test creates its own database and Redis user (ff_test_*), Redis key prefix and RabbitMQ
# names; this run also gets its own RabbitMQ vhost when rabbitmqctl is usable. All are removed
# afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --infra-only
# shellcheck disable=SC1091
source .formflow/env

run_id="$(date +%s)-$$"
vhost=""
rabbitmqctl_ok() { command -v rabbitmqctl >/dev/null && timeout 20 rabbitmqctl -q list_vhosts >/dev/null 2>&1; }
if [ "$AMQP_URL" = "amqp://guest:guest@127.0.0.1:5672/%2f" ] && rabbitmqctl_ok; then
  vhost="formflow-test-$run_id"
  rabbitmqctl -q add_vhost "$vhost"
  rabbitmqctl -q set_permissions -p "$vhost" guest '.*' '.*' '.*'
  export AMQP_URL="amqp://guest:guest@127.0.0.1:5672/$vhost"
fi

cleanup() {
  [ -n "$vhost" ] && rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1 || true
  psql "$DATABASE_URL" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'ff\_test\_%'" 2>/dev/null |
    while read -r database; do psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS \"$database\" WITH (FORCE)" >/dev/null 2>&1 || true; done
  if command -v redis-cli >/dev/null; then
    redis-cli -u "$REDIS_URL" --no-auth-warning ACL USERS 2>/dev/null | grep '^ff_test_' |
      while read -r user; do redis-cli -u "$REDIS_URL" --no-auth-warning ACL DELUSER "$user" >/dev/null 2>&1 || true; done
  fi
}
trap cleanup EXIT

# One build of every target (the end-to-end tests start the `formflow` binary): with the
# tests' features, so that nextest reuses it instead of building the binaries again.
cargo build --workspace --all-targets
cargo nextest run --workspace --profile ci "$@"
