//! Configuration of the gateway: flags and environment variables (`gateway --help`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use platform::config::{
    AmqpConfig, AuthConfig, RedisConfig, ServiceCredentialsConfig, parse_duration,
};
use platform::suite::{self, SuiteService};
use platform::telemetry::TelemetryConfig;

/// gateway: FormFlow's HTTP/JSON edge.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "gateway", version)]
pub struct Config {
    /// What to do instead of serving.
    #[command(subcommand)]
    pub command: Option<platform::health::HealthCommand>,
    /// Address the HTTP server listens on.
    #[arg(long, env = "GATEWAY_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// Address of a separate Prometheus `/metrics` listener. When unset, `/metrics` is served on
    /// the HTTP port (fine locally; in a cluster keep it off the public port).
    #[arg(long, env = "GATEWAY_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    #[command(flatten)]
    pub upstreams: Upstreams,
    #[command(flatten)]
    pub edge: EdgeConfig,
    #[command(flatten)]
    pub redis: RedisConfig,
    #[command(flatten)]
    pub amqp: AmqpConfig,
    #[command(flatten)]
    pub auth: AuthConfig,
    #[command(flatten)]
    pub credentials: ServiceCredentialsConfig,
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
}

/// Where the suite's services listen, and which other APIs the gateway exposes.
#[derive(Debug, Clone, clap::Args)]
pub struct Upstreams {
    /// gRPC URL of svc-tenant.
    #[arg(long, env = "GATEWAY_TENANT_URL", default_value_t = suite::TENANT.local_url())]
    pub tenant_url: String,
    /// gRPC URL of svc-forms.
    #[arg(long, env = "GATEWAY_FORMS_URL", default_value_t = suite::FORMS.local_url())]
    pub forms_url: String,
    /// gRPC URL of svc-workflow.
    #[arg(long, env = "GATEWAY_WORKFLOW_URL", default_value_t = suite::WORKFLOW.local_url())]
    pub workflow_url: String,
    /// gRPC URL of svc-ai.
    #[arg(long, env = "GATEWAY_AI_URL", default_value_t = suite::AI.local_url())]
    pub ai_url: String,
    /// gRPC URL of svc-notify.
    #[arg(long, env = "GATEWAY_NOTIFY_URL", default_value_t = suite::NOTIFY.local_url())]
    pub notify_url: String,
    /// Extra descriptor sets (`protoc --include_imports --descriptor_set_out`) whose annotated
    /// RPCs the gateway serves too, comma-separated paths.
    #[arg(long, env = "GATEWAY_DESCRIPTOR_SETS", value_delimiter = ',')]
    pub descriptor_sets: Vec<PathBuf>,
    /// Upstreams of the extra descriptor sets' packages: comma-separated `package=url`, e.g.
    /// `acme.billing.v1=http://billing:50051`.
    #[arg(long, env = "GATEWAY_PACKAGE_ROUTES", value_delimiter = ',')]
    pub package_routes: Vec<String>,
}

impl Upstreams {
    /// Every suite service with its URL; svc-auth's URL is AUTH_URL.
    pub fn suite<'a>(&'a self, auth_url: &'a str) -> [(SuiteService, &'a str); 6] {
        [
            (suite::TENANT, self.tenant_url.as_str()),
            (suite::AUTH, auth_url),
            (suite::FORMS, self.forms_url.as_str()),
            (suite::WORKFLOW, self.workflow_url.as_str()),
            (suite::AI, self.ai_url.as_str()),
            (suite::NOTIFY, self.notify_url.as_str()),
        ]
    }
}

/// What the edge enforces.
#[derive(Debug, Clone, clap::Args)]
pub struct EdgeConfig {
    /// Base domain whose subdomains are tenant slugs (`acme.forms.example.com`).
    #[arg(long, env = "GATEWAY_BASE_DOMAIN")]
    pub base_domain: Option<String>,
    /// Tenant (id or slug) of requests that name none; unset means such requests get 404
    /// unless their RPC needs no tenant.
    #[arg(long, env = "GATEWAY_DEFAULT_TENANT")]
    pub default_tenant: Option<String>,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "GATEWAY_BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub body_limit_bytes: usize,
    /// Longest wait for a service's answer (504 after it).
    #[arg(long, env = "GATEWAY_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Origins allowed by CORS, comma-separated (`*` for any); none when empty.
    #[arg(long, env = "GATEWAY_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Proxies in front of the gateway that append to `X-Forwarded-For` (an ingress: 1). The
    /// client address is the one the outermost of them saw; 0 uses the connection's peer.
    #[arg(long, env = "GATEWAY_TRUSTED_PROXIES", default_value_t = 0)]
    pub trusted_proxies: usize,
    /// Maintenance mode: every request but health, metrics and platform administrators' gets
    /// 503 with `Retry-After`.
    #[arg(long, env = "GATEWAY_MAINTENANCE", default_value_t = false, action = clap::ArgAction::Set)]
    pub maintenance: bool,
    /// `Retry-After` seconds answered in maintenance mode.
    #[arg(long, env = "GATEWAY_MAINTENANCE_RETRY_AFTER", default_value_t = 300)]
    pub maintenance_retry_after: u32,
    /// How long a verified API key is trusted without asking svc-auth again: a revoked key is
    /// refused at most this long after its revocation.
    #[arg(long, env = "GATEWAY_API_KEY_CACHE_TTL", default_value = "10s", value_parser = parse_duration)]
    pub api_key_cache_ttl: Duration,
    /// How long a resolved tenant is kept in process (Redis keeps it a minute).
    #[arg(long, env = "GATEWAY_TENANT_CACHE_TTL", default_value = "5s", value_parser = parse_duration)]
    pub tenant_cache_ttl: Duration,
    /// Requests per minute per client address, for calls without credentials.
    #[arg(long, env = "GATEWAY_ANONYMOUS_RATE", default_value_t = 120)]
    pub anonymous_rate: u32,
    /// Burst per client address, for calls without credentials.
    #[arg(long, env = "GATEWAY_ANONYMOUS_BURST", default_value_t = 30)]
    pub anonymous_burst: u32,
    /// Requests per minute per user, API key or service (the tenant's own limit applies too).
    #[arg(long, env = "GATEWAY_CALLER_RATE", default_value_t = 1200)]
    pub caller_rate: u32,
    /// Burst per user, API key or service.
    #[arg(long, env = "GATEWAY_CALLER_BURST", default_value_t = 100)]
    pub caller_burst: u32,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Config::command().debug_assert();
    }
}
