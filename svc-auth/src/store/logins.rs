//! Logins: the account a login to a tenant is for, with its standing there, and the lockout
//! counters of each scope: a membership (`auth.memberships`) for logins to a tenant, the user
//! (`auth.users`) for logins without one (platform administration).

use anyhow::Context;
use chrono::{DateTime, Utc};
use platform::context::{Role, TenantId, UserId};
use sqlx::PgConnection;
use uuid::Uuid;

use super::users::UserRow;
use crate::domain::{Email, LockoutState, MemberStanding, User};

/// A user row, and their membership of the tenant logged in to if they have one.
struct TenantLoginRow {
    id: Uuid,
    email: String,
    display_name: String,
    password_hash: String,
    platform_admin: bool,
    totp_secret: Option<Vec<u8>>,
    totp_pending_secret: Option<Vec<u8>>,
    totp_pending_until: Option<DateTime<Utc>>,
    totp_last_step: i64,
    failed_logins: i32,
    lock_count: i32,
    locked_until: Option<DateTime<Utc>>,
    last_login_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    member_role: Option<String>,
    member_failed_logins: Option<i32>,
    member_lock_count: Option<i32>,
    member_locked_until: Option<DateTime<Utc>>,
}

/// The counters of a stored scope; they were written from `u32`s, so a negative one is
/// corrupt.
pub(super) fn lockout_state(
    failed_logins: i32,
    lock_count: i32,
    locked_until: Option<DateTime<Utc>>,
) -> anyhow::Result<LockoutState> {
    Ok(LockoutState {
        failed_logins: u32::try_from(failed_logins).context("stored failed logins")?,
        lock_count: u32::try_from(lock_count).context("stored lock count")?,
        locked_until,
    })
}

/// The user with `email`, and their standing in `tenant` when they are a member. One query
/// whether or not the email is known or a member, so the lookup alone tells no one apart.
pub async fn find_user_for_tenant_login(
    connection: &mut PgConnection,
    tenant: TenantId,
    email: &Email,
) -> anyhow::Result<Option<(User, Option<MemberStanding>)>> {
    let row = sqlx::query_as!(
        TenantLoginRow,
        r#"SELECT u.*, m.role AS "member_role?", m.failed_logins AS "member_failed_logins?",
               m.lock_count AS "member_lock_count?", m.locked_until AS "member_locked_until?"
           FROM auth.users u
           LEFT JOIN auth.memberships m ON m.user_id = u.id AND m.tenant_id = $2
           WHERE u.email = $1"#,
        email.as_str(),
        tenant.as_uuid(),
    )
    .fetch_optional(connection)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let standing = match (
        row.member_role,
        row.member_failed_logins,
        row.member_lock_count,
    ) {
        (Some(role), Some(failed_logins), Some(lock_count)) => Some(MemberStanding {
            role: Role::parse(&role).with_context(|| format!("stored role {role:?}"))?,
            lockout: lockout_state(failed_logins, lock_count, row.member_locked_until)?,
        }),
        (None, None, None) => None,
        _ => anyhow::bail!("membership of user {} is missing columns", row.id),
    };
    let user = User::try_from(UserRow {
        id: row.id,
        email: row.email,
        display_name: row.display_name,
        password_hash: row.password_hash,
        platform_admin: row.platform_admin,
        totp_secret: row.totp_secret,
        totp_pending_secret: row.totp_pending_secret,
        totp_pending_until: row.totp_pending_until,
        totp_last_step: row.totp_last_step,
        failed_logins: row.failed_logins,
        lock_count: row.lock_count,
        locked_until: row.locked_until,
        last_login_at: row.last_login_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })?;
    Ok(Some((user, standing)))
}

/// The lockout counters of `user` in `tenant` (their membership), or without a tenant
/// (platform administration), their row locked until the transaction ends; `None` when there
/// is no such membership or user.
pub async fn lock_lockout(
    connection: &mut PgConnection,
    tenant: Option<TenantId>,
    user: UserId,
) -> anyhow::Result<Option<LockoutState>> {
    let row = match tenant {
        Some(tenant) => sqlx::query!(
            "SELECT failed_logins, lock_count, locked_until FROM auth.memberships \
             WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE",
            tenant.as_uuid(),
            user.as_uuid(),
        )
        .fetch_optional(connection)
        .await?
        .map(|row| (row.failed_logins, row.lock_count, row.locked_until)),
        None => sqlx::query!(
            "SELECT failed_logins, lock_count, locked_until FROM auth.users WHERE id = $1 FOR UPDATE",
            user.as_uuid(),
        )
        .fetch_optional(connection)
        .await?
        .map(|row| (row.failed_logins, row.lock_count, row.locked_until)),
    };
    row.map(|(failed_logins, lock_count, locked_until)| {
        lockout_state(failed_logins, lock_count, locked_until)
    })
    .transpose()
}

/// Records a failed login of `user` in `tenant` (or without a tenant): their consecutive
/// failures there are now `failed_logins`; locks them out there until `lock` when given.
pub async fn record_login_failure(
    connection: &mut PgConnection,
    tenant: Option<TenantId>,
    user: UserId,
    failed_logins: u32,
    lock: Option<DateTime<Utc>>,
) -> anyhow::Result<()> {
    let failed_logins = i32::try_from(failed_logins).context("failed logins")?;
    match tenant {
        Some(tenant) => {
            sqlx::query!(
                "UPDATE auth.memberships SET failed_logins = $3, \
                 locked_until = coalesce($4, locked_until), \
                 lock_count = lock_count + CASE WHEN $4::timestamptz IS NULL THEN 0 ELSE 1 END \
             WHERE tenant_id = $1 AND user_id = $2",
                tenant.as_uuid(),
                user.as_uuid(),
                failed_logins,
                lock,
            )
            .execute(connection)
            .await?
        }
        None => {
            sqlx::query!(
                "UPDATE auth.users SET failed_logins = $2, \
                 locked_until = coalesce($3, locked_until), \
                 lock_count = lock_count + CASE WHEN $3::timestamptz IS NULL THEN 0 ELSE 1 END \
             WHERE id = $1",
                user.as_uuid(),
                failed_logins,
                lock,
            )
            .execute(connection)
            .await?
        }
    };
    Ok(())
}

/// Records a full login of `user` to `tenant` (or without a tenant): failures and escalation
/// there start over.
pub async fn record_login_success(
    connection: &mut PgConnection,
    tenant: Option<TenantId>,
    user: UserId,
) -> sqlx::Result<()> {
    match tenant {
        Some(tenant) => {
            sqlx::query!(
                "UPDATE auth.memberships SET failed_logins = 0, lock_count = 0, locked_until = NULL \
                 WHERE tenant_id = $1 AND user_id = $2",
                tenant.as_uuid(),
                user.as_uuid(),
            )
            .execute(&mut *connection)
            .await?;
            sqlx::query!(
                "UPDATE auth.users SET last_login_at = now() WHERE id = $1",
                user.as_uuid(),
            )
            .execute(connection)
            .await?;
        }
        None => {
            sqlx::query!(
                "UPDATE auth.users SET failed_logins = 0, lock_count = 0, locked_until = NULL, \
                     last_login_at = now() \
                 WHERE id = $1",
                user.as_uuid(),
            )
            .execute(connection)
            .await?;
        }
    }
    Ok(())
}
