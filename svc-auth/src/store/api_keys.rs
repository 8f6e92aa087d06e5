//! API keys, stored with a digest of their secret.

use anyhow::Context;
use chrono::{DateTime, Utc};
use platform::context::{ApiKeyId, Permission, Role, TenantId, UserId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{ApiKey, ApiKeyName};

struct ApiKeyRow {
    id: Uuid,
    tenant_id: Uuid,
    display_name: String,
    role: String,
    scopes: Vec<String>,
    secret_prefix: String,
    creator_id: Uuid,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = anyhow::Error;

    // Keys were validated on the way in. A scope that no longer parses is refused rather than
    // dropped: dropping every scope of a key would widen it to its whole role.
    fn try_from(row: ApiKeyRow) -> anyhow::Result<ApiKey> {
        let role = Role::parse(&row.role).with_context(|| format!("stored role {:?}", row.role))?;
        anyhow::ensure!(role != Role::Owner, "API key {} is an owner", row.id);
        let scopes = row
            .scopes
            .iter()
            .map(|scope| {
                Permission::parse(scope).with_context(|| format!("stored scope {scope:?}"))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(ApiKey {
            id: ApiKeyId::from(row.id),
            tenant_id: TenantId::from(row.tenant_id),
            display_name: ApiKeyName::parse(&row.display_name).context("stored key name")?,
            role,
            scopes,
            secret_prefix: row.secret_prefix,
            creator_id: UserId::from(row.creator_id),
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        })
    }
}

/// A new API key.
#[derive(Debug)]
pub struct NewApiKey<'a> {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub display_name: &'a ApiKeyName,
    pub role: Role,
    pub scopes: &'a [Permission],
    pub secret_digest: &'a [u8],
    pub secret_prefix: &'a str,
    pub creator_id: UserId,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Inserts an API key.
pub async fn insert_api_key(
    connection: &mut PgConnection,
    key: &NewApiKey<'_>,
) -> sqlx::Result<()> {
    let scopes: Vec<&str> = key.scopes.iter().map(|scope| scope.as_str()).collect();
    sqlx::query!(
        "INSERT INTO auth.api_keys (id, tenant_id, display_name, role, scopes, secret_hash, secret_prefix, creator_id, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        key.id.as_uuid(),
        key.tenant_id.as_uuid(),
        key.display_name.as_str(),
        key.role.as_str(),
        &scopes as &[&str],
        key.secret_digest,
        key.secret_prefix,
        key.creator_id.as_uuid(),
        key.expires_at,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// An API key by id.
pub async fn get_api_key(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: ApiKeyId,
) -> anyhow::Result<Option<ApiKey>> {
    let row = sqlx::query_as!(
        ApiKeyRow,
        "SELECT id, tenant_id, display_name, role, scopes, secret_prefix, creator_id, expires_at, last_used_at, created_at, revoked_at \
         FROM auth.api_keys WHERE tenant_id = $1 AND id = $2",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .fetch_optional(connection)
    .await?;
    row.map(ApiKey::try_from).transpose()
}

/// The API key with `digest` (platform transaction: the secret names its tenant).
pub async fn find_api_key_by_secret(
    connection: &mut PgConnection,
    digest: &[u8],
) -> anyhow::Result<Option<ApiKey>> {
    let row = sqlx::query_as!(
        ApiKeyRow,
        "SELECT id, tenant_id, display_name, role, scopes, secret_prefix, creator_id, expires_at, last_used_at, created_at, revoked_at \
         FROM auth.api_keys WHERE secret_hash = $1",
        digest,
    )
    .fetch_optional(connection)
    .await?;
    row.map(ApiKey::try_from).transpose()
}

/// One page of `tenant`'s keys before `before` (newest first).
pub async fn list_api_keys(
    connection: &mut PgConnection,
    tenant: TenantId,
    before: Option<ApiKeyId>,
    limit: i64,
) -> anyhow::Result<Vec<ApiKey>> {
    let rows = sqlx::query_as!(
        ApiKeyRow,
        "SELECT id, tenant_id, display_name, role, scopes, secret_prefix, creator_id, expires_at, last_used_at, created_at, revoked_at \
         FROM auth.api_keys WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3",
        tenant.as_uuid(),
        before.map(|id| id.as_uuid()),
        limit,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(ApiKey::try_from).collect()
}

/// Revokes a key; `false` when it was revoked already.
pub async fn revoke_api_key(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: ApiKeyId,
) -> sqlx::Result<bool> {
    let revoked = sqlx::query!(
        "UPDATE auth.api_keys SET revoked_at = now() WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .execute(connection)
    .await?;
    Ok(revoked.rows_affected() == 1)
}

/// Records a use, at most once a minute per key.
pub async fn touch_api_key(connection: &mut PgConnection, id: ApiKeyId) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE auth.api_keys SET last_used_at = now() \
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
        id.as_uuid(),
    )
    .execute(connection)
    .await?;
    Ok(())
}
