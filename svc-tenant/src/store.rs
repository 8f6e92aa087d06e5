//! SQL of the tenant schema: one function per query. Callers pass the transaction, which
//! decides whose rows row-level security shows (`Db::tenant_tx` or `Db::platform_tx`).

use anyhow::Context;
use chrono::{DateTime, Utc};
use platform::context::TenantId;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{
    DisplayName, DomainName, Plan, RateLimits, Settings, Slug, Tenant, TenantStatus,
};

struct TenantRow {
    id: Uuid,
    slug: String,
    display_name: String,
    domains: Vec<String>,
    status: String,
    plan: String,
    settings: serde_json::Value,
    requests_per_minute: i32,
    burst: i32,
    suspension_reason: Option<String>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<TenantRow> for Tenant {
    type Error = anyhow::Error;

    // Stored rows were validated on the way in; a row that fails here is corrupt.
    fn try_from(row: TenantRow) -> anyhow::Result<Tenant> {
        let serde_json::Value::Object(settings) = row.settings else {
            anyhow::bail!("tenant {} has non-object settings", row.id);
        };
        Ok(Tenant {
            id: TenantId::from(row.id),
            slug: Slug::parse(&row.slug).context("stored slug")?,
            display_name: DisplayName::parse(&row.display_name).context("stored display name")?,
            domains: row
                .domains
                .iter()
                .map(|domain| DomainName::parse(domain, None).context("stored domain"))
                .collect::<anyhow::Result<_>>()?,
            status: TenantStatus::parse(&row.status).context("stored status")?,
            plan: Plan::parse(&row.plan).context("stored plan")?,
            settings: Settings::parse(settings).context("stored settings")?,
            rate_limits: RateLimits {
                requests_per_minute: row.requests_per_minute.try_into().context("stored limit")?,
                burst: row.burst.try_into().context("stored burst")?,
            },
            suspension_reason: row.suspension_reason,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// Inserts a new tenant (its domains are inserted with [`insert_domain`]); `false` when its
/// slug is taken.
pub async fn insert_tenant(connection: &mut PgConnection, tenant: &Tenant) -> sqlx::Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO tenant.tenants \
             (id, slug, display_name, status, plan, settings, requests_per_minute, burst, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (slug) DO NOTHING",
        tenant.id.as_uuid(),
        tenant.slug.as_str(),
        tenant.display_name.as_str(),
        tenant.status.as_str(),
        tenant.plan.as_str(),
        serde_json::Value::Object(tenant.settings.as_map().clone()),
        i32::try_from(tenant.rate_limits.requests_per_minute).unwrap_or(i32::MAX),
        i32::try_from(tenant.rate_limits.burst).unwrap_or(i32::MAX),
        tenant.version,
        tenant.created_at,
        tenant.updated_at,
    )
    .execute(connection)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Gives `domain` to `tenant`; `false` when another tenant has it.
pub async fn insert_domain(
    connection: &mut PgConnection,
    tenant: TenantId,
    domain: &DomainName,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO tenant.tenant_domains (domain, tenant_id) VALUES ($1, $2) ON CONFLICT (domain) DO NOTHING",
        domain.as_str(),
        tenant.as_uuid(),
    )
    .execute(connection)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Takes `domain` away from `tenant`.
pub async fn delete_domain(
    connection: &mut PgConnection,
    tenant: TenantId,
    domain: &DomainName,
) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM tenant.tenant_domains WHERE tenant_id = $1 AND domain = $2",
        tenant.as_uuid(),
        domain.as_str(),
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Reads a tenant, locking its row for update when `for_update`.
pub async fn get_tenant(
    connection: &mut PgConnection,
    id: TenantId,
    for_update: bool,
) -> anyhow::Result<Option<Tenant>> {
    if for_update {
        sqlx::query!(
            "SELECT 1 AS locked FROM tenant.tenants WHERE id = $1 FOR UPDATE",
            id.as_uuid()
        )
        .fetch_optional(&mut *connection)
        .await?;
    }
    let row = sqlx::query_as!(
        TenantRow,
        r#"SELECT t.id, t.slug, t.display_name, t.status, t.plan, t.settings,
                  t.requests_per_minute, t.burst, t.suspension_reason, t.version,
                  t.created_at, t.updated_at,
                  coalesce(array_agg(d.domain ORDER BY d.domain) FILTER (WHERE d.domain IS NOT NULL), '{}') AS "domains!"
           FROM tenant.tenants t
           LEFT JOIN tenant.tenant_domains d ON d.tenant_id = t.id
           WHERE t.id = $1
           GROUP BY t.id"#,
        id.as_uuid(),
    )
    .fetch_optional(connection)
    .await?;
    row.map(Tenant::try_from).transpose()
}

/// The id of the tenant with `slug`, deleted or not.
pub async fn find_by_slug(
    connection: &mut PgConnection,
    slug: &Slug,
) -> sqlx::Result<Option<TenantId>> {
    let id = sqlx::query_scalar!(
        "SELECT id FROM tenant.tenants WHERE slug = $1",
        slug.as_str()
    )
    .fetch_optional(connection)
    .await?;
    Ok(id.map(TenantId::from))
}

/// The id of the tenant owning `domain`.
pub async fn find_by_domain(
    connection: &mut PgConnection,
    domain: &DomainName,
) -> sqlx::Result<Option<TenantId>> {
    let id = sqlx::query_scalar!(
        "SELECT tenant_id FROM tenant.tenant_domains WHERE domain = $1",
        domain.as_str()
    )
    .fetch_optional(connection)
    .await?;
    Ok(id.map(TenantId::from))
}

/// One page of tenants after `after` (ids are time-ordered), with `status` or, without one,
/// every tenant that is not deleted.
pub async fn list_tenants(
    connection: &mut PgConnection,
    after: Option<TenantId>,
    status: Option<TenantStatus>,
    limit: i64,
) -> anyhow::Result<Vec<Tenant>> {
    let rows = sqlx::query_as!(
        TenantRow,
        r#"SELECT t.id, t.slug, t.display_name, t.status, t.plan, t.settings,
                  t.requests_per_minute, t.burst, t.suspension_reason, t.version,
                  t.created_at, t.updated_at,
                  coalesce(array_agg(d.domain ORDER BY d.domain) FILTER (WHERE d.domain IS NOT NULL), '{}') AS "domains!"
           FROM tenant.tenants t
           LEFT JOIN tenant.tenant_domains d ON d.tenant_id = t.id
           WHERE ($1::uuid IS NULL OR t.id > $1)
             AND (($2::text IS NULL AND t.status <> 'deleted') OR t.status = $2)
           GROUP BY t.id
           ORDER BY t.id
           LIMIT $3"#,
        after.map(|id| id.as_uuid()),
        status.map(TenantStatus::as_str),
        limit,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(Tenant::try_from).collect()
}

/// Writes the mutable fields of `tenant` (its domains are written separately) and bumps its
/// version. Returns the new version and update time.
pub async fn update_tenant(
    connection: &mut PgConnection,
    tenant: &Tenant,
) -> sqlx::Result<(i64, DateTime<Utc>)> {
    let row = sqlx::query!(
        "UPDATE tenant.tenants SET display_name = $2, status = $3, plan = $4, settings = $5, \
             requests_per_minute = $6, burst = $7, suspension_reason = $8, \
             version = version + 1, updated_at = now() \
         WHERE id = $1 RETURNING version, updated_at",
        tenant.id.as_uuid(),
        tenant.display_name.as_str(),
        tenant.status.as_str(),
        tenant.plan.as_str(),
        serde_json::Value::Object(tenant.settings.as_map().clone()),
        i32::try_from(tenant.rate_limits.requests_per_minute).unwrap_or(i32::MAX),
        i32::try_from(tenant.rate_limits.burst).unwrap_or(i32::MAX),
        tenant.suspension_reason.as_deref(),
    )
    .fetch_one(connection)
    .await?;
    Ok((row.version, row.updated_at))
}
