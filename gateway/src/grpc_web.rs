//! gRPC-web from browsers, relayed to the services (which speak it through tonic-web) after
//! the same tenant resolution, authentication and rate limits as REST. RPCs marked internal
//! are not reachable.

use std::net::SocketAddr;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::ApiError;
use crate::pipeline::{Gateway, RouteLabel};
use crate::tenant::strip_tenant_prefix;
use crate::transcode::routes::policy_of;

/// Headers the gateway sets itself; a client's own values are dropped.
const REPLACED: [&str; 7] = [
    "authorization",
    "x-api-key",
    "x-tenant-id",
    "x-client-ip",
    "x-client-user-agent",
    "x-gateway-token",
    "x-request-id",
];

/// Whether a request is gRPC-web.
pub fn is_grpc_web(request: &Request<Body>) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|content_type| content_type.starts_with("application/grpc-web"))
}

/// The HTTP client relaying to the services.
pub fn client() -> Client<HttpConnector, Body> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(connector)
}

/// The metrics label of a gRPC-web call (`gRPC-web /package.Service/Method`), for RPCs the
/// gateway knows: labels stay bounded whatever paths clients send.
pub fn route_label(gateway: &Gateway, path: &str) -> Option<RouteLabel> {
    let path = strip_tenant_prefix(path).map_or_else(|| path.to_owned(), |(_, rest)| rest);
    gateway
        .transcoder
        .rpc_for_path(&path)
        .map(|_| RouteLabel(format!("gRPC-web {path}").into()))
}

/// Relays one gRPC-web call.
pub async fn relay(
    gateway: &Gateway,
    client: &Client<HttpConnector, Body>,
    request: Request<Body>,
    peer: SocketAddr,
    request_id: &str,
) -> Result<Response, ApiError> {
    let (mut parts, body) = request.into_parts();
    let (path_tenant, path) = match strip_tenant_prefix(parts.uri.path()) {
        Some((slug, rest)) => (Some(slug), rest),
        None => (None, parts.uri.path().to_owned()),
    };
    let (rpc, upstream, upstream_url) = gateway
        .transcoder
        .rpc_for_path(&path)
        .ok_or_else(|| ApiError::new(tonic::Code::Unimplemented, "no such RPC"))?;
    let (policy, internal) = policy_of(&rpc);
    if internal {
        return Err(ApiError::new(tonic::Code::Unimplemented, "no such RPC"));
    }
    let admitted = gateway
        .admit(
            &parts.headers,
            path_tenant,
            peer,
            policy.public,
            policy.tenant_optional,
        )
        .await?;

    let mut metadata = tonic::metadata::MetadataMap::new();
    gateway.add_metadata(
        &mut metadata,
        &parts.headers,
        &admitted,
        request_id,
        upstream,
    )?;
    for name in REPLACED {
        parts.headers.remove(name);
    }
    parts.headers.remove(http::header::HOST);
    for (name, value) in metadata.into_headers() {
        if let Some(name) = name {
            parts.headers.insert(name, value);
        }
    }
    parts.uri = format!("{}{}", upstream_url.trim_end_matches('/'), path)
        .parse()
        .map_err(|_| ApiError::new(tonic::Code::Internal, "internal error"))?;
    let upstream_request = Request::from_parts(parts, body);
    let response = client.request(upstream_request).await.map_err(|_| {
        ApiError::new(
            tonic::Code::Unavailable,
            "the service is unavailable; try again",
        )
    })?;
    let (mut parts, body) = response.into_parts();
    parts.headers.insert(
        HeaderName::from_static("x-request-id"),
        HeaderValue::from_str(request_id).unwrap_or(HeaderValue::from_static("")),
    );
    Ok(Response::from_parts(parts, Body::new(body)).into_response())
}

/// A gateway refusal as a gRPC-web client understands it: a trailers-only answer, HTTP 200
/// with `grpc-status` and `grpc-message` (percent-encoded), plus `Retry-After` when set.
pub fn error_response(error: &ApiError) -> Response {
    let message =
        percent_encoding::utf8_percent_encode(&error.message, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    let mut response = Response::new(Body::empty());
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc-web+proto"),
    );
    headers.insert("grpc-status", HeaderValue::from(error.code as i32));
    if let Ok(value) = HeaderValue::from_str(&message) {
        headers.insert("grpc-message", value);
    }
    if let Some(seconds) = error.retry_after {
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
