//! What happens to an API request, in order: route lookup, tenant resolution, authentication,
//! maintenance, rate limiting, body, the gRPC call, and the answer.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use platform::context::{
    CLIENT_IP_HEADER, CLIENT_USER_AGENT_HEADER, GATEWAY_TOKEN_HEADER, Principal, REQUEST_ID_HEADER,
    TENANT_ID_HEADER, TenantId,
};
use proto::formflow::tenant::v1::{ResolvedTenant, TenantStatus};

use crate::auth::{Authenticator, Caller, Credentials, GatewayToken};
use crate::error::ApiError;
use crate::rate_limit::{Decision, Limit, RateLimiter};
use crate::stream;
use crate::tenant::{TenantRef, TenantResolver, request_host, strip_tenant_prefix};
use crate::transcode::Transcoder;
use crate::transcode::message::{
    build_request, http_body_parts, is_blank, is_http_body, is_json_content_type, response_json,
    takes_json_body,
};
use crate::transcode::routes::{Lookup, Route};
use crate::transcode::template::Bindings;

/// Headers forwarded to services as gRPC metadata, as they are.
const FORWARDED_HEADERS: [&str; 6] = [
    "traceparent",
    "tracestate",
    "idempotency-key",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// Limits and switches of the edge.
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    /// Tenant of requests that name none.
    pub default_tenant: Option<TenantRef>,
    /// Largest body.
    pub body_limit: usize,
    /// Longest wait for a service.
    pub request_timeout: Duration,
    /// Proxies appending to `X-Forwarded-For`.
    pub trusted_proxies: usize,
    /// Maintenance mode.
    pub maintenance: bool,
    /// Its `Retry-After`.
    pub maintenance_retry_after: u32,
    /// Per-address limit for anonymous calls.
    pub anonymous_limit: Limit,
    /// Per-caller limit.
    pub caller_limit: Limit,
}

/// The gateway's request handling.
#[derive(Debug)]
pub struct Gateway {
    /// Routes and upstream channels.
    pub transcoder: Transcoder,
    /// Tenant resolution.
    pub tenants: TenantResolver,
    /// Authentication.
    pub authenticator: Authenticator,
    /// The gateway's own service token, which the suite's services get beside each call.
    pub gateway_token: GatewayToken,
    /// Rate limits.
    pub limiter: RateLimiter,
    /// Settings.
    pub settings: EdgeSettings,
}

/// What the pipeline settled before the call.
pub(crate) struct Admitted {
    pub(crate) tenant: Option<Arc<ResolvedTenant>>,
    pub(crate) caller: Option<Caller>,
    pub(crate) client_ip: String,
    pub(crate) rate: Decision,
}

/// The route template a response answered, for metrics (a bounded label).
#[derive(Debug, Clone)]
pub struct RouteLabel(pub Arc<str>);

impl Gateway {
    /// Serves one API request.
    pub async fn handle(
        &self,
        request: http::Request<Body>,
        peer: SocketAddr,
        request_id: &str,
    ) -> Response {
        let (parts, body) = request.into_parts();
        let (path_tenant, path) = match strip_tenant_prefix(parts.uri.path()) {
            Some((slug, rest)) => (Some(slug), rest),
            None => (None, parts.uri.path().to_owned()),
        };
        let (route, bindings) = match self.transcoder.table().lookup(&parts.method, &path) {
            Lookup::Found(route, bindings) => (route, bindings),
            Lookup::MethodNotAllowed(methods) => {
                return method_not_allowed(methods)
                    .for_request(request_id)
                    .into_response();
            }
            Lookup::NotFound => {
                return ApiError::new(tonic::Code::NotFound, "no such route")
                    .for_request(request_id)
                    .into_response();
            }
        };
        let mut response = match self
            .serve(route, bindings, path_tenant, parts, body, peer, request_id)
            .await
        {
            Ok(response) => response,
            Err(error) => error.for_request(request_id).into_response(),
        };
        response
            .extensions_mut()
            .insert(RouteLabel(route.label.clone()));
        response
    }

