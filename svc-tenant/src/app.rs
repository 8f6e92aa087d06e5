//! Building and running svc-tenant: what `main` and the tests both start.

use std::future::Future;
use std::net::SocketAddr;

use platform::amqp::Publisher;
use platform::auth::JwtVerifier;
use platform::context::ContextLayer;
use platform::db::Db;
use platform::outbox::{Outbox, OutboxRelay};
use platform::redis::Redis;
use platform::server::GrpcServer;
use proto::formflow::tenant::v1::tenant_service_server::TenantServiceServer;
use tower::Layer;

use crate::cache::TenantCache;
use crate::config::Config;
use crate::grpc::TenantApi;
use crate::tenants::Tenants;

/// The Postgres schema svc-tenant owns.
pub const SCHEMA: &str = "tenant";
/// Name of the service in logs, metrics and connection names.
pub const SERVICE_NAME: &str = "svc-tenant";

/// The embedded migrations of the `tenant` schema.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// A built svc-tenant: connected, migrated and bound, not serving yet.
#[derive(Debug)]
pub struct App {
    server: GrpcServer,
    relay: OutboxRelay,
    verifier: JwtVerifier,
}

impl App {
    /// Connects to Postgres (running migrations), Redis and RabbitMQ, and binds the ports.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        platform::metrics::install();
        let verifier = JwtVerifier::from_config(&config.auth).await?;
        let db = Db::connect(&config.db, SCHEMA, &MIGRATOR).await?;
        let redis = Redis::connect(&config.redis)?;
        let outbox = Outbox::new(SCHEMA);
        let relay = outbox.relay(
            db.pool().clone(),
            Publisher::new(&config.amqp, SERVICE_NAME),
        );
        let tenants = Tenants::new(db, TenantCache::new(redis, config.cache_ttl), outbox);
        let api = TenantApi::new(
            tenants,
            config.base_domain.map(|base| base.to_ascii_lowercase()),
        );

        let mut server =
            GrpcServer::bind(SERVICE_NAME, config.grpc_addr, config.metrics_addr).await?;
        server
            .add_service(ContextLayer::new(verifier.clone()).layer(TenantServiceServer::new(api)));
        Ok(App {
            server,
            relay,
            verifier,
        })
    }

    /// Where the gRPC server listens (useful with port 0).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Serves until `shutdown` completes, then drains in-flight calls and stops the relay.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let token = platform::shutdown::token(shutdown);
        self.verifier.spawn_periodic_refresh(token.clone());
        let relay = tokio::spawn(self.relay.run(token.clone()));
        let served = self.server.serve(token.clone()).await;
        token.cancel();
        relay.await?;
        served
    }
}

/// Runs svc-tenant until `shutdown` completes; with `--migrate-only`, migrates and returns.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if config.migrate_only {
        return Db::migrate_only(&config.db, SCHEMA, &MIGRATOR).await;
    }
    App::build(config).await?.run_until_stopped(shutdown).await
}
