//! API keys for machine clients: created (secret shown once), listed, revoked, and verified
//! for the gateway, which then forwards a short-lived token standing for the key.

use chrono::{DateTime, Utc};
use platform::context::{Permission, Principal, Role, TenantId};
use platform::error::FieldViolations;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::{Caller, Identity, IssuedToken};
use crate::crypto::{new_token, token_digest};
use crate::error::Error;
use crate::store::{self, ApiKeyRow, AuditEntry, NewApiKey};

/// Prefix of API key secrets, so leaked ones are recognisable (secret scanners).
pub(crate) const API_KEY_PREFIX: &str = "ffk_";
/// Most scopes one key may have.
const MAX_SCOPES: usize = 50;

/// A validated CreateApiKey.
#[derive(Debug)]
pub struct NewApiKeyRequest {
    /// Name, 1 to 100 characters.
    pub display_name: String,
    /// Role; MEMBER when unspecified.
    pub role: Option<Role>,
    /// Permissions it is limited to.
    pub scopes: Vec<Permission>,
    /// When it stops working.
    pub expires_at: Option<DateTime<Utc>>,
}

/// What VerifyApiKey answers.
#[derive(Debug)]
pub struct VerifiedApiKey {
    /// The key.
    pub key: ApiKeyRow,
    /// Its effective permissions.
    pub permissions: Vec<Permission>,
    /// A token standing for it.
    pub token: IssuedToken,
}

impl Identity {
    /// Creates a key acting with at most the creator's role (never owner); answers it and its
    /// secret, which is shown this once.
    pub async fn create_api_key(
        &self,
        caller: Caller<'_>,
        request: NewApiKeyRequest,
    ) -> Result<(ApiKeyRow, SecretString), Error> {
        let tenant = caller.authorize(Permission::ApiKeysManage)?;
        let principal = caller.principal()?;
        let (creator, creator_role) = match principal {
            Principal::User { user_id, role, .. } => (*user_id, *role),
            Principal::PlatformAdmin { user_id } => (*user_id, Role::Owner),
            Principal::ApiKey { .. } | Principal::Service { .. } => {
                return Err(Error::FailedPrecondition("API keys are created by people"));
            }
        };
        let role = request.role.unwrap_or(Role::Member);
        let mut violations = FieldViolations::new();
        if role == Role::Owner {
            violations.add("api_key.role", "an API key cannot be an owner");
        } else if !creator_role.includes(role) {
            violations.add("api_key.role", "must not exceed the creator's role");
        }
        if let Some(scope) = request
            .scopes
            .iter()
            .find(|scope| !role.includes(scope.least_role()))
        {
            violations.add(
                "api_key.scopes",
                format!("{} is beyond the key's role", scope.as_str()),
            );
        }
        violations.into_result()?;

        let (secret, digest) = new_token(API_KEY_PREFIX);
        let secret_prefix: String = secret
            .expose_secret()
            .chars()
            .take(API_KEY_PREFIX.len() + 8)
            .collect();
        let scopes: Vec<String> = request
            .scopes
            .iter()
            .map(|scope| scope.as_str().to_owned())
            .collect();
        let id = Uuid::now_v7();
        let mut transaction = self.db.tenant_tx(tenant).await?;
        store::insert_api_key(
            &mut transaction,
            &NewApiKey {
                id,
                tenant_id: tenant,
                display_name: &request.display_name,
                role,
                scopes: &scopes,
                secret_digest: &digest,
                secret_prefix: &secret_prefix,
                creator_id: creator,
                expires_at: request.expires_at,
            },
        )
        .await?;
        self.audit_api_key(
            &mut transaction,
            caller,
            tenant,
            id,
            "api_key.create",
            serde_json::json!({"role": role.as_str(), "scopes": scopes}),
        )
        .await?;
        let key = store::get_api_key(&mut transaction, tenant, id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("API key {id} vanished"))?;
        transaction.commit().await?;
        Ok((key, secret))
    }

    /// One page of the tenant's keys before `before` (newest first) in `state` (`active`,
    /// `revoked`, `expired`) or all, and where the next page starts, if one does.
    pub async fn list_api_keys(
        &self,
        caller: Caller<'_>,
        page_size: usize,
        mut before: Option<Uuid>,
        state: Option<&'static str>,
    ) -> Result<(Vec<ApiKeyRow>, Option<Uuid>), Error> {
        let tenant = caller.authorize(Permission::ApiKeysManage)?;
        // The state is derived (expiry), so filter after reading, reading on until the page fills.
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let mut keys = Vec::new();
        let mut more = true;
        while keys.len() <= page_size && more {
            let batch = store::list_api_keys(&mut transaction, tenant, before, 100).await?;
            more = batch.len() == 100;
            before = batch.last().map(|key| key.id);
            keys.extend(
                batch
                    .into_iter()
                    .filter(|key| state.is_none_or(|state| api_key_state(key) == state)),
            );
        }
        transaction.commit().await?;
        let next = if keys.len() > page_size {
            keys.truncate(page_size);
            keys.last().map(|last| last.id)
        } else {
            None
        };
        Ok((keys, next))
    }

