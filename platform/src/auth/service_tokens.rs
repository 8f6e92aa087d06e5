//! Service tokens: what a suite service shows when it calls another outside a user's request.

use std::collections::HashMap;
use std::time::Duration;

use crate::client::Balanced;
use anyhow::Context;
use proto::formflow::auth::v1::IssueServiceTokenRequest;
use proto::formflow::auth::v1::auth_service_client::AuthServiceClient;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::ServiceCredentialsConfig;
use crate::context::TenantId;

/// A token is renewed when less than this is left of its life.
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(60);

/// Obtains service tokens from svc-auth's `IssueServiceToken` with the service's client id and
/// secret, one per tenant acted for (or none), and reuses each until shortly before it expires.
pub struct ServiceTokens {
    client: AuthServiceClient<Balanced>,
    client_id: String,
    client_secret: SecretString,
    cache: Mutex<HashMap<Option<TenantId>, (String, Instant)>>,
}

impl std::fmt::Debug for ServiceTokens {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ServiceTokens")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl ServiceTokens {
    /// Tokens from svc-auth at `auth_url` for the configured client.
    pub fn new(auth_url: &str, credentials: &ServiceCredentialsConfig) -> anyhow::Result<Self> {
        Ok(Self {
            client: AuthServiceClient::new(crate::client::channel(auth_url, "AUTH_URL")?),
            client_id: credentials.auth_client_id.clone(),
            client_secret: credentials.client_secret()?,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// A request carrying a token acting for `tenant` (the platform when `None`) and the
    /// request id of the call it belongs to, if any.
    pub async fn authorize<T>(
        &self,
        message: T,
        tenant: Option<TenantId>,
        request_id: Option<&str>,
    ) -> anyhow::Result<tonic::Request<T>> {
        let token = self.token(tenant).await?;
        crate::client::authorized(message, &token, request_id)
    }

    /// A valid token acting for `tenant`, or for the platform when `None`.
    pub async fn token(&self, tenant: Option<TenantId>) -> anyhow::Result<String> {
        let mut cache = self.cache.lock().await;
        if let Some((token, expires_at)) = cache.get(&tenant)
            && Instant::now() + RENEW_BEFORE_EXPIRY < *expires_at
        {
            return Ok(token.clone());
        }
        let response = self
            .client
            .clone()
            .issue_service_token(IssueServiceTokenRequest {
                client_id: self.client_id.clone(),
                client_secret: self.client_secret.expose_secret().to_owned(),
                tenant_id: tenant.map(|tenant| tenant.to_string()).unwrap_or_default(),
            })
            .await
            .with_context(|| format!("obtaining a service token for {}", self.client_id))?
            .into_inner();
        let lifetime = response
            .expire_time
            .map(|expire| expire.seconds - chrono::Utc::now().timestamp())
            .and_then(|seconds| u64::try_from(seconds).ok())
            .map_or(Duration::ZERO, Duration::from_secs);
        cache.insert(
            tenant,
            (response.access_token.clone(), Instant::now() + lifetime),
        );
        Ok(response.access_token)
    }
}
