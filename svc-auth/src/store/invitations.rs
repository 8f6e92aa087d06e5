use chrono::{DateTime, Utc};
use platform::context::{Role, TenantId, UserId};
use sqlx::PgConnection;
use uuid::Uuid;

/// An invitation as stored.
#[derive(Debug, Clone)]
pub struct InvitationRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub role: String,
    pub message: String,
    pub inviter_id: Uuid,
    pub state: String,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub accepted_by: Option<Uuid>,
}

impl InvitationRow {
    /// The role it grants.
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Viewer)
    }

    /// Whether it can still be accepted.
    pub fn is_pending(&self) -> bool {
        self.state == "pending" && self.expires_at > Utc::now()
    }
}

/// A new invitation.
#[derive(Debug)]
pub struct NewInvitation<'a> {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub email: &'a str,
    pub role: Role,
    pub message: &'a str,
    pub token_digest: &'a [u8],
    pub inviter_id: UserId,
    pub expires_at: DateTime<Utc>,
}

/// Inserts an invitation; `false` when a pending one exists for the email.
pub async fn insert_invitation(
    connection: &mut PgConnection,
    invitation: &NewInvitation<'_>,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query!(
        "INSERT INTO auth.invitations (id, tenant_id, email, role, message, token_hash, inviter_id, state, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8) \
         ON CONFLICT (tenant_id, email) WHERE state = 'pending' DO NOTHING",
        invitation.id,
        invitation.tenant_id.as_uuid(),
        invitation.email,
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
    id: Uuid,
) -> sqlx::Result<Option<InvitationRow>> {
    sqlx::query_as!(
        InvitationRow,
        "SELECT id, tenant_id, email, role, message, inviter_id, state, expires_at, created_at, closed_at, accepted_by \
         FROM auth.invitations WHERE tenant_id = $1 AND id = $2",
        tenant.as_uuid(),
        id,
    )
    .fetch_optional(connection)
    .await
}

/// The invitation with `digest`, locked (platform transaction: the token names its tenant).
pub async fn find_invitation_by_token(
    connection: &mut PgConnection,
    digest: &[u8],
) -> sqlx::Result<Option<InvitationRow>> {
    sqlx::query_as!(
        InvitationRow,
        "SELECT id, tenant_id, email, role, message, inviter_id, state, expires_at, created_at, closed_at, accepted_by \
         FROM auth.invitations WHERE token_hash = $1 FOR UPDATE",
        digest,
    )
    .fetch_optional(connection)
    .await
}

/// One page of `tenant`'s invitations before `before` (newest first), with `state` if given.
pub async fn list_invitations(
    connection: &mut PgConnection,
    tenant: TenantId,
    before: Option<Uuid>,
    state: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<InvitationRow>> {
    sqlx::query_as!(
        InvitationRow,
        "SELECT id, tenant_id, email, role, message, inviter_id, state, expires_at, created_at, closed_at, accepted_by \
         FROM auth.invitations \
         WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id < $2) \
           AND ($3::text IS NULL OR state = $3) \
         ORDER BY id DESC LIMIT $4",
        tenant.as_uuid(),
        before,
        state,
        limit,
    )
    .fetch_all(connection)
    .await
}

/// Closes an invitation as `state` (`revoked` or `accepted`); `false` when it was not pending.
pub async fn close_invitation(
    connection: &mut PgConnection,
    id: Uuid,
    state: &str,
    accepted_by: Option<UserId>,
) -> sqlx::Result<bool> {
    let closed = sqlx::query!(
        "UPDATE auth.invitations SET state = $2, closed_at = now(), accepted_by = $3 \
         WHERE id = $1 AND state = 'pending'",
        id,
        state,
        accepted_by.map(|user| user.as_uuid()),
    )
    .execute(connection)
    .await?;
    Ok(closed.rows_affected() == 1)
}

/// A password reset by token digest, locked (platform transaction).
#[derive(Debug, Clone)]
pub struct PasswordResetRow {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
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

/// The reset with `digest`, locked.
pub async fn find_password_reset(
    connection: &mut PgConnection,
    digest: &[u8],
) -> sqlx::Result<Option<PasswordResetRow>> {
    sqlx::query_as!(
        PasswordResetRow,
        "SELECT id, tenant_id, user_id, expires_at, used_at FROM auth.password_resets WHERE token_hash = $1 FOR UPDATE",
        digest,
    )
    .fetch_optional(connection)
    .await
}

/// Uses up a reset, and every other pending reset of the user.
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
