//! Users: global accounts, their passwords, lockout counters and two-factor secrets.

use anyhow::Context;
use chrono::{DateTime, Utc};
use platform::context::UserId;
use sqlx::PgConnection;
use uuid::Uuid;

use super::lockout_state;
use crate::domain::{Email, PendingTotp, PersonName, User};

pub(super) struct UserRow {
    pub(super) id: Uuid,
    pub(super) email: String,
    pub(super) display_name: String,
    pub(super) password_hash: String,
    pub(super) platform_admin: bool,
    pub(super) totp_secret: Option<Vec<u8>>,
    pub(super) totp_pending_secret: Option<Vec<u8>>,
    pub(super) totp_pending_until: Option<DateTime<Utc>>,
    pub(super) totp_last_step: i64,
    pub(super) failed_logins: i32,
    pub(super) lock_count: i32,
    pub(super) locked_until: Option<DateTime<Utc>>,
    pub(super) last_login_at: Option<DateTime<Utc>>,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = anyhow::Error;

    // Stored users were validated on the way in; a row that fails here is corrupt.
    fn try_from(row: UserRow) -> anyhow::Result<User> {
        let totp_pending = match (row.totp_pending_secret, row.totp_pending_until) {
            (Some(sealed_secret), Some(until)) => Some(PendingTotp {
                sealed_secret,
                until,
            }),
            (None, None) => None,
            _ => anyhow::bail!("user {} has half a pending TOTP enrolment", row.id),
        };
        Ok(User {
            id: UserId::from(row.id),
            email: Email::parse(&row.email).context("stored email")?,
            display_name: PersonName::parse(&row.display_name).context("stored display name")?,
            password_hash: row.password_hash,
            platform_admin: row.platform_admin,
            totp_secret: row.totp_secret,
            totp_pending,
            totp_last_step: row.totp_last_step,
            platform_lockout: lockout_state(row.failed_logins, row.lock_count, row.locked_until)?,
            last_login_at: row.last_login_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// The user with `email`.
pub async fn find_user_by_email(
    connection: &mut PgConnection,
    email: &Email,
) -> anyhow::Result<Option<User>> {
    let row = sqlx::query_as!(
        UserRow,
        "SELECT * FROM auth.users WHERE email = $1",
        email.as_str()
    )
    .fetch_optional(connection)
    .await?;
    row.map(User::try_from).transpose()
}

/// The user with `id`, its row locked until the transaction ends when `for_update`.
pub async fn get_user(
    connection: &mut PgConnection,
    id: UserId,
    for_update: bool,
) -> anyhow::Result<Option<User>> {
    let row = if for_update {
        sqlx::query_as!(
            UserRow,
            "SELECT * FROM auth.users WHERE id = $1 FOR UPDATE",
            id.as_uuid()
        )
        .fetch_optional(connection)
        .await?
    } else {
        sqlx::query_as!(
            UserRow,
            "SELECT * FROM auth.users WHERE id = $1",
            id.as_uuid()
        )
        .fetch_optional(connection)
        .await?
    };
    row.map(User::try_from).transpose()
}

/// Inserts a user; `Ok(false)` when the email is taken.
pub async fn insert_user(
    connection: &mut PgConnection,
    id: UserId,
    email: &Email,
    display_name: &PersonName,
    password_hash: &str,
    platform_admin: bool,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO auth.users (id, email, display_name, password_hash, platform_admin) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (email) DO NOTHING",
        id.as_uuid(),
        email.as_str(),
        display_name.as_str(),
        password_hash,
        platform_admin,
    )
    .execute(connection)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Sets a new password hash; `unlock` also clears failures and locks, in every tenant the
/// transaction sees as well as for logins without one (a reset proves the user owns the email).
pub async fn set_password(
    connection: &mut PgConnection,
    id: UserId,
    password_hash: &str,
    unlock: bool,
) -> sqlx::Result<()> {
    sqlx::query!(
        "WITH unlocked AS ( \
             UPDATE auth.memberships SET failed_logins = 0, lock_count = 0, locked_until = NULL \
             WHERE user_id = $1 AND $3 \
         ) \
         UPDATE auth.users SET password_hash = $2, updated_at = now(), \
             failed_logins = CASE WHEN $3 THEN 0 ELSE failed_logins END, \
             lock_count = CASE WHEN $3 THEN 0 ELSE lock_count END, \
             locked_until = CASE WHEN $3 THEN NULL ELSE locked_until END \
         WHERE id = $1",
        id.as_uuid(),
        password_hash,
        unlock,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Stores a TOTP secret awaiting confirmation.
pub async fn set_pending_totp(
    connection: &mut PgConnection,
    id: UserId,
    sealed_secret: &[u8],
    until: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE auth.users SET totp_pending_secret = $2, totp_pending_until = $3, updated_at = now() WHERE id = $1",
        id.as_uuid(),
        sealed_secret,
        until,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Turns two-factor authentication on with the pending secret, `step` being the code's step.
pub async fn enable_totp(connection: &mut PgConnection, id: UserId, step: i64) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE auth.users SET totp_secret = totp_pending_secret, totp_pending_secret = NULL, \
             totp_pending_until = NULL, totp_last_step = $2, updated_at = now() WHERE id = $1",
        id.as_uuid(),
        step,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Turns two-factor authentication off.
pub async fn disable_totp(connection: &mut PgConnection, id: UserId) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE auth.users SET totp_secret = NULL, totp_pending_secret = NULL, totp_pending_until = NULL, \
             updated_at = now() WHERE id = $1",
        id.as_uuid(),
    )
    .execute(&mut *connection)
    .await?;
    sqlx::query!(
        "DELETE FROM auth.recovery_codes WHERE user_id = $1",
        id.as_uuid()
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Records that the code of `step` was used, if it is later than any used before; `false`
/// means it (or a later one) was used already: a replay.
pub async fn consume_totp_step(
    connection: &mut PgConnection,
    id: UserId,
    step: i64,
) -> sqlx::Result<bool> {
    let updated = sqlx::query!(
        "UPDATE auth.users SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2",
        id.as_uuid(),
        step,
    )
    .execute(connection)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Replaces the user's recovery codes with `digests`.
pub async fn replace_recovery_codes(
    connection: &mut PgConnection,
    id: UserId,
    digests: &[Vec<u8>],
) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM auth.recovery_codes WHERE user_id = $1",
        id.as_uuid()
    )
    .execute(&mut *connection)
    .await?;
    sqlx::query!(
        "INSERT INTO auth.recovery_codes (user_id, code_hash) SELECT $1, unnest($2::bytea[])",
        id.as_uuid(),
        digests,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// Uses up a recovery code; `false` when it is unknown or used already.
pub async fn consume_recovery_code(
    connection: &mut PgConnection,
    id: UserId,
    digest: &[u8],
) -> sqlx::Result<bool> {
    let updated = sqlx::query!(
        "UPDATE auth.recovery_codes SET used_at = now() WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        id.as_uuid(),
        digest,
    )
    .execute(connection)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Makes a user a platform administrator.
pub async fn make_platform_admin(connection: &mut PgConnection, id: UserId) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE auth.users SET platform_admin = true, updated_at = now() WHERE id = $1",
        id.as_uuid(),
    )
    .execute(connection)
    .await?;
    Ok(())
}
