//! The tower layer that verifies each call's token and puts its [`RequestContext`] into the
//! request's extensions.

use tonic::Status;

use super::{
    CLIENT_IP_HEADER, CLIENT_USER_AGENT_HEADER, GATEWAY_TOKEN_HEADER, Principal, REQUEST_ID_HEADER,
    RequestContext, SessionId, TENANT_ID_HEADER, TenantId,
};
use crate::auth::{AuthError, JwtVerifier, RevokedSessions};
use crate::error::status_with_reason;
use crate::idempotency::{IDEMPOTENCY_KEY_HEADER, IdempotencyKey};

/// A tower layer that verifies the bearer token of every call (when there is one) and stores
/// the resulting [`RequestContext`] in the request's extensions, where handlers find it with
/// [`RequestContext::of`]. A bad token fails the call with UNAUTHENTICATED before the handler
/// runs; no token leaves the principal empty, for the handler to refuse unless the RPC is
/// public. `x-tenant-id` is the gateway's routing decision: for a user or a tenant-bound service
/// it must match the token's tenant. The client's address and user agent the gateway forwards
/// (`x-client-ip`, `x-client-user-agent`) are believed only beside a valid `x-gateway-token`;
/// without one the call's peer is the client.
///
/// With [`ContextLayer::with_revocations`], a user's token whose session was revoked since it
/// was issued (logout, a removal, a role change) is refused here too, so that a service's own
/// permission checks never act on a stale role. Calls beside a valid gateway token skip the
/// lookup: the gateway refused revoked sessions already.
///
/// The UNIMPLEMENTED answer of an RPC a draft service has not built yet names the RPC.
///
/// Wrap each API service with it (`ContextLayer::new(verifier).layer(server)`); health and
/// reflection stay unauthenticated.
#[derive(Debug, Clone)]
pub struct ContextLayer {
    verifier: JwtVerifier,
    revocations: Option<RevokedSessions>,
}

impl ContextLayer {
    /// A layer verifying tokens with `verifier`.
    pub fn new(verifier: JwtVerifier) -> Self {
        Self {
            verifier,
            revocations: None,
        }
    }

    /// Also refuses tokens of sessions on the revocation list. If Redis cannot answer, the
    /// call goes on (logged): a revoked token then lives until it expires, as at the gateway.
    pub fn with_revocations(mut self, revocations: Option<RevokedSessions>) -> Self {
        self.revocations = revocations;
        self
    }
}

impl<S> tower::Layer<S> for ContextLayer {
    type Service = ContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ContextService {
            inner,
            verifier: self.verifier.clone(),
            revocations: self.revocations.clone(),
        }
    }
}

