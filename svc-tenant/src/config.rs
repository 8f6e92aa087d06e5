//! Configuration of svc-tenant: flags and environment variables (`svc-tenant --help`).

use std::net::SocketAddr;
use std::time::Duration;

use platform::config::{AuthConfig, InfraConfig, parse_duration};
use platform::telemetry::TelemetryConfig;

/// svc-tenant: tenants, their domains, settings and limits, and tenant resolution.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "svc-tenant", version)]
pub struct Config {
    /// Address the gRPC server listens on.
    #[arg(long, env = "TENANT_GRPC_ADDR", default_value_t = platform::suite::TENANT.default_grpc_addr())]
    pub grpc_addr: SocketAddr,
    /// Address of the Prometheus `/metrics` listener; none when unset.
    #[arg(long, env = "TENANT_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Base domain whose subdomains are tenant slugs (`acme.forms.example.com` resolves to the
    /// tenant `acme`). Custom domains may not lie under it.
    #[arg(long, env = "TENANT_BASE_DOMAIN")]
    pub base_domain: Option<String>,
    /// How long resolved tenants stay in the Redis cache (changes invalidate them at once).
    #[arg(long, env = "TENANT_CACHE_TTL", default_value = "5m", value_parser = parse_duration)]
    pub cache_ttl: Duration,
    /// Run the database migrations, then exit (for the deployment's migration job).
    #[arg(long, env = "TENANT_MIGRATE_ONLY")]
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
