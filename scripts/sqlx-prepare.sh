#!/usr/bin/env bash
# Regenerates .sqlx/, the query metadata that lets `sqlx::query!` check every query at compile
# time without a database. Run it after changing a query or a migration. With --check, fails
# when .sqlx/ is out of date instead of rewriting it (CI does this).
#
# Applies every service's migrations to a scratch database, each in its schema with the
# platform's conventions merged in by version (as platform::db does), then runs
# `cargo sqlx prepare`.
set -euo pipefail
cd "$(dirname "$0")/.."
check=()
shopt -s nullglob
[ "${1:-}" = "--check" ] && check=(--check)

scripts/setup.sh --infra-only >/dev/null
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
# shellcheck disable=SC1091
source "$state_dir/env"

if ! command -v cargo-sqlx >/dev/null; then
  say "installing sqlx-cli"
  cargo install --locked sqlx-cli --version 0.9.0 --no-default-features --features postgres,rustls
fi

database=ff_sqlx_prepare
scratch_url="${DATABASE_URL%/*}/$database"
psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" -c "CREATE DATABASE $database"
trap 'psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)"' EXIT
for migrations in svc-*/migrations; do
  schema=${migrations%/migrations}
  schema=${schema#svc-}
  psql "$scratch_url" -q -v ON_ERROR_STOP=1 -c "CREATE SCHEMA IF NOT EXISTS $schema"
  for migration in $(printf '%s\n' "$migrations"/*.sql platform/migrations/*.sql | awk -F/ '{print $NF "\t" $0}' | sort | cut -f2); do
    PGOPTIONS="-c search_path=$schema -c client_min_messages=warning" psql "$scratch_url" -q -v ON_ERROR_STOP=1 -f "$migration" >/dev/null
  done
done
SQLX_OFFLINE=false DATABASE_URL="$scratch_url" cargo sqlx prepare --workspace "${check[@]}"