/// The service [`ContextLayer`] wraps around an API service.
#[derive(Debug, Clone)]
pub struct ContextService<S> {
    inner: S,
    verifier: JwtVerifier,
    revocations: Option<RevokedSessions>,
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for ContextService<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> tower::Service<http::Request<tonic::body::Body>> for ContextService<S>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = futures_util::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let revocations = self.revocations.clone();
        Box::pin(async move {
            let peer = request
                .extensions()
                .get::<tonic::transport::server::TcpConnectInfo>()
                .and_then(|info| info.remote_addr())
                .map(|addr| addr.ip().to_string());
            let revocations = revocations.as_ref();
            match request_context(&verifier, revocations, request.headers(), peer).await {
                Ok(context) => {
                    request.extensions_mut().insert(context);
                    let rpc = request.uri().path().to_owned();
                    let mut response = inner.call(request).await?;
                    name_unbuilt_rpc(&mut response, &rpc);
                    Ok(response)
                }
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}

/// The message tonic's default stub of an RPC not built yet answers with.
const STUB_MESSAGE: &str = "Not%20yet%20implemented";

/// Names the RPC in the UNIMPLEMENTED answer of a draft service's stub, which says only "Not
/// yet implemented", so that a client (and the gateway's 501) knows which RPC is missing.
fn name_unbuilt_rpc<B>(response: &mut http::Response<B>, rpc: &str) {
    let headers = response.headers_mut();
    let unimplemented = headers
        .get("grpc-status")
        .is_some_and(|status| status.as_bytes() == b"12");
    if !unimplemented
        || headers
            .get("grpc-message")
            .is_none_or(|message| message.as_bytes() != STUB_MESSAGE.as_bytes())
    {
        return;
    }
    let rpc = rpc.trim_start_matches('/').replace('/', ".");
    let message = format!("{rpc}%20is%20not%20built%20yet");
    if let Ok(message) = http::HeaderValue::from_str(&message) {
        headers.insert("grpc-message", message);
    }
}

/// Builds the context of a call from its headers (gRPC metadata) and its peer's address,
/// refusing a user's session on `revocations` when it is given.
pub async fn request_context(
    verifier: &JwtVerifier,
    revocations: Option<&RevokedSessions>,
    headers: &http::HeaderMap,
    peer: Option<String>,
) -> Result<RequestContext, Status> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .filter(|value| !value.is_empty())
    };
    // What the gateway says of the end client is believed only when the gateway says it:
    // anyone reaching the service's port could send these headers.
    let from_gateway = match header(GATEWAY_TOKEN_HEADER) {
        Some(token) => is_gateway(verifier, token).await,
        None => false,
    };
    let forwarded = |name: &str| header(name).filter(|_| from_gateway);
    let client_ip = forwarded(CLIENT_IP_HEADER)
        .map(str::to_owned)
        .or(peer)
        .unwrap_or_default();
    let user_agent: String = forwarded(CLIENT_USER_AGENT_HEADER)
        .or_else(|| header("user-agent"))
        .unwrap_or_default()
        .chars()
        .take(500)
        .collect();
    let request_id = headers
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (principal, session_id) = match headers.get(http::header::AUTHORIZATION) {
        None => (None, None),
        Some(value) => {
            let token = value
                .to_str()
                .ok()
                .and_then(|value| value.strip_prefix("Bearer "))
                .ok_or_else(|| Status::unauthenticated("authorization must be a Bearer token"))?;
            let claims = verifier.verify(token.trim()).await.map_err(auth_status)?;
            let session_id = claims
                .sid
                .as_deref()
                .and_then(|sid| SessionId::parse(sid).ok());
            (Some(claims.principal().map_err(auth_status)?), session_id)
        }
    };
    if let (Some(revocations), Some(session), false) = (revocations, session_id, from_gateway) {
        check_session(revocations, session).await?;
    }
    let tenant_id = headers
        .get(TENANT_ID_HEADER)
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|value| TenantId::parse(value).ok())
                .ok_or_else(|| Status::invalid_argument("x-tenant-id must be a tenant id"))
        })
        .transpose()?;
    let token_tenant = match &principal {
        Some(Principal::User { tenant_id, .. } | Principal::ApiKey { tenant_id, .. }) => {
            Some(*tenant_id)
        }
        Some(Principal::Service { tenant_id, .. }) => *tenant_id,
        Some(Principal::PlatformAdmin { .. }) | None => None,
    };
    if let (Some(routed), Some(token_tenant)) = (tenant_id, token_tenant)
        && routed != token_tenant
    {
        return Err(Status::permission_denied(
            "the token belongs to another tenant than the request",
        ));
    }
    // A key that is present but unreadable is refused, never ignored: ignoring it would turn
    // the client's retry into a second write.
    let idempotency_key = headers
        .get(IDEMPOTENCY_KEY_HEADER)
        .filter(|key| !key.is_empty())
        .map(|key| {
            key.to_str()
                .map_err(|_| IdempotencyKey::INVALID)
                .and_then(IdempotencyKey::parse)
                .map_err(Status::invalid_argument)
        })
        .transpose()?;
    Ok(RequestContext {
        request_id,
        principal,
        session_id,
        tenant_id,
        client_ip,
        user_agent,
        idempotency_key,
    })
}

