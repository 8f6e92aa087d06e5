//! Building and running svc-ai: what `main` and the tests both start.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use platform::auth::JwtVerifier;
use platform::context::ContextLayer;
use platform::server::GrpcServer;
use proto::formflow::ai::v1::ai_service_server::AiServiceServer;
use tower::Layer;

use crate::config::Config;
use crate::grpc::AiApi;
use crate::pool::InferencePool;

/// Name of the service in logs, metrics and connection names.
pub const SERVICE_NAME: &str = "svc-ai";

/// A built svc-ai: its models loaded and checked, its ports bound, not serving yet.
#[derive(Debug)]
pub struct App {
    server: GrpcServer,
    pool: Arc<InferencePool>,
    verifier: JwtVerifier,
}

impl App {
    /// Loads the models (before binding, so that the port opens, and the startup probe
    /// passes, only once they run) and binds the ports.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        platform::metrics::install();
        let verifier = JwtVerifier::from_config(&config.auth).await?;
        let models = config.models.clone();
        let pool =
            Arc::new(tokio::task::spawn_blocking(move || InferencePool::load(&models)).await??);
        let mut server =
            GrpcServer::bind(SERVICE_NAME, config.grpc_addr, config.metrics_addr).await?;
        server.add_service(
            ContextLayer::new(verifier.clone())
                .layer(AiServiceServer::new(AiApi::new(pool.clone()))),
        );
        Ok(App {
            server,
            pool,
            verifier,
        })
    }

    /// Where the gRPC server listens (useful with port 0).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Serves until `shutdown` completes, then drains in-flight calls and the models' queues.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let token = platform::shutdown::token(shutdown);
        self.verifier.spawn_periodic_refresh(token.clone());
        let served = self.server.serve(token).await;
        // The server is gone with its handlers' clones of the pool; this is the last one.
        if let Ok(pool) = Arc::try_unwrap(self.pool) {
            tokio::task::spawn_blocking(move || pool.shut_down()).await?;
        }
        served
    }
}

/// Runs svc-ai until `shutdown` completes.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    App::build(config).await?.run_until_stopped(shutdown).await
}
