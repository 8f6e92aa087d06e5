//! Who is calling: a bearer JWT verified locally against svc-auth's keys (its session's
//! revocation is checked with the rate limits, in the same Redis round trip), or an API key
//! verified by svc-auth and exchanged for a short-lived token. Services verify the token again; the gateway forwards it as it is.

use std::sync::Arc;
use std::time::{Duration, Instant};

use platform::auth::{Claims, JwtVerifier, RevokedSessions, ServiceTokens};
use platform::client::Balanced;
use platform::context::{Principal, TenantId};
use proto::formflow::auth::v1::VerifyApiKeyRequest;
use proto::formflow::auth::v1::auth_service_client::AuthServiceClient;

use crate::error::ApiError;

/// Prefix of API key secrets.
const API_KEY_PREFIX: &str = "ffk_";

/// A verified caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub principal: Principal,
    /// The token's tenant (`tid`), if it has one.
    pub token_tenant: Option<TenantId>,
    /// The bearer token to forward.
    pub token: Arc<str>,
    /// A key for per-caller rate limits (`user:…`, `key:…`, `service:…`).
    pub rate_key: String,
    /// The Redis key marking the token's session revoked, checked in the rate limit round
    /// trip; `None` for tokens without a session (services, API keys).
    pub revocation_key: Option<String>,
}

/// The credentials a request carries.
#[derive(Debug)]
pub enum Credentials {
    /// None.
    None,
    /// A JWT.
    Jwt(String),
    /// An API key secret.
    ApiKey(String),
}

impl Credentials {
    /// Reads `Authorization: Bearer …` (a JWT, or an API key by its `ffk_` prefix) or
    /// `X-API-Key`.
    pub fn from_headers(headers: &http::HeaderMap) -> Result<Credentials, ApiError> {
        if let Some(value) = headers.get(http::header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(|value| {
                    value
                        .strip_prefix("Bearer ")
                        .or_else(|| value.strip_prefix("bearer "))
                })
                .map(str::trim)
                .filter(|token| !token.is_empty())
                .ok_or_else(|| {
                    ApiError::new(
                        tonic::Code::Unauthenticated,
                        "Authorization must be `Bearer <token>`",
                    )
                })?;
            return Ok(if token.starts_with(API_KEY_PREFIX) {
                Credentials::ApiKey(token.to_owned())
            } else {
                Credentials::Jwt(token.to_owned())
            });
        }
        if let Some(value) = headers.get("x-api-key") {
            let key = value.to_str().map_err(|_| {
                ApiError::new(tonic::Code::Unauthenticated, "X-API-Key is malformed")
            })?;
            return Ok(Credentials::ApiKey(key.trim().to_owned()));
        }
        Ok(Credentials::None)
    }
}

#[derive(Clone)]
struct CachedKey {
    caller: Caller,
    key_tenant: TenantId,
    until: Instant,
}

/// Verifies credentials.
#[derive(Clone)]
pub struct Authenticator {
    verifier: JwtVerifier,
    revocations: RevokedSessions,
    auth: AuthServiceClient<Balanced>,
    tokens: Arc<ServiceTokens>,
    api_keys: moka::sync::Cache<Vec<u8>, CachedKey>,
    api_key_ttl: Duration,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Authenticator")
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// An authenticator verifying with `verifier`, checking `revocations`, and asking svc-auth
    /// (`auth_channel`) about API keys with service tokens from `tokens`; a verified key is
    /// trusted for `api_key_ttl`.
    pub fn new(
        verifier: JwtVerifier,
        revocations: RevokedSessions,
        auth_channel: Balanced,
        tokens: Arc<ServiceTokens>,
        api_key_ttl: Duration,
    ) -> Self {
        Self {
            verifier,
            revocations,
            auth: AuthServiceClient::new(auth_channel),
            tokens,
            api_keys: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(api_key_ttl.max(Duration::from_millis(1)))
                .build(),
            api_key_ttl,
        }
    }

    /// The verifier (its keys refresh in the background).
    pub fn verifier(&self) -> &JwtVerifier {
        &self.verifier
    }

    /// Verifies `credentials`; `tenant` is the resolved tenant, which an API key must belong to.
    pub async fn authenticate(
        &self,
        credentials: Credentials,
        tenant: Option<TenantId>,
    ) -> Result<Option<Caller>, ApiError> {
        match credentials {
            Credentials::None => Ok(None),
            Credentials::Jwt(token) => self.jwt(token).await.map(Some),
            Credentials::ApiKey(secret) => self.api_key(secret, tenant).await.map(Some),
        }
    }

    fn caller(&self, claims: &Claims, token: Arc<str>) -> Result<Caller, ApiError> {
        let principal = claims
            .principal()
            .map_err(|error| ApiError::new(tonic::Code::Unauthenticated, error.to_string()))?;
        let token_tenant = claims
            .tid
            .as_deref()
            .and_then(|tid| TenantId::parse(tid).ok());
        let rate_key = match &principal {
            Principal::User { user_id, .. } | Principal::PlatformAdmin { user_id } => {
                format!("user:{user_id}")
            }
            Principal::ApiKey { key_id, .. } => format!("key:{key_id}"),
            Principal::Service { name, .. } => format!("service:{name}"),
        };
        let revocation_key = claims
            .sid
            .as_deref()
            .and_then(|sid| uuid::Uuid::try_parse(sid).ok())
            .map(|session| self.revocations.key(session));
        Ok(Caller {
            principal,
            token_tenant,
            token,
            rate_key,
            revocation_key,
        })
    }