/// Whether `token` is a valid service token: only the suite's own components obtain one (with
/// a client secret svc-auth lists), and of them only the gateway forwards end clients' calls.
/// A bad one is no reason to refuse the call, which its own credentials decide on; it only
/// makes the service record its peer instead of what the headers claim.
async fn is_gateway(verifier: &JwtVerifier, token: &str) -> bool {
    match verifier.is_service_token(token.trim()).await {
        Ok(true) => true,
        Ok(false) => {
            tracing::warn!("x-gateway-token is not a service token; client headers ignored");
            false
        }
        Err(error) => {
            tracing::warn!(%error, "x-gateway-token refused; client headers ignored");
            false
        }
    }
}

/// Refuses a session on the revocation list. Calls the gateway vouches for skip this: it
/// checks the list itself, in the same round trip as its rate limits.
async fn check_session(revocations: &RevokedSessions, session: SessionId) -> Result<(), Status> {
    match revocations.is_revoked(session.as_uuid()).await {
        Ok(false) => Ok(()),
        Ok(true) => Err(status_with_reason(
            tonic::Code::Unauthenticated,
            "SESSION_ENDED",
            "the session has ended",
        )),
        Err(error) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "cannot check the revocation list; the token is trusted until it expires"
            );
            Ok(())
        }
    }
}

fn auth_status(error: AuthError) -> Status {
    Status::unauthenticated(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Claims, JwtSigner};
    use crate::context::{Role, UserId};

    const PEER: &str = "10.1.2.3";

    fn service_claims(name: &str) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: "formflow".into(),
            aud: "formflow".into(),
            sub: name.into(),
            tid: None,
            role: None,
            sid: None,
            prole: None,
            typ: Some("service".into()),
            scope: None,
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now,
            exp: now + 300,
        }
    }

    async fn client_of(verifier: &JwtVerifier, pairs: &[(&str, &str)]) -> (String, String) {
        let mut headers = http::HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let context = request_context(verifier, None, &headers, Some(PEER.to_owned()))
            .await
            .unwrap();
        (context.client_ip, context.user_agent)
    }

    #[tokio::test]
    async fn client_headers_are_believed_only_beside_a_gateway_token() {
        let signer = JwtSigner::generate().unwrap();
        let verifier = JwtVerifier::new(&signer.jwks(), "formflow", "formflow").unwrap();
        let claimed = [
            (CLIENT_IP_HEADER, "203.0.113.9"),
            (CLIENT_USER_AGENT_HEADER, "Browser/1.0"),
            ("user-agent", "tonic/0.14"),
        ];
        fn with_gateway_token<'a>(
            claimed: &[(&'a str, &'a str)],
            token: &'a str,
        ) -> Vec<(&'a str, &'a str)> {
            let mut pairs = claimed.to_vec();
            pairs.push((GATEWAY_TOKEN_HEADER, token));
            pairs
        }
        let peer = (PEER.to_owned(), "tonic/0.14".to_owned());

        assert_eq!(client_of(&verifier, &claimed).await, peer, "no token");
        let gateway = signer.sign(&service_claims("gateway")).unwrap();
        assert_eq!(
            client_of(&verifier, &with_gateway_token(&claimed, &gateway)).await,
            ("203.0.113.9".to_owned(), "Browser/1.0".to_owned())
        );

        let mut user_claims = service_claims(&UserId::generate().to_string());
        user_claims.typ = None;
        user_claims.tid = Some(TenantId::generate().to_string());
        user_claims.role = Some(Role::Admin.as_str().to_owned());
        let user = signer.sign(&user_claims).unwrap();
        let foreign = JwtSigner::generate()
            .unwrap()
            .sign(&service_claims("gateway"))
            .unwrap();
        let mut expired_claims = service_claims("gateway");
        expired_claims.exp -= 3600;
        let expired = signer.sign(&expired_claims).unwrap();
        for (what, token) in [
            ("a user's", user.as_str()),
            ("a foreign key's", &foreign),
            ("an expired", &expired),
            ("a garbage", "not.a.token"),
        ] {
            assert_eq!(
                client_of(&verifier, &with_gateway_token(&claimed, token)).await,
                peer,
                "{what} token"
            );
        }
    }
}
