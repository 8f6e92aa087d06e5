//! svc-notify will own notifications (templates, channels, preferences, deliveries, the in-app inbox).
//!
//! Today it is the skeleton every service starts from: it parses its configuration, serves
//! gRPC health and reflection on its port, and shuts down gracefully. Its API is drafted in
//! `proto/protos/formflow/notify/v1/` and lands with its own issue.

use std::future::Future;
use std::net::SocketAddr;

use platform::runtime::Runtime;
use platform::server::Listeners;
use platform::telemetry::TelemetryConfig;

/// Name of the service in logs, metrics and connection names.
pub const SERVICE_NAME: &str = platform::suite::NOTIFY.name;

/// svc-notify: notifications (templates, channels, preferences, deliveries, the in-app inbox).
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "svc-notify", version)]
pub struct Config {
    /// Address the gRPC server listens on.
    #[arg(long, env = "NOTIFY_GRPC_ADDR", default_value_t = platform::suite::NOTIFY.default_grpc_addr())]
    pub grpc_addr: SocketAddr,
    /// Address of the Prometheus `/metrics` listener; none when unset.
    #[arg(long, env = "NOTIFY_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
}

/// Readies the service on `listeners`.
pub async fn build(_config: Config, listeners: Listeners) -> anyhow::Result<Runtime> {
    Ok(Runtime::new(SERVICE_NAME, listeners))
}

/// Serves until `shutdown` completes, then drains in-flight calls.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listeners = Listeners::bind(config.grpc_addr, config.metrics_addr).await?;
    build(config, listeners)
        .await?
        .run_until_stopped(shutdown)
        .await
}
