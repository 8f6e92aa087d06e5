use chrono::{DateTime, Utc};
use platform::context::{Role, TenantId, UserId};
use sqlx::PgConnection;
use uuid::Uuid;

/// A membership with what members see of its user.
#[derive(Debug, Clone)]
pub struct MemberRow {
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl MemberRow {
    /// The role (stored values are checked by the table).
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Viewer)
    }
}

/// `user`'s membership in `tenant`, its row locked when `for_update`.
pub async fn get_member(
    connection: &mut PgConnection,
    tenant: TenantId,
    user: UserId,
    for_update: bool,
) -> sqlx::Result<Option<MemberRow>> {
    if for_update {
        sqlx::query!(
            "SELECT 1 AS locked FROM auth.memberships WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE",
            tenant.as_uuid(),
            user.as_uuid(),
        )
        .fetch_optional(&mut *connection)
        .await?;
    }
    sqlx::query_as!(
        MemberRow,
        "SELECT m.tenant_id, m.user_id, u.email, u.display_name, m.role, m.version, m.created_at, m.updated_at \
         FROM auth.memberships m JOIN auth.users u ON u.id = m.user_id \
         WHERE m.tenant_id = $1 AND m.user_id = $2",
        tenant.as_uuid(),
        user.as_uuid(),
    )
    .fetch_optional(connection)
    .await
}

/// Adds `user` to `tenant` with `role`; `false` when they are a member already.
pub async fn insert_member(
    connection: &mut PgConnection,
    tenant: TenantId,
    user: UserId,
    role: Role,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO auth.memberships (tenant_id, user_id, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        tenant.as_uuid(),
        user.as_uuid(),
        role.as_str(),
    )
    .execute(connection)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// One page of `tenant`'s members after `after`, with `role` if given, oldest first.
pub async fn list_members(
    connection: &mut PgConnection,
    tenant: TenantId,
    after: Option<(DateTime<Utc>, Uuid)>,
    role: Option<Role>,
    limit: i64,
) -> sqlx::Result<Vec<MemberRow>> {
    let (after_time, after_user) = after.unzip();
    sqlx::query_as!(
        MemberRow,
        "SELECT m.tenant_id, m.user_id, u.email, u.display_name, m.role, m.version, m.created_at, m.updated_at \
         FROM auth.memberships m JOIN auth.users u ON u.id = m.user_id \
         WHERE m.tenant_id = $1 AND ($2::text IS NULL OR m.role = $2) \
           AND ($3::timestamptz IS NULL OR (m.created_at, m.user_id) > ($3, $4)) \
         ORDER BY m.created_at, m.user_id LIMIT $5",
        tenant.as_uuid(),
        role.map(Role::as_str),
        after_time,
        after_user,
        limit,
    )
    .fetch_all(connection)
    .await
}

/// Changes a member's role.
pub async fn update_role(
    connection: &mut PgConnection,
    tenant: TenantId,
    user: UserId,
    role: Role,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE auth.memberships SET role = $3, version = version + 1, updated_at = now() \
         WHERE tenant_id = $1 AND user_id = $2",
        tenant.as_uuid(),
        user.as_uuid(),
        role.as_str(),
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Removes a member.
pub async fn delete_member(
    connection: &mut PgConnection,
    tenant: TenantId,
    user: UserId,
) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM auth.memberships WHERE tenant_id = $1 AND user_id = $2",
        tenant.as_uuid(),
        user.as_uuid(),
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Locks and counts the tenant's owners (for the last-owner rule: concurrent demotions wait for
/// each other).
pub async fn lock_owners(connection: &mut PgConnection, tenant: TenantId) -> sqlx::Result<usize> {
    let owners = sqlx::query_scalar!(
        "SELECT user_id FROM auth.memberships WHERE tenant_id = $1 AND role = 'owner' FOR UPDATE",
        tenant.as_uuid(),
    )
    .fetch_all(connection)
    .await?;
    Ok(owners.len())
}
