//! API keys for machine clients: created (secret shown once), listed, revoked, and verified
//! for the gateway, which then forwards a short-lived token standing for the key.

use chrono::{DateTime, Utc};
use platform::audit::AuditEntry;
use platform::context::{ApiKeyId, Permission, Principal, RequestContext, Role, TenantId};
use platform::error::FieldViolations;
use platform::paging::split_page;
use secrecy::{ExposeSecret, SecretString};

use super::{Identity, IssuedToken};
use crate::crypto::{new_token, token_digest};
use crate::domain::{ApiKey, ApiKeyName, ApiKeyState, check_key_role, check_key_scopes};
use crate::error::Error;
use crate::store::{self, NewApiKey};

/// Prefix of API key secrets, so leaked ones are recognisable (secret scanners).
const API_KEY_PREFIX: &str = "ffk_";
/// How many keys a filtered listing reads at a time.
const LIST_BATCH: usize = 100;

/// A validated CreateApiKey.
#[derive(Debug)]
pub struct NewApiKeyRequest {
    /// Name.
    pub display_name: ApiKeyName,
    /// The role it acts with.
    pub role: Role,
    /// Permissions it is limited to, without duplicates.
    pub scopes: Vec<Permission>,
    /// When it stops working.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A key just created, and its secret, shown this once.
#[derive(Debug)]
pub struct CreatedApiKey {
    /// The key.
    pub key: ApiKey,
    /// Its secret.
    pub secret: SecretString,
}

/// A page of keys, and where the next starts if more follow.
#[derive(Debug)]
pub struct ApiKeyPage {
    /// The keys, newest first.
    pub keys: Vec<ApiKey>,
    /// The last key of this page, when more follow.
    pub next_before: Option<ApiKeyId>,
}

/// What VerifyApiKey answers.
#[derive(Debug)]
pub struct VerifiedApiKey {
    /// The key.
    pub key: ApiKey,
    /// Its effective permissions.
    pub permissions: Vec<Permission>,
    /// A token standing for it.
    pub token: IssuedToken,
}

impl Identity {
    /// Creates a key acting with at most the creator's role (never owner), its scopes within
    /// that role; answers it with its secret.
    #[tracing::instrument(skip_all, fields(role = request.role.as_str()))]
    pub async fn create_api_key(
        &self,
        context: &RequestContext,
        request: NewApiKeyRequest,
    ) -> Result<CreatedApiKey, Error> {
        let tenant = self
            .authorize_live(context, Permission::ApiKeysManage)
            .await?;
        let (creator, creator_role) = match context.principal()? {
            Principal::User { user_id, role, .. } => (*user_id, *role),
            Principal::PlatformAdmin { user_id } => (*user_id, Role::Owner),
            Principal::ApiKey { .. } | Principal::Service { .. } => return Err(Error::PeopleOnly),
        };
        let mut violations = FieldViolations::new();
        violations.check("api_key.role", check_key_role(creator_role, request.role));
        violations.check(
            "api_key.scopes",
            check_key_scopes(request.role, &request.scopes),
        );
        violations.into_result()?;

        let (secret, digest) = new_token(API_KEY_PREFIX);
        let secret_prefix: String = secret
            .expose_secret()
            .chars()
            .take(API_KEY_PREFIX.len() + 8)
            .collect();
        let id = ApiKeyId::generate();
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let new_key = NewApiKey {
            id,
            tenant_id: tenant,
            display_name: &request.display_name,
            role: request.role,
            scopes: &request.scopes,
            secret_digest: &digest,
            secret_prefix: &secret_prefix,
            creator_id: creator,
            expires_at: request.expires_at,
        };
        store::insert_api_key(&mut transaction, &new_key).await?;
        let scopes: Vec<&str> = request.scopes.iter().map(|scope| scope.as_str()).collect();
        let details = serde_json::json!({"role": request.role.as_str(), "scopes": scopes});
        let entry = api_key_entry(context, tenant, id, "api_key.create", details);
        self.audit(&mut transaction, entry).await?;
        let key = store::get_api_key(&mut transaction, tenant, id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("API key {id} vanished"))?;
        transaction.commit().await?;
        Ok(CreatedApiKey { key, secret })
    }

