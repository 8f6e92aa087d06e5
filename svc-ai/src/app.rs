//! Building and running svc-ai: what `main`, the suite launcher and the tests all start.

use std::future::Future;
use std::sync::Arc;

use platform::auth::JwtVerifier;
use platform::runtime::Runtime;
use platform::server::Listeners;
use proto::formflow::ai::v1::ai_service_server::AiServiceServer;

use crate::config::Config;
use crate::grpc::AiApi;
use crate::pool::InferencePool;

/// Name of the service in logs, metrics and connection names.
pub const SERVICE_NAME: &str = platform::suite::AI.name;

/// Loads the models (before anything is served, so that the startup probe passes only once
/// they run) and readies the API on `listeners`. Once the server has drained, the models'
/// queues are drained and their threads stopped.
pub async fn build(config: Config, listeners: Listeners) -> anyhow::Result<Runtime> {
    let verifier = JwtVerifier::from_config(&config.auth, None).await?;
    let models = config.models.clone();
    let pool = Arc::new(tokio::task::spawn_blocking(move || InferencePool::load(&models)).await??);
    let mut runtime = Runtime::new(SERVICE_NAME, listeners, verifier);
    runtime
        .serve_api(AiServiceServer::new(AiApi::new(pool.clone())))
        .spawn("inference pool", |stopped| async move {
            stopped.cancelled().await;
            // The server is gone with its handlers' clones of the pool; this is the last one.
            if let Ok(pool) = Arc::try_unwrap(pool) {
                let _ = tokio::task::spawn_blocking(move || pool.shut_down()).await;
            }
        });
    Ok(runtime)
}

/// Runs svc-ai until `shutdown` completes; with `health`, checks the health of the svc-ai this
/// host runs instead.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if config.command == Some(platform::health::HealthCommand::Health) {
        return platform::health::check_grpc(config.serve.grpc_addr).await;
    }
    let listeners = config.serve.listeners().await?;
    build(config, listeners)
        .await?
        .run_until_stopped(shutdown)
        .await
}
