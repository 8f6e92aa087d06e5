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
  uses {postgres, redis, amqp, jwks}, migrations {enabled}, config, envPrefix, fullName.
Numbers come back as floats from fromJson: templates pipe them through `int`.
*/}}
{{- define "formflow.components" -}}
{{- $root := . }}
{{- $items := list }}
{{- $noUses := dict "postgres" false "redis" false "amqp" false "jwks" false }}
{{- $gw := mergeOverwrite (deepCopy .Values.componentDefaults) (deepCopy .Values.gateway) }}
{{- $_ := set $gw "name" "gateway" }}
{{- $_ = set $gw "kind" "gateway" }}
{{- $_ = set $gw "binary" "gateway" }}
{{- $_ = set $gw "port" .Values.gateway.port }}
{{- $_ = set $gw "portName" "http" }}
{{- $_ = set $gw "uses" $noUses }}
{{- $_ = set $gw "migrations" (dict "enabled" false) }}
{{- $_ = set $gw "fullName" (include "formflow.componentName" (list $root "gateway")) }}
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
{{- $_ = set $c "fullName" (include "formflow.componentName" (list $root $name)) }}
{{- $items = append $items $c }}
{{- end }}
{{- toJson (dict "items" $items) }}
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

{{/* Where secrets and the JWKS are mounted, and the variables naming those files. */}}
{{- define "formflow.secretDir" -}}/var/run/secrets/formflow{{- end }}
{{- define "formflow.jwksDir" -}}/etc/formflow/jwks{{- end }}

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
{{- range $name := keys $root.Values.services | sortAlpha }}
{{- $svc := index $root.Values.services $name }}
{{- $host := printf "%s.%s.svc" (include "formflow.componentName" (list $root $name)) $root.Release.Namespace }}
{{- $_ = set $data (printf "GATEWAY_%s_URL" $svc.envPrefix) (printf "http://%s:%d" $host ($svc.grpcPort | int)) }}
{{- end }}
{{- else }}
{{- $_ = set $data (printf "%s_GRPC_ADDR" $c.envPrefix) (printf "0.0.0.0:%d" ($c.port | int)) }}
{{- $_ = set $data (printf "%s_METRICS_ADDR" $c.envPrefix) (printf "0.0.0.0:%d" ($root.Values.metrics.port | int)) }}
{{- end }}
{{- if $c.uses.postgres }}
{{- $_ = set $data "DATABASE_URL_FILE" (printf "%s/postgres/url" (include "formflow.secretDir" .)) }}
{{- $_ = set $data "DB_MAX_CONNECTIONS" ($root.Values.postgres.maxConnections | toString) }}
{{- $_ = set $data "DB_APP_ROLE" $root.Values.postgres.appRole }}
{{- /* With a migration Job the pods never migrate; without one they migrate at startup
(serialised by an advisory lock). */}}
{{- $_ = set $data "DB_MIGRATE" (ternary "false" "true" (eq (toString $c.migrations.enabled) "true")) }}
{{- end }}
{{- if $c.uses.redis }}
{{- $_ = set $data "REDIS_URL_FILE" (printf "%s/redis/url" (include "formflow.secretDir" .)) }}
{{- $_ = set $data "REDIS_KEY_PREFIX" $root.Values.redis.keyPrefix }}
{{- end }}
{{- if $c.uses.amqp }}
{{- $_ = set $data "AMQP_URL_FILE" (printf "%s/amqp/url" (include "formflow.secretDir" .)) }}
{{- $_ = set $data "AMQP_PREFIX" $root.Values.amqp.prefix }}
{{- $_ = set $data "AMQP_RETRY_BASE" $root.Values.amqp.retryBase }}
{{- $_ = set $data "AMQP_MAX_ATTEMPTS" ($root.Values.amqp.maxAttempts | toString) }}
{{- end }}
{{- if $c.uses.jwks }}
{{- $_ = set $data "AUTH_JWKS_FILE" (printf "%s/%s" (include "formflow.jwksDir" .) $root.Values.auth.jwks.key) }}
{{- $_ = set $data "AUTH_ISSUER" $root.Values.auth.issuer }}
{{- $_ = set $data "AUTH_AUDIENCE" $root.Values.auth.audience }}
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
- name: postgres-url
  secret:
    secretName: {{ $root.Values.postgres.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ $root.Values.postgres.urlKey }}
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
{{- if $c.uses.jwks }}
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
{{- $c := index . 1 }}
{{- range $dep := list "postgres" "redis" "amqp" }}
{{- if index $c.uses $dep }}
- name: {{ $dep }}-url
  mountPath: {{ include "formflow.secretDir" $ }}/{{ $dep }}
  readOnly: true
{{- end }}
{{- end }}
{{- if $c.uses.jwks }}
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
