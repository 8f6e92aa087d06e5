//! Building and running svc-ai: what `main` (through `Config::run`), the suite launcher and the
//! tests all start.

use std::sync::Arc;
use std::time::Duration;

use platform::db::Schema;
use platform::runtime::Runtime;
use platform::server::Listeners;
use platform::suite::AI;
use proto::formflow::ai::v1::ai_service_server::AiServiceServer;

use crate::analyses::{ANALYSIS_SUBSCRIPTION, Analyses};
use crate::config::Config;
use crate::erasure::{ERASURE_SUBSCRIPTION, Erasures};
use crate::grpc::AiApi;
use crate::operations::Ai;
use crate::pool::InferencePool;

/// Name of the service in logs, metrics and connection names.
pub const SERVICE_NAME: &str = AI.name;
/// The `ai` schema and its migrations.
pub static SCHEMA: Schema = Schema::new(AI, sqlx::migrate!());

/// Loads the models (before anything is served, so that the startup probe passes only once
/// they run), connects to Postgres (migrating it), Redis and RabbitMQ, and readies the API on
/// `listeners`. Once the server has drained, the models' queues are drained and their threads
/// stopped.
pub async fn build(config: Config, listeners: Listeners) -> anyhow::Result<Runtime> {
    let models = config.options.models.clone();
    let pool = Arc::new(tokio::task::spawn_blocking(move || InferencePool::load(&models)).await??);
    let sentiment = &config.options.ticket_sentiment_model;
    anyhow::ensure!(
        sentiment.is_empty() || pool.get(sentiment).is_some(),
        "AI_TICKET_SENTIMENT_MODEL names {sentiment}, which is not under {} \
         (scripts/fetch-ai-assets.sh installs it; empty: the call's model reads the sentiment)",
        config.options.models.models_dir.display()
    );
    let (mut runtime, connections) = config.start(&SCHEMA, listeners).await?;
    let options = &config.options;
    let ai = Ai::new(
        connections.db,
        pool.clone(),
        connections.outbox,
        connections.redis,
        &config.infra.amqp,
        options,
    );
    let cleaner = ai.clone();
    let erasures = Erasures::new(ai.clone());
    let analyses = Analyses::new(ai.clone());
    let worker = ai.clone();
    let sweeper = ai.clone();
    let retention = ai.clone();
    runtime
        .serve_api(AiServiceServer::new(AiApi::new(ai)))
        .spawn("inference pool", |stopped| async move {
            stopped.cancelled().await;
            // The server is gone with its handlers' clones of the pool. When this is the last
            // one, the queues are drained and the threads joined here; otherwise (a periodic
            // task still holds one) they end when the last clone goes.
            if let Ok(pool) = Arc::try_unwrap(pool) {
                let _ = tokio::task::spawn_blocking(move || pool.shut_down()).await;
            }
        })
        .spawn("batch job worker", move |stopped| {
            worker.work_on_batches(stopped)
        })
        .consume(&config.infra.amqp, ERASURE_SUBSCRIPTION, erasures)
        .consume(&config.infra.amqp, ANALYSIS_SUBSCRIPTION, analyses)
        .every(
            "sending unattended batch jobs again",
            options.batch_lease / 2,
            move || {
                let ai = sweeper.clone();
                async move { ai.send_unattended_batches().await }
            },
        )
        .every(
            "deleting batch jobs past their retention",
            Duration::from_secs(3600),
            move || {
                let ai = retention.clone();
                async move { ai.forget_expired_batches().await }
            },
        )
        .every(
            "forgetting expired idempotency keys",
            Duration::from_secs(3600),
            move || {
                let ai = cleaner.clone();
                async move { ai.forget_expired_keys().await }
            },
        );
    Ok(runtime)
}
