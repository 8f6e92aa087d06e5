//! The gRPC server every service runs: its API plus gRPC health, server reflection (v1 and
//! v1alpha, so old and new grpcurl both work), gRPC-web for browsers, a request layer for ids,
//! trace context, logs and metrics, a Prometheus `/metrics` listener, and graceful shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Instant;

use anyhow::Context as _;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic_health::ServingStatus;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::context::REQUEST_ID_HEADER;

const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
const REFLECTION_SERVICES: [&str; 2] = [
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// The ports a service listens on, bound before it is built: from addresses
/// ([`Listeners::bind`]), or from listeners the caller bound already ([`Listeners::new`]), as
/// the one-process suite and the tests do to learn every address before anything starts.
#[derive(Debug)]
pub struct Listeners {
    grpc: TcpListener,
    metrics: Option<TcpListener>,
}

impl Listeners {
    /// Binds the gRPC port and, when given, the metrics port. Port 0 picks a free port.
    pub async fn bind(
        grpc_addr: SocketAddr,
        metrics_addr: Option<SocketAddr>,
    ) -> anyhow::Result<Self> {
        let grpc = TcpListener::bind(grpc_addr)
            .await
            .with_context(|| format!("binding the gRPC port {grpc_addr}"))?;
        let metrics = match metrics_addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding the metrics port {addr}"))?,
            ),
            None => None,
        };
        Ok(Self { grpc, metrics })
    }

    /// Listeners bound already.
    pub fn new(grpc: TcpListener, metrics: Option<TcpListener>) -> Self {
        Self { grpc, metrics }
    }

    /// A gRPC listener on a free loopback port and no metrics listener (tests).
    pub async fn loopback() -> anyhow::Result<Self> {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0)), None).await
    }

    /// Where the gRPC server listens.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc.local_addr().expect("a bound listener")
    }

    /// Where `/metrics` is served, when it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .map(|listener| listener.local_addr().expect("a bound listener"))
    }
}

/// The health service name that only says the process answers (SERVING while it runs), for
/// liveness and startup probes; the whole server's status (`""`) and each API's say whether it
/// is ready.
pub const LIVENESS: &str = "liveness";

/// A gRPC server being assembled: listening, services added, not serving yet.
pub struct GrpcServer {
    service_name: &'static str,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    routes: RoutesBuilder,
    served: Vec<&'static str>,
    ready: Option<BoxFuture<'static, ()>>,
}

impl std::fmt::Debug for GrpcServer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("GrpcServer")
            .field("service_name", &self.service_name)
            .field("listener", &self.listener)
            .field("served", &self.served)
            .field("ready_gate", &self.ready.is_some())
            .finish_non_exhaustive()
    }
}

impl GrpcServer {
    /// A server on `listeners`.
    pub fn new(service_name: &'static str, listeners: Listeners) -> Self {
        Self {
            service_name,
            listener: listeners.grpc,
            metrics_listener: listeners.metrics,
            routes: RoutesBuilder::default(),
            ready: None,
            served: Vec::new(),
        }
    }

    /// Where the gRPC server listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener")
    }

    /// The name of the service it serves.
    pub fn service_name(&self) -> &'static str {
        self.service_name
    }

    /// Adds a gRPC service; health reports it SERVING once the server runs.
    pub fn add_service<S>(&mut self, service: S) -> &mut Self
    where
        S: tower::Service<http::Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.served.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// Makes the health service report NOT_SERVING until `ready` completes (the token keys are
    /// loaded), then SERVING; without it the server is ready as soon as it serves.
    pub fn ready_when(&mut self, ready: impl Future<Output = ()> + Send + 'static) -> &mut Self {
        self.ready = Some(Box::pin(ready));
        self
    }

    /// Serves until `shutdown` is cancelled, then reports NOT_SERVING, stops accepting, and
    /// waits for in-flight calls to finish.
    pub async fn serve(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        self.routes
            .add_service(health_service)
            .add_service(reflection_builder(&self.served).build_v1()?)
            .add_service(reflection_builder(&self.served).build_v1alpha()?);

        let served_names: Vec<&'static str> = self.served.clone();
        // A gate already open (keys pinned or fetched at start) leaves nothing to wait for.
        let pending = self
            .ready
            .take()
            .and_then(|mut ready| ready.as_mut().now_or_never().is_none().then_some(ready));
        let initially = if pending.is_some() {
            ServingStatus::NotServing
        } else {
            ServingStatus::Serving
        };
        for name in served_names.iter().copied().chain([""]) {
            health_reporter.set_service_status(name, initially).await;
        }
        // Liveness: the process answers, ready or not (a replica waiting for svc-auth's keys
        // must not be restarted for it).
        health_reporter
            .set_service_status(LIVENESS, ServingStatus::Serving)
            .await;
        if let Some(ready) = pending {
            let (reporter, names, stopping) = (
                health_reporter.clone(),
                served_names.clone(),
                shutdown.clone(),
            );
            tokio::spawn(async move {
                tokio::select! {
                    () = stopping.cancelled() => {}
                    () = ready => {
                        for name in names.iter().copied().chain([""]) {
                            reporter.set_service_status(name, ServingStatus::Serving).await;
                        }
                        tracing::info!("ready: the token keys are loaded");
                    }
                }
            });
        }

        if let Some(metrics_listener) = self.metrics_listener.take() {
            tokio::spawn(serve_metrics(metrics_listener, shutdown.clone()));
        }

        let service_name = self.service_name;
        let local_addr = self.local_addr();
        tracing::info!(service = service_name, %local_addr, "gRPC server listening");
        let reporter = health_reporter.clone();
        let signal = async move {
            shutdown.cancelled().await;
            for name in served_names.iter().copied().chain([""]) {
                reporter
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
            tracing::info!(service = service_name, "draining gRPC server");
        };
        tonic::transport::Server::builder()
            .accept_http1(true)
            .layer(tower::layer::layer_fn(move |inner| RequestObserver {
                inner,
                service_name,
            }))
            .layer(tonic_web::GrpcWebLayer::new())
            .add_routes(self.routes.routes())
            .serve_with_incoming_shutdown(accepted_without_delay(self.listener), signal)
            .await
            .context("serving gRPC")?;
        tracing::info!(service = service_name, "gRPC server stopped");
        Ok(())
    }
}

