//! Building svc-tenant: what `main` (through `Config::run`), the suite launcher and the tests
//! all start.

use platform::db::Schema;
use platform::runtime::Runtime;
use platform::server::Listeners;
use platform::suite::TENANT;
use proto::formflow::tenant::v1::tenant_service_server::TenantServiceServer;

use crate::cache::TenantCache;
use crate::config::Config;
use crate::grpc::TenantApi;
use crate::operations::Tenants;

/// Name of the service in logs, metrics and connection names.
pub const SERVICE_NAME: &str = TENANT.name;
/// The `tenant` schema and its migrations.
pub static SCHEMA: Schema = Schema::new(TENANT, sqlx::migrate!());

/// Connects to Postgres (migrating it), Redis and RabbitMQ, and readies the API on
/// `listeners`; nothing is served until the runtime runs.
pub async fn build(config: Config, listeners: Listeners) -> anyhow::Result<Runtime> {
    let (mut runtime, connections) = config.start(&SCHEMA, listeners).await?;
    let cache = TenantCache::new(connections.redis, config.options.cache_ttl);
    let tenants = Tenants::new(connections.db, cache, connections.outbox);
    let base_domain = config
        .options
        .base_domain
        .map(|base| base.to_ascii_lowercase());
    runtime.serve_api(TenantServiceServer::new(TenantApi::new(
        tenants,
        base_domain,
    )));
    Ok(runtime)
}
