//! The gateway's router, middleware and server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use platform::amqp::Outcome;
use platform::auth::{JwtVerifier, RevokedSessions, ServiceTokens};
use platform::consumer::{self, Audience, EventHandler, ReceivedEvent, Subscription};
use platform::context::REQUEST_ID_HEADER;
use platform::redis::Redis;
use platform::suite;
use serde_json::json;
use tokio::net::TcpListener;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::{Authenticator, GatewayToken};
use crate::config::{Config, EdgeConfig};
use crate::error::ApiError;
use crate::pipeline::{EdgeSettings, Gateway, RouteLabel};
use crate::rate_limit::{Limit, RateLimiter};
use crate::tenant::{TenantRef, TenantResolver};
use crate::transcode::{Transcoder, Upstream};
use crate::{grpc_web, openapi};

/// How long `/readyz` waits for each upstream's health answer.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// How long Redis keeps a resolved tenant.
const TENANT_REDIS_TTL: Duration = Duration::from_secs(60);

struct Shared {
    gateway: Gateway,
    grpc_web: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Body,
    >,
    /// The OpenAPI document, serialised once.
    openapi: bytes::Bytes,
}

/// A bound gateway, not serving yet.
pub struct App {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    router: axum::Router,
    shared: Arc<Shared>,
    config: Config,
}

impl std::fmt::Debug for App {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("App")
            .field("http_addr", &self.http_addr())
            .finish_non_exhaustive()
    }
}

impl App {
    /// Loads the descriptor sets, fetches svc-auth's keys, and binds the ports.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        platform::metrics::install();
        let auth_url = config.auth.auth_url.clone().context(
            "AUTH_URL must name svc-auth: the gateway verifies tokens and API keys with it",
        )?;
        let redis = Redis::connect(&config.redis)?;
        let verifier = JwtVerifier::from_config(&config.auth, Some(redis.clone())).await?;
        let tokens = Arc::new(ServiceTokens::new(&auth_url, &config.credentials)?);

        let (descriptor_sets, upstreams) = upstreams(&config, &auth_url)?;
        let transcoder = Transcoder::new(&descriptor_sets, &upstreams, Duration::from_secs(2))?;
        let channel = |service: &str| {
            transcoder
                .channels()
                .find(|(name, _)| *name == service)
                .map(|(_, channel)| channel.clone())
                .with_context(|| format!("no {service} upstream"))
        };
        let (tenant_channel, auth_channel) =
            (channel(suite::TENANT.name)?, channel(suite::AUTH.name)?);

        let gateway_token = GatewayToken::new(tokens.clone());
        if let Err(error) = gateway_token.refresh().await {
            // Services record the gateway's address instead of clients' until a refresh works.
            tracing::warn!(
                error = format!("{error:#}"),
                "no service token for the gateway yet"
            );
        }

        let edge = &config.edge;
        let gateway = Gateway {
            gateway_token,
            tenants: TenantResolver::new(
                tenant_channel,
                tokens.clone(),
                redis.clone(),
                edge.tenant_cache_ttl,
                TENANT_REDIS_TTL,
                edge.base_domain.clone(),
            ),
            authenticator: Authenticator::new(
                verifier,
                RevokedSessions::new(redis.clone(), Duration::from_secs(900)),
                auth_channel,
                tokens,
                edge.api_key_cache_ttl,
            ),
            limiter: RateLimiter::new(redis),
            settings: EdgeSettings::from(edge),
            transcoder,
        };
        let openapi = serde_json::to_vec(&openapi::document(gateway.transcoder.table()))?.into();
        let shared = Arc::new(Shared {
            gateway,
            grpc_web: grpc_web::client(),
            openapi,
        });

        let (router, metrics_listener) = router(shared.clone(), &config).await?;
        let listener = TcpListener::bind(config.http_addr).await?;
        Ok(App {
            listener,
            metrics_listener,
            router,
            shared,
            config,
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
        tokio::spawn(
            self.shared
                .gateway
                .authenticator
                .verifier()
                .clone()
                .keep_fresh(shutdown.clone()),
        );
        let gateway_token = self.shared.gateway.gateway_token.clone();
        tokio::spawn(platform::runtime::repeat(
            "refreshing the gateway's service token",
            GatewayToken::REFRESH_PERIOD,
            move || {
                let gateway_token = gateway_token.clone();
                async move { gateway_token.refresh().await }
            },
            shutdown.clone(),
        ));
        tokio::spawn(consumer::run(
            self.config.amqp.clone(),
            "gateway",
            Subscription {
                audience: Audience::EveryReplica,
                bindings: &["tenant.#"],
                prefetch: 100,
            },
            ForgetChangedTenants(self.shared.clone()),
            shutdown.clone(),
        ));
        if let Some(metrics_listener) = self.metrics_listener {
            let metrics = axum::Router::new()
                .route("/metrics", get(|| async { platform::metrics::render() }));
            tokio::spawn(
                axum::serve(metrics_listener, metrics)
                    .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                    .into_future(),
            );
        }
        // Small responses must leave at once, not wait for the client's delayed ACK.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
        });
        axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
        Ok(())
    }
}