    async fn jwt(&self, token: String) -> Result<Caller, ApiError> {
        let claims = self
            .verifier
            .verify(&token)
            .await
            .map_err(|error| ApiError::new(tonic::Code::Unauthenticated, error.to_string()))?;
        self.caller(&claims, token.into())
    }

    async fn api_key(&self, secret: String, tenant: Option<TenantId>) -> Result<Caller, ApiError> {
        const REFUSED: &str = "invalid, revoked or expired API key";
        let digest = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes())
            .as_ref()
            .to_vec();
        if let Some(cached) = self.api_keys.get(&digest)
            && cached.until > Instant::now()
        {
            if tenant.is_some_and(|tenant| tenant != cached.key_tenant) {
                return Err(ApiError::new(tonic::Code::Unauthenticated, REFUSED));
            }
            return Ok(cached.caller);
        }
        let request = self
            .tokens
            .authorize(
                VerifyApiKeyRequest {
                    secret,
                    tenant_id: tenant.map(|tenant| tenant.to_string()).unwrap_or_default(),
                },
                None,
                None,
            )
            .await
            .map_err(|error| {
                tracing::error!(
                    error = format!("{error:#}"),
                    "no service token to verify API keys"
                );
                ApiError::new(
                    tonic::Code::Unavailable,
                    "API key verification is unavailable",
                )
            })?;
        let verified = match self.auth.clone().verify_api_key(request).await {
            Ok(response) => response.into_inner(),
            Err(status) if status.code() == tonic::Code::Unauthenticated => {
                return Err(ApiError::new(tonic::Code::Unauthenticated, REFUSED));
            }
            Err(status) => return Err(ApiError::from_status(&status)),
        };
        let claims = self
            .verifier
            .verify(&verified.access_token)
            .await
            .map_err(|_| ApiError::new(tonic::Code::Internal, "internal error"))?;
        let caller = self.caller(&claims, verified.access_token.into())?;
        let key_tenant = TenantId::parse(&verified.tenant_id)
            .map_err(|_| ApiError::new(tonic::Code::Internal, "internal error"))?;
        // Cache no longer than the key's token lives.
        let lifetime = verified
            .access_token_expire_time
            .map(|expiry| expiry.seconds - chrono::Utc::now().timestamp() - 30)
            .and_then(|seconds| u64::try_from(seconds).ok())
            .map_or(Duration::ZERO, Duration::from_secs)
            .min(self.api_key_ttl);
        if lifetime.is_zero() {
            return Ok(caller);
        }
        self.api_keys.insert(
            digest,
            CachedKey {
                caller: caller.clone(),
                key_tenant,
                until: Instant::now() + lifetime,
            },
        );
        Ok(caller)
    }
}

/// The gateway's own service token, sent to the suite's services as `x-gateway-token` beside
/// the caller's credentials: with it they believe the client address and user agent the
/// gateway forwards, which they would take from anyone otherwise. Requests read it without
/// waiting; [`GatewayToken::refresh`], run in the background, renews it, so a slow svc-auth
/// never holds a request up (services then record the gateway's address, not the client's).
#[derive(Clone)]
pub struct GatewayToken {
    tokens: Arc<ServiceTokens>,
    current: Arc<std::sync::RwLock<Option<Arc<str>>>>,
}

impl std::fmt::Debug for GatewayToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("GatewayToken")
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl GatewayToken {
    /// How often [`GatewayToken::refresh`] should run: well within a service token's life
    /// (minutes), which `ServiceTokens` renews a minute before it ends.
    pub const REFRESH_PERIOD: Duration = Duration::from_secs(15);

    /// The gateway's platform-wide service tokens from `tokens`; none until the first refresh.
    pub fn new(tokens: Arc<ServiceTokens>) -> Self {
        Self {
            tokens,
            current: Arc::default(),
        }
    }

    /// The token to send, if one was obtained.
    pub fn current(&self) -> Option<Arc<str>> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Obtains a token from svc-auth unless the one held lives on for a while.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let token = self.tokens.token(None).await?;
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(token.into());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        headers
    }

    #[test]
    fn credentials_are_told_apart() {
        assert!(matches!(
            Credentials::from_headers(&headers(&[])).unwrap(),
            Credentials::None
        ));
        assert!(matches!(
            Credentials::from_headers(&headers(&[("authorization", "Bearer eyJ.x.y")])).unwrap(),
            Credentials::Jwt(_)
        ));
        assert!(matches!(
            Credentials::from_headers(&headers(&[("authorization", "Bearer ffk_abc")])).unwrap(),
            Credentials::ApiKey(_)
        ));
        assert!(matches!(
            Credentials::from_headers(&headers(&[("x-api-key", "ffk_abc")])).unwrap(),
            Credentials::ApiKey(_)
        ));
        for bad in ["Basic dXNlcjpwYXNz", "Bearer ", "token"] {
            assert!(
                Credentials::from_headers(&headers(&[("authorization", bad)])).is_err(),
                "{bad}"
            );
        }
    }
}
