//! Configuration of the gateway: flags and environment variables (`gateway --help`).

use std::net::SocketAddr;

use platform::telemetry::TelemetryConfig;

/// gateway: FormFlow's HTTP/JSON edge.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "gateway", version)]
pub struct Config {
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
    pub telemetry: TelemetryConfig,
}

/// Where the suite's services listen.
#[derive(Debug, Clone, clap::Args)]
pub struct Upstreams {
    /// gRPC URL of svc-tenant.
    #[arg(
        long,
        env = "GATEWAY_TENANT_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub tenant_url: String,
    /// gRPC URL of svc-auth.
    #[arg(
        long,
        env = "GATEWAY_AUTH_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub auth_url: String,
    /// gRPC URL of svc-forms.
    #[arg(
        long,
        env = "GATEWAY_FORMS_URL",
        default_value = "http://127.0.0.1:50053"
    )]
    pub forms_url: String,
    /// gRPC URL of svc-workflow.
    #[arg(
        long,
        env = "GATEWAY_WORKFLOW_URL",
        default_value = "http://127.0.0.1:50054"
    )]
    pub workflow_url: String,
    /// gRPC URL of svc-ai.
    #[arg(long, env = "GATEWAY_AI_URL", default_value = "http://127.0.0.1:50055")]
    pub ai_url: String,
    /// gRPC URL of svc-notify.
    #[arg(
        long,
        env = "GATEWAY_NOTIFY_URL",
        default_value = "http://127.0.0.1:50056"
    )]
    pub notify_url: String,
}

impl Upstreams {
    /// `(service name, URL)` of every upstream.
    pub fn all(&self) -> [(&'static str, &str); 6] {
        [
            ("svc-tenant", &self.tenant_url),
            ("svc-auth", &self.auth_url),
            ("svc-forms", &self.forms_url),
            ("svc-workflow", &self.workflow_url),
            ("svc-ai", &self.ai_url),
            ("svc-notify", &self.notify_url),
        ]
    }
}
