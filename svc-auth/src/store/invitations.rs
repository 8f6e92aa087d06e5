//! Invitations and password resets: the two emailed one-time tokens, stored as digests.

use anyhow::Context;
use chrono::{DateTime, Utc};
use platform::context::{Role, TenantId, UserId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{Email, Invitation, InvitationId, InvitationState, PasswordReset};

struct InvitationRow {
    id: Uuid,
    tenant_id: Uuid,
    email: String,
    role: String,
    message: String,
    inviter_id: Uuid,
    state: String,
    expires_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
    accepted_by: Option<Uuid>,
}

impl TryFrom<InvitationRow> for Invitation {
    type Error = anyhow::Error;

    // The table checks roles and states, and emails were validated on the way in.
    fn try_from(row: InvitationRow) -> anyhow::Result<Invitation> {
        Ok(Invitation {
            id: InvitationId::from(row.id),
            tenant_id: TenantId::from(row.tenant_id),
            email: Email::parse(&row.email).context("stored email")?,
            role: Role::parse(&row.role).with_context(|| format!("stored role {:?}", row.role))?,
            message: row.message,
            inviter_id: UserId::from(row.inviter_id),
            state: InvitationState::parse(&row.state)
                .with_context(|| format!("stored invitation state {:?}", row.state))?,
            expires_at: row.expires_at,
            created_at: row.created_at,
            closed_at: row.closed_at,
            accepted_by: row.accepted_by.map(UserId::from),
        })
    }
}

/// A new invitation.
#[derive(Debug)]
pub struct NewInvitation<'a> {
    pub id: InvitationId,
    pub tenant_id: TenantId,
    pub email: &'a Email,
    pub role: Role,
    pub message: &'a str,
    pub token_digest: &'a [u8],
    pub inviter_id: UserId,
    pub expires_at: DateTime<Utc>,
}

/// Inserts a pending invitation; `false` when a pending one exists for the email.
pub async fn insert_invitation(
    connection: &mut PgConnection,
    invitation: &NewInvitation<'_>,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO auth.invitations (id, tenant_id, email, role, message, token_hash, inviter_id, state, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8) \
         ON CONFLICT (tenant_id, email) WHERE state = 'pending' DO NOTHING",
        invitation.id.as_uuid(),
        invitation.tenant_id.as_uuid(),
        invitation.email.as_str(),
        invitation.role.as_str(),
        invitation.message,
        invitation.token_digest,
        invitation.inviter_id.as_uuid(),
        invitation.expires_at,
    )
    .execute(connection)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Closes expired pending invitations of `tenant`, so a new one can be made for the email.
pub async fn expire_invitations(
    connection: &mut PgConnection,
    tenant: TenantId,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE auth.invitations SET state = 'expired', closed_at = expires_at \
         WHERE tenant_id = $1 AND state = 'pending' AND expires_at <= now()",
        tenant.as_uuid(),
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// An invitation by id.
pub async fn get_invitation(
    connection: &mut PgConnection,
    tenant: TenantId,
    id: InvitationId,
) -> anyhow::Result<Option<Invitation>> {
    let row = sqlx::query_as!(
        InvitationRow,
        "SELECT id, tenant_id, email, role, message, inviter_id, state, expires_at, created_at, closed_at, accepted_by \
         FROM auth.invitations WHERE tenant_id = $1 AND id = $2",
        tenant.as_uuid(),
        id.as_uuid(),
    )
    .fetch_optional(connection)
    .await?;
    row.map(Invitation::try_from).transpose()
}

/// The invitation with `digest`, locked (platform transaction: the token names its tenant).
pub async fn find_invitation_by_token(
    connection: &mut PgConnection,
    digest: &[u8],
) -> anyhow::Result<Option<Invitation>> {
    let row = sqlx::query_as!(
        InvitationRow,
        "SELECT id, tenant_id, email, role, message, inviter_id, state, expires_at, created_at, closed_at, accepted_by \
         FROM auth.invitations WHERE token_hash = $1 FOR UPDATE",
        digest,
    )
    .fetch_optional(connection)
    .await?;
    row.map(Invitation::try_from).transpose()
}

/// One page of `tenant`'s invitations before `before` (newest first), with `state` (its
/// stored name) if given.
pub async fn list_invitations(
    connection: &mut PgConnection,
    tenant: TenantId,
    before: Option<InvitationId>,
    state: Option<&str>,
    limit: i64,
) -> anyhow::Result<Vec<Invitation>> {
    let rows = sqlx::query_as!(
        InvitationRow,
        "SELECT id, tenant_id, email, role, message, inviter_id, state, expires_at, created_at, closed_at, accepted_by \
         FROM auth.invitations \
         WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id < $2) \
           AND ($3::text IS NULL OR state = $3) \
         ORDER BY id DESC LIMIT $4",
        tenant.as_uuid(),
        before.map(|id| id.as_uuid()),
        state,
        limit,
    )
    .fetch_all(connection)
    .await?;
    rows.into_iter().map(Invitation::try_from).collect()
}

/// Closes a pending invitation as `state` (revoked or accepted, by `accepted_by`); `false`
/// when it was not pending.
pub async fn close_invitation(
    connection: &mut PgConnection,
    id: InvitationId,
    state: InvitationState,
    accepted_by: Option<UserId>,
) -> sqlx::Result<bool> {
    debug_assert!(
        matches!(state, InvitationState::Revoked | InvitationState::Accepted),
        "only revocation and acceptance close an invitation by hand"
    );
    let closed = sqlx::query!(
        "UPDATE auth.invitations SET state = $2, closed_at = now(), accepted_by = $3 \
         WHERE id = $1 AND state = 'pending'",
        id.as_uuid(),
        state.as_str(),
        accepted_by.map(|user| user.as_uuid()),
    )
    .execute(connection)
    .await?;
    Ok(closed.rows_affected() == 1)
}

struct PasswordResetRow {
    tenant_id: Uuid,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
}

impl From<PasswordResetRow> for PasswordReset {
    fn from(row: PasswordResetRow) -> PasswordReset {
        PasswordReset {
            tenant_id: TenantId::from(row.tenant_id),
            user_id: UserId::from(row.user_id),
            expires_at: row.expires_at,
            used_at: row.used_at,
        }
    }
}

/// Inserts a password reset.
pub async fn insert_password_reset(
    connection: &mut PgConnection,
    tenant: TenantId,
    user: UserId,
    digest: &[u8],
    expires_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO auth.password_resets (id, tenant_id, user_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)",
        Uuid::now_v7(),
        tenant.as_uuid(),
        user.as_uuid(),
        digest,
        expires_at,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// The reset with `digest`, locked (platform transaction: the token names its tenant).
pub async fn find_password_reset(
    connection: &mut PgConnection,
    digest: &[u8],
) -> sqlx::Result<Option<PasswordReset>> {
    let row = sqlx::query_as!(
        PasswordResetRow,
        "SELECT tenant_id, user_id, expires_at, used_at FROM auth.password_resets WHERE token_hash = $1 FOR UPDATE",
        digest,
    )
    .fetch_optional(connection)
    .await?;
    Ok(row.map(PasswordReset::from))
}

/// Uses up every pending reset of the user (the one used, and any other).
pub async fn consume_password_resets(
    connection: &mut PgConnection,
    user: UserId,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE auth.password_resets SET used_at = now() WHERE user_id = $1 AND used_at IS NULL",
        user.as_uuid(),
    )
    .execute(connection)
    .await?;
    Ok(())
}
