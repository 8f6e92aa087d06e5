{{/*
Names, labels and the list of components. Every per-component template ranges over
"formflow.components", so the gateway and each entry of .Values.services get the same objects.
*/}}

{{- define "formflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "formflow.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of a component's objects: <fullname>-<component>, shortening only the <fullname>
part so that two components never collide. Argument: (list $ "svc-tenant"). */}}
{{- define "formflow.componentName" -}}
{{- $suffix := printf "-%s" (index . 1) }}
{{- $prefix := include "formflow.fullname" (index . 0) | trunc (int (sub 63 (len $suffix))) | trimSuffix "-" }}
{{- printf "%s%s" $prefix $suffix }}
{{- end }}

{{- define "formflow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels shared by everything the release creates. */}}
{{- define "formflow.labels" -}}
helm.sh/chart: {{ include "formflow.chart" . }}
app.kubernetes.io/name: {{ include "formflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: formflow
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of the suite's workload pods (gateway and services): the NetworkPolicies
admit gRPC from these. Argument: the root context. */}}
{{- define "formflow.suiteSelectorLabels" -}}
app.kubernetes.io/name: {{ include "formflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{ include "formflow.workloadLabel" . }}
{{- end }}

{{/* The label that marks a pod as one of the suite's workloads. */}}
{{- define "formflow.workloadLabel" -}}
formflow.dev/workload: "true"
{{- end }}

{{/* Selector labels of one component. Argument: (list $ "svc-tenant"). */}}
{{- define "formflow.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "formflow.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* All labels of one component's objects. Argument: (list $ "svc-tenant"). */}}
{{- define "formflow.componentLabels" -}}
{{ include "formflow.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "formflow.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
The components as a JSON list ({"items": [...]}): the gateway first, then the services sorted by
name, each componentDefaults deep-merged with its own block, plus:
  name, kind ("gateway" | "service"), binary, port (the main container port), portName,
  uses {postgres, redis, amqp, auth}, migrations {enabled}, config, envPrefix, fullName,
  authServer (true for svc-auth, the token issuer), workflowService (true for svc-workflow, which
  gets the workflow block), notifyService (true for svc-notify, which gets the notify block), and
  serviceClient {clientId, secretKey} for a client of svc-auth (the gateway, svc-notify,
  svc-workflow).
The gateway always uses Redis, RabbitMQ and svc-auth (uses.redis, uses.amqp, uses.auth).
Numbers come back as floats from fromJson: templates pipe them through `int`.
*/}}
{{- define "formflow.components" -}}
{{- $root := . }}
{{- $items := list }}
{{- $noUses := dict "postgres" false "redis" false "amqp" false "auth" false }}
{{- $gw := mergeOverwrite (deepCopy .Values.componentDefaults) (deepCopy .Values.gateway) }}
{{- $_ := set $gw "name" "gateway" }}
{{- $_ = set $gw "kind" "gateway" }}
{{- $_ = set $gw "binary" "gateway" }}
{{- $_ = set $gw "port" .Values.gateway.port }}
{{- $_ = set $gw "portName" "http" }}
{{- $_ = set $gw "uses" (dict "postgres" false "redis" true "amqp" true "auth" true) }}
{{- $_ = set $gw "migrations" (dict "enabled" false) }}
{{- $_ = set $gw "authServer" false }}
{{- $_ = set $gw "workflowService" false }}
{{- $_ = set $gw "notifyService" false }}
{{- $_ = set $gw "fullName" (include "formflow.componentName" (list $root "gateway")) }}
{{- $_ = set $gw "pdb" (include "formflow.pdb" (list .Values.componentDefaults .Values.gateway) | fromJson) }}
{{- $items = append $items $gw }}
{{- range $name := keys .Values.services | sortAlpha }}
{{- $svc := index $root.Values.services $name }}
{{- $c := mergeOverwrite (deepCopy $root.Values.componentDefaults) (deepCopy $svc) }}
{{- $_ := set $c "name" $name }}
{{- $_ = set $c "kind" "service" }}
{{- $_ = set $c "binary" (get $svc "binary" | default $name) }}
{{- $_ = set $c "port" $svc.grpcPort }}
{{- $_ = set $c "portName" "grpc" }}
{{- $_ = set $c "uses" (mergeOverwrite (deepCopy $noUses) (get $svc "uses" | default dict)) }}
{{- $_ = set $c "migrations" (mergeOverwrite (dict "enabled" false) (get $svc "migrations" | default dict)) }}
{{- $_ = set $c "config" (get $svc "config" | default dict) }}
{{- $_ = set $c "authServer" (eq $name (include "formflow.authServerName" $root)) }}
{{- $_ = set $c "workflowService" (eq $name (include "formflow.workflowServiceName" $root)) }}
{{- $_ = set $c "notifyService" (eq $name (include "formflow.notifyServiceName" $root)) }}
{{- $_ = set $c "serviceClient" (get $svc "serviceClient" | default dict) }}
{{- $_ = set $c "fullName" (include "formflow.componentName" (list $root $name)) }}
{{- $_ = set $c "pdb" (include "formflow.pdb" (list $root.Values.componentDefaults $svc) | fromJson) }}
{{- $items = append $items $c }}
{{- end }}
{{- toJson (dict "items" $items) }}
{{- end }}

{{/* A component's PodDisruptionBudget settings, as JSON: componentDefaults.pdb merged with its
own, keeping one of minAvailable and maxUnavailable. The level that sets either decides, the
component's before componentDefaults'; maxUnavailable wins when both reach the merge (a
component's maxUnavailable over a default minAvailable). Argument: (list componentDefaults
component values). */}}
{{- define "formflow.pdb" -}}
{{- $defaults := get (index . 0) "pdb" | default dict }}
{{- $own := get (index . 1) "pdb" | default dict }}
{{- $pdb := mergeOverwrite (deepCopy $defaults) (deepCopy $own) }}
{{- $decides := ternary $own $defaults (or (hasKey $own "minAvailable") (hasKey $own "maxUnavailable")) }}
{{- if hasKey $decides "maxUnavailable" }}
{{- $_ := unset $pdb "minAvailable" }}
{{- else if hasKey $decides "minAvailable" }}
{{- $_ := unset $pdb "maxUnavailable" }}
{{- end }}
{{- toJson $pdb }}
{{- end }}

{{/* Name of a service's migration Job: <fullname>-<service>-migrate, shortening only the
<fullname> part. Argument: (list $ component). */}}
{{- define "formflow.migrationJobName" -}}
{{- $suffix := printf "-%s-migrate" (index . 1).name }}
{{- $prefix := include "formflow.fullname" (index . 0) | trunc (int (sub 63 (len $suffix))) | trimSuffix "-" }}
{{- printf "%s%s" $prefix $suffix }}
{{- end }}

{{/* Name of a component's ServiceAccount. Argument: (list $ component). */}}
{{- define "formflow.serviceAccountName" -}}
{{- $c := index . 1 }}
{{- if $c.serviceAccount.create }}
{{- default $c.fullName $c.serviceAccount.name }}
{{- else }}
{{- default "default" $c.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Where secrets, the JWKS, the gateway's extra descriptor sets and the private CA bundle
are mounted, and the variables naming those files. The CA bundle is always the file caFile,
whatever its key: operators write that path into their Postgres URL (sslrootcert=). */}}
{{- define "formflow.secretDir" -}}/var/run/secrets/formflow{{- end }}
{{- define "formflow.jwksDir" -}}/etc/formflow/jwks{{- end }}
{{- define "formflow.descriptorDir" -}}/etc/formflow/descriptors{{- end }}
{{- define "formflow.caDir" -}}/etc/formflow/ca{{- end }}
{{- define "formflow.caFile" -}}{{ include "formflow.caDir" . }}/ca.crt{{- end }}

{{/* The service that issues tokens (and the one it creates tenants in): their keys in
.Values.services. */}}
{{- define "formflow.authServerName" -}}svc-auth{{- end }}
{{- define "formflow.tenantServiceName" -}}svc-tenant{{- end }}
{{/* The service that seals workflow credentials with workflow.encryptionKeys. */}}
{{- define "formflow.workflowServiceName" -}}svc-workflow{{- end }}
{{/* The service that sends notifications with the notify block (mail server, sealing keys). */}}
{{- define "formflow.notifyServiceName" -}}svc-notify{{- end }}
{{/* The service svc-workflow's `action.ai_classify` nodes call (workflow.ai). */}}
{{- define "formflow.aiServiceName" -}}svc-ai{{- end }}

{{/* In-cluster gRPC URL of a service (its headless Service: the clients balance per call over
its pods, see service.yaml), for the gateway's GATEWAY_<PREFIX>_URL, AUTH_URL,
AUTH_TENANT_URL, WORKFLOW_AI_URL and WORKFLOW_NOTIFY_URL. Argument: (list $ "svc-tenant" "why it is needed"); fails
with that reason when the service is not configured. */}}
{{- define "formflow.serviceUrl" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
{{- $svc := get $root.Values.services $name }}
{{- if not $svc }}
{{- fail (printf "services.%s is missing: %s" $name (index . 2)) }}
{{- end }}
{{- printf "http://%s.%s.svc:%d" (include "formflow.componentName" (list $root (printf "%s-headless" $name))) $root.Release.Namespace ($svc.grpcPort | int) }}
{{- end }}

{{/* The TCP port of an http(s) URL: its own, else 443 for https and 80 for http. Argument: the
URL (`http://otel-collector.observability:4317`, `https://billing.example.com/`). */}}
{{- define "formflow.urlPort" -}}
{{- $port := regexFind ":[0-9]+$" (trimSuffix "/" .) | trimPrefix ":" }}
{{- if $port }}{{ $port }}{{ else if hasPrefix "https://" . }}443{{ else }}80{{ end }}
{{- end }}

{{/* One egress rule, as a list item: its `ports`, and `to` unless that is empty (then any
address on those ports: the dependencies' addresses are in Secrets the chart never reads).
Argument: (list to ports). */}}
{{- define "formflow.egressRule" -}}
{{- $rule := dict "ports" (index . 1) }}
{{- with index . 0 }}{{ $_ := set $rule "to" . }}{{ end }}
{{- toYaml (list $rule) }}
{{- end }}

{{/* The services of the release a component calls, as JSON {"<service>": ["VARIABLE", …]}:
every value of its ConfigMap (formflow.configData, its `config` included) that is a service's
URL (formflow.serviceUrl), with the variables that hold it. Its egress NetworkPolicy admits
exactly these, so a call the chart wires is a call the policy allows. Argument:
(list $ component). */}}
{{- define "formflow.calls" -}}
{{- $root := index . 0 }}
{{- $urls := dict }}
{{- range $name := keys $root.Values.services | sortAlpha }}
{{- $_ := set $urls (include "formflow.serviceUrl" (list $root $name "")) $name }}
{{- end }}
{{- $calls := dict }}
{{- range $variable, $value := include "formflow.configData" . | fromYaml }}
{{- with get $urls (toString $value) }}
{{- $_ := set $calls . (append (get $calls . | default list) $variable) }}
{{- end }}
{{- end }}
{{- toJson $calls }}
{{- end }}

{{/* GATEWAY_TRUSTED_PROXIES: gateway.trustedProxies, or with `auto` 1 behind the chart's
Ingress or HTTPRoute (the proxy appends to X-Forwarded-For) and 0 without them. */}}
{{- define "formflow.trustedProxies" -}}
{{- $value := .Values.gateway.trustedProxies }}
{{- if eq (toString $value) "auto" }}
{{- ternary "1" "0" (or .Values.ingress.enabled .Values.httpRoute.enabled) }}
{{- else }}
{{- $value | int }}
{{- end }}
{{- end }}

{{/* Whether the optional extra JWKS (auth.jwks) is configured: "true" or "". */}}
{{- define "formflow.extraJwks" -}}
{{- with .Values.auth.jwks }}{{ if or .existingConfigMap .existingSecret }}true{{ end }}{{ end }}
{{- end }}

{{/* Whether a component gets the extra JWKS: svc-auth and every uses.auth component, when
auth.jwks names one. Argument: (list $ component); "true" or "". */}}
{{- define "formflow.mountsJwks" -}}
{{- $c := index . 1 }}
{{- if and (include "formflow.extraJwks" (index . 0)) (or $c.uses.auth $c.authServer) }}true{{ end }}
{{- end }}

{{/* Whether a private CA bundle (caBundle) is configured: "true" or "". */}}
{{- define "formflow.caBundle" -}}
{{- with .Values.caBundle }}{{ if or .existingConfigMap .existingSecret }}true{{ end }}{{ end }}
{{- end }}

{{/* Whether a component mounts the CA bundle: every one that connects to Postgres, Redis or
RabbitMQ, when caBundle names one (migration Jobs mount it too: migration-job.yaml). Argument:
(list $ component); "true" or "". */}}
{{- define "formflow.mountsCaBundle" -}}
{{- $c := index . 1 }}
{{- if and (include "formflow.caBundle" (index . 0)) (or $c.uses.postgres $c.uses.redis $c.uses.amqp) }}true{{ end }}
{{- end }}

{{/* The CA bundle's volume (pod spec `volumes` item): the ConfigMap's or Secret's key as the
file ca.crt. Argument: the root context. */}}
{{- define "formflow.caBundleVolume" -}}
{{- $ca := .Values.caBundle -}}
- name: ca-bundle
{{- if $ca.existingSecret }}
  secret:
    secretName: {{ $ca.existingSecret }}
    defaultMode: 0444
{{- else }}
  configMap:
    name: {{ $ca.existingConfigMap }}
    defaultMode: 0444
{{- end }}
    items:
      - key: {{ $ca.key }}
        path: ca.crt
{{- end }}

{{/* Its mount (container `volumeMounts` item). Argument: the root context. */}}
{{- define "formflow.caBundleMount" -}}
- name: ca-bundle
  mountPath: {{ include "formflow.caDir" . }}
  readOnly: true
{{- end }}

{{/* A duration as the binaries parse it (250ms, 10s, 5m, 1h; no unit = seconds), in
milliseconds. */}}
{{- define "formflow.durationMs" -}}
{{- $digits := regexFind "^[0-9]+" . }}
{{- $unit := trimPrefix $digits . }}
{{- $factor := get (dict "ms" 1 "s" 1000 "" 1000 "m" 60000 "h" 3600000) $unit }}
{{- mul (int64 $digits) $factor }}
{{- end }}

{{/*
The non-secret environment of a component, as a dict (rendered into its ConfigMap, and hashed
into the pod annotations so that a change rolls the pods). Argument: (list $ component).
*/}}
{{- define "formflow.configData" -}}
{{- $root := index . 0 }}
{{- $c := index . 1 }}
{{- $data := dict }}
{{- $_ := set $data "LOG_FORMAT" $root.Values.telemetry.logFormat }}
{{- $_ = set $data "RUST_LOG" $root.Values.telemetry.logFilter }}
{{- with $root.Values.telemetry.otlpEndpoint }}
{{- $_ = set $data "OTEL_EXPORTER_OTLP_ENDPOINT" . }}
{{- end }}
{{- if eq $c.kind "gateway" }}
{{- $_ = set $data "GATEWAY_HTTP_ADDR" (printf "0.0.0.0:%d" ($c.port | int)) }}
{{- /* /metrics on its own listener, never on the public HTTP port. */}}
{{- $_ = set $data "GATEWAY_METRICS_ADDR" (printf "0.0.0.0:%d" ($root.Values.metrics.port | int)) }}
{{- /* Every service but svc-auth, whose URL is AUTH_URL (uses.auth, below). */}}
{{- range $name := keys $root.Values.services | sortAlpha }}
{{- if ne $name (include "formflow.authServerName" $root) }}
{{- $svc := index $root.Values.services $name }}
{{- $_ = set $data (printf "GATEWAY_%s_URL" $svc.envPrefix) (include "formflow.serviceUrl" (list $root $name "")) }}
{{- end }}
{{- end }}
{{- $gw := $root.Values.gateway }}
{{- $_ = set $data "GATEWAY_BASE_DOMAIN" $root.Values.baseDomain }}
{{- with $gw.defaultTenant }}
{{- $_ = set $data "GATEWAY_DEFAULT_TENANT" . }}
{{- end }}
{{- $_ = set $data "GATEWAY_BODY_LIMIT_BYTES" ($gw.bodyLimitBytes | int64 | toString) }}
{{- $_ = set $data "GATEWAY_REQUEST_TIMEOUT" $gw.requestTimeout }}
{{- with $gw.corsOrigins }}
{{- $_ = set $data "GATEWAY_CORS_ORIGINS" (join "," .) }}
{{- end }}
{{- $_ = set $data "GATEWAY_TRUSTED_PROXIES" (include "formflow.trustedProxies" $root) }}
{{- $_ = set $data "GATEWAY_MAINTENANCE" (ternary "true" "false" (eq (toString $gw.maintenance.enabled) "true")) }}
{{- $_ = set $data "GATEWAY_MAINTENANCE_RETRY_AFTER" ($gw.maintenance.retryAfterSeconds | int | toString) }}
{{- $_ = set $data "GATEWAY_ANONYMOUS_RATE" ($gw.rateLimits.anonymous.perMinute | int | toString) }}
{{- $_ = set $data "GATEWAY_ANONYMOUS_BURST" ($gw.rateLimits.anonymous.burst | int | toString) }}
{{- $_ = set $data "GATEWAY_CALLER_RATE" ($gw.rateLimits.caller.perMinute | int | toString) }}
{{- $_ = set $data "GATEWAY_CALLER_BURST" ($gw.rateLimits.caller.burst | int | toString) }}
{{- $_ = set $data "GATEWAY_API_KEY_CACHE_TTL" $gw.cacheTtl.apiKeys }}
{{- $_ = set $data "GATEWAY_TENANT_CACHE_TTL" $gw.cacheTtl.tenants }}
{{- with $gw.extraApis }}
{{- $files := list }}
{{- $routes := list }}
{{- range . }}
{{- $files = append $files (printf "%s/%s/%s" (include "formflow.descriptorDir" $root) .name .descriptorSet.key) }}
{{- $url := .url }}
{{- range .packages }}
{{- $routes = append $routes (printf "%s=%s" . $url) }}
{{- end }}
{{- end }}
{{- $_ = set $data "GATEWAY_DESCRIPTOR_SETS" (join "," $files) }}
{{- $_ = set $data "GATEWAY_PACKAGE_ROUTES" (join "," $routes) }}
{{- end }}
{{- else }}
{{- $_ = set $data (printf "%s_GRPC_ADDR" $c.envPrefix) (printf "0.0.0.0:%d" ($c.port | int)) }}
{{- $_ = set $data (printf "%s_METRICS_ADDR" $c.envPrefix) (printf "0.0.0.0:%d" ($root.Values.metrics.port | int)) }}
{{- end }}
{{- if $c.uses.postgres }}
{{- $_ = set $data "DATABASE_URL_FILE" (printf "%s/postgres/url" (include "formflow.secretDir" .)) }}
{{- $_ = set $data "DB_MAX_CONNECTIONS" ($root.Values.postgres.maxConnections | toString) }}
{{- /* No DB_APP_ROLE: each binary's queries run as its own app role, `formflow_<schema>`. */}}
{{- /* With a migration Job the pods never migrate; without one they migrate at startup
(serialised by an advisory lock). */}}
{{- $_ = set $data "DB_MIGRATE" (ternary "false" "true" (eq (toString $c.migrations.enabled) "true")) }}
{{- end }}
{{- /* The private CA (caBundle), when named: what rediss:// and amqps:// servers are checked
against. Postgres takes it from its URL (sslrootcert=), which needs no variable. */}}
{{- $caFile := "" }}
{{- if include "formflow.caBundle" $root }}
{{- $caFile = include "formflow.caFile" $root }}
{{- end }}
{{- if $c.uses.redis }}
{{- $_ = set $data "REDIS_URL_FILE" (printf "%s/redis/url" (include "formflow.secretDir" .)) }}
{{- $_ = set $data "REDIS_KEY_PREFIX" $root.Values.redis.keyPrefix }}
{{- with $caFile }}
{{- $_ = set $data "REDIS_CA_FILE" . }}
{{- end }}
{{- end }}
{{- if $c.uses.amqp }}
{{- $_ = set $data "AMQP_URL_FILE" (printf "%s/amqp/url" (include "formflow.secretDir" .)) }}
{{- $_ = set $data "AMQP_PREFIX" $root.Values.amqp.prefix }}
{{- $_ = set $data "AMQP_RETRY_BASE" $root.Values.amqp.retryBase }}
{{- $_ = set $data "AMQP_MAX_ATTEMPTS" ($root.Values.amqp.maxAttempts | toString) }}
{{- with $caFile }}
{{- $_ = set $data "AMQP_CA_FILE" . }}
{{- end }}
{{- end }}
{{- $auth := $root.Values.auth }}
{{- if $c.uses.auth }}
{{- /* Verifies tokens: svc-auth's key set, fetched at start (the pod fails until svc-auth
answers), on unknown key ids and every five minutes. */}}
{{- $why := printf "services.%s has uses.auth: it verifies tokens against svc-auth's keys" $c.name }}
{{- if eq $c.kind "gateway" }}
{{- $why = "the gateway verifies tokens and API keys and obtains service tokens there (AUTH_URL)" }}
{{- end }}
{{- $_ = set $data "AUTH_URL" (include "formflow.serviceUrl" (list $root (include "formflow.authServerName" $root) $why)) }}
{{- $_ = set $data "AUTH_ISSUER" $auth.issuer }}
{{- $_ = set $data "AUTH_AUDIENCE" $auth.audience }}
{{- end }}
{{- with $c.serviceClient }}
{{- /* A client of svc-auth: its id, and its secret from svc-auth's service clients Secret. */}}
{{- $_ = set $data "AUTH_CLIENT_ID" .clientId }}
{{- $_ = set $data "AUTH_CLIENT_SECRET_FILE" (printf "%s/auth-client-secret/secret" (include "formflow.secretDir" $root)) }}
{{- end }}
{{- if $c.authServer }}
{{- /* The issuer: what it issues, how it protects passwords and logins, its two secrets, and
svc-tenant, where sign-up creates tenants. */}}
{{- $_ = set $data "AUTH_TENANT_URL" (include "formflow.serviceUrl" (list $root (include "formflow.tenantServiceName" $root) "svc-auth creates tenants there (AUTH_TENANT_URL)")) }}
{{- $_ = set $data "AUTH_ISSUER" $auth.issuer }}
{{- $_ = set $data "AUTH_AUDIENCE" $auth.audience }}
{{- $_ = set $data "AUTH_ACCESS_TOKEN_TTL" $auth.tokens.accessTokenTtl }}
{{- $_ = set $data "AUTH_REFRESH_TOKEN_TTL" $auth.tokens.refreshTokenTtl }}
{{- $_ = set $data "AUTH_SERVICE_TOKEN_TTL" $auth.tokens.serviceTokenTtl }}
{{- $_ = set $data "AUTH_PASSWORD_MIN_LENGTH" ($auth.passwords.minLength | int | toString) }}
{{- $_ = set $data "AUTH_ARGON2_MEMORY_KIB" ($auth.passwords.argon2.memoryKiB | int | toString) }}
{{- $_ = set $data "AUTH_ARGON2_ITERATIONS" ($auth.passwords.argon2.iterations | int | toString) }}
{{- $_ = set $data "AUTH_ARGON2_PARALLELISM" ($auth.passwords.argon2.parallelism | int | toString) }}
{{- $_ = set $data "AUTH_LOCKOUT_THRESHOLD" ($auth.lockout.threshold | int | toString) }}
{{- $_ = set $data "AUTH_LOCKOUT_BASE" $auth.lockout.base }}
{{- $_ = set $data "AUTH_LOCKOUT_MAX" $auth.lockout.max }}
{{- $_ = set $data "AUTH_IP_FAILURE_LIMIT" ($auth.lockout.ipFailureLimit | int | toString) }}
{{- $_ = set $data "AUTH_IP_FAILURE_WINDOW" $auth.lockout.ipFailureWindow }}
{{- $_ = set $data "AUTH_ENCRYPTION_KEYS_FILE" (printf "%s/auth-encryption-keys/keys" (include "formflow.secretDir" .)) }}
{{- $_ = set $data "AUTH_SERVICE_CLIENTS_FILE" (printf "%s/auth-service-clients/clients" (include "formflow.secretDir" .)) }}
{{- end }}
{{- if $c.workflowService }}
{{- /* svc-workflow seals credentials with these keys (its migration Job does not need them). */}}
{{- $_ = set $data "WORKFLOW_ENCRYPTION_KEYS_FILE" (printf "%s/workflow-encryption-keys/keys" (include "formflow.secretDir" .)) }}
{{- $workflow := $root.Values.workflow }}
{{- $_ = set $data "WORKFLOW_WORKER_CONCURRENCY" ($workflow.workers.concurrency | int | toString) }}
{{- $_ = set $data "WORKFLOW_LEASE" $workflow.workers.lease }}
{{- $_ = set $data "WORKFLOW_OVERDUE_AFTER" $workflow.workers.overdueAfter }}
{{- $_ = set $data "WORKFLOW_EXECUTION_RETENTION_DAYS" ($workflow.retention.executionDays | int | toString) }}
{{- $_ = set $data "WORKFLOW_RETENTION_INTERVAL" $workflow.retention.interval }}
{{- /* Only when some are listed: an empty value would be one empty, unparsable network. */}}
{{- with $workflow.http.allowedNetworks }}
{{- $_ = set $data "WORKFLOW_HTTP_ALLOWED_NETWORKS" (join "," .) }}
{{- end }}
{{- /* Its `action.ai_classify` nodes call svc-ai with its service token (serviceClient, checked
in validate.yaml); without the URL they fail with SERVICE_NOT_CONFIGURED. */}}
{{- if $workflow.ai.enabled }}
{{- $_ = set $data "WORKFLOW_AI_URL" (include "formflow.serviceUrl" (list $root (include "formflow.aiServiceName" $root) "svc-workflow calls svc-ai for its action.ai_classify nodes (WORKFLOW_AI_URL; workflow.ai.enabled=false turns that off)")) }}
{{- end }}
{{- /* Its `action.notify` and `action.email` nodes call svc-notify the same way. */}}
{{- if $workflow.notify.enabled }}
{{- $_ = set $data "WORKFLOW_NOTIFY_URL" (include "formflow.serviceUrl" (list $root (include "formflow.notifyServiceName" $root) "svc-workflow calls svc-notify for its action.notify and action.email nodes (WORKFLOW_NOTIFY_URL; workflow.notify.enabled=false turns that off)")) }}
{{- end }}
{{- end }}
{{- if $c.notifyService }}
{{- /* svc-notify: its sender, workers and webhook networks; its two secrets only when named
(each unset turns a channel off), the web app URL only when set (its migration Job needs none). */}}
{{- $notify := $root.Values.notify }}
{{- $_ = set $data "NOTIFY_EMAIL_FROM" $notify.emailFrom }}
{{- with $notify.appUrl }}
{{- $_ = set $data "NOTIFY_APP_URL" . }}
{{- end }}
{{- if $notify.smtp.existingSecret }}
{{- $_ = set $data "NOTIFY_SMTP_URL_FILE" (printf "%s/notify-smtp-url/url" (include "formflow.secretDir" .)) }}
{{- end }}
{{- if $notify.encryptionKeys.existingSecret }}
{{- $_ = set $data "NOTIFY_ENCRYPTION_KEYS_FILE" (printf "%s/notify-encryption-keys/keys" (include "formflow.secretDir" .)) }}
{{- end }}
{{- $_ = set $data "NOTIFY_WORKER_CONCURRENCY" ($notify.workers.concurrency | int | toString) }}
{{- $_ = set $data "NOTIFY_LEASE" $notify.workers.lease }}
{{- $_ = set $data "NOTIFY_OVERDUE_AFTER" $notify.workers.overdueAfter }}
{{- $_ = set $data "NOTIFY_RETENTION_DAYS" ($notify.retention.days | int | toString) }}
{{- $_ = set $data "NOTIFY_RETENTION_INTERVAL" $notify.retention.interval }}
{{- /* Only when some are listed: an empty value would be one empty, unparsable network. */}}
{{- with $notify.webhooks.allowedNetworks }}
{{- $_ = set $data "NOTIFY_WEBHOOK_ALLOWED_NETWORKS" (join "," .) }}
{{- end }}
{{- end }}
{{- if include "formflow.mountsJwks" (list $root $c) }}
{{- $_ = set $data "AUTH_JWKS_FILE" (printf "%s/%s" (include "formflow.jwksDir" .) $auth.jwks.key) }}
{{- end }}
{{- range $key, $value := $c.config }}
{{- $_ = set $data $key (tpl (toString $value) $root) }}
{{- end }}
{{- toYaml $data }}
{{- end }}

{{/* Secret volumes of a component (pod spec `volumes` items). Argument: (list $ component). */}}
{{- define "formflow.secretVolumes" -}}
{{- $root := index . 0 }}
{{- $c := index . 1 }}
{{- if $c.uses.postgres }}
{{- /* Pods that never migrate (their Job does) log in with their own role, the key `<name>` of
postgres.podSecret, when it names a Secret; otherwise, and in pods that migrate at startup, as
the owner (postgres.existingSecret, the migration Jobs' URL). */}}
{{- $own := and (ne $root.Values.postgres.podSecret "") (eq (toString $c.migrations.enabled) "true") }}
- name: postgres-url
  secret:
    secretName: {{ ternary $root.Values.postgres.podSecret $root.Values.postgres.existingSecret $own }}
    defaultMode: 0440
    items:
      - key: {{ ternary $c.name $root.Values.postgres.urlKey $own }}
        path: url
{{- end }}
{{- if $c.uses.redis }}
- name: redis-url
  secret:
    secretName: {{ $root.Values.redis.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ $root.Values.redis.urlKey }}
        path: url
{{- end }}
{{- if $c.uses.amqp }}
- name: amqp-url
  secret:
    secretName: {{ $root.Values.amqp.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ $root.Values.amqp.urlKey }}
        path: url
{{- end }}
{{- if $c.authServer }}
- name: auth-encryption-keys
  secret:
    secretName: {{ $root.Values.auth.encryptionKeys.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ $root.Values.auth.encryptionKeys.key }}
        path: keys
- name: auth-service-clients
  secret:
    secretName: {{ $root.Values.auth.serviceClients.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ $root.Values.auth.serviceClients.key }}
        path: clients
{{- end }}
{{- if $c.workflowService }}
- name: workflow-encryption-keys
  secret:
    secretName: {{ $root.Values.workflow.encryptionKeys.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ $root.Values.workflow.encryptionKeys.key }}
        path: keys
{{- end }}
{{- if $c.notifyService }}
{{- /* Both optional: no volume (and no variable) for a secret not named. */}}
{{- $notify := $root.Values.notify }}
{{- if $notify.smtp.existingSecret }}
- name: notify-smtp-url
  secret:
    secretName: {{ $notify.smtp.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ $notify.smtp.key }}
        path: url
{{- end }}
{{- if $notify.encryptionKeys.existingSecret }}
- name: notify-encryption-keys
  secret:
    secretName: {{ $notify.encryptionKeys.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ $notify.encryptionKeys.key }}
        path: keys
{{- end }}
{{- end }}
{{- with $c.serviceClient }}
- name: auth-client-secret
  secret:
    secretName: {{ $root.Values.auth.serviceClients.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ .secretKey }}
        path: secret
{{- end }}
{{- if eq $c.kind "gateway" }}
{{- range $root.Values.gateway.extraApis }}
- name: api-{{ .name }}
  configMap:
    name: {{ .descriptorSet.name }}
    defaultMode: 0444
    items:
      - key: {{ .descriptorSet.key }}
        path: {{ .descriptorSet.key }}
{{- end }}
{{- end }}
{{- if include "formflow.mountsCaBundle" (list $root $c) }}
{{ include "formflow.caBundleVolume" $root }}
{{- end }}
{{- if include "formflow.mountsJwks" (list $root $c) }}
- name: jwks
{{- if $root.Values.auth.jwks.existingSecret }}
  secret:
    secretName: {{ $root.Values.auth.jwks.existingSecret }}
    defaultMode: 0444
{{- else }}
  configMap:
    name: {{ $root.Values.auth.jwks.existingConfigMap }}
    defaultMode: 0444
{{- end }}
    items:
      - key: {{ $root.Values.auth.jwks.key }}
        path: {{ $root.Values.auth.jwks.key }}
{{- end }}
{{- end }}

{{/* Mounts of those volumes. Argument: (list $ component). */}}
{{- define "formflow.secretMounts" -}}
{{- $root := index . 0 }}
{{- $c := index . 1 }}
{{- range $dep := list "postgres" "redis" "amqp" }}
{{- if index $c.uses $dep }}
- name: {{ $dep }}-url
  mountPath: {{ include "formflow.secretDir" $ }}/{{ $dep }}
  readOnly: true
{{- end }}
{{- end }}
{{- if $c.authServer }}
{{- range $secret := list "auth-encryption-keys" "auth-service-clients" }}
- name: {{ $secret }}
  mountPath: {{ include "formflow.secretDir" $ }}/{{ $secret }}
  readOnly: true
{{- end }}
{{- end }}
{{- if $c.workflowService }}
- name: workflow-encryption-keys
  mountPath: {{ include "formflow.secretDir" $ }}/workflow-encryption-keys
  readOnly: true
{{- end }}
{{- if $c.notifyService }}
{{- if $root.Values.notify.smtp.existingSecret }}
- name: notify-smtp-url
  mountPath: {{ include "formflow.secretDir" $ }}/notify-smtp-url
  readOnly: true
{{- end }}
{{- if $root.Values.notify.encryptionKeys.existingSecret }}
- name: notify-encryption-keys
  mountPath: {{ include "formflow.secretDir" $ }}/notify-encryption-keys
  readOnly: true
{{- end }}
{{- end }}
{{- if $c.serviceClient }}
- name: auth-client-secret
  mountPath: {{ include "formflow.secretDir" $ }}/auth-client-secret
  readOnly: true
{{- end }}
{{- if eq $c.kind "gateway" }}
{{- range $root.Values.gateway.extraApis }}
- name: api-{{ .name }}
  mountPath: {{ include "formflow.descriptorDir" $ }}/{{ .name }}
  readOnly: true
{{- end }}
{{- end }}
{{- if include "formflow.mountsCaBundle" (list $root $c) }}
{{ include "formflow.caBundleMount" $root }}
{{- end }}
{{- if include "formflow.mountsJwks" (list $root $c) }}
- name: jwks
  mountPath: {{ include "formflow.jwksDir" $ }}
  readOnly: true
{{- end }}
{{- end }}

{{/* The container security context every container gets. */}}
{{- define "formflow.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The pod security context. Argument: (list $ component). */}}
{{- define "formflow.podSecurityContext" -}}
{{- $c := index . 1 -}}
runAsNonRoot: true
{{- $ctx := $c.podSecurityContext | default dict }}
{{- range $field := list "runAsUser" "runAsGroup" "fsGroup" }}
{{- if and (hasKey $ctx $field) (not (kindIs "invalid" (get $ctx $field))) }}
{{ $field }}: {{ get $ctx $field | int }}
{{- end }}
{{- end }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Host names routed to the gateway (Ingress rules, HTTPRoute hostnames), one per line. */}}
{{- define "formflow.routedHosts" -}}
{{- $hosts := list }}
{{- if .Values.ingress.baseDomainHosts }}
{{- $hosts = append $hosts .Values.baseDomain }}
{{- $hosts = append $hosts (printf "*.%s" .Values.baseDomain) }}
{{- end }}
{{- range .Values.ingress.extraHosts }}
{{- $hosts = append $hosts . }}
{{- end }}
{{- $hosts | uniq | join "\n" }}
{{- end }}
