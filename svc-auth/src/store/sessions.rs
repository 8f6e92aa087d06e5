//! Sessions, their refresh tokens, two-factor challenges and the login log.

use chrono::{DateTime, Utc};
use platform::context::{SessionId, TenantId, UserId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{Challenge, ChallengeId, RefreshToken, RefreshTokenId, Session};

struct SessionRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    user_id: Uuid,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<SessionRow> for Session {
    fn from(row: SessionRow) -> Session {
        Session {
            id: SessionId::from(row.id),
            tenant_id: row.tenant_id.map(TenantId::from),
            user_id: UserId::from(row.user_id),
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
        }
    }
}

/// A new session.
#[derive(Debug)]
pub struct NewSession<'a> {
    pub id: SessionId,
    pub tenant_id: Option<TenantId>,
    pub user_id: UserId,
    pub ip_address: &'a str,
    pub user_agent: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// Inserts a session.
pub async fn insert_session(
    connection: &mut PgConnection,
    session: &NewSession<'_>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO auth.sessions (id, tenant_id, user_id, ip_address, user_agent, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        session.id.as_uuid(),
        session.tenant_id.map(|tenant| tenant.as_uuid()),
        session.user_id.as_uuid(),
        session.ip_address,
        session.user_agent,
        session.expires_at,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// A session by id.
pub async fn get_session(
    connection: &mut PgConnection,
    id: SessionId,
) -> sqlx::Result<Option<Session>> {
    let row = sqlx::query_as!(
        SessionRow,
        "SELECT id, tenant_id, user_id, expires_at, revoked_at FROM auth.sessions WHERE id = $1",
        id.as_uuid(),
    )
    .fetch_optional(connection)
    .await?;
    Ok(row.map(Session::from))
}

/// Revokes one session; answers whether it was live.
pub async fn revoke_session(
    connection: &mut PgConnection,
    id: SessionId,
    reason: &str,
) -> sqlx::Result<bool> {
    let revoked = sqlx::query!(
        "UPDATE auth.sessions SET revoked_at = now(), revoke_reason = $2 WHERE id = $1 AND revoked_at IS NULL",
        id.as_uuid(),
        reason,
    )
    .execute(connection)
    .await?;
    Ok(revoked.rows_affected() == 1)
}

/// Revokes the live sessions of `user` that the transaction sees (one tenant's, or all in a
/// platform transaction), except `keep`; returns the ids revoked.
pub async fn revoke_user_sessions(
    connection: &mut PgConnection,
    user: UserId,
    keep: Option<SessionId>,
    reason: &str,
) -> sqlx::Result<Vec<SessionId>> {
    let revoked = sqlx::query_scalar!(
        "UPDATE auth.sessions SET revoked_at = now(), revoke_reason = $3 \
         WHERE user_id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR id <> $2) RETURNING id",
        user.as_uuid(),
        keep.map(|session| session.as_uuid()),
        reason,
    )
    .fetch_all(connection)
    .await?;
    Ok(revoked.into_iter().map(SessionId::from).collect())
}

struct RefreshTokenRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    session_id: Uuid,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    user_id: Uuid,
    session_revoked_at: Option<DateTime<Utc>>,
}

impl From<RefreshTokenRow> for RefreshToken {
    fn from(row: RefreshTokenRow) -> RefreshToken {
        RefreshToken {
            id: RefreshTokenId::from(row.id),
            tenant_id: row.tenant_id.map(TenantId::from),
            session_id: SessionId::from(row.session_id),
            user_id: UserId::from(row.user_id),
            expires_at: row.expires_at,
            used_at: row.used_at,
            session_revoked_at: row.session_revoked_at,
        }
    }
}

/// Inserts a refresh token of `session`.
pub async fn insert_refresh_token(
    connection: &mut PgConnection,
    tenant: Option<TenantId>,
    session: SessionId,
    digest: &[u8],
    expires_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO auth.refresh_tokens (id, tenant_id, session_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)",
        RefreshTokenId::generate().as_uuid(),
        tenant.map(|tenant| tenant.as_uuid()),
        session.as_uuid(),
        digest,
        expires_at,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// The refresh token with `digest` (in a platform transaction: its tenant is not known yet).
pub async fn find_refresh_token(
    connection: &mut PgConnection,
    digest: &[u8],
) -> sqlx::Result<Option<RefreshToken>> {
    let row = sqlx::query_as!(
        RefreshTokenRow,
        "SELECT r.id, r.tenant_id, r.session_id, r.expires_at, r.used_at, s.user_id, \
                s.revoked_at AS session_revoked_at \
         FROM auth.refresh_tokens r JOIN auth.sessions s ON s.id = r.session_id \
         WHERE r.token_hash = $1",
        digest,
    )
    .fetch_optional(connection)
    .await?;
    Ok(row.map(RefreshToken::from))
}

/// Marks a refresh token used; `false` when it was used already (by a concurrent refresh, or
/// by a thief).
pub async fn consume_refresh_token(
    connection: &mut PgConnection,
    id: RefreshTokenId,
) -> sqlx::Result<bool> {
    let consumed = sqlx::query!(
        "UPDATE auth.refresh_tokens SET used_at = now() WHERE id = $1 AND used_at IS NULL",
        id.as_uuid(),
    )
    .execute(connection)
    .await?;
    Ok(consumed.rows_affected() == 1)
}

struct ChallengeRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    user_id: Uuid,
    ip_address: String,
    user_agent: String,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
}

impl From<ChallengeRow> for Challenge {
    fn from(row: ChallengeRow) -> Challenge {
        Challenge {
            id: ChallengeId::from(row.id),
            tenant_id: row.tenant_id.map(TenantId::from),
            user_id: UserId::from(row.user_id),
            ip_address: row.ip_address,
            user_agent: row.user_agent,
            expires_at: row.expires_at,
            used_at: row.used_at,
        }
    }
}

/// Inserts a login challenge.
pub async fn insert_challenge(
    connection: &mut PgConnection,
    tenant: Option<TenantId>,
    user: UserId,
    digest: &[u8],
    ip_address: &str,
    user_agent: &str,
    expires_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO auth.login_challenges (id, tenant_id, user_id, token_hash, ip_address, user_agent, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        ChallengeId::generate().as_uuid(),
        tenant.map(|tenant| tenant.as_uuid()),
        user.as_uuid(),
        digest,
        ip_address,
        user_agent,
        expires_at,
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// The challenge with `digest`, locked (platform transaction).
pub async fn find_challenge(
    connection: &mut PgConnection,
    digest: &[u8],
) -> sqlx::Result<Option<Challenge>> {
    let row = sqlx::query_as!(
        ChallengeRow,
        "SELECT id, tenant_id, user_id, ip_address, user_agent, expires_at, used_at \
         FROM auth.login_challenges WHERE token_hash = $1 FOR UPDATE",
        digest,
    )
    .fetch_optional(connection)
    .await?;
    Ok(row.map(Challenge::from))
}

/// Marks a challenge used.
pub async fn consume_challenge(connection: &mut PgConnection, id: ChallengeId) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE auth.login_challenges SET used_at = now() WHERE id = $1",
        id.as_uuid()
    )
    .execute(connection)
    .await?;
    Ok(())
}

/// An entry of the login log.
#[derive(Debug)]
pub struct LoginAttempt<'a> {
    pub tenant_id: Option<TenantId>,
    pub user_id: Option<UserId>,
    pub email: &'a str,
    pub ip_address: &'a str,
    pub user_agent: &'a str,
    pub succeeded: bool,
    pub reason: &'a str,
}

/// Records a login attempt.
pub async fn insert_login_attempt(
    connection: &mut PgConnection,
    attempt: &LoginAttempt<'_>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO auth.login_attempts (id, tenant_id, user_id, email, ip_address, user_agent, succeeded, reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        Uuid::now_v7(),
        attempt.tenant_id.map(|tenant| tenant.as_uuid()),
        attempt.user_id.map(|user| user.as_uuid()),
        attempt.email,
        attempt.ip_address,
        attempt.user_agent,
        attempt.succeeded,
        attempt.reason,
    )
    .execute(connection)
    .await?;
    Ok(())
}
