//! Building and running svc-tenant: what `main`, the suite launcher and the tests all start.

use std::future::Future;

use platform::auth::JwtVerifier;
use platform::db::Db;
use platform::runtime::{Connections, Runtime};
use platform::server::Listeners;
use proto::formflow::tenant::v1::tenant_service_server::TenantServiceServer;

use crate::cache::TenantCache;
use crate::config::Config;
use crate::grpc::TenantApi;
use crate::operations::Tenants;

/// Name of the service in logs, metrics and connection names.
pub const SERVICE_NAME: &str = platform::suite::TENANT.name;
/// The Postgres schema svc-tenant owns.
pub const SCHEMA: &str = "tenant";
/// The embedded migrations of the `tenant` schema.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Connects to Postgres (migrating it), Redis and RabbitMQ, and readies the API on
/// `listeners`; nothing is served until the runtime runs.
pub async fn build(config: Config, listeners: Listeners) -> anyhow::Result<Runtime> {
    let verifier = JwtVerifier::from_config(&config.auth).await?;
    let connections = Connections::open(&config.infra, SERVICE_NAME, SCHEMA, &MIGRATOR).await?;
    let cache = TenantCache::new(connections.redis, config.cache_ttl);
    let tenants = Tenants::new(connections.db, cache, connections.outbox);
    let base_domain = config.base_domain.map(|base| base.to_ascii_lowercase());
    let mut runtime = Runtime::new(SERVICE_NAME, listeners);
    runtime
        .serve_api(
            &verifier,
            TenantServiceServer::new(TenantApi::new(tenants, base_domain)),
        )
        .relay_outbox(connections.relay);
    Ok(runtime)
}

/// Runs svc-tenant until `shutdown` completes; with `--migrate-only`, migrates and returns.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if config.migrate_only {
        return Db::migrate_only(&config.infra.db, SCHEMA, &MIGRATOR).await;
    }
    let listeners = Listeners::bind(config.grpc_addr, config.metrics_addr).await?;
    build(config, listeners)
        .await?
        .run_until_stopped(shutdown)
        .await
}
