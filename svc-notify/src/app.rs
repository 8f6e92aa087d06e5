//! Building and running svc-notify: what `main`, the suite launcher and the tests all start.

use std::future::Future;

use platform::db::Schema;
use platform::runtime::Runtime;
use platform::server::Listeners;
use platform::suite::NOTIFY;
use proto::formflow::notify::v1::notify_service_server::NotifyServiceServer;

use crate::config::Config;
use crate::grpc::NotifyApi;

/// Name of the service in logs, metrics and connection names.
pub const SERVICE_NAME: &str = NOTIFY.name;
/// The `notify` schema and its migrations.
pub static SCHEMA: Schema = Schema::new(NOTIFY, sqlx::migrate!());

/// Connects to Postgres (migrating it), Redis and RabbitMQ, and readies the API on
/// `listeners`; nothing is served until the runtime runs. The operations will take the
/// connections' pool, Redis and outbox.
pub async fn build(config: Config, listeners: Listeners) -> anyhow::Result<Runtime> {
    let (mut runtime, _connections) = config.start(&SCHEMA, listeners).await?;
    runtime.serve_api(NotifyServiceServer::new(NotifyApi));
    Ok(runtime)
}

/// Runs svc-notify until `shutdown` completes; with `--migrate-only`, migrates and returns.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.run(&SCHEMA, build, shutdown).await
}
