//! Building svc-forms: what `main` (through `Config::run`), the suite launcher and the tests
//! all start.

use std::time::Duration;

use platform::db::Schema;
use platform::runtime::Runtime;
use platform::server::Listeners;
use platform::suite::FORMS;
use proto::formflow::forms::v1::form_service_server::FormServiceServer;

use crate::config::Config;
use crate::grpc::FormsApi;
use crate::operations::Forms;

/// Name of the service in logs, metrics and connection names.
pub const SERVICE_NAME: &str = FORMS.name;
/// The `forms` schema and its migrations.
pub static SCHEMA: Schema = Schema::new(FORMS, sqlx::migrate!());

/// Connects to Postgres (migrating it), Redis and RabbitMQ, and readies the API on
/// `listeners`; nothing is served until the runtime runs.
pub async fn build(config: Config, listeners: Listeners) -> anyhow::Result<Runtime> {
    let (mut runtime, connections) = config.start(&SCHEMA, listeners).await?;
    let forms = Forms::new(connections.db, connections.outbox, connections.redis);
    let cleaner = forms.clone();
    runtime
        .serve_api(FormServiceServer::new(FormsApi::new(forms)))
        .every(
            "forgetting expired idempotency keys",
            Duration::from_secs(3600),
            move || {
                let forms = cleaner.clone();
                async move { forms.forget_expired_keys().await }
            },
        );
    Ok(runtime)
}