/// The connections `listener` accepts, with Nagle's algorithm off: a response written in
/// several segments (headers, data, trailers) otherwise waits for the client's delayed ACK,
/// 40 ms on Linux.
fn accepted_without_delay(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        Ok(stream)
    })
}

/// Reflection advertising exactly what this server serves, not every service of the suite that
/// the shared descriptor set describes.
fn reflection_builder(served: &[&'static str]) -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    for name in served
        .iter()
        .copied()
        .chain([HEALTH_SERVICE])
        .chain(REFLECTION_SERVICES)
    {
        builder = builder.with_service_name(name);
    }
    builder
}

async fn serve_metrics(listener: TcpListener, shutdown: CancellationToken) {
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async { crate::metrics::render() }),
    );
    if let Err(error) = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
    {
        tracing::error!(%error, "metrics listener failed");
    }
}

/// Gives every call a request id (echoed in the response), a span carrying it and the
/// caller's trace context, a log line, and the `grpc_server_*` metrics.
#[derive(Debug, Clone)]
struct RequestObserver<S> {
    inner: S,
    service_name: &'static str,
}

impl<S, RequestBody, ResponseBody> tower::Service<http::Request<RequestBody>> for RequestObserver<S>
where
    S: tower::Service<http::Request<RequestBody>, Response = http::Response<ResponseBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    RequestBody: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: http::Request<RequestBody>) -> Self::Future {
        let request_id = request
            .headers()
            .get(REQUEST_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .filter(|value| !value.is_empty() && value.len() <= 128)
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        if let Ok(value) = http::HeaderValue::from_str(&request_id) {
            request.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        let method = request.uri().path().to_owned();
        let span = tracing::info_span!(
            "rpc",
            service = self.service_name,
            rpc = %method,
            request_id = %request_id,
            trace_id = tracing::field::Empty,
        );
        let _ = span.set_parent(crate::telemetry::extract_context(request.headers()));
        {
            use opentelemetry::trace::TraceContextExt;
            let span_context = span.context().span().span_context().clone();
            if span_context.is_valid() {
                span.record("trace_id", span_context.trace_id().to_string());
            }
        }

        // Take the service that was driven to readiness, leave a fresh clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let service_name = self.service_name;
        Box::pin(
            async move {
                let started = Instant::now();
                let mut response = inner.call(request).await?;
                let elapsed = started.elapsed();
                // A call that fails before its first message answers trailers-only, with the
                // status in the headers; a call that got that far succeeded.
                let code = response
                    .headers()
                    .get("grpc-status")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse::<i32>().ok())
                    .map(tonic::Code::from)
                    .unwrap_or(tonic::Code::Ok);
                if let Ok(value) = http::HeaderValue::from_str(&request_id) {
                    response.headers_mut().insert(REQUEST_ID_HEADER, value);
                }
                let code_name = format!("{code:?}");
                crate::metrics::rpc_handled(service_name, &method, &code_name, elapsed);
                let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
                if method.starts_with("/grpc.health.") {
                    tracing::debug!(code = %code_name, elapsed_ms, "rpc finished");
                } else {
                    tracing::info!(code = %code_name, elapsed_ms, "rpc finished");
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}
