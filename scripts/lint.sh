#!/usr/bin/env bash
# Static checks: formatting, clippy (warnings are errors), the protos' buf lint, and whether
# the committed .sqlx/ query data matches the queries and migrations.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

say "cargo fmt"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

say "buf lint"
buf="$tools_dir/buf/node_modules/.bin/buf"
if [ ! -x "$buf" ]; then
  command -v npm >/dev/null || apt_install npm
  npm install --silent --prefix "$tools_dir/buf" @bufbuild/buf@1.75.0
fi
(cd proto && "$buf" lint && "$buf" format --diff --exit-code --path protos/formflow)

say "sqlx query data"
scripts/sqlx-prepare.sh --check
