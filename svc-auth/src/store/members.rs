//! Memberships: who belongs to which tenant, with which role.

use anyhow::Context;
use chrono::{DateTime, Utc};
use platform::context::{Role, TenantId, UserId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{Email, Member, PersonName};

struct MemberRow {
    tenant_id: Uuid,
    user_id: Uuid,
    email: String,
    display_name: String,
    role: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<MemberRow> for Member {
    type Error = anyhow::Error;

    // The table checks roles, and users were validated on the way in.
    fn try_from(row: MemberRow) -> anyhow::Result<Member> {
        Ok(Member {
            tenant_id: TenantId::from(row.tenant_id),
            user_id: UserId::from(row.user_id),
            email: Email::parse(&row.email).context("stored email")?,
            display_name: PersonName::parse(&row.display_name).context("stored display name")?,
            role: Role::parse(&row.role).with_context(|| format!("stored role {:?}", row.role))?,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// `user`'s membership in `tenant`, its row locked when `for_update`.
pub async fn get_member(
    connection: &mut PgConnection,
    tenant: TenantId,
    user: UserId,
    for_update: bool,
) -> anyhow::Result<Option<Member>> {
    if for_update {
        sqlx::query!(
            "SELECT 1 AS locked FROM auth.memberships WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE",
            tenant.as_uuid(),
            user.as_uuid(),
        )
        .fetch_optional(&mut *connection)
        .await?;
    }
    let row = sqlx::query_as!(
        MemberRow,
        "SELECT m.tenant_id, m.user_id, u.email, u.display_name, m.role, m.version, m.created_at, m.updated_at \
         FROM auth.memberships m JOIN auth.users u ON u.id = m.user_id \
         WHERE m.tenant_id = $1 AND m.user_id = $2",
        tenant.as_uuid(),
        user.as_uuid(),
    )
    .fetch_optional(connection)
    .await?;
    row.map(Member::try_from).transpose()
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

/// One page of `tenant`'s members after `after` (a join time and user), with `role` if given,
/// oldest first.
pub async fn list_members(
    connection: &mut PgConnection,
    tenant: TenantId,
    after: Option<(DateTime<Utc>, UserId)>,
    role: Option<Role>,
    limit: i64,
) -> anyhow::Result<Vec<Member>> {
    let (after_time, after_user) = after.unzip();
    let rows = sqlx::query_as!(
        MemberRow,
        "SELECT m.tenant_id, m.user_id, u.email, u.display_name, m.role, m.version, m.created_at, m.updated_at \
         FROM auth.memberships m JOIN auth.users u ON u.id = m.user_id \
         WHERE m.tenant_id = $1 AND ($2::text IS NULL OR m.role = $2) \
           AND ($3::timestamptz IS NULL OR (m.created_at, m.user_id) > ($3, $4)) \
         ORDER BY m.created_at, m.user_id LIMIT $5",
        tenant.as_uuid(),
        role.map(Role::as_str),
        after_time,
        after_user.map(|user| user.as_uuid()),
        limit,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(Member::try_from).collect()
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
