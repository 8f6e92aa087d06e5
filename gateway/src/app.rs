//! The gateway's router and server.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::config::Config;
use crate::error::ApiError;

/// How long `/readyz` waits for each upstream's health answer.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
struct Upstream {
    name: &'static str,
    channel: Channel,
}

/// A bound gateway, not serving yet.
#[derive(Debug)]
pub struct App {
    listener: TcpListener,
    router: axum::Router,
    metrics_listener: Option<TcpListener>,
}

impl App {
    /// Binds the HTTP port and prepares (lazy) channels to every upstream.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        platform::metrics::install();
        let mut upstreams = Vec::new();
        for (name, url) in config.upstreams.all() {
            let channel = Endpoint::from_shared(url.to_owned())
                .map_err(|error| anyhow::anyhow!("upstream URL of {name} is invalid: {error}"))?
                .connect_timeout(HEALTH_TIMEOUT)
                .connect_lazy();
            upstreams.push(Upstream { name, channel });
        }
        let mut router = axum::Router::new()
            .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
            .route("/readyz", get(readiness));
        let metrics_listener = match config.metrics_addr {
            Some(addr) => Some(TcpListener::bind(addr).await?),
            None => {
                router = router.route("/metrics", get(|| async { platform::metrics::render() }));
                None
            }
        };
        let router = router.fallback(not_found).with_state(upstreams);
        let listener = TcpListener::bind(config.http_addr).await?;
        Ok(App {
            listener,
            router,
            metrics_listener,
        })
    }

    /// Where the HTTP server listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener")
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(addr = %self.http_addr(), "gateway listening");
        let shutdown = platform::shutdown::token(shutdown);
        if let Some(metrics_listener) = self.metrics_listener {
            let metrics = axum::Router::new()
                .route("/metrics", get(|| async { platform::metrics::render() }));
            tokio::spawn(
                axum::serve(metrics_listener, metrics)
                    .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                    .into_future(),
            );
        }
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await?;
        Ok(())
    }
}

/// Runs the gateway until `shutdown` completes.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    App::build(config).await?.run_until_stopped(shutdown).await
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(platform::context::REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| !value.is_empty() && value.len() <= 128)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

async fn not_found(headers: HeaderMap) -> ApiError {
    ApiError {
        code: tonic::Code::NotFound,
        message: "no such route".to_owned(),
        request_id: request_id(&headers),
    }
}

/// 200 when every upstream reports SERVING, else 503 naming those that don't.
async fn readiness(State(upstreams): State<Vec<Upstream>>, headers: HeaderMap) -> Response {
    let checks = upstreams.iter().map(|upstream| async move {
        let mut client = HealthClient::new(upstream.channel.clone());
        let answer =
            tokio::time::timeout(HEALTH_TIMEOUT, client.check(HealthCheckRequest::default())).await;
        let serving = matches!(
            answer,
            Ok(Ok(response)) if response.get_ref().status() == ServingStatus::Serving
        );
        (upstream.name, serving)
    });
    let results = futures_util::future::join_all(checks).await;
    let not_ready: Vec<&str> = results
        .iter()
        .filter(|(_, serving)| !serving)
        .map(|(name, _)| *name)
        .collect();
    if not_ready.is_empty() {
        let upstreams: serde_json::Map<String, serde_json::Value> = results
            .iter()
            .map(|(name, _)| ((*name).to_owned(), json!("serving")))
            .collect();
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "upstreams": upstreams})),
        )
            .into_response()
    } else {
        ApiError {
            code: tonic::Code::Unavailable,
            message: format!("not ready: {} not serving", not_ready.join(", ")),
            request_id: request_id(&headers),
        }
        .into_response()
    }
}