/// The descriptor sets the gateway serves (the suite's, then the configured files) and the
/// upstream serving each package: the suite's services, then `GATEWAY_PACKAGE_ROUTES`.
fn upstreams(config: &Config, auth_url: &str) -> anyhow::Result<(Vec<Vec<u8>>, Vec<Upstream>)> {
    let mut descriptor_sets = vec![proto::FILE_DESCRIPTOR_SET.to_vec()];
    for path in &config.upstreams.descriptor_sets {
        descriptor_sets.push(
            std::fs::read(path)
                .with_context(|| format!("reading descriptor set {}", path.display()))?,
        );
    }
    let mut upstreams: Vec<Upstream> = config
        .upstreams
        .suite(auth_url)
        .iter()
        .map(|(service, url)| Upstream {
            name: service.name.to_owned(),
            url: (*url).to_owned(),
            packages: vec![service.package.to_owned()],
        })
        .collect();
    for route in &config.upstreams.package_routes {
        let (package, url) = route.split_once('=').with_context(|| {
            format!("GATEWAY_PACKAGE_ROUTES entry {route:?} is not package=url")
        })?;
        match upstreams.iter_mut().find(|upstream| upstream.url == url) {
            Some(upstream) => upstream.packages.push(package.to_owned()),
            None => upstreams.push(Upstream {
                name: url.to_owned(),
                url: url.to_owned(),
                packages: vec![package.to_owned()],
            }),
        }
    }
    Ok((descriptor_sets, upstreams))
}

impl From<&EdgeConfig> for EdgeSettings {
    fn from(edge: &EdgeConfig) -> Self {
        EdgeSettings {
            default_tenant: edge.default_tenant.as_deref().map(TenantRef::from_header),
            body_limit: edge.body_limit_bytes,
            request_timeout: edge.request_timeout,
            trusted_proxies: edge.trusted_proxies,
            maintenance: edge.maintenance,
            maintenance_retry_after: edge.maintenance_retry_after,
            anonymous_limit: Limit {
                per_minute: edge.anonymous_rate,
                burst: edge.anonymous_burst,
            },
            caller_limit: Limit {
                per_minute: edge.caller_rate,
                burst: edge.caller_burst,
            },
        }
    }
}

/// The HTTP routes: health, readiness, the OpenAPI document, `/metrics` (unless it has a port
/// of its own, which is bound here) and the API, behind request ids, CORS, compression and
/// the request log.
async fn router(
    shared: Arc<Shared>,
    config: &Config,
) -> anyhow::Result<(axum::Router, Option<TcpListener>)> {
    let mut router = axum::Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readiness))
        .route(
            "/openapi.json",
            get(|State(shared): State<Arc<Shared>>| async move {
                (
                    [(http::header::CONTENT_TYPE, "application/json")],
                    shared.openapi.clone(),
                )
            }),
        );
    let metrics_listener = match config.metrics_addr {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => {
            router = router.route("/metrics", get(|| async { platform::metrics::render() }));
            None
        }
    };
    let router = router
        .fallback(api)
        .with_state(shared)
        .layer(middleware::from_fn(observe))
        .layer(CompressionLayer::new())
        .layer(cors(&config.edge.cors_origins))
        .layer(middleware::from_fn(request_id));
    Ok((router, metrics_listener))
}

/// Runs the gateway until `shutdown` completes; with `health`, checks the `/healthz` of the
/// gateway this host runs instead.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if config.command == Some(platform::health::HealthCommand::Health) {
        return platform::health::check_http(config.http_addr, "/healthz").await;
    }
    App::build(config).await?.run_until_stopped(shutdown).await
}

/// Keeps the tenant caches honest: every `tenant.*` event drops what it changed. Until the
/// broker is back after a failure, cache entries expire by themselves.
struct ForgetChangedTenants(Arc<Shared>);

impl EventHandler for ForgetChangedTenants {
    async fn handle(&self, event: ReceivedEvent) -> Outcome {
        self.0.gateway.tenants.forget(event.data()).await;
        Outcome::Done
    }
}

/// Every API request: gRPC-web relayed, anything else transcoded.
async fn api(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_default();
    if grpc_web::is_grpc_web(&request) {
        let label = grpc_web::route_label(&shared.gateway, request.uri().path());
        let mut response = match grpc_web::relay(
            &shared.gateway,
            &shared.grpc_web,
            request,
            peer,
            &request_id,
        )
        .await
        {
            Ok(response) => response,
            Err(error) => grpc_web::error_response(&error),
        };
        if let Some(label) = label {
            response.extensions_mut().insert(label);
        }
        return response;
    }
    shared.gateway.handle(request, peer, &request_id).await
}