    #[allow(clippy::too_many_arguments)]
    async fn serve(
        &self,
        route: &Route,
        bindings: Bindings,
        path_tenant: Option<String>,
        parts: http::request::Parts,
        body: Body,
        peer: SocketAddr,
        request_id: &str,
    ) -> Result<Response, ApiError> {
        let admitted = self
            .admit(
                &parts.headers,
                path_tenant,
                peer,
                route.policy.public,
                route.policy.tenant_optional,
            )
            .await?;

        let bytes = axum::body::to_bytes(body, self.settings.body_limit)
            .await
            .map_err(|_| {
                let mut error = ApiError::new(
                    tonic::Code::InvalidArgument,
                    format!(
                        "the request body is larger than {} bytes",
                        self.settings.body_limit
                    ),
                )
                .with_reason("PAYLOAD_TOO_LARGE");
                error.http_status =
                    Some(Box::new((StatusCode::PAYLOAD_TOO_LARGE, HeaderMap::new())));
                error
            })?;
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok());
        // A body read as JSON must say so: a form or `text/plain` post (which browsers send
        // across origins without asking) is not taken for JSON.
        if takes_json_body(route) && !is_blank(&bytes) && !is_json_content_type(content_type) {
            let mut error = ApiError::new(
                tonic::Code::InvalidArgument,
                "the request body must be JSON, sent with Content-Type: application/json",
            )
            .with_reason("UNSUPPORTED_MEDIA_TYPE");
            error.http_status = Some(Box::new((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                HeaderMap::new(),
            )));
            return Err(error);
        }
        let message = build_request(route, &bindings, parts.uri.query(), content_type, bytes)
            .map_err(|error| ApiError::bad_field(&error.field, &error.description))?;
        let mut grpc_request = tonic::Request::new(message);
        self.add_metadata(
            grpc_request.metadata_mut(),
            &parts.headers,
            &admitted,
            request_id,
            &route.upstream,
        )?;

