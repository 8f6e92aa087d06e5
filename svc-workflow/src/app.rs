//! Building and running svc-workflow: what `main`, the suite launcher and the tests all start.

use std::future::Future;

use platform::auth::JwtVerifier;
use platform::db::Db;
use platform::runtime::{Connections, Runtime};
use platform::server::Listeners;
use proto::formflow::workflow::v1::workflow_service_server::WorkflowServiceServer;

use crate::config::Config;
use crate::grpc::WorkflowApi;

/// Name of the service in logs, metrics and connection names.
pub const SERVICE_NAME: &str = platform::suite::WORKFLOW.name;
/// The Postgres schema svc-workflow owns.
pub const SCHEMA: &str = "workflow";
/// The embedded migrations of the `workflow` schema.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Connects to Postgres (migrating it), Redis and RabbitMQ, and readies the API on
/// `listeners`; nothing is served until the runtime runs.
pub async fn build(config: Config, listeners: Listeners) -> anyhow::Result<Runtime> {
    let verifier = JwtVerifier::from_config(&config.auth).await?;
    // The operations take the pool, Redis and the outbox when the first RPC lands.
    let Connections { relay, .. } =
        Connections::open(&config.infra, SERVICE_NAME, SCHEMA, &MIGRATOR).await?;
    let mut runtime = Runtime::new(SERVICE_NAME, listeners);
    runtime
        .serve_api(&verifier, WorkflowServiceServer::new(WorkflowApi))
        .relay_outbox(relay);
    Ok(runtime)
}

/// Runs svc-workflow until `shutdown` completes; with `--migrate-only`, migrates and returns.
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
