#!/usr/bin/env bash
# Runs the benchmarks (release builds) against the local Postgres, Redis and RabbitMQ and
# prints their figures; docs/benchmarks.md records them with the machine they ran on.
#
#   scripts/bench.sh          every benchmark
#   scripts/bench.sh auth     svc-auth: login latency, argon2id, token verification
#   scripts/bench.sh gateway  the gateway: REST through it against direct gRPC
#   scripts/bench.sh ai       svc-ai: embedding latency, throughput and CPU per text
#   scripts/bench.sh ai-eval  svc-ai: ticket triage accuracy and confusion matrices on the
#                             held-out tickets of svc-ai/eval
#   scripts/bench.sh ai-similar svc-ai: similar-submission search latency, 1,000 to 100,000
#                             analyses
#   scripts/bench.sh ai-engine svc-ai against the raw engine and Python onnxruntime in one run:
#                             texts/s and ClassifyTicket classifications/s under load
#   scripts/bench.sh forms    svc-forms: anonymous submissions through the gateway, event lag, CPU
#   scripts/bench.sh workflow svc-workflow: webhook-triggered executions, latency, CPU
#   scripts/bench.sh notify   svc-notify: notifications accepted, send → live stream, emails/s, CPU
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --infra-only >/dev/null
# shellcheck disable=SC1091
source .formflow/env
which="${1:-all}"
if [ "$which" = all ] || [ "$which" = auth ]; then
  cargo bench -q -p svc-auth --bench auth
fi
if [ "$which" = all ] || [ "$which" = gateway ]; then
  cargo bench -q -p gateway --bench gateway
fi
if [ "$which" = all ] || [ "$which" = ai ]; then
  cargo bench -q -p svc-ai --bench embed
fi
if [ "$which" = all ] || [ "$which" = ai-eval ]; then
  cargo bench -q -p svc-ai --bench triage
fi
if [ "$which" = all ] || [ "$which" = ai-similar ]; then
  cargo bench -q -p svc-ai --bench similar
fi
if [ "$which" = all ] || [ "$which" = ai-engine ]; then
  # Python onnxruntime, the same version as svc-ai's library, in a venv of the benchmark's own.
  bench_venv="${XDG_CACHE_HOME:-$HOME/.cache}/formflow/bench-venv" # beside setup.sh's tools
  [ -x "$bench_venv/bin/python" ] || python3 -m venv "$bench_venv"
  "$bench_venv/bin/pip" install -q onnxruntime==1.32.0 tokenizers==0.23.3 numpy==2.4.6
  BENCH_PYTHON="$bench_venv/bin/python" cargo bench -q -p svc-ai --bench engine
fi
if [ "$which" = all ] || [ "$which" = forms ]; then
  cargo bench -q -p svc-forms --bench submit
fi
if [ "$which" = all ] || [ "$which" = workflow ]; then
  cargo bench -q -p svc-workflow --bench webhook
fi
if [ "$which" = all ] || [ "$which" = notify ]; then
  cargo bench -q -p svc-notify --bench notify
fi