        let mut response = if route.rpc.is_server_streaming() && is_http_body(&route.rpc.output()) {
            let chunks = self
                .transcoder
                .server_streaming(route, grpc_request)
                .await
                .map_err(|status| ApiError::from_status(&status))?;
            stream::respond_raw(chunks).await?
        } else if route.rpc.is_server_streaming() {
            let wants_ndjson = parts
                .headers
                .get(header::ACCEPT)
                .and_then(|value| value.to_str().ok())
                .is_some_and(|accept| accept.contains("application/x-ndjson"));
            let messages = self
                .transcoder
                .server_streaming(route, grpc_request)
                .await
                .map_err(|status| ApiError::from_status(&status))?;
            stream::respond(
                messages,
                route.response_body.clone(),
                wants_ndjson,
                request_id.to_owned(),
            )
        } else {
            let answer = tokio::time::timeout(
                self.settings.request_timeout,
                self.transcoder.unary(route, grpc_request),
            )
            .await
            .map_err(|_| {
                ApiError::new(
                    tonic::Code::DeadlineExceeded,
                    "the service did not answer in time",
                )
                .with_reason("UPSTREAM_TIMEOUT")
            })?
            .map_err(|status| ApiError::from_status(&status))?;
            unary_response(route, &answer)?
        };
        rate_limit_headers(response.headers_mut(), &admitted.rate);
        Ok(response)
    }

    /// Resolves the tenant, authenticates, enforces maintenance and rate limits, in that
    /// order.
    pub(crate) async fn admit(
        &self,
        headers: &HeaderMap,
        path_tenant: Option<String>,
        peer: SocketAddr,
        public: bool,
        tenant_optional: bool,
    ) -> Result<Admitted, ApiError> {
        let client_ip = client_ip(headers, peer, self.settings.trusted_proxies);
        let credentials = Credentials::from_headers(headers)?;
        let mut tenant = self.named_tenant(headers, path_tenant).await?;
        let tenant_id = tenant
            .as_ref()
            .and_then(|tenant| TenantId::parse(&tenant.id).ok());
        let caller = self
            .authenticator
            .authenticate(credentials, tenant_id)
            .await?;
        if caller.is_none() && !public {
            return Err(ApiError::new(
                tonic::Code::Unauthenticated,
                "missing credentials: send a bearer token or an API key",
            ));
        }
        if tenant.is_none() {
            tenant = self.implicit_tenant(caller.as_ref()).await?;
        }
        check_tenant(tenant.as_deref(), caller.as_ref(), tenant_optional)?;
        self.check_maintenance(caller.as_ref())?;
        let rate = self
            .limit_rate(tenant.as_deref(), caller.as_ref(), &client_ip)
            .await?;
        Ok(Admitted {
            tenant,
            caller,
            client_ip,
            rate,
        })
    }

    /// The tenant a request names explicitly: `X-Tenant-ID`, the `/t/{slug}/` prefix, a tenant
    /// host. They must agree; a name that does not resolve is refused (a host only when it is
    /// a tenant subdomain: any other host may be the API's own).
    async fn named_tenant(
        &self,
        headers: &HeaderMap,
        path_tenant: Option<String>,
    ) -> Result<Option<Arc<ResolvedTenant>>, ApiError> {
        let mut named: Vec<(TenantRef, bool)> = Vec::new();
        if let Some(value) = headers.get("x-tenant-id") {
            let value = value
                .to_str()
                .map_err(|_| ApiError::bad_field("X-Tenant-ID", "must be a tenant id or slug"))?;
            named.push((TenantRef::from_header(value.trim()), true));
        }
        if let Some(tenant) = path_tenant {
            // `/t/{id or slug}/…`, as X-Tenant-ID: ids stay valid when a slug changes, which
            // the webhook URLs svc-workflow publishes rely on.
            named.push((TenantRef::from_header(&tenant), true));
        }
        if let Some(host) = request_host(headers) {
            let must_resolve = self.tenants.is_tenant_subdomain(&host);
            named.push((TenantRef::Host(host), must_resolve));
        }
        let mut tenant: Option<Arc<ResolvedTenant>> = None;
        for (reference, must_resolve) in named {
            match self.tenants.resolve(&reference).await? {
                Some(found) => match &tenant {
                    Some(current) if current.id != found.id => {
                        return Err(ApiError::new(
                            tonic::Code::InvalidArgument,
                            "the request names two different tenants",
                        )
                        .with_reason("TENANT_CONFLICT"));
                    }
                    Some(_) => {}
                    None => tenant = Some(found),
                },
                None if must_resolve => return Err(tenant_not_found()),
                None => {}
            }
        }
        Ok(tenant)
    }

    /// The tenant of a request that names none: its token's, else the configured default.
    /// Not found is no error here: [`check_tenant`] refuses the request unless its RPC needs
    /// no tenant.
    async fn implicit_tenant(
        &self,
        caller: Option<&Caller>,
    ) -> Result<Option<Arc<ResolvedTenant>>, ApiError> {
        let implicit = caller
            .and_then(|caller| caller.token_tenant)
            .map(TenantRef::Id)
            .or_else(|| self.settings.default_tenant.clone());
        match implicit {
            Some(reference) => self.tenants.resolve(&reference).await,
            None => Ok(None),
        }
    }

    /// In maintenance, only platform administrators get through.
    fn check_maintenance(&self, caller: Option<&Caller>) -> Result<(), ApiError> {
        let platform_admin = matches!(
            caller.map(|caller| &caller.principal),
            Some(Principal::PlatformAdmin { .. })
        );
        if !self.settings.maintenance || platform_admin {
            return Ok(());
        }
        let mut error = ApiError::new(tonic::Code::Unavailable, "down for maintenance")
            .with_reason("MAINTENANCE");
        error.retry_after = Some(self.settings.maintenance_retry_after);
        Err(error)
    }

    /// Counts the request against its tenant's limit and its caller's (or its address's, for
    /// anonymous calls), and refuses it past either; refuses a revoked session too, which the
    /// same Redis round trip checks.
    async fn limit_rate(
        &self,
        tenant: Option<&ResolvedTenant>,
        caller: Option<&Caller>,
        client_ip: &str,
    ) -> Result<Decision, ApiError> {
        let mut keys = Vec::new();
        if let Some(tenant) = tenant
            && let Some(limits) = &tenant.rate_limits
        {
            keys.push((
                format!("tenant:{}", tenant.id),
                Limit {
                    per_minute: limits.requests_per_minute.max(1),
                    burst: limits.burst.max(1),
                },
            ));
        }
        match caller {
            Some(caller) => keys.push((
                format!("caller:{}", caller.rate_key),
                self.settings.caller_limit,
            )),
            None => keys.push((format!("ip:{client_ip}"), self.settings.anonymous_limit)),
        }
        let revocation_key = caller.and_then(|caller| caller.revocation_key.clone());
        let rate = self.limiter.check(&keys, revocation_key).await;
        if rate.revoked {
            return Err(ApiError::new(
                tonic::Code::Unauthenticated,
                "the session has ended",
            ));
        }
        if !rate.allowed {
            crate::metrics::rate_limited();
            let mut error = ApiError::new(
                tonic::Code::ResourceExhausted,
                "too many requests; slow down",
            )
            .with_reason("RATE_LIMITED");
            error.retry_after = Some(u32::try_from(rate.retry_after_seconds).unwrap_or(u32::MAX));
            let mut headers = HeaderMap::new();
            rate_limit_headers(&mut headers, &rate);
            error.http_status = Some(Box::new((StatusCode::TOO_MANY_REQUESTS, headers)));
            return Err(error);
        }
        Ok(rate)
    }

    /// The metadata services read: request id, credentials, tenant, client, trace context,
    /// and, for the suite's own services (never another team's upstream), the gateway's
    /// service token that makes them believe the client's address and user agent.
    pub(crate) fn add_metadata(
        &self,
        metadata: &mut tonic::metadata::MetadataMap,
        headers: &HeaderMap,
        admitted: &Admitted,
        request_id: &str,
        upstream: &str,
    ) -> Result<(), ApiError> {
        let invalid = |_| {
            ApiError::new(
                tonic::Code::InvalidArgument,
                "a header holds characters gRPC metadata cannot",
            )
        };
        metadata.insert(REQUEST_ID_HEADER, request_id.parse().map_err(invalid)?);
        if let Some(caller) = &admitted.caller {
            metadata.insert(
                "authorization",
                format!("Bearer {}", caller.token)
                    .parse()
                    .map_err(invalid)?,
            );
        }
        if let Some(tenant) = &admitted.tenant {
            metadata.insert(TENANT_ID_HEADER, tenant.id.parse().map_err(invalid)?);
        }
        if is_suite_service(upstream)
            && let Some(token) = self.gateway_token.current()
        {
            metadata.insert(GATEWAY_TOKEN_HEADER, token.parse().map_err(invalid)?);
        }
        if !admitted.client_ip.is_empty() {
            metadata.insert(
                CLIENT_IP_HEADER,
                admitted.client_ip.parse().map_err(invalid)?,
            );
        }
        if let Some(agent) = headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
        {
            let agent: String = agent
                .chars()
                .filter(|character| character.is_ascii() && !character.is_ascii_control())
                .take(500)
                .collect();
            metadata.insert(CLIENT_USER_AGENT_HEADER, agent.parse().map_err(invalid)?);
        }
        for name in FORWARDED_HEADERS {
            if let Some(value) = headers.get(name).and_then(|value| value.to_str().ok()) {
                metadata.insert(name, value.parse().map_err(invalid)?);
            }
        }
        Ok(())
    }
}