    /// One page of the tenant's keys before `before` (newest first), in `state` or all.
    #[tracing::instrument(skip_all)]
    pub async fn list_api_keys(
        &self,
        context: &RequestContext,
        page_size: usize,
        mut before: Option<ApiKeyId>,
        state: Option<ApiKeyState>,
    ) -> Result<ApiKeyPage, Error> {
        let tenant = self
            .authorize_live(context, Permission::ApiKeysManage)
            .await?;
        // The state is derived (expiry), so filter after reading, reading on until the page fills.
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let now = Utc::now();
        let mut keys = Vec::new();
        let mut more = true;
        while keys.len() <= page_size && more {
            let limit = i64::try_from(LIST_BATCH).unwrap_or(i64::MAX);
            let batch = store::list_api_keys(&mut transaction, tenant, before, limit).await?;
            more = batch.len() == LIST_BATCH;
            before = batch.last().map(|key| key.id);
            keys.extend(
                batch
                    .into_iter()
                    .filter(|key| state.is_none_or(|state| key.state_at(now) == state)),
            );
        }
        transaction.commit().await?;
        let (keys, next_before) = split_page(keys, page_size, |last| last.id);
        Ok(ApiKeyPage { keys, next_before })
    }

    /// One key.
    #[tracing::instrument(skip_all, fields(api_key_id = %id))]
    pub async fn get_api_key(
        &self,
        context: &RequestContext,
        id: ApiKeyId,
    ) -> Result<ApiKey, Error> {
        let tenant = self
            .authorize_live(context, Permission::ApiKeysManage)
            .await?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let key = store::get_api_key(&mut transaction, tenant, id)
            .await?
            .ok_or(Error::ApiKeyNotFound(id))?;
        transaction.commit().await?;
        Ok(key)
    }

    /// Revokes a key; the gateway refuses it within seconds (it caches verifications briefly).
    #[tracing::instrument(skip_all, fields(api_key_id = %id))]
    pub async fn revoke_api_key(
        &self,
        context: &RequestContext,
        id: ApiKeyId,
    ) -> Result<ApiKey, Error> {
        let tenant = self
            .authorize_live(context, Permission::ApiKeysManage)
            .await?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        if store::get_api_key(&mut transaction, tenant, id)
            .await?
            .is_none()
        {
            return Err(Error::ApiKeyNotFound(id));
        }
        if store::revoke_api_key(&mut transaction, tenant, id).await? {
            let entry = api_key_entry(context, tenant, id, "api_key.revoke", serde_json::json!({}));
            self.audit(&mut transaction, entry).await?;
        }
        let key = store::get_api_key(&mut transaction, tenant, id)
            .await?
            .ok_or(Error::ApiKeyNotFound(id))?;
        transaction.commit().await?;
        Ok(key)
    }

    /// Verifies a key secret for the gateway (suite services and platform administrators
    /// only); a key of another tenant than `tenant` is refused.
    #[tracing::instrument(skip_all)]
    pub async fn verify_api_key(
        &self,
        context: &RequestContext,
        secret: &SecretString,
        tenant: Option<TenantId>,
    ) -> Result<VerifiedApiKey, Error> {
        context.require_platform_operator()?;
        let mut transaction = self.db.platform_tx().await?;
        let key =
            store::find_api_key_by_secret(&mut transaction, &token_digest(secret.expose_secret()))
                .await?
                .ok_or(Error::InvalidApiKey)?;
        if key.state_at(Utc::now()) != ApiKeyState::Active
            || tenant.is_some_and(|tenant| tenant != key.tenant_id)
        {
            return Err(Error::InvalidApiKey);
        }
        store::touch_api_key(&mut transaction, key.id).await?;
        transaction.commit().await?;
        let mut claims = self.claims(&key.id.to_string(), self.settings.tokens.service_token_ttl);
        claims.typ = Some("api_key".to_owned());
        claims.tid = Some(key.tenant_id.to_string());
        claims.role = Some(key.role.as_str().to_owned());
        if !key.scopes.is_empty() {
            let scopes: Vec<&str> = key.scopes.iter().map(|scope| scope.as_str()).collect();
            claims.scope = Some(scopes.join(" "));
        }
        let token = IssuedToken {
            token: self.keys.sign(&claims)?,
            expires_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or_else(Utc::now),
        };
        Ok(VerifiedApiKey {
            permissions: key.permissions(),
            key,
            token,
        })
    }
}

/// The audit entry of the caller acting on API key `id`.
fn api_key_entry(
    context: &RequestContext,
    tenant: TenantId,
    id: ApiKeyId,
    action: &'static str,
    details: serde_json::Value,
) -> AuditEntry {
    let target = platform::wire::resource_name("apiKeys", id);
    AuditEntry::by(context, Some(tenant), action, target, details)
}
