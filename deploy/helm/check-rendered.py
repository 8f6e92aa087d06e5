#!/usr/bin/env python3
"""Checks of the rendered FormFlow chart that `helm lint` and kubernetes-validate do not make.

Run by scripts/check-chart.sh with the Python of its tools venv (PyYAML and jsonschema come with
kubernetes-validate). Subcommands:

  split RENDERED CORE_OUT CRD_OUT
      Parses the `helm template` output (refusing duplicate keys), writes the documents whose
      kinds kubernetes-validate knows to CORE_OUT and the CRD kinds (ServiceMonitor,
      PrometheusRule, HTTPRoute) to CRD_OUT, and prints the kinds it found.
  crds ROOT CRD_FILE...
      Validates the CRD documents against the schemas below (the fields the chart uses, from the
      Prometheus Operator and Gateway API v1 references), checks PromQL expressions for balanced
      brackets and quotes, and checks that every metric they and the Grafana dashboard name is
      one the binaries export (found in the Rust sources) or a documented external one.
  coverage ROOT RENDERED [--scaling] [--pod-secret=NAME]
      Every service crate of the workspace (svc-*/ with a Cargo.toml, and gateway) has a
      Deployment running its binary with startup, readiness and liveness probes (gRPC ones on
      the health services `liveness`, `""` and `liveness`), a Service, a
      ConfigMap, a ServiceAccount and a NetworkPolicy; a migration hook Job when the crate has
      migrations; with --scaling also an HPA and a PDB. Its /metrics listener (the one
      *_METRICS_ADDR its sources read) is set to a `metrics` container port, which exactly one
      Service exposes, never one reachable from outside the cluster (NodePort, LoadBalancer, an
      Ingress or HTTPRoute backend, the gateway's HTTP Service); a ServiceMonitor, when rendered,
      scrapes it once, as job <Deployment name>, and no other port; the NetworkPolicy admits it
      only from named peers, the same for every component. No component is left without a crate.
      Reachability: every in-cluster URL a component is given (GATEWAY_*_URL, AUTH_URL,
      AUTH_TENANT_URL, …) names a headless Service of the release (clients balance per call
      over its pods) on the pods' own port, whose pods' NetworkPolicies admit the caller on it,
      and, when a NetworkPolicy restricts the caller's egress, whose pods its egress rules admit
      on that port; svc-auth's gRPC port admits every component (all of them fetch its key set
      or service tokens, or will). Restricted egress, besides: a rule for DNS (53 over UDP and
      TCP), one for each dependency the component uses (its ConfigMap's DATABASE_URL_FILE,
      REDIS_URL_FILE, AMQP_URL_FILE: a rule listing 5432, 6379 or 6380, 5671 or 5672; their
      addresses are deployment-specific, so the ports are what can be checked), the OTLP
      collector's port when OTEL_EXPORTER_OTLP_ENDPOINT is set, and the port of each upstream
      of GATEWAY_PACKAGE_ROUTES.
      Postgres (with --pod-secret=NAME, the values' postgres.podSecret, empty for none): no
      object sets DB_APP_ROLE (each binary runs its queries as its own `formflow_<schema>`); the
      migration Jobs read their URL (DATABASE_URL_FILE) from one Secret key, the owner's
      (postgres.existingSecret/urlKey), never from NAME; the pods of a service that one of them
      migrates (DB_MIGRATE=false) read key `<service>` of NAME, or the owner's key without NAME;
      pods that migrate at startup read the owner's.
  expect RENDERED ASSERTIONS
      Checks the environment of rendered components. ASSERTIONS: `;`-separated, each
      `<component> NAME=VALUE` (set to VALUE), `<component> NAME` (set), `<component> !NAME`
      (not set), or `<component> NAME<-secret:SECRET/KEY` / `NAME<-configmap:CONFIGMAP/KEY`: NAME
      is a path (one of a comma-separated list) to a file the component's pod mounts from that
      key of that Secret (ConfigMap). For a file no variable names, `<component>
      /PATH<-secret:SECRET/KEY` (`configmap:` likewise): the pod mounts the file /PATH from that
      key, or `<component> !/PATH`: it mounts nothing there. The environment is the component's
      ConfigMap (envFrom) and the container's `env` values; <component> is the
      app.kubernetes.io/component label of a Deployment or Job (a migration Job's is
      `<service>-migrate`).
      Object assertions: `<Kind>/<component> PATH=VALUE` (a value at PATH is VALUE),
      `<Kind>/<component> !PATH` (PATH leads nowhere) or `<Kind>/<component> !PATH=VALUE` (no
      value at PATH is VALUE) on the first object of that kind and component label; PATH is
      dotted, with [key] for keys that hold dots
      (`Ingress/gateway metadata.annotations[nginx.ingress.kubernetes.io/x]=1`), [N] for a
      list's item N and [*] for each item (`NetworkPolicy/svc-ai !spec.egress[*].ports[*].port=6379`).
  deadlines ROOT RENDERED...
      Every migration Job's activeDeadlineSeconds is below the shortest `helm … --timeout` that
      docs/deploy.md tells operators to use.
  consistency ROOT RENDERED... 
      Every environment variable the chart or docker-compose.yml sets for a binary is one that
      binary reads (clap `env = "…"` of its Parser struct or `ServiceConfig<marker, options>`
      alias, following #[command(flatten)] into its own crate and platform, and the
      `<PREFIX>_GRPC_ADDR|METRICS_ADDR|MIGRATE_ONLY` of `ServeConfig<marker>` from
      platform/src/suite.rs: AUTH_URL is refused on svc-auth, which does not read it); the
      Dockerfile builds every deployable binary with
      the toolchain of rust-toolchain.toml; docker-compose.yml runs every binary; the chart's
      appVersion is the workspace version.
"""

import json
import pathlib
import re
import sys

import jsonschema
import yaml

CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "HTTPRoute"}
# Metrics the chart's alerts and dashboard may name that the binaries do not export, each with
# what provides it.
EXTERNAL_METRICS = {
    "up": "Prometheus",
    "kube_pod_container_status_restarts_total": "kube-state-metrics",
    "kube_job_failed": "kube-state-metrics",
    "kube_horizontalpodautoscaler_status_current_replicas": "kube-state-metrics",
    "kube_horizontalpodautoscaler_spec_max_replicas": "kube-state-metrics",
    "certmanager_certificate_expiration_timestamp_seconds": "cert-manager",
    "rabbitmq_queue_messages_ready": "RabbitMQ (rabbitmq_prometheus per-object metrics)",
    "rabbitmq_queue_messages": "RabbitMQ (rabbitmq_prometheus per-object metrics)",
}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool"}

failures = []


def fail(message):
    failures.append(message)


def finish(what):
    if failures:
        for message in failures:
            print(f"  FAIL {message}")
        print(f"{what}: {len(failures)} problem(s)")
        sys.exit(1)


class UniqueKeyLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor`: keys given next to a merge override it, legitimately
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_docs(path):
    text = pathlib.Path(path).read_text()
    return [doc for doc in yaml.load_all(text, Loader=UniqueKeyLoader) if doc]


def component(doc):
    return ((doc.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/component")


# ---------------------------------------------------------------------------------------- split

def cmd_split(rendered, core_out, crd_out):
    docs = load_docs(rendered)
    core = [doc for doc in docs if doc.get("kind") not in CRD_KINDS]
    crds = [doc for doc in docs if doc.get("kind") in CRD_KINDS]
    pathlib.Path(core_out).write_text(yaml.safe_dump_all(core, sort_keys=False))
    pathlib.Path(crd_out).write_text(yaml.safe_dump_all(crds, sort_keys=False))
    kinds = {}
    for doc in docs:
        kinds[doc.get("kind")] = kinds.get(doc.get("kind"), 0) + 1
    print(" ".join(f"{kind}={count}" for kind, count in sorted(kinds.items())))


# ----------------------------------------------------------------------------------------- crds

PROM_DURATION = r"^([0-9]+(ms|s|m|h|d|w|y))+$"
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
METADATA = {"type": "object", "required": ["name", "namespace"],
            "properties": {"name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
                           "namespace": {"type": "string"}, "labels": STRING_MAP, "annotations": STRING_MAP}}
LABEL_SELECTOR = {"type": "object", "additionalProperties": False,
                  "properties": {"matchLabels": STRING_MAP, "matchExpressions": {"type": "array"}}}

SERVICE_MONITOR = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"}, "metadata": METADATA,
        "spec": {"type": "object", "additionalProperties": False, "required": ["selector", "endpoints"],
                 "properties": {
                     "selector": LABEL_SELECTOR, "jobLabel": {"type": "string"},
                     "namespaceSelector": {"type": "object", "additionalProperties": False,
                                           "properties": {"any": {"type": "boolean"},
                                                          "matchNames": {"type": "array", "items": {"type": "string"}}}},
                     "endpoints": {"type": "array", "minItems": 1, "items": {
                         "type": "object", "additionalProperties": False, "required": ["port"],
                         "properties": {"port": {"type": "string", "minLength": 1}, "path": {"type": "string", "pattern": "^/"},
                                        "scheme": {"enum": ["http", "https"]},
                                        "interval": {"type": "string", "pattern": PROM_DURATION},
                                        "scrapeTimeout": {"type": "string", "pattern": PROM_DURATION},
                                        "honorLabels": {"type": "boolean"},
                                        "relabelings": {"type": "array"}, "metricRelabelings": {"type": "array"}}}}}}}}

PROMETHEUS_RULE = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"}, "metadata": METADATA,
        "spec": {"type": "object", "additionalProperties": False, "required": ["groups"],
                 "properties": {"groups": {"type": "array", "minItems": 1, "items": {
                     "type": "object", "additionalProperties": False, "required": ["name", "rules"],
                     "properties": {"name": {"type": "string", "minLength": 1},
                                    "interval": {"type": "string", "pattern": PROM_DURATION},
                                    "rules": {"type": "array", "minItems": 1, "items": {
                                        "type": "object", "additionalProperties": False,
                                        "required": ["alert", "expr", "labels", "annotations"],
                                        "properties": {
                                            "alert": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                                            "expr": {"type": "string", "minLength": 1},
                                            "for": {"type": "string", "pattern": PROM_DURATION},
                                            "labels": {"type": "object", "required": ["severity"],
                                                       "additionalProperties": {"type": "string"}},
                                            "annotations": {"type": "object", "required": ["summary", "description"],
                                                            "additionalProperties": {"type": "string"}}}}}}}}}}}}

GATEWAY_HOSTNAME = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
BACKEND_REF = {"type": "object", "additionalProperties": False, "required": ["name", "port"],
               "properties": {"name": {"type": "string", "minLength": 1}, "namespace": {"type": "string"},
                              "group": {"type": "string"}, "kind": {"type": "string"},
                              "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                              "weight": {"type": "integer", "minimum": 0}}}
HTTP_ROUTE = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "gateway.networking.k8s.io/v1"}, "metadata": METADATA,
        "spec": {"type": "object", "additionalProperties": False, "required": ["parentRefs", "rules"],
                 "properties": {
                     "parentRefs": {"type": "array", "minItems": 1, "maxItems": 32, "items": {
                         "type": "object", "additionalProperties": False, "required": ["name"],
                         "properties": {"name": {"type": "string", "minLength": 1}, "namespace": {"type": "string"},
                                        "sectionName": {"type": "string"}, "group": {"type": "string"},
                                        "kind": {"type": "string"}, "port": {"type": "integer"}}}},
                     "hostnames": {"type": "array", "maxItems": 16,
                                   "items": {"type": "string", "maxLength": 253, "pattern": GATEWAY_HOSTNAME}},
                     "rules": {"type": "array", "minItems": 1, "maxItems": 16, "items": {
                         "type": "object", "additionalProperties": False,
                         "properties": {
                             "matches": {"type": "array", "maxItems": 64, "items": {
                                 "type": "object", "additionalProperties": False,
                                 "properties": {"path": {"type": "object", "additionalProperties": False,
                                                         "required": ["type", "value"],
                                                         "properties": {"type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]},
                                                                        "value": {"type": "string", "pattern": "^/"}}},
                                                "headers": {"type": "array"}, "queryParams": {"type": "array"},
                                                "method": {"type": "string"}}}},
                             "filters": {"type": "array", "maxItems": 16, "items": {
                                 "type": "object", "required": ["type"],
                                 "properties": {"type": {"enum": ["RequestHeaderModifier", "ResponseHeaderModifier",
                                                                  "RequestMirror", "RequestRedirect", "URLRewrite",
                                                                  "ExtensionRef"]},
                                                "urlRewrite": {"type": "object", "additionalProperties": False,
                                                               "properties": {"hostname": {"type": "string"},
                                                                              "path": {"type": "object", "required": ["type"],
                                                                                       "properties": {"type": {"enum": ["ReplaceFullPath", "ReplacePrefixMatch"]}}}}}}}},
                             "backendRefs": {"type": "array", "maxItems": 16, "items": BACKEND_REF},
                             "timeouts": {"type": "object"}}}}}}}}

SCHEMAS = {"ServiceMonitor": SERVICE_MONITOR, "PrometheusRule": PROMETHEUS_RULE, "HTTPRoute": HTTP_ROUTE}


def rust_sources(root):
    for path in root.rglob("*.rs"):
        parts = set(path.relative_to(root).parts)
        if parts & {"target", "vendor", ".git"}:
            continue
        yield path


def exported_metrics(root):
    names = set()
    pattern = re.compile(r'metrics::(counter|gauge|histogram)!\(\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"')
    for path in rust_sources(root):
        for kind, name in pattern.findall(path.read_text()):
            names.add(name)
            if kind == "histogram":
                names.update({f"{name}_bucket", f"{name}_sum", f"{name}_count"})
    return names


def balanced(expr):
    pairs = {")": "(", "]": "[", "}": "{"}
    stack = []
    in_string = False
    escaped = False
    for character in expr:
        if in_string:
            if escaped:
                escaped = False
            elif character == "\\":
                escaped = True
            elif character == '"':
                in_string = False
            continue
        if character == '"':
            in_string = True
        elif character in "([{":
            stack.append(character)
        elif character in ")]}":
            if not stack or stack.pop() != pairs[character]:
                return False
    return not stack and not in_string


def metric_names(expr):
    """Names used as metric selectors: identifiers directly followed by `{`."""
    return {name for name in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{", expr) if name not in PROMQL_WORDS}


def check_exprs(where, exprs, known):
    used = set()
    for expr in exprs:
        if not balanced(expr):
            fail(f"{where}: unbalanced brackets or quotes in {expr!r}")
        names = metric_names(expr)
        if not names:
            fail(f"{where}: no metric selector in {expr!r}")
        for name in names:
            if name not in known and name not in EXTERNAL_METRICS:
                fail(f"{where}: metric {name} is neither exported by the binaries nor a known external metric")
        used |= names
    return used


def cmd_crds(root, files):
    root = pathlib.Path(root)
    known = exported_metrics(root)
    if "grpc_server_handled_total" not in known:
        fail("found no grpc_server_handled_total in the Rust sources: the metric scan is broken")
    checked = 0
    used = set()
    for path in files:
        for doc in load_docs(path):
            kind = doc.get("kind")
            schema = SCHEMAS.get(kind)
            if schema is None:
                fail(f"{path}: unexpected kind {kind}")
                continue
            name = (doc.get("metadata") or {}).get("name")
            for error in jsonschema.Draft7Validator(schema).iter_errors(doc):
                location = "/".join(str(part) for part in error.absolute_path)
                fail(f"{path}: {kind} {name}: {location}: {error.message}")
            checked += 1
            if kind == "PrometheusRule":
                alerts = [rule for group in doc["spec"]["groups"] for rule in group["rules"]]
                names = [rule.get("alert") for rule in alerts]
                if len(names) != len(set(names)):
                    fail(f"{path}: duplicate alert names in {name}")
                used |= check_exprs(f"{path}: PrometheusRule {name}", [rule.get("expr", "") for rule in alerts], known)
    # The dashboard travels in a ConfigMap, validated by kubernetes-validate; its JSON is checked here.
    dashboard_path = root / "deploy/helm/formflow/files/grafana-dashboard.json"
    dashboard = json.loads(dashboard_path.read_text())
    exprs = [target["expr"] for panel in dashboard.get("panels", []) for target in panel.get("targets", [])]
    if not exprs:
        fail(f"{dashboard_path}: no queries")
    uids = [panel.get("id") for panel in dashboard["panels"]]
    if len(uids) != len(set(uids)):
        fail(f"{dashboard_path}: duplicate panel ids")
    used |= check_exprs(str(dashboard_path.relative_to(root)), exprs, known)
    finish("monitoring and route objects")
    external = sorted(name for name in used if name in EXTERNAL_METRICS)
    print(f"{checked} CRD object(s) valid; {len(exprs)} dashboard queries; metrics used: "
          f"{len(used) - len(external)} exported by the binaries, external: {', '.join(external) or 'none'}")


# ------------------------------------------------------------------------------------- coverage

def workspace_crates(root):
    """(crate directory, binary name, has migrations) of every deployable crate."""
    crates = []
    for manifest in sorted(list(root.glob("svc-*/Cargo.toml")) + [root / "gateway/Cargo.toml"]):
        if not manifest.exists():
            continue
        text = manifest.read_text()
        binaries = re.findall(r'\[\[bin\]\][^\[]*?name\s*=\s*"([^"]+)"', text, re.S)
        package = re.search(r'^\s*name\s*=\s*"([^"]+)"', text, re.M).group(1)
        binary = binaries[0] if binaries else package
        migrations = manifest.parent / "migrations"
        # A migrations/ directory means the crate owns a schema: the platform's own migrations
        # (outbox, audit log, processed events) run there before the crate's first one exists.
        has_migrations = migrations.is_dir()
        crates.append((manifest.parent.name, binary, has_migrations))
    return crates


def crate_metrics_env(root, crate):
    """The *_METRICS_ADDR variables a crate's own sources read (clap `env = "…"`, or the
    platform's ServeConfig for a service of the suite's table)."""
    table = suite_table(root)
    names = set()
    for path in (root / crate / "src").rglob("*.rs"):
        text = path.read_text()
        names.update(re.findall(r'\benv\s*=\s*"([A-Z][A-Z0-9_]*_METRICS_ADDR)"', text))
        for marker in SERVE_CONFIG_USE.findall(text):
            names.update(name for name in serve_env(table, marker) if name.endswith("_METRICS_ADDR"))
    return names


SUITE_ENTRY = re.compile(r"pub const (\w+): SuiteService = SuiteService \{(.*?)\};", re.S)
SUITE_MARKER = re.compile(r"impl SuiteMember for (\w+) \{\s*const SERVICE: SuiteService = (\w+);")
SERVE_CONFIG_USE = re.compile(r"\bServ(?:e|ice)Config<(\w+)")


def suite_table(root):
    """`marker type -> (env prefix, owns a schema)` from platform/src/suite.rs."""
    text = (root / "platform/src/suite.rs").read_text()
    entries = {}
    for constant, body in SUITE_ENTRY.findall(text):
        prefix = re.search(r'env_prefix:\s*"([A-Z0-9_]+)"', body).group(1)
        entries[constant] = (prefix, re.search(r"schema:\s*Some\(", body) is not None)
    return {marker: entries[constant] for marker, constant in SUITE_MARKER.findall(text)}


def serve_env(table, marker):
    """The variables `ServeConfig<marker>` reads: named after the service's prefix."""
    if marker not in table:
        return set()
    prefix, owns_schema = table[marker]
    names = {f"{prefix}_GRPC_ADDR", f"{prefix}_METRICS_ADDR"}
    if owns_schema:
        names.add(f"{prefix}_MIGRATE_ONLY")
    return names


def selects(selector, labels):
    """Whether a LabelSelector (matchLabels, matchExpressions) selects these labels."""
    labels = labels or {}
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            fail(f"unknown selector operator {operator!r}")
            return False
    return True


def service_selects(service, pod_labels):
    selector = service["spec"].get("selector") or {}
    return bool(selector) and all(pod_labels.get(key) == value for key, value in selector.items())


def targets(service_port, container_ports, name):
    """Whether a Service port forwards to the container port called `name`."""
    number = next((port["containerPort"] for port in container_ports if port.get("name") == name), None)
    target = service_port.get("targetPort", service_port.get("port"))
    return target == name or (number is not None and target == number)


def edge_services(by_kind, namespace_of):
    """Names of the Services traffic from outside the cluster reaches, each with why."""
    edge = {}
    for service in by_kind.get("Service", []):
        kind = service["spec"].get("type", "ClusterIP")
        if kind in ("NodePort", "LoadBalancer"):
            edge[service["metadata"]["name"]] = f"type {kind}"
    for ingress in by_kind.get("Ingress", []):
        spec = ingress["spec"]
        backends = [spec.get("defaultBackend")] + [path.get("backend") for rule in spec.get("rules") or []
                                                   for path in (rule.get("http") or {}).get("paths") or []]
        for backend in backends:
            name = ((backend or {}).get("service") or {}).get("name")
            if name:
                edge.setdefault(name, f"backend of the Ingress {ingress['metadata']['name']}")
    for route in by_kind.get("HTTPRoute", []):
        for rule in route["spec"].get("rules") or []:
            for ref in rule.get("backendRefs") or []:
                if ref.get("kind", "Service") == "Service" and ref.get("namespace", namespace_of(route)) == namespace_of(route):
                    edge.setdefault(ref["name"], f"backend of the HTTPRoute {route['metadata']['name']}")
    return edge


def check_metrics(root, crate, deployment, by_kind, edge, peers):
    """The crate's /metrics listener: its own container port, on one in-cluster Service, scraped
    once as job <Deployment name> when a ServiceMonitor is rendered, admitted by the
    NetworkPolicies from named peers only. Records those peers in `peers`."""
    pod = deployment["spec"]["template"]
    pod_labels = pod["metadata"].get("labels") or {}
    container = pod["spec"]["containers"][0]
    container_ports = container.get("ports", [])
    namespace = deployment["metadata"].get("namespace")
    variables = crate_metrics_env(root, crate)
    if len(variables) != 1:
        fail(f"{crate}: its sources read {sorted(variables) or 'no *_METRICS_ADDR'} (want one metrics listener variable)")
        return
    variable = variables.pop()
    config = next((doc for doc in by_kind.get("ConfigMap", []) if component(doc) == crate), None)
    value = ((config or {}).get("data") or {}).get(variable)
    match = re.fullmatch(r"(?:0\.0\.0\.0|\[::\]):([0-9]+)", value or "")
    if not match:
        fail(f"{crate}: its ConfigMap sets {variable}={value!r} (want 0.0.0.0:<port>): no /metrics listener of its own")
        return
    port = int(match.group(1))
    named = [entry for entry in container_ports if entry.get("name") == "metrics"]
    if len(named) != 1 or named[0].get("containerPort") != port:
        fail(f"{crate}: no container port `metrics` {port} ({variable})")
        return
    if sum(1 for entry in container_ports if entry.get("containerPort") == port) != 1:
        fail(f"{crate}: the metrics port {port} is also another container port")

    # On exactly one Service, which is not reachable from outside the cluster.
    selecting = [service for service in by_kind.get("Service", []) if service_selects(service, pod_labels)]
    carriers = [(service, entry) for service in selecting for entry in service["spec"].get("ports", [])
                if targets(entry, container_ports, "metrics")]
    if len(carriers) != 1:
        fail(f"{crate}: {len(carriers)} Service ports expose its metrics port {port} "
             f"({', '.join(service['metadata']['name'] for service, _ in carriers) or 'none'}; want 1)")
        return
    service, service_port = carriers[0]
    name = service["metadata"]["name"]
    if name in edge:
        fail(f"{crate}: its metrics port is on the Service {name}, which is reachable from outside the cluster ({edge[name]})")

    # Scraped once by the ServiceMonitors, as job <Deployment name>, and nothing else of the pod.
    monitors = by_kind.get("ServiceMonitor", [])
    scrapes = []
    for monitor in monitors:
        spec = monitor["spec"]
        names = (spec.get("namespaceSelector") or {}).get("matchNames") or [monitor["metadata"].get("namespace")]
        if not (spec.get("namespaceSelector") or {}).get("any") and namespace not in names:
            continue
        for candidate in selecting:
            if not selects(spec.get("selector") or {}, candidate["metadata"].get("labels")):
                continue
            ports = {entry.get("name"): entry for entry in candidate["spec"].get("ports", [])}
            for endpoint in spec.get("endpoints", []):
                if endpoint.get("port") not in ports:
                    continue
                if not targets(ports[endpoint["port"]], container_ports, "metrics"):
                    fail(f"{crate}: the ServiceMonitor {monitor['metadata']['name']} scrapes port "
                         f"{endpoint['port']} of the Service {candidate['metadata']['name']}, not its metrics port")
                    continue
                job_label = spec.get("jobLabel")
                job = (candidate["metadata"].get("labels") or {}).get(job_label) if job_label else None
                scrapes.append((monitor["metadata"]["name"], endpoint, job or candidate["metadata"]["name"]))
    if monitors:
        if len(scrapes) != 1:
            fail(f"{crate}: its metrics port is scraped {len(scrapes)} times by the ServiceMonitors (want once)")
        else:
            monitor, endpoint, job = scrapes[0]
            if endpoint.get("path", "/metrics") != "/metrics":
                fail(f"{crate}: the ServiceMonitor {monitor} scrapes {endpoint.get('path')} (want /metrics)")
            if job != deployment["metadata"]["name"]:
                fail(f"{crate}: scraped as job {job!r} (want {deployment['metadata']['name']!r}, which the alerts and the dashboard group by)")

    # The NetworkPolicies admit the metrics port from named peers only.
    policies = [policy for policy in by_kind.get("NetworkPolicy", [])
                if selects(policy["spec"].get("podSelector") or {}, pod_labels)
                and "Ingress" in (policy["spec"].get("policyTypes") or ["Ingress"])]
    admitted = []
    for policy in policies:
        for rule in policy["spec"].get("ingress") or []:
            ports = rule.get("ports")
            if ports and not any(entry.get("port") in (None, "metrics", port) for entry in ports):
                continue
            if not rule.get("from"):
                fail(f"{crate}: the NetworkPolicy {policy['metadata']['name']} admits its metrics port from anywhere")
            else:
                admitted.extend(rule["from"])
    if policies and not admitted:
        fail(f"{crate}: no NetworkPolicy rule admits the metrics scrapers to its metrics port")
    peers[crate] = admitted


IN_CLUSTER_URL = re.compile(r"^https?://([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc(\.cluster\.local)?:([0-9]+)/?$")
AUTH_SERVER = "svc-auth"


def peer_admits(peer, namespace, labels):
    """Whether a NetworkPolicyPeer admits pods with `labels` in `namespace` (the policy's own).
    Conservative: an ipBlock, or a namespaceSelector other than the namespace's own name label,
    admits nothing here."""
    if "ipBlock" in peer:
        return False
    selector = peer.get("namespaceSelector")
    if selector is not None and selector != {}:
        if selector.get("matchExpressions") or (selector.get("matchLabels") or {}) != {"kubernetes.io/metadata.name": namespace}:
            return False
    if "podSelector" not in peer:
        return selector is not None  # a namespaceSelector alone: every pod of that namespace
    return selects(peer["podSelector"] or {}, labels)


def policy_admits(policies, port_name, port_number, namespace, labels):
    """Whether the Ingress NetworkPolicies selecting a pod admit `labels` on its container port
    (`port_name`, `port_number`). No policy: everything is admitted."""
    if not policies:
        return True
    for policy in policies:
        for rule in policy["spec"].get("ingress") or []:
            ports = rule.get("ports")
            if ports and not any(entry.get("port") in (None, port_name, port_number) for entry in ports):
                continue
            peers = rule.get("from")
            if not peers or any(peer_admits(peer, namespace, labels) for peer in peers):
                return True
    return False


def port_covers(entry, number, name, protocol):
    """Whether a NetworkPolicyPort covers port `number` (container port `name`) over `protocol`."""
    if entry.get("protocol", "TCP") != protocol:
        return False
    port = entry.get("port")
    if port is None:
        return True
    if isinstance(port, str):
        return port == name
    return port <= number <= entry.get("endPort", port)


def egress_admits(policies, number, name, namespace, labels, protocol="TCP"):
    """Whether the Egress NetworkPolicies selecting a pod let it reach pods with `labels` in
    `namespace` on port `number` (named `name`). No policy: everything is admitted. A rule
    without `to` admits every address on its ports; ipBlocks and other namespaces admit nothing
    here (peer_admits)."""
    if not policies:
        return True
    for policy in policies:
        for rule in policy["spec"].get("egress") or []:
            ports = rule.get("ports")
            if ports and not any(port_covers(entry, number, name, protocol) for entry in ports):
                continue
            peers = rule.get("to")
            if not peers or any(peer_admits(peer, namespace, labels) for peer in peers):
                return True
    return False


def egress_names_port(policies, numbers, protocol="TCP", explicit=True, local=True):
    """Whether an egress rule covers one of the port `numbers` over `protocol`, wherever it
    leads (Postgres, Redis, RabbitMQ, DNS and the collector are addresses the chart does not
    know). With `explicit`, only a rule that lists ports counts: the public internet's
    all-ports rule is not a dependency's rule. Without `local`, a rule whose peers are all bare
    podSelectors (pods of the policy's own namespace) does not count."""
    for policy in policies:
        for rule in policy["spec"].get("egress") or []:
            peers = rule.get("to")
            if not local and peers and all(set(peer) == {"podSelector"} for peer in peers):
                continue
            ports = rule.get("ports")
            if not ports:
                if not explicit:
                    return True
                continue
            if any(port_covers(entry, number, None, protocol) for entry in ports for number in numbers):
                return True
    return False


def url_port(url):
    """The TCP port of an http(s) URL: its own, else 443 for https and 80 for http."""
    match = re.match(r"^(https?)://[^/:]+(?::([0-9]+))?/?$", url)
    if not match:
        return None
    return int(match.group(2)) if match.group(2) else (443 if match.group(1) == "https" else 80)


# What a ConfigMap variable says a component uses, and that dependency's usual ports: with egress
# restricted, one of them must have a rule of its own.
DEPENDENCIES = {
    "DATABASE_URL_FILE": ("Postgres", (5432,)),
    "REDIS_URL_FILE": ("Redis", (6379, 6380)),
    "AMQP_URL_FILE": ("RabbitMQ", (5671, 5672)),
}


def check_egress(caller, policies, environment, namespace):
    """A component whose egress is restricted: DNS (53 over UDP and TCP), a rule for each
    dependency it uses (DEPENDENCIES), the OTLP collector's port when it exports traces, and for
    the gateway each extra API's upstream port (GATEWAY_PACKAGE_ROUTES; a rule to the release's
    own namespace only counts for an upstream there)."""
    for protocol in ("UDP", "TCP"):
        if not egress_names_port(policies, (53,), protocol):
            fail(f"{caller}: its egress policy has no DNS rule (port 53/{protocol}): it could not resolve any name")
    for variable, (what, ports) in DEPENDENCIES.items():
        if variable in environment and not egress_names_port(policies, ports):
            fail(f"{caller}: it uses {what} ({variable}) but no egress rule names port "
                 f"{' or '.join(map(str, ports))}: it could not reach it")
    endpoint = environment.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint:
        port = url_port(str(endpoint))
        if port is None or not egress_names_port(policies, (port,)):
            fail(f"{caller}: it exports traces to {endpoint} but no egress rule names port {port}")
    routes = environment.get("GATEWAY_PACKAGE_ROUTES")
    for route in filter(None, str(routes or "").split(",")):
        package, _, url = route.partition("=")
        port = url_port(url)
        host = IN_CLUSTER_URL.match(url)
        local = bool(host) and host.group(3) == namespace
        if port is None or not egress_names_port(policies, (port,), explicit=False, local=local):
            fail(f"{caller}: {package} is routed to {url} but no egress rule admits port {port}")


def check_reachability(by_kind):
    """Every in-cluster URL in a component's ConfigMap names a Service of the release whose pods
    admit the component on that port, and whose pods the component's egress rules (when a policy
    restricts its egress) admit on that port; svc-auth's gRPC port admits every component; a
    component with restricted egress reaches DNS and has a rule per dependency (check_egress).
    Returns the number of (caller, target) pairs checked and of components with restricted
    egress."""
    deployments = {component(doc): doc for doc in by_kind.get("Deployment", [])}
    config_maps = {doc["metadata"]["name"]: doc for doc in by_kind.get("ConfigMap", [])}
    services = {(doc["metadata"].get("namespace"), doc["metadata"]["name"]): doc for doc in by_kind.get("Service", [])}
    rendered_policies = by_kind.get("NetworkPolicy", [])

    def pods(doc):
        return doc["spec"]["template"]["metadata"].get("labels") or {}

    def egress_policies(caller):
        namespace = deployments[caller]["metadata"].get("namespace")
        return [policy for policy in rendered_policies
                if policy["metadata"].get("namespace") == namespace
                and selects(policy["spec"].get("podSelector") or {}, pods(deployments[caller]))
                and "Egress" in (policy["spec"].get("policyTypes") or [])]

    def admitted(caller, target, port_name, port_number, why):
        namespace = deployments[target]["metadata"].get("namespace")
        policies = [policy for policy in rendered_policies
                    if policy["metadata"].get("namespace") == namespace
                    and selects(policy["spec"].get("podSelector") or {}, pods(deployments[target]))
                    and "Ingress" in (policy["spec"].get("policyTypes") or ["Ingress"])]
        if not policy_admits(policies, port_name, port_number, namespace, pods(deployments[caller])):
            fail(f"{caller} cannot reach {target}'s {port_name} port {port_number} ({why}): "
                 f"no NetworkPolicy rule of {target} admits {caller}'s pods")

    def sent(caller, target, port_name, port_number, why):
        namespace = deployments[target]["metadata"].get("namespace")
        if not egress_admits(egress_policies(caller), port_number, port_name, namespace, pods(deployments[target])):
            fail(f"{caller} cannot reach {target}'s {port_name} port {port_number} ({why}): "
                 f"no egress rule of {caller}'s NetworkPolicy admits {target}'s pods on it")

    pairs = set()
    for caller, deployment in sorted(deployments.items()):
        for variable, value in sorted(environment_of(deployment, config_maps).items()):
            match = IN_CLUSTER_URL.match(str(value))
            if not match:
                continue
            name, namespace, port = match.group(1), match.group(3), int(match.group(6))
            service = services.get((namespace, name))
            entry = next((entry for entry in (service or {"spec": {}})["spec"].get("ports", []) if entry.get("port") == port), None)
            if service is None or entry is None:
                fail(f"{caller}: {variable}={value} names no port of a Service of the release")
                continue
            # Clients balance per call over the pods a name resolves to
            # (platform/src/client/balance.rs): a ClusterIP's one address would pin each
            # client's calls to one pod. A headless Service translates no port.
            headless = service["spec"].get("clusterIP") == "None"
            if not headless:
                fail(f"{caller}: {variable}={value} names the ClusterIP Service {name}: its calls "
                     "would all go to one pod; name the headless Service")
            targets_ = [target for target, doc in deployments.items() if service_selects(service, pods(doc))]
            if not targets_:
                fail(f"{caller}: {variable}={value}: the Service {name} selects no Deployment")
            for target in targets_:
                container_ports = deployments[target]["spec"]["template"]["spec"]["containers"][0].get("ports", [])
                wanted = entry.get("targetPort", port)
                matched = next((cp for cp in container_ports if wanted in (cp.get("name"), cp.get("containerPort"))), None)
                if matched is None:
                    fail(f"{caller}: {variable}={value}: the Service {name} forwards to no container port of {target}")
                    continue
                if headless and matched["containerPort"] != port:
                    fail(f"{caller}: {variable}={value}: the headless Service {name} translates no port, "
                         f"and {target} listens on {matched['containerPort']}")
                admitted(caller, target, matched.get("name"), matched["containerPort"], variable)
                sent(caller, target, matched.get("name"), matched["containerPort"], variable)
                pairs.add((caller, target))
    # Restricted egress: besides the suite's own services (above), DNS and every dependency the
    # component uses, at addresses the chart does not know, so by port.
    restricted = 0
    for caller, deployment in sorted(deployments.items()):
        policies = egress_policies(caller)
        if policies:
            restricted += 1
            check_egress(caller, policies, environment_of(deployment, config_maps), deployment["metadata"].get("namespace"))
    # svc-auth: every component fetches its key set or service tokens (or will, when it starts
    # verifying tokens), whether or not it has AUTH_URL today.
    if AUTH_SERVER in deployments:
        grpc = next((cp for cp in deployments[AUTH_SERVER]["spec"]["template"]["spec"]["containers"][0].get("ports", [])
                     if cp.get("name") == "grpc"), None)
        if grpc is None:
            fail(f"{AUTH_SERVER}: no grpc container port")
        else:
            for caller in sorted(deployments):
                if caller != AUTH_SERVER:
                    admitted(caller, AUTH_SERVER, "grpc", grpc["containerPort"], "svc-auth's key set and service tokens")
                    pairs.add((caller, AUTH_SERVER))
    return len(pairs), restricted


def cmd_coverage(root, rendered, scaling, pod_secret=""):
    root = pathlib.Path(root)
    docs = load_docs(rendered)
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    crates = workspace_crates(root)
    if not any(name == "gateway" for name, _, _ in crates) or len(crates) < 2:
        fail(f"found only {crates} in {root}: the crate scan is broken")
    rendered_components = {component(doc) for doc in by_kind.get("Deployment", [])}
    edge = edge_services(by_kind, lambda doc: doc["metadata"].get("namespace"))
    peers = {}
    for crate, binary, has_migrations in crates:
        deployments = [doc for doc in by_kind.get("Deployment", []) if component(doc) == crate]
        if len(deployments) != 1:
            fail(f"{crate}: {len(deployments)} Deployments (want 1)")
            continue
        pod = deployments[0]["spec"]["template"]["spec"]
        container = pod["containers"][0]
        if container.get("command", [None])[0] != binary:
            fail(f"{crate}: the Deployment runs {container.get('command')} (want the binary {binary})")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if probe not in container:
                fail(f"{crate}: no {probe}")
            elif crate != "gateway":
                grpc_port = next((port["containerPort"] for port in container.get("ports", []) if port["name"] == "grpc"), None)
                grpc = container[probe].get("grpc") or {}
                if grpc.get("port") != grpc_port:
                    fail(f"{crate}: {probe} is not a gRPC probe on the grpc port {grpc_port}")
                # Startup and liveness ask whether the process answers ("liveness"), readiness
                # whether it is ready (""): a replica waiting for svc-auth's keys must not be
                # restarted.
                wanted = "" if probe == "readinessProbe" else "liveness"
                if grpc.get("service", "") != wanted:
                    fail(f"{crate}: {probe} checks the health service {grpc.get('service', '')!r} (want {wanted!r})")
        context = pod.get("securityContext", {})
        security = container.get("securityContext", {})
        if not (context.get("runAsNonRoot") and security.get("readOnlyRootFilesystem")
                and security.get("allowPrivilegeEscalation") is False
                and security.get("capabilities", {}).get("drop") == ["ALL"]
                and context.get("seccompProfile", {}).get("type") == "RuntimeDefault"):
            fail(f"{crate}: the pod is not hardened (non-root, read-only root, no escalation, drop ALL, seccomp)")
        main_port = "http" if crate == "gateway" else "grpc"
        pod_labels = deployments[0]["spec"]["template"]["metadata"].get("labels") or {}
        services = [doc for doc in by_kind.get("Service", [])
                    if service_selects(doc, pod_labels)
                    and any(targets(port, container.get("ports", []), main_port) for port in doc["spec"].get("ports", []))]
        # The ClusterIP Service (grpcurl, meshes, port-forward) and, for a service, the headless
        # one its clients are given (service.yaml).
        counts = [len([doc for doc in services if (doc["spec"].get("clusterIP") == "None") == headless])
                  for headless in (False, True)]
        if counts != ([1, 0] if crate == "gateway" else [1, 1]):
            fail(f"{crate}: {counts[0]} ClusterIP and {counts[1]} headless Services expose its {main_port} port "
                 f"(want 1 and {0 if crate == 'gateway' else 1})")
        elif crate != "gateway":
            for service in services:
                grpc = [port for port in service["spec"]["ports"] if port["name"] == "grpc"]
                if not grpc or grpc[0].get("appProtocol") != "kubernetes.io/h2c":
                    fail(f"{crate}: the Service {service['metadata']['name']} has no grpc port with appProtocol kubernetes.io/h2c")
        else:
            # The gateway's HTTP Service is its public edge, whatever its type.
            edge.setdefault(services[0]["metadata"]["name"], "the gateway's HTTP Service")
        wanted = ["ConfigMap", "ServiceAccount", "NetworkPolicy"] + (["HorizontalPodAutoscaler", "PodDisruptionBudget"] if scaling else [])
        for kind in wanted:
            if not any(component(doc) == crate for doc in by_kind.get(kind, [])):
                fail(f"{crate}: no {kind}")
        jobs = [doc for doc in by_kind.get("Job", [])
                if ((doc["metadata"].get("labels") or {}).get("formflow.dev/migrates")) == crate]
        if has_migrations:
            if len(jobs) != 1:
                fail(f"{crate}: has migrations/ but {len(jobs)} migration Jobs (want 1)")
            else:
                job = jobs[0]
                hooks = (job["metadata"].get("annotations") or {}).get("helm.sh/hook", "")
                if set(hooks.split(",")) != {"pre-install", "pre-upgrade"}:
                    fail(f"{crate}: the migration Job's hooks are {hooks!r} (want pre-install,pre-upgrade)")
                command = job["spec"]["template"]["spec"]["containers"][0].get("command")
                if command != [binary, "--migrate-only"]:
                    fail(f"{crate}: the migration Job runs {command} (want [{binary}, --migrate-only])")
            config = [doc for doc in by_kind.get("ConfigMap", []) if component(doc) == crate]
            if config and config[0].get("data", {}).get("DB_MIGRATE") != "false":
                fail(f"{crate}: a migration Job runs its migrations, yet its pods do not set DB_MIGRATE=false")
        elif jobs:
            fail(f"{crate}: a migration Job but no migrations/ directory")
    # After the loop: `edge` now holds the gateway's HTTP Service too.
    for crate, _, _ in crates:
        deployments = [doc for doc in by_kind.get("Deployment", []) if component(doc) == crate]
        if len(deployments) == 1:
            check_metrics(root, crate, deployments[0], by_kind, edge, peers)
    distinct = {json.dumps(admitted, sort_keys=True) for admitted in peers.values() if admitted}
    if len(distinct) > 1:
        fail("the metrics ports admit different peers per component (want networkPolicy.metrics for every one): "
             + "; ".join(f"{crate}: {json.dumps(admitted, sort_keys=True)}" for crate, admitted in sorted(peers.items())))
    stale = rendered_components - {crate for crate, _, _ in crates}
    if stale:
        fail(f"Deployments without a crate in the workspace: {sorted(stale)}")
    reachable, restricted = check_reachability(by_kind)
    postgres = check_postgres_logins(by_kind, pod_secret)
    finish(f"coverage of {rendered}")
    scraped = "scraped once as its job" if by_kind.get("ServiceMonitor") else "no ServiceMonitor"
    print(f"{len(crates)} crates ({', '.join(crate for crate, _, _ in crates)}): Deployment, probes, Service, "
          f"ConfigMap, ServiceAccount, NetworkPolicy{', HPA, PDB' if scaling else ''}, in-cluster metrics port "
          f"({scraped}) each; migration Jobs for {', '.join(crate for crate, _, migrations in crates if migrations) or 'none'}; "
          f"{reachable} caller→service paths admitted by the NetworkPolicies; "
          f"{f'egress restricted for {restricted} components (DNS, callees, dependencies)' if restricted else 'egress open'}; "
          f"{postgres}")


def environment_of(workload, config_maps):
    """The environment of a Deployment's or Job's first container: its ConfigMaps (envFrom), then
    its `env` values (`<valueFrom>` for references)."""
    container = workload["spec"]["template"]["spec"]["containers"][0]
    environment = {}
    for source in container.get("envFrom") or []:
        environment.update((config_maps.get((source.get("configMapRef") or {}).get("name")) or {}).get("data") or {})
    for variable in container.get("env") or []:
        environment[variable["name"]] = variable.get("value", "<valueFrom>")
    return environment


def check_postgres_logins(by_kind, pod_secret):
    """No DB_APP_ROLE anywhere; the migration Jobs log in as the owner (one Secret key, never
    `pod_secret`); the pods of a service its Job migrates with key `<service>` of `pod_secret`
    when given, else as the owner; pods that migrate themselves as the owner. Returns a summary."""
    config_maps = {doc["metadata"]["name"]: doc for doc in by_kind.get("ConfigMap", [])}
    for doc in by_kind.get("ConfigMap", []):
        if "DB_APP_ROLE" in (doc.get("data") or {}):
            fail(f"ConfigMap {doc['metadata']['name']} sets DB_APP_ROLE (each binary uses its own formflow_<schema>)")
    for kind in ("Deployment", "Job", "Pod"):
        for doc in by_kind.get(kind, []):
            spec = doc["spec"] if kind == "Pod" else doc["spec"]["template"]["spec"]
            for container in spec.get("containers", []) + spec.get("initContainers", []):
                if any(variable["name"] == "DB_APP_ROLE" for variable in container.get("env") or []):
                    fail(f"{kind} {doc['metadata']['name']} sets DB_APP_ROLE (each binary uses its own formflow_<schema>)")

    def postgres_source(workload):
        environment = environment_of(workload, config_maps)
        path = environment.get("DATABASE_URL_FILE")
        if path is None:
            return None
        spec = workload["spec"]["template"]["spec"]
        return mounted_from(spec, spec["containers"][0], path) or ("nothing", path, "")

    migrated, owners = set(), set()
    for job in by_kind.get("Job", []):
        service = (job["metadata"].get("labels") or {}).get("formflow.dev/migrates")
        if not service:
            continue
        source = postgres_source(job)
        if source is None or source[0] != "secret":
            fail(f"the migration Job of {service} reads no Postgres URL from a Secret ({source})")
            continue
        migrated.add(service)
        owners.add(source[1:])
        if pod_secret and source[1] == pod_secret:
            fail(f"the migration Job of {service} reads its URL from the pods' Secret {pod_secret} (want the owner's)")
    if len(owners) > 1:
        fail(f"the migration Jobs read the owner's URL from different Secret keys: {sorted(owners)}")
    owner = next(iter(owners), None)
    own_logins = owner_logins = 0
    for deployment in by_kind.get("Deployment", []):
        name = component(deployment)
        source = postgres_source(deployment)
        if source is None:
            continue
        if name in migrated and environment_of(deployment, config_maps).get("DB_MIGRATE") == "false":
            wanted = ("secret", pod_secret, name) if pod_secret else ("secret",) + owner if owner else None
        else:
            # It migrates at startup: only the owner can.
            wanted = ("secret",) + owner if owner else None
        if wanted is None:
            continue
        if source != wanted:
            fail(f"{name}: the pods read their Postgres URL from {source} (want {wanted[0]} {wanted[1]}, key {wanted[2]})")
        elif pod_secret and source[1] == pod_secret:
            own_logins += 1
        else:
            owner_logins += 1
    owner_text = f"{owner[0]}/{owner[1]}" if owner else "none"
    return (f"no DB_APP_ROLE; Postgres: {len(migrated)} migration Jobs as the owner ({owner_text}), "
            f"{own_logins} services' pods with their own login ({pod_secret or 'no podSecret'}), "
            f"{owner_logins} as the owner")


# --------------------------------------------------------------------------------------- expect

ASSERTION = re.compile(r"^(?P<component>[a-z0-9-]+)\s+(?P<negate>!)?(?P<name>[A-Z_][A-Z0-9_]*)"
                       r"(?:=(?P<value>.*)|<-(?P<kind>secret|configmap):(?P<source>[^/\s]+)/(?P<key>\S+))?$")
# A mounted file no variable names: `<component> /PATH<-secret:SECRET/KEY`, `<component> !/PATH`.
PATH_ASSERTION = re.compile(r"^(?P<component>[a-z0-9-]+)\s+(?:(?P<negate>!)(?P<absent>/[^<\s]+)|(?P<path>/[^<\s]+)"
                            r"<-(?P<kind>secret|configmap):(?P<source>[^/\s]+)/(?P<key>\S+))$")


def mounted_from(pod, container, path):
    """(kind, name, key) of the Secret or ConfigMap key the file at `path` comes from, or None."""
    for mount in container.get("volumeMounts") or []:
        directory = mount["mountPath"].rstrip("/") + "/"
        if not path.startswith(directory):
            continue
        relative = path[len(directory):]
        volume = next((v for v in pod.get("volumes") or [] if v["name"] == mount["name"]), None)
        if volume is None:
            return None
        for kind, field, name_field in (("secret", "secret", "secretName"), ("configmap", "configMap", "name")):
            if field in volume:
                source = volume[field]
                items = source.get("items")
                key = next((item["key"] for item in items if item["path"] == relative), None) if items else relative
                return (kind, source.get(name_field), key) if key else None
        return None
    return None


OBJECT_ASSERTION = re.compile(r"^(?P<kind>[A-Z][A-Za-z]+)/(?P<component>[a-z0-9-]+)\s+(?P<negate>!)?"
                              r"(?P<path>[A-Za-z][^=\s]*)(?:=(?P<value>.*))?$")


def fields(doc, path):
    """The values at `path` (`spec.maxUnavailable`, `metadata.annotations[a.b/c]`,
    `spec.egress[0].ports[*].port`): `[N]` is a list's item N, `[*]` each item; a path that
    leads nowhere has none."""
    values = [doc]
    for match in re.finditer(r"\[([^\]]+)\]|([^.\[]+)", path):
        key = match[1] or match[2]
        found = []
        for value in values:
            if match[1] == "*" and isinstance(value, (list, dict)):
                found.extend(value if isinstance(value, list) else value.values())
            elif isinstance(value, list) and key.isdigit():
                found.extend(value[int(key):int(key) + 1])
            elif isinstance(value, dict) and key in value:
                found.append(value[key])
        values = found
    return values


def check_object(docs, assertion, match):
    """`PATH=VALUE`: some value at PATH is VALUE; `PATH`: PATH leads somewhere; `!PATH=VALUE`:
    no value at PATH is VALUE; `!PATH`: PATH leads nowhere."""
    found = [doc for doc in docs if doc["kind"] == match["kind"] and component(doc) == match["component"]]
    if not found:
        fail(f"{assertion}: no {match['kind']} of component {match['component']}")
        return
    values = fields(found[0], match["path"])
    shown = values[0] if len(values) == 1 else values
    wanted = match["value"]
    if match["negate"]:
        if values and (wanted is None or wanted in map(str, values)):
            fail(f"{assertion}: {match['kind']}/{match['component']} has {match['path']}={shown}")
    elif not values:
        fail(f"{assertion}: {match['kind']}/{match['component']} has no {match['path']}")
    elif wanted is not None and wanted not in map(str, values):
        fail(f"{assertion}: {match['kind']}/{match['component']} has {match['path']}={shown}")


def cmd_deadlines(root, rendered_files):
    docs_text = (pathlib.Path(root) / "docs/deploy.md").read_text()
    units = {"s": 1, "m": 60, "h": 3600}
    timeouts = [int(n) * units[u] for n, u in re.findall(r"--timeout (\d+)([smh])\b", docs_text)]
    if not timeouts:
        fail("docs/deploy.md names no `--timeout` for helm")
    timeout = min(timeouts or [0])
    jobs = 0
    for rendered in rendered_files:
        for doc in load_docs(rendered):
            if doc["kind"] != "Job":
                continue
            jobs += 1
            deadline = doc["spec"].get("activeDeadlineSeconds")
            if deadline is None or deadline >= timeout:
                fail(f"{pathlib.Path(rendered).name}: Job {doc['metadata']['name']} activeDeadlineSeconds {deadline} is not "
                     f"below the documented helm --timeout ({timeout}s)")
    finish("deadlines")
    print(f"{jobs} migration Job(s), each with activeDeadlineSeconds below the documented helm --timeout ({timeout}s)")


def cmd_expect(rendered, assertions):
    docs = load_docs(rendered)
    config_maps = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "ConfigMap"}
    # Deployments, and the migration Jobs (component `<service>-migrate`).
    deployments = {component(doc): doc for doc in docs if doc["kind"] in ("Deployment", "Job")}
    checked = 0
    for assertion in filter(None, (part.strip() for part in assertions.split(";"))):
        if OBJECT_ASSERTION.match(assertion):
            checked += 1
            check_object(docs, assertion, OBJECT_ASSERTION.match(assertion))
            continue
        match = PATH_ASSERTION.match(assertion)
        if match:
            checked += 1
            deployment = deployments.get(match["component"])
            if deployment is None:
                fail(f"{assertion}: no Deployment or Job of component {match['component']}")
                continue
            pod = deployment["spec"]["template"]["spec"]
            path = match["absent"] or match["path"]
            found = mounted_from(pod, pod["containers"][0], path)
            if match["negate"]:
                if found is not None:
                    fail(f"{assertion}: {match['component']} mounts {path} from {found}")
            elif found != (match["kind"], match["source"], match["key"]):
                fail(f"{assertion}: {match['component']} mounts {path} from {found} "
                     f"(want {match['kind']} {match['source']}, key {match['key']})")
            continue
        match = ASSERTION.match(assertion)
        if not match:
            fail(f"cannot parse the assertion {assertion!r}")
            continue
        checked += 1
        name, deployment = match["name"], deployments.get(match["component"])
        if deployment is None:
            fail(f"{assertion}: no Deployment or Job of component {match['component']}")
            continue
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        environment = environment_of(deployment, config_maps)
        if match["negate"]:
            if name in environment:
                fail(f"{assertion}: {match['component']} has {name}={environment[name]}")
        elif name not in environment:
            fail(f"{assertion}: {match['component']} has no {name}")
        elif match["value"] is not None and str(environment[name]) != match["value"]:
            fail(f"{assertion}: {match['component']} has {name}={environment[name]}")
        elif match["kind"]:
            wanted = (match["kind"], match["source"], match["key"])
            found = [mounted_from(pod, container, path) for path in str(environment[name]).split(",")]
            if wanted not in found:
                fail(f"{assertion}: {name}={environment[name]} is mounted from {found} (want {wanted[0]} {wanted[1]}, key {wanted[2]})")
    finish(f"expect {assertions}")
    print(f"{checked} assertion(s) hold")


# ---------------------------------------------------------------------------------- consistency

def env_names_read(root):
    names = set()
    for path in rust_sources(root):
        names.update(re.findall(r'\benv\s*=\s*"([A-Z_][A-Z0-9_]*)"', path.read_text()))
    return names


STRUCT = re.compile(r"^pub struct (\w+)(?:<[^>{]*>)?\s*\{(.*?)^\}", re.S | re.M)
PARSER = re.compile(r"#\[derive\([^)]*\bclap::Parser\b[^)]*\)\]\s*(?:#\[[^\n]*\]\s*|///[^\n]*\s*)*pub struct (\w+)")
FLATTEN = re.compile(r"#\[command\(flatten\)\]\s*(?:///[^\n]*\s*|#\[[^\n]*\]\s*)*pub \w+\s*:\s*(?:\w+::)*(\w+)(?:<(\w+)>)?\s*,")
# A service configured with the platform's ServiceConfig<marker, options>: its Parser.
SERVICE_CONFIG_ALIAS = re.compile(r"pub type Config = ServiceConfig<(\w+),\s*(\w+)>;")


def structs_of(directory):
    """`struct name -> source text of its body` for the top-level structs under `directory`."""
    found = {}
    for path in sorted(directory.rglob("*.rs")):
        for name, body in STRUCT.findall(path.read_text()):
            found.setdefault(name, body)
    return found


def env_read_by_binaries(root, crates):
    """Per deployable binary, the variables its clap Parser struct reads: its own `env = "…"`
    names and those of the structs it flattens (#[command(flatten)]), looked up in its crate,
    then in platform."""
    platform = structs_of(root / "platform/src")
    table = suite_table(root)
    read = {}
    for crate, binary, _ in crates:
        own = structs_of(root / crate / "src")
        sources = [path.read_text() for path in (root / crate / "src").rglob("*.rs")]
        parsers = [(name, {}) for text in sources for name in PARSER.findall(text)]
        parsers += [
            ("ServiceConfig", {"S": marker, "O": options})
            for text in sources
            for marker, options in SERVICE_CONFIG_ALIAS.findall(text)
        ]
        if len(parsers) != 1:
            fail(f"{crate}: found {len(parsers)} clap Parser configurations (want 1): {parsers}")
            continue
        names, pending, seen = set(), [parsers[0]], set()
        generics = parsers[0][1]
        while pending:
            struct, _ = pending.pop()
            struct = generics.get(struct, struct)
            if struct in seen:
                continue
            seen.add(struct)
            body = own.get(struct, platform.get(struct))
            if body is None:
                fail(f"{crate}: cannot find the struct {struct} it flattens (in {crate}/src or platform/src)")
                continue
            names.update(re.findall(r'\benv\s*=\s*"([A-Z_][A-Z0-9_]*)"', body))
            for flattened, argument in FLATTEN.findall(body):
                if flattened == "ServeConfig":
                    names.update(serve_env(table, generics.get(argument, argument)))
                else:
                    pending.append((flattened, {}))
        read[binary] = names
    return read


def cmd_consistency(root, rendered_files):
    root = pathlib.Path(root)
    read = env_names_read(root)
    if "RUST_LOG" not in read or "DATABASE_URL" not in read:
        fail("the scan of clap env names found no RUST_LOG or DATABASE_URL: it is broken")
    crates = workspace_crates(root)
    binaries = {binary for _, binary, _ in crates}
    read_by = env_read_by_binaries(root, crates)
    for binary, names in sorted(read_by.items()):
        if "RUST_LOG" not in names:
            fail(f"found no RUST_LOG among the variables {binary} reads: the flatten scan is broken")

    # Every variable the chart sets for a binary (its ConfigMap, its env) is one that binary reads.
    set_by_chart = set()
    for rendered in rendered_files:
        docs = load_docs(rendered)
        config_maps = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "ConfigMap"}
        for doc in docs:
            if doc["kind"] not in ("Deployment", "Job"):
                continue
            for container in doc["spec"]["template"]["spec"]["containers"]:
                binary = (container.get("command") or [None])[0]
                if binary not in binaries:
                    continue
                names = {env["name"] for env in container.get("env", [])}
                for source in container.get("envFrom") or []:
                    config = config_maps.get((source.get("configMapRef") or {}).get("name"))
                    names.update(((config or {}).get("data") or {}).keys())
                set_by_chart |= names
                for name in sorted(names - read_by.get(binary, set())):
                    fail(f"the chart sets {name} for {binary} ({doc['kind']} {doc['metadata']['name']}), which {binary} does not read")

    # docker-compose.yml: every deployable binary runs, and every variable is read by a binary.
    compose_path = root / "docker-compose.yml"
    compose = yaml.load(compose_path.read_text(), Loader=UniqueKeyLoader)
    run = set()
    for name, service in (compose.get("services") or {}).items():
        command = service.get("command") or []
        entrypoint = service.get("entrypoint") or []
        argv = (entrypoint if isinstance(entrypoint, list) else entrypoint.split()) + \
               (command if isinstance(command, list) else command.split())
        if argv and argv[0] in binaries:
            run.add(argv[0])
        if "image" in service and "formflow" in str(service.get("image")):
            environment = service.get("environment") or {}
            keys = environment.keys() if isinstance(environment, dict) else [item.split("=", 1)[0] for item in environment]
            for key in keys:
                if argv and argv[0] in read_by:
                    if key not in read_by[argv[0]]:
                        fail(f"docker-compose.yml: service {name} sets {key}, which {argv[0]} does not read")
                elif key not in read:
                    fail(f"docker-compose.yml: service {name} sets {key}, which no binary reads")
    for binary in sorted(binaries - run):
        fail(f"docker-compose.yml does not run {binary}")

    # Dockerfile: builds every deployable binary, with the pinned toolchain.
    dockerfile = (root / "Dockerfile").read_text()
    match = re.search(r'^ARG BINARIES="([^"]*)"', dockerfile, re.M)
    built = set(match.group(1).split()) if match else set()
    if not match:
        fail('Dockerfile: no ARG BINARIES="…" line')
    for binary in sorted(binaries - built):
        fail(f"Dockerfile does not build {binary}")
    for binary in sorted(built - binaries - {"formflow"}):
        fail(f"Dockerfile builds {binary}, which no crate provides")
    toolchain = re.search(r'channel\s*=\s*"([^"]+)"', (root / "rust-toolchain.toml").read_text()).group(1)
    rust = re.search(r"^ARG RUST_VERSION=(\S+)", dockerfile, re.M)
    if not rust or rust.group(1) != toolchain:
        fail(f"Dockerfile RUST_VERSION {rust.group(1) if rust else None} is not rust-toolchain.toml's {toolchain}")
    if "SQLX_OFFLINE=true" not in dockerfile:
        fail("Dockerfile does not build with SQLX_OFFLINE=true")
    # svc-ai's model files and ONNX Runtime: fetched by the setup script into a directory both
    # runtime targets copy, under which svc-ai's default paths lie.
    # RUN may carry flags (a BuildKit cache mount for pip) and variables (the architecture), on
    # continued lines.
    fetched = re.search(r"^RUN (?:--\S+\s+(?:\\\n\s*)?)*(?:[A-Z_]+=\S+\s+)*fetch-ai-assets\.sh (\S+)$", dockerfile, re.M)
    ai_config = (root / "svc-ai/src/config.rs").read_text()
    defaults = re.findall(r'env = "AI_(?:MODELS_DIR|ONNXRUNTIME_LIBRARY)",\s*default_value = "([^"]+)"', ai_config)
    if not fetched or not (root / "scripts/fetch-ai-assets.sh").is_file():
        fail("Dockerfile does not run scripts/fetch-ai-assets.sh (RUN fetch-ai-assets.sh DIR)")
    elif len(defaults) != 2:
        fail(f"svc-ai/src/config.rs: found {len(defaults)} defaults of AI_MODELS_DIR and AI_ONNXRUNTIME_LIBRARY (want 2)")
    else:
        assets = fetched.group(1).rstrip("/")
        for default in defaults:
            if not default.startswith(assets + "/"):
                fail(f"svc-ai's default {default} is not under {assets}, where the Dockerfile places its files")
        copies = re.findall(rf"^COPY --from=ai-assets {re.escape(assets)}/? {re.escape(assets)}/?$", dockerfile, re.M)
        if len(copies) != 2:
            fail(f"Dockerfile: {len(copies)} targets copy {assets} from the ai-assets stage (want runtime and dev)")

    # The chart's appVersion (the default image tag) is the workspace version.
    workspace = re.search(r'\[workspace\.package\][^\[]*?version\s*=\s*"([^"]+)"', (root / "Cargo.toml").read_text(), re.S)
    chart = yaml.safe_load((root / "deploy/helm/formflow/Chart.yaml").read_text())
    if not workspace or str(chart.get("appVersion")) != workspace.group(1):
        fail(f"Chart.yaml appVersion {chart.get('appVersion')} is not the workspace version {workspace.group(1) if workspace else None}")
    finish("consistency")
    print(f"{len(set_by_chart)} variables set by the chart, each read by the binary it is set for; docker-compose.yml runs "
          f"{len(run)} binaries; the Dockerfile builds {len(built)} with Rust {toolchain}")


def main(argv):
    if len(argv) >= 4 and argv[1] == "split":
        cmd_split(argv[2], argv[3], argv[4])
    elif len(argv) >= 3 and argv[1] == "crds":
        cmd_crds(argv[2], argv[3:])
    elif len(argv) >= 4 and argv[1] == "coverage":
        pod_secret = next((arg.split("=", 1)[1] for arg in argv[4:] if arg.startswith("--pod-secret=")), "")
        cmd_coverage(argv[2], argv[3], "--scaling" in argv[4:], pod_secret)
    elif len(argv) == 4 and argv[1] == "expect":
        cmd_expect(argv[2], argv[3])
    elif len(argv) >= 4 and argv[1] == "deadlines":
        cmd_deadlines(argv[2], argv[3:])
    elif len(argv) >= 4 and argv[1] == "consistency":
        cmd_consistency(argv[2], argv[3:])
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
