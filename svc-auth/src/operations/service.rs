//! Service tokens, the published key set, and key rotation.

use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use platform::audit::AuditEntry;
use platform::auth::Claims;
use platform::context::{Principal, RequestContext, TenantId};

use super::{Identity, Settings};
use crate::error::Error;
use crate::keys::{KeyRing, SigningKeyInfo};

/// A token issued, with its expiry.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The JWT.
    pub token: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

/// Name of svc-auth itself when it acts as a service (it signs its own service tokens).
pub const SELF_CLIENT_ID: &str = "svc-auth";

impl Identity {
    /// Issues a service token to a configured client, for `tenant` or for the platform.
    #[tracing::instrument(skip_all, fields(%client_id, tenant_id = ?tenant))]
    pub async fn issue_service_token(
        &self,
        client_id: &str,
        client_secret: &str,
        tenant: Option<TenantId>,
    ) -> Result<IssuedToken, Error> {
        if !self.clients.verify(client_id, client_secret) {
            crate::metrics::service_token("refused");
            tracing::warn!(%client_id, "service token refused: wrong client id or secret");
            return Err(Error::InvalidClientCredentials);
        }
        crate::metrics::service_token("issued");
        self.service_token(client_id, tenant)
    }

    /// Signs a service token for `client_id`.
    fn service_token(
        &self,
        client_id: &str,
        tenant: Option<TenantId>,
    ) -> Result<IssuedToken, Error> {
        let lifetime = self.settings.tokens.service_token_ttl;
        let mut claims = self.claims(client_id, lifetime);
        claims.typ = Some("service".to_owned());
        claims.tid = tenant.map(|tenant| tenant.to_string());
        let token = self.keys.sign(&claims)?;
        Ok(IssuedToken {
            token,
            expires_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or_else(Utc::now),
        })
    }

    /// A platform-wide service token for svc-auth's own calls to other services.
    pub fn mint_self_token(keys: &KeyRing, settings: &Settings) -> anyhow::Result<String> {
        let now = Utc::now().timestamp();
        let lifetime = i64::try_from(settings.tokens.service_token_ttl.as_secs()).unwrap_or(300);
        let claims = Claims {
            iss: settings.tokens.issuer.clone(),
            aud: settings.tokens.audience.clone(),
            sub: SELF_CLIENT_ID.to_owned(),
            tid: None,
            role: None,
            sid: None,
            prole: None,
            typ: Some("service".to_owned()),
            scope: None,
            jti: uuid::Uuid::now_v7().to_string(),
            iat: now,
            exp: now + lifetime,
        };
        keys.sign(&claims)
    }

    /// Claims for `subject` valid for `lifetime` from now.
    pub(crate) fn claims(&self, subject: &str, lifetime: std::time::Duration) -> Claims {
        let now = Utc::now().timestamp();
        Claims {
            iss: self.settings.tokens.issuer.clone(),
            aud: self.settings.tokens.audience.clone(),
            sub: subject.to_owned(),
            tid: None,
            role: None,
            sid: None,
            prole: None,
            typ: None,
            scope: None,
            jti: uuid::Uuid::now_v7().to_string(),
            iat: now,
            exp: now + i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2),
        }
    }

    /// The public keys that verify tokens.
    pub fn jwks(&self) -> JwkSet {
        self.keys.jwks()
    }

    /// Retires the signing key and starts signing with a new one (platform administrators).
    #[tracing::instrument(skip_all)]
    pub async fn rotate_signing_key(
        &self,
        context: &RequestContext,
    ) -> Result<SigningKeyInfo, Error> {
        if !matches!(context.principal()?, Principal::PlatformAdmin { .. }) {
            return Err(Error::PlatformAdminsOnly);
        }
        let previous = self.keys.active();
        let rotated = self.keys.rotate().await?;
        let mut transaction = self.db.platform_tx().await?;
        let entry = AuditEntry::by(
            context,
            None,
            "signing_key.rotate",
            platform::wire::resource_name("signingKeys", &rotated.kid),
            serde_json::json!({"retired": previous.kid}),
        );
        self.audit(&mut transaction, entry).await?;
        transaction.commit().await?;
        tracing::info!(kid = %rotated.kid, retired = %previous.kid, "signing key rotated");
        Ok(rotated)
    }
}