    /// One key.
    pub async fn get_api_key(&self, caller: Caller<'_>, id: Uuid) -> Result<ApiKeyRow, Error> {
        let tenant = caller.authorize(Permission::ApiKeysManage)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        let key = store::get_api_key(&mut transaction, tenant, id)
            .await?
            .ok_or(Error::NotFound("API key"))?;
        transaction.commit().await?;
        Ok(key)
    }

    /// Revokes a key; the gateway refuses it within seconds (it caches verifications briefly).
    pub async fn revoke_api_key(&self, caller: Caller<'_>, id: Uuid) -> Result<ApiKeyRow, Error> {
        let tenant = caller.authorize(Permission::ApiKeysManage)?;
        let mut transaction = self.db.tenant_tx(tenant).await?;
        if store::get_api_key(&mut transaction, tenant, id)
            .await?
            .is_none()
        {
            return Err(Error::NotFound("API key"));
        }
        if store::revoke_api_key(&mut transaction, tenant, id).await? {
            self.audit_api_key(
                &mut transaction,
                caller,
                tenant,
                id,
                "api_key.revoke",
                serde_json::json!({}),
            )
            .await?;
        }
        let key = store::get_api_key(&mut transaction, tenant, id)
            .await?
            .ok_or(Error::NotFound("API key"))?;
        transaction.commit().await?;
        Ok(key)
    }

    /// Verifies a key secret for the gateway (suite services and platform administrators
    /// only); a key of another tenant than `tenant` is refused.
    pub async fn verify_api_key(
        &self,
        caller: Caller<'_>,
        secret: &SecretString,
        tenant: Option<TenantId>,
    ) -> Result<VerifiedApiKey, Error> {
        const REFUSED: Error = Error::Unauthenticated("invalid, revoked or expired API key");
        if !caller.principal()?.is_platform_operator() {
            return Err(Error::PermissionDenied(
                "only suite services verify API keys",
            ));
        }
        let mut transaction = self.db.platform_tx().await?;
        let key =
            store::find_api_key_by_secret(&mut transaction, &token_digest(secret.expose_secret()))
                .await?
                .ok_or(REFUSED)?;
        let key_tenant = TenantId::from(key.tenant_id);
        if !key.is_active() || tenant.is_some_and(|tenant| tenant != key_tenant) {
            return Err(REFUSED);
        }
        store::touch_api_key(&mut transaction, key.id).await?;
        transaction.commit().await?;
        let scopes: Vec<Permission> = key
            .scopes
            .iter()
            .filter_map(|scope| Permission::parse(scope))
            .collect();
        let permissions = if scopes.is_empty() {
            key.role().permissions()
        } else {
            scopes.clone()
        };
        let mut claims = self.claims(&key.id.to_string(), self.settings.tokens.service_token_ttl);
        claims.typ = Some("api_key".to_owned());
        claims.tid = Some(key_tenant.to_string());
        claims.role = Some(key.role().as_str().to_owned());
        if !scopes.is_empty() {
            claims.scope = Some(
                scopes
                    .iter()
                    .map(|scope| scope.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        let token = IssuedToken {
            token: self.keys.sign(&claims)?,
            expires_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or_else(Utc::now),
        };
        Ok(VerifiedApiKey {
            key,
            permissions,
            token,
        })
    }

    async fn audit_api_key(
        &self,
        connection: &mut sqlx::PgConnection,
        caller: Caller<'_>,
        tenant: TenantId,
        id: Uuid,
        action: &'static str,
        details: serde_json::Value,
    ) -> Result<(), Error> {
        store::insert_audit(
            connection,
            AuditEntry {
                tenant_id: Some(tenant),
                actor: caller.principal()?.audit_name(),
                action,
                target: format!("apiKeys/{id}"),
                details,
                request_id: &caller.context.request_id,
            },
        )
        .await?;
        Ok(())
    }
}

/// `active`, `revoked` or `expired`.
pub fn api_key_state(key: &ApiKeyRow) -> &'static str {
    if key.revoked_at.is_some() {
        "revoked"
    } else if key
        .expires_at
        .is_some_and(|expires_at| expires_at <= Utc::now())
    {
        "expired"
    } else {
        "active"
    }
}

/// Checks requested scopes: known names, at most fifty, no duplicates.
pub fn parse_scopes(violations: &mut FieldViolations, scopes: &[String]) -> Vec<Permission> {
    if scopes.len() > MAX_SCOPES {
        violations.add("api_key.scopes", format!("at most {MAX_SCOPES} scopes"));
        return Vec::new();
    }
    let mut parsed = Vec::new();
    for (index, scope) in scopes.iter().enumerate() {
        match Permission::parse(scope) {
            Some(permission) if !parsed.contains(&permission) => parsed.push(permission),
            Some(_) => violations.add(format!("api_key.scopes[{index}]"), "is listed twice"),
            None => violations.add(
                format!("api_key.scopes[{index}]"),
                "is not a known permission",
            ),
        }
    }
    parsed
}
