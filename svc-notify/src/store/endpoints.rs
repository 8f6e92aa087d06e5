//! Webhook endpoints, with their sealed secrets, and the deliveries waiting on them.

use chrono::{DateTime, Utc};
use platform::context::TenantId;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{WebhookEndpoint, WebhookEndpointId};

struct EndpointRow {
    id: Uuid,
    tenant_id: Uuid,
    url: String,
    description: String,
    topics: Vec<String>,
    disabled: bool,
    secret_prefix: String,
    secret_rotated_at: Option<DateTime<Utc>>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<EndpointRow> for WebhookEndpoint {
    fn from(row: EndpointRow) -> WebhookEndpoint {
        WebhookEndpoint {
            id: WebhookEndpointId::from(row.id),
            tenant_id: TenantId::from(row.tenant_id),
            url: row.url,
            description: row.description,
            topics: row.topics,
            disabled: row.disabled,
            secret_prefix: row.secret_prefix,
            secret_rotated_at: row.secret_rotated_at,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// An endpoint's secrets as stored: sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecrets {
    /// The current secret.
    pub current: Vec<u8>,
    /// The secret before the last rotation, and until when it still signs.
    pub previous: Option<(Vec<u8>, DateTime<Utc>)>,
}

/// Inserts an endpoint with its sealed secret.
pub async fn insert_webhook_endpoint(
    connection: &mut PgConnection,
    endpoint: &WebhookEndpoint,
    sealed_secret: &[u8],
) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO notify.webhook_endpoints (id, tenant_id, url, description, topics, disabled, \
             secret, secret_prefix, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        endpoint.id.as_uuid(),
        endpoint.tenant_id.as_uuid(),
        endpoint.url,
        endpoint.description,
        &endpoint.topics,
        endpoint.disabled,
        sealed_secret,
        endpoint.secret_prefix,
        endpoint.version,
        endpoint.created_at,
        endpoint.updated_at,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// The endpoint `id` of `tenant`.
pub async fn get_webhook_endpoint(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: WebhookEndpointId,
) -> anyhow::Result<Option<WebhookEndpoint>> {
    let row = sqlx::query_as!(
        EndpointRow,
        "SELECT id, tenant_id, url, description, topics, disabled, secret_prefix, \
             secret_rotated_at, version, created_at, updated_at \
         FROM notify.webhook_endpoints WHERE tenant_id = $1 AND id = $2",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .fetch_optional(connection)
    .await?;
    Ok(row.map(WebhookEndpoint::from))
}

/// The endpoint `id` of `tenant`, its row locked for update.
pub async fn lock_webhook_endpoint(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: WebhookEndpointId,
) -> anyhow::Result<Option<WebhookEndpoint>> {
    let row = sqlx::query_as!(
        EndpointRow,
        "SELECT id, tenant_id, url, description, topics, disabled, secret_prefix, \
             secret_rotated_at, version, created_at, updated_at \
         FROM notify.webhook_endpoints WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .fetch_optional(connection)
    .await?;
    Ok(row.map(WebhookEndpoint::from))
}

/// The endpoints of `tenant` among `ids`.
pub async fn webhook_endpoints_among(
    connection: &mut PgConnection,
    tenant: TenantId,
    ids: &[WebhookEndpointId],
) -> anyhow::Result<Vec<WebhookEndpoint>> {
    let ids: Vec<Uuid> = ids.iter().map(WebhookEndpointId::as_uuid).collect();
    let rows = sqlx::query_as!(
        EndpointRow,
        "SELECT id, tenant_id, url, description, topics, disabled, secret_prefix, \
             secret_rotated_at, version, created_at, updated_at \
         FROM notify.webhook_endpoints WHERE tenant_id = $1 AND id = ANY($2)",
        tenant.as_uuid(),
        &ids,
    )
    .fetch_all(connection)
    .await?;
    Ok(rows.into_iter().map(WebhookEndpoint::from).collect())
}

/// The endpoint `id` of `tenant` with its sealed secrets, as a delivery to it needs them.
pub async fn webhook_endpoint_with_secrets(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: WebhookEndpointId,
) -> anyhow::Result<Option<(WebhookEndpoint, SealedSecrets)>> {
    let row = sqlx::query!(
        "SELECT id, tenant_id, url, description, topics, disabled, secret_prefix, \
             secret_rotated_at, version, created_at, updated_at, secret, previous_secret, \
             previous_secret_expires_at \
         FROM notify.webhook_endpoints WHERE tenant_id = $1 AND id = $2",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .fetch_optional(connection)
    .await?;
    Ok(row.map(|row| {
        let secrets = SealedSecrets {
            current: row.secret,
            previous: row.previous_secret.zip(row.previous_secret_expires_at),
        };
        let endpoint = WebhookEndpoint::from(EndpointRow {
            id: row.id,
            tenant_id: row.tenant_id,
            url: row.url,
            description: row.description,
            topics: row.topics,
            disabled: row.disabled,
            secret_prefix: row.secret_prefix,
            secret_rotated_at: row.secret_rotated_at,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        });
        (endpoint, secrets)
    }))
}

/// Up to `limit` endpoints of `tenant`, oldest first (ids are time-ordered), after `after`.
pub async fn list_webhook_endpoints(
    connection: &mut PgConnection,
    tenant: TenantId,
    after: Option<WebhookEndpointId>,
    limit: i64,
) -> anyhow::Result<Vec<WebhookEndpoint>> {
    let rows = sqlx::query_as!(
        EndpointRow,
        "SELECT id, tenant_id, url, description, topics, disabled, secret_prefix, \
             secret_rotated_at, version, created_at, updated_at \
         FROM notify.webhook_endpoints \
         WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id > $2) \
         ORDER BY id LIMIT $3",
        tenant.as_uuid(),
        after.map(|id| id.as_uuid()),
        limit,
    )
    .fetch_all(connection)
    .await?;
    Ok(rows.into_iter().map(WebhookEndpoint::from).collect())
}

/// Saves a changed endpoint (locked by [`lock_webhook_endpoint`]); answers its new version
/// and time.
pub async fn update_webhook_endpoint(
    connection: &mut PgConnection,
    endpoint: &WebhookEndpoint,
) -> anyhow::Result<(i64, DateTime<Utc>)> {
    let row = sqlx::query!(
        "UPDATE notify.webhook_endpoints SET url = $3, description = $4, topics = $5, \
             disabled = $6, version = version + 1, updated_at = now() \
         WHERE tenant_id = $1 AND id = $2 RETURNING version, updated_at",
        endpoint.tenant_id.as_uuid(),
        endpoint.id.as_uuid(),
        endpoint.url,
        endpoint.description,
        &endpoint.topics,
        endpoint.disabled,
    )
    .fetch_one(connection)
    .await?;
    Ok((row.version, row.updated_at))
}

/// Replaces the secret of a locked endpoint with `sealed_secret`: the old one keeps signing
/// until `previous_until`, or retires at once when that is `None` (a previous secret still
/// in its grace period retires either way). Answers the new version and time.
pub async fn rotate_webhook_secret(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: WebhookEndpointId,
    sealed_secret: &[u8],
    secret_prefix: &str,
    previous_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> anyhow::Result<(i64, DateTime<Utc>)> {
    let row = sqlx::query!(
        "UPDATE notify.webhook_endpoints SET \
             previous_secret = CASE WHEN $5::timestamptz IS NULL THEN NULL ELSE secret END, \
             previous_secret_expires_at = $5, secret = $3, secret_prefix = $4, \
             secret_rotated_at = $6, version = version + 1, updated_at = $6 \
         WHERE tenant_id = $1 AND id = $2 RETURNING version, updated_at",
        tenant.as_uuid(),
        id.as_uuid(),
        sealed_secret,
        secret_prefix,
        previous_until,
        now,
    )
    .fetch_one(connection)
    .await?;
    Ok((row.version, row.updated_at))
}

/// Deletes the endpoint `id` of `tenant`; `false` when there was none.
pub async fn delete_webhook_endpoint(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: WebhookEndpointId,
) -> anyhow::Result<bool> {
    let deleted = sqlx::query!(
        "DELETE FROM notify.webhook_endpoints WHERE tenant_id = $1 AND id = $2",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .execute(connection)
    .await?;
    Ok(deleted.rows_affected() == 1)
}

/// Cancels the deliveries to the endpoint `id` of `tenant` that wait for an attempt (a
/// running attempt's outcome is then dropped: its lease no longer finds the delivery
/// pending); answers how many.
pub async fn cancel_endpoint_deliveries(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: WebhookEndpointId,
    now: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let cancelled = sqlx::query!(
        "UPDATE notify.deliveries SET state = 'cancelled', next_attempt_at = NULL, \
             lease_until = NULL, wake_token = wake_token + 1, updated_at = $3 \
         WHERE tenant_id = $1 AND recipient_kind = 'webhook_endpoint' AND recipient = $2 \
           AND state IN ('pending', 'deferred')",
        tenant.as_uuid(),
        id.to_string(),
        now,
    )
    .execute(connection)
    .await?;
    Ok(cancelled.rows_affected())
}
