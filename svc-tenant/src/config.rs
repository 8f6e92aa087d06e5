//! Configuration of svc-tenant: flags and environment variables (`svc-tenant --help`).

use std::time::Duration;

use platform::config::{ServiceConfig, parse_duration};
use platform::suite::Tenant;

/// svc-tenant's configuration: the kit's blocks and [`TenantOptions`].
pub type Config = ServiceConfig<Tenant, TenantOptions>;

/// What only svc-tenant has.
#[derive(Debug, Clone, clap::Args)]
pub struct TenantOptions {
    /// Base domain whose subdomains are tenant slugs (`acme.forms.example.com` resolves to the
    /// tenant `acme`). Custom domains may not lie under it.
    #[arg(long, env = "TENANT_BASE_DOMAIN")]
    pub base_domain: Option<String>,
    /// How long resolved tenants stay in the Redis cache (changes invalidate them at once).
    #[arg(long, env = "TENANT_CACHE_TTL", default_value = "5m", value_parser = parse_duration)]
    pub cache_ttl: Duration,
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