/// Refuses credentials of another tenant than the request's, a suspended tenant (but for
/// platform operators), and a missing tenant where the RPC needs one.
fn check_tenant(
    tenant: Option<&ResolvedTenant>,
    caller: Option<&Caller>,
    tenant_optional: bool,
) -> Result<(), ApiError> {
    let Some(tenant) = tenant else {
        if tenant_optional {
            return Ok(());
        }
        return Err(ApiError::new(
            tonic::Code::NotFound,
            "no tenant: send X-Tenant-ID, use /t/{slug}/ or a tenant's host",
        )
        .with_reason("TENANT_NOT_FOUND"));
    };
    if let Some(token_tenant) = caller.and_then(|caller| caller.token_tenant)
        && token_tenant.to_string() != tenant.id
    {
        return Err(ApiError::new(
            tonic::Code::PermissionDenied,
            "the credentials belong to another tenant",
        ));
    }
    let platform_operator = caller.is_some_and(|caller| caller.principal.is_platform_operator());
    if tenant.status() == TenantStatus::Suspended && !platform_operator {
        return Err(
            ApiError::new(tonic::Code::PermissionDenied, "the tenant is suspended")
                .with_reason("TENANT_SUSPENDED"),
        );
    }
    Ok(())
}

/// Whether `upstream` (a name of the transcoder's) is one of the suite's services, which may
/// see the gateway's service token; an upstream added by configuration is named by its URL.
fn is_suite_service(upstream: &str) -> bool {
    platform::suite::SERVICES
        .iter()
        .any(|service| service.name == upstream)
}

