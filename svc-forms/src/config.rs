//! Configuration of svc-forms: flags and environment variables (`svc-forms --help`).

use std::net::SocketAddr;

use platform::config::{AuthConfig, InfraConfig};
use platform::telemetry::TelemetryConfig;

/// svc-forms: forms, their versions, submissions and per-form analytics.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "svc-forms", version)]
pub struct Config {
    /// Address the gRPC server listens on.
    #[arg(long, env = "FORMS_GRPC_ADDR", default_value_t = platform::suite::FORMS.default_grpc_addr())]
    pub grpc_addr: SocketAddr,
    /// Address of the Prometheus `/metrics` listener; none when unset.
    #[arg(long, env = "FORMS_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Run the database migrations, then exit (for the deployment's migration job).
    #[arg(long, env = "FORMS_MIGRATE_ONLY")]
    pub migrate_only: bool,
    #[command(flatten)]
    pub infra: InfraConfig,
    #[command(flatten)]
    pub auth: AuthConfig,
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Config::command().debug_assert();
    }
}
