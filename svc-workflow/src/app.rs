//! Building svc-workflow: what `main` (through `Config::run`), the suite launcher and the tests
//! all start.

use std::sync::Arc;
use std::time::Duration;

use platform::crypto::Sealer;
use platform::db::Schema;
use platform::jobs::Workers;
use platform::live::Live;
use platform::outbound::NetworkPolicy;
use platform::runtime::Runtime;
use platform::server::Listeners;
use platform::suite::WORKFLOW;
use proto::formflow::workflow::v1::workflow_service_server::WorkflowServiceServer;

use crate::config::Config;
use crate::engine::Engine;
use crate::engine::actions::Actions;
use crate::engine::services::SuiteServices;
use crate::grpc::WorkflowApi;
use crate::operations::Workflows;
use crate::progress::Progress;
use crate::triggers::{
    FORM_SUBSCRIPTION, FormTriggers, SCHEDULE_SCAN, Schedules, TENANT_SUBSCRIPTION, TenantSettings,
};

/// Name of the service in logs, metrics and connection names.
pub const SERVICE_NAME: &str = WORKFLOW.name;
/// How often the engine's queues and dead letters are measured (also once at start).
const MEASURE_EVERY: Duration = Duration::from_secs(15);
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
    let options = &config.options;
    let (ai_url, notify_url) = (options.ai_url.as_deref(), options.notify_url.as_deref());
    let services = match options.service_client.credentials() {
        _ if ai_url.is_none() && notify_url.is_none() => None,
        Some(credentials) => {
            let auth_url = config.auth.auth_url.as_deref().ok_or_else(|| {
                anyhow::anyhow!(
                    "WORKFLOW_AI_URL and WORKFLOW_NOTIFY_URL need AUTH_URL, where service tokens come from"
                )
            })?;
            Some(SuiteServices::new(
                ai_url,
                notify_url,
                auth_url,
                &credentials,
            )?)
        }
        None => anyhow::bail!(
            "WORKFLOW_AI_URL or WORKFLOW_NOTIFY_URL is set without AUTH_CLIENT_ID: svc-ai and svc-notify are called with a service token"
        ),
    };
    let actions = Actions::new(
        NetworkPolicy::new(options.http_allowed_networks.clone()),
        connections.db.clone(),
        sealer.clone(),
        services,
    )?;
    let engine = Engine::new(
        connections.db.clone(),
        connections.outbox.clone(),
        &config.infra.amqp,
        actions,
        Progress::new(Live::new(connections.redis.clone())),
        Workers {
            concurrency: options.worker_concurrency,
            lease: options.lease,
            overdue_after: options.overdue_after,
        },
    );
    let form_triggers = FormTriggers::new(connections.db.clone(), engine.clone());
    let schedules = Schedules::new(connections.db.clone(), engine.clone());
    let settings_db = connections.db.clone();
    let workflows = Workflows::new(connections.db, connections.outbox, sealer, engine.clone());
    let sweeper = engine.clone();
    let measured = engine.clone();
    let retention = workflows.clone();
    let default_retention = options.execution_retention_days;
    let cleaner = workflows.clone();
    runtime
        .serve_api(WorkflowServiceServer::new(WorkflowApi::new(workflows)))
        .spawn("measuring the engine's queues", move |stopped| {
            measured.measure(MEASURE_EVERY, stopped)
        })
        .spawn("execution worker", move |stopped| engine.work(stopped))
        .consume(&config.infra.amqp, FORM_SUBSCRIPTION, form_triggers)
        .consume(
            &config.infra.amqp,
            TENANT_SUBSCRIPTION,
            TenantSettings::new(settings_db),
        )
        .every(
            "deleting expired executions",
            options.retention_interval,
            move || {
                let workflows = retention.clone();
                async move {
                    let deleted = workflows
                        .delete_expired_executions(default_retention)
                        .await?;
                    if deleted > 0 {
                        tracing::info!(deleted, "deleted executions past their retention");
                    }
                    Ok(())
                }
            },
        )
        .every("firing schedules", SCHEDULE_SCAN, move || {
            let schedules = schedules.clone();
            async move { schedules.fire_due().await }
        })
        .every(
            "sending overdue executions' jobs",
            options.overdue_after / 4,
            move || {
                let engine = sweeper.clone();
                async move { engine.send_overdue().await }
            },
        )
        .every(
            "forgetting expired idempotency keys and webhook ids",
            Duration::from_secs(3600),
            move || {
                let workflows = cleaner.clone();
                async move {
                    workflows.forget_expired_keys().await?;
                    workflows.forget_old_trigger_records().await
                }
            },
        );
    Ok(runtime)
}