fn tenant_not_found() -> ApiError {
    ApiError::new(tonic::Code::NotFound, "no such tenant").with_reason("TENANT_NOT_FOUND")
}

fn method_not_allowed(methods: Vec<Method>) -> ApiError {
    let allowed: Vec<&str> = methods.iter().map(Method::as_str).collect();
    let allow = allowed.join(", ");
    let mut error = ApiError::new(
        tonic::Code::InvalidArgument,
        format!("method not allowed; this path takes {allow}"),
    )
    .with_reason("METHOD_NOT_ALLOWED");
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&allow) {
        headers.insert(header::ALLOW, value);
    }
    error.http_status = Some(Box::new((StatusCode::METHOD_NOT_ALLOWED, headers)));
    error
}

fn unary_response(
    route: &Route,
    answer: &prost_reflect::DynamicMessage,
) -> Result<Response, ApiError> {
    let status = route
        .policy
        .success_status
        .and_then(|status| StatusCode::from_u16(status).ok())
        .unwrap_or(StatusCode::OK);
    if is_http_body(&route.rpc.output()) {
        let (content_type, data) = http_body_parts(answer);
        return Ok((status, [(header::CONTENT_TYPE, content_type)], data).into_response());
    }
    let json = response_json(answer, route.response_body.as_deref()).map_err(|error| {
        tracing::error!(%error, "cannot encode a response as JSON");
        ApiError::new(tonic::Code::Internal, "internal error")
    })?;
    Ok((status, axum::Json(json)).into_response())
}

fn rate_limit_headers(headers: &mut HeaderMap, decision: &Decision) {
    if decision.limit == 0 {
        return;
    }
    headers.insert("ratelimit-limit", HeaderValue::from(decision.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(decision.remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(decision.reset_seconds));
}

/// The client's address: the connection's peer, or, behind `trusted_proxies` proxies, the
/// address the outermost of them saw (counted from the right of `X-Forwarded-For`).
pub fn client_ip(headers: &HeaderMap, peer: SocketAddr, trusted_proxies: usize) -> String {
    if trusted_proxies > 0
        && let Some(forwarded) = headers
            .get("x-forwarded-for")
            .and_then(|value| value.to_str().ok())
    {
        let hops: Vec<&str> = forwarded
            .split(',')
            .map(str::trim)
            .filter(|hop| !hop.is_empty())
            .collect();
        if let Some(hop) = hops
            .len()
            .checked_sub(trusted_proxies)
            .and_then(|index| hops.get(index))
            && let Ok(address) = hop.parse::<IpAddr>()
        {
            return address.to_string();
        }
    }
    peer.ip().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_addresses_come_from_the_trusted_hop() {
        let peer: SocketAddr = "10.0.0.9:5555".parse().unwrap();
        let mut headers = HeaderMap::new();
        assert_eq!(client_ip(&headers, peer, 1), "10.0.0.9");
        headers.insert("x-forwarded-for", "1.1.1.1, 203.0.113.5".parse().unwrap());
        assert_eq!(
            client_ip(&headers, peer, 0),
            "10.0.0.9",
            "untrusted headers are ignored"
        );
        assert_eq!(
            client_ip(&headers, peer, 1),
            "203.0.113.5",
            "the address the ingress saw"
        );
        assert_eq!(client_ip(&headers, peer, 2), "1.1.1.1");
        assert_eq!(client_ip(&headers, peer, 3), "10.0.0.9");
        headers.insert("x-forwarded-for", "not-an-ip".parse().unwrap());
        assert_eq!(client_ip(&headers, peer, 1), "10.0.0.9");
    }
}
