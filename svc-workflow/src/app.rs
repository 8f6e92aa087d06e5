//! Building svc-workflow: what `main` (through `Config::run`), the suite launcher and the tests
//! all start.

use std::sync::Arc;

use platform::crypto::Sealer;
use platform::db::Schema;
use platform::runtime::Runtime;
use platform::server::Listeners;
use platform::suite::WORKFLOW;
use proto::formflow::workflow::v1::workflow_service_server::WorkflowServiceServer;

use crate::config::Config;
use crate::grpc::WorkflowApi;
use crate::operations::Workflows;

/// Name of the service in logs, metrics and connection names.
pub const SERVICE_NAME: &str = WORKFLOW.name;
/// The `workflow` schema and its migrations.
pub static SCHEMA: Schema = Schema::new(WORKFLOW, sqlx::migrate!());

/// Connects to Postgres (migrating it), Redis and RabbitMQ, and readies the API on
/// `listeners`; nothing is served until the runtime runs.
pub async fn build(config: Config, listeners: Listeners) -> anyhow::Result<Runtime> {
    let sealer = Arc::new(Sealer::from_config(
        "WORKFLOW_ENCRYPTION_KEYS",
        &config.options.encryption_keys()?,
    )?);
    let (mut runtime, connections) = config.start(&SCHEMA, listeners).await?;
    let workflows = Workflows::new(connections.db, sealer);
    runtime.serve_api(WorkflowServiceServer::new(WorkflowApi::new(workflows)));
    Ok(runtime)
}
