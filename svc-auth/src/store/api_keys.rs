use chrono::{DateTime, Utc};
use platform::context::{Role, TenantId, UserId};
use sqlx::PgConnection;
use uuid::Uuid;

/// An API key as stored (its secret only as a digest).
#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub display_name: String,
    pub role: String,
    pub scopes: Vec<String>,
    pub secret_prefix: String,
    pub creator_id: Uuid,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKeyRow {
    /// The role it acts with.
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Viewer)
    }

    /// Whether it is accepted now.
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
            && self
                .expires_at
                .is_none_or(|expires_at| expires_at > Utc::now())
    }
}

/// A new API key.
#[derive(Debug)]
pub struct NewApiKey<'a> {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub display_name: &'a str,
    pub role: Role,
    pub scopes: &'a [String],
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
    sqlx::query!(
        "INSERT INTO auth.api_keys (id, tenant_id, display_name, role, scopes, secret_hash, secret_prefix, creator_id, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        key.id,
        key.tenant_id.as_uuid(),
        key.display_name,
        key.role.as_str(),
        key.scopes,
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
    id: Uuid,
) -> sqlx::Result<Option<ApiKeyRow>> {
    sqlx::query_as!(
        ApiKeyRow,
        "SELECT id, tenant_id, display_name, role, scopes, secret_prefix, creator_id, expires_at, last_used_at, created_at, revoked_at \
         FROM auth.api_keys WHERE tenant_id = $1 AND id = $2",
        tenant.as_uuid(),
        id,
    )
    .fetch_optional(connection)
    .await
}

/// The API key with `digest` (platform transaction: the secret names its tenant).
pub async fn find_api_key_by_secret(
    connection: &mut PgConnection,
    digest: &[u8],
) -> sqlx::Result<Option<ApiKeyRow>> {
    sqlx::query_as!(
        ApiKeyRow,
        "SELECT id, tenant_id, display_name, role, scopes, secret_prefix, creator_id, expires_at, last_used_at, created_at, revoked_at \
         FROM auth.api_keys WHERE secret_hash = $1",
        digest,
    )
    .fetch_optional(connection)
    .await
}

/// One page of `tenant`'s keys before `before` (newest first).
pub async fn list_api_keys(
    connection: &mut PgConnection,
    tenant: TenantId,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<ApiKeyRow>> {
    sqlx::query_as!(
        ApiKeyRow,
        "SELECT id, tenant_id, display_name, role, scopes, secret_prefix, creator_id, expires_at, last_used_at, created_at, revoked_at \
         FROM auth.api_keys WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id < $2) \
         ORDER BY id DESC LIMIT $3",
        tenant.as_uuid(),
        before,
        limit,
    )
    .fetch_all(connection)
    .await
}

/// Revokes a key; `false` when it was revoked already.
pub async fn revoke_api_key(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: Uuid,
) -> sqlx::Result<bool> {
    let revoked = sqlx::query!(
        "UPDATE auth.api_keys SET revoked_at = now() WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
        tenant.as_uuid(),
        id,
    )
    .execute(connection)
    .await?;
    Ok(revoked.rows_affected() == 1)
}

/// Records a use, at most once a minute per key.
pub async fn touch_api_key(connection: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE auth.api_keys SET last_used_at = now() \
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
        id,
    )
    .execute(connection)
    .await?;
    Ok(())
}
