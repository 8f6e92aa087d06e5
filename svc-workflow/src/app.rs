//! Building svc-workflow: what `main` (through `Config::run`), the suite launcher and the tests
//! all start.

use platform::db::Schema;
use platform::runtime::Runtime;
use platform::server::Listeners;
use platform::suite::WORKFLOW;
use proto::formflow::workflow::v1::workflow_service_server::WorkflowServiceServer;

use crate::config::Config;
use crate::grpc::WorkflowApi;

/// Name of the service in logs, metrics and connection names.
pub const SERVICE_NAME: &str = WORKFLOW.name;
/// The `workflow` schema and its migrations.
pub static SCHEMA: Schema = Schema::new(WORKFLOW, sqlx::migrate!());

/// Connects to Postgres (migrating it), Redis and RabbitMQ, and readies the API on
/// `listeners`; nothing is served until the runtime runs. The operations will take the
/// connections' pool, Redis and outbox.
pub async fn build(config: Config, listeners: Listeners) -> anyhow::Result<Runtime> {
    let (mut runtime, _connections) = config.start(&SCHEMA, listeners).await?;
    runtime.serve_api(WorkflowServiceServer::new(WorkflowApi));
    Ok(runtime)
}