/// The upstreams every request needs: svc-auth (keys, API keys) and svc-tenant (tenant
/// resolution). The gateway is ready while they serve; another upstream's outage only makes
/// its own routes answer 503.
const REQUIRED_UPSTREAMS: [&str; 2] = [platform::suite::AUTH.name, platform::suite::TENANT.name];

/// 200 when the upstreams every request needs report SERVING (with `?all`, when every upstream
/// does), else 503 naming those that don't; the body lists each upstream's state either way.
async fn readiness(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let all = request.uri().query().is_some_and(|query| {
        query
            .split('&')
            .any(|pair| pair == "all" || pair == "all=true")
    });
    let checks = shared.gateway.transcoder.channels().map(|(name, channel)| {
        let channel = channel.clone();
        let name = name.to_owned();
        async move {
            let mut client = HealthClient::new(channel);
            let answer = tokio::time::timeout(HEALTH_TIMEOUT, client.check(HealthCheckRequest::default())).await;
            let serving = matches!(answer, Ok(Ok(response)) if response.get_ref().status() == ServingStatus::Serving);
            (name, serving)
        }
    });
    let mut results = futures_util::future::join_all(checks).await;
    results.sort();
    let not_ready: Vec<&str> = results
        .iter()
        .filter(|(name, serving)| !serving && (all || REQUIRED_UPSTREAMS.contains(&name.as_str())))
        .map(|(name, _)| name.as_str())
        .collect();
    if not_ready.is_empty() {
        let upstreams: serde_json::Map<String, serde_json::Value> = results
            .iter()
            .map(|(name, serving)| {
                let state = if *serving { "serving" } else { "not serving" };
                (name.clone(), json!(state))
            })
            .collect();
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "upstreams": upstreams})),
        )
            .into_response()
    } else {
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_default();
        ApiError::new(
            tonic::Code::Unavailable,
            format!("not ready: {} not serving", not_ready.join(", ")),
        )
        .for_request(&request_id)
        .into_response()
    }
}

/// The request id: the client's `X-Request-ID` if it is sensible, else a new one; echoed back.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| {
            !value.is_empty()
                && value.len() <= 128
                && value.bytes().all(|byte| byte.is_ascii_graphic())
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// Security and cache headers, `X-Response-Time`, a log line and the request metrics of every
/// response.
async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    let elapsed = started.elapsed();
    let headers = response.headers_mut();
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    // Nothing but HTML pages (the hosted forms) may run script or style, and those only
    // their own inline ones, whose dynamic parts are escaped by the service's templates.
    let html = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(if html {
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        } else {
            "default-src 'none'; frame-ancestors 'none'"
        }),
    );
    headers.insert(
        "strict-transport-security",
        HeaderValue::from_static("max-age=31536000; includeSubDomains"),
    );
    // Answers carry tokens, secrets (API keys, recovery codes) and tenants' data: no browser,
    // proxy or CDN keeps them, unless the answer itself says it may be kept.
    if !headers.contains_key(http::header::CACHE_CONTROL) {
        headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        headers.insert(http::header::PRAGMA, HeaderValue::from_static("no-cache"));
    }
    if let Ok(value) = HeaderValue::from_str(&format!("{:.3}ms", elapsed.as_secs_f64() * 1000.0)) {
        headers.insert("x-response-time", value);
    }
    let route = response
        .extensions()
        .get::<RouteLabel>()
        .map(|label| label.0.to_string())
        .unwrap_or_else(|| match path.as_str() {
            "/healthz" | "/readyz" | "/metrics" | "/openapi.json" => format!("{method} {path}"),
            _ => "unmatched".to_owned(),
        });
    let status = response.status().as_u16().to_string();
    crate::metrics::request(&route, &status, elapsed);
    if !matches!(path.as_str(), "/healthz" | "/readyz" | "/metrics") {
        tracing::info!(%method, %route, %status, elapsed_ms = elapsed.as_secs_f64() * 1000.0, "request");
    }
    response
}

fn cors(origins: &[String]) -> CorsLayer {
    let exposed = [
        "x-request-id",
        "x-response-time",
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "grpc-status",
        "grpc-message",
        "grpc-status-details-bin",
    ]
    .map(http::HeaderName::from_static);
    let allow_origin = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok()),
        )
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods(tower_http::cors::Any)
        .allow_headers(tower_http::cors::Any)
        .expose_headers(exposed)
        .max_age(Duration::from_secs(3600))
}
