//! Sessions and their tokens: start, refresh with rotation and reuse detection, logout.

use chrono::{DateTime, Utc};
use platform::context::{Principal, Role, TenantId, UserId};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Caller, Identity};
use crate::crypto::{new_token, token_digest};
use crate::error::Error;
use crate::store::{self, AuditEntry, NewSession};

/// Prefix of refresh tokens, so leaked ones are recognisable (secret scanners).
const REFRESH_TOKEN_PREFIX: &str = "ffr_";

/// The tokens of a session.
#[derive(Debug, Clone)]
pub struct SessionTokens {
    /// The access token (JWT).
    pub access_token: String,
    /// When it expires.
    pub access_expires_at: DateTime<Utc>,
    /// The refresh token.
    pub refresh_token: SecretString,
    /// When it expires.
    pub refresh_expires_at: DateTime<Utc>,
    /// The session.
    pub session_id: Uuid,
}

/// Who a session is for: a member of a tenant with a role, or a platform administrator.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SessionSubject {
    Member { tenant: TenantId, role: Role },
    PlatformAdmin,
}

impl SessionSubject {
    pub(crate) fn tenant(self) -> Option<TenantId> {
        match self {
            SessionSubject::Member { tenant, .. } => Some(tenant),
            SessionSubject::PlatformAdmin => None,
        }
    }
}

impl Identity {
    /// Starts a session of `user` inside the caller's transaction and issues its tokens.
    pub(crate) async fn start_session(
        &self,
        connection: &mut PgConnection,
        user: UserId,
        subject: SessionSubject,
        ip_address: &str,
        user_agent: &str,
    ) -> Result<SessionTokens, Error> {
        let session_id = Uuid::now_v7();
        let refresh_expires_at = Utc::now() + self.settings.tokens.refresh_token_ttl;
        store::insert_session(
            connection,
            &NewSession {
                id: session_id,
                tenant_id: subject.tenant(),
                user_id: user,
                ip_address,
                user_agent,
                expires_at: refresh_expires_at,
            },
        )
        .await?;
        self.issue_tokens(connection, user, subject, session_id, refresh_expires_at)
            .await
    }

    /// A new refresh token in `session`'s family and an access token for it.
    async fn issue_tokens(
        &self,
        connection: &mut PgConnection,
        user: UserId,
        subject: SessionSubject,
        session_id: Uuid,
        refresh_expires_at: DateTime<Utc>,
    ) -> Result<SessionTokens, Error> {
        let (refresh_token, digest) = new_token(REFRESH_TOKEN_PREFIX);
        store::insert_refresh_token(
            connection,
            subject.tenant(),
            session_id,
            &digest,
            refresh_expires_at,
        )
        .await?;
        let mut claims = self.claims(&user.to_string(), self.settings.tokens.access_token_ttl);
        claims.sid = Some(session_id.to_string());
        match subject {
            SessionSubject::Member { tenant, role } => {
                claims.tid = Some(tenant.to_string());
                claims.role = Some(role.as_str().to_owned());
            }
            SessionSubject::PlatformAdmin => claims.prole = Some("admin".to_owned()),
        }
        let access_token = self.keys.sign(&claims)?;
        Ok(SessionTokens {
            access_token,
            access_expires_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or_else(Utc::now),
            refresh_token,
            refresh_expires_at,
            session_id,
        })
    }

    /// Exchanges a refresh token for new tokens. A token used before revokes its session:
    /// whoever holds the other copy (the user or a thief) is logged out.
    pub async fn refresh(
        &self,
        caller: Caller<'_>,
        refresh_token: &SecretString,
    ) -> Result<SessionTokens, Error> {
        const REFUSED: Error = Error::Unauthenticated("invalid or expired refresh token");
        let digest = token_digest(refresh_token.expose_secret());
        // The token's tenant is unknown until it is found, so the lookup is platform-wide.
        let mut transaction = self.db.platform_tx().await?;
        let Some(token) = store::find_refresh_token(&mut transaction, &digest).await? else {
            return Err(REFUSED);
        };
        let token_tenant = token.tenant_id.map(TenantId::from);
        if caller.context.tenant_id.is_some() && caller.context.tenant_id != token_tenant {
            return Err(REFUSED);
        }
        if !store::consume_refresh_token(&mut transaction, token.id).await? {
            store::revoke_session(&mut transaction, token.session_id, "refresh token reuse")
                .await?;
            store::insert_audit(
                &mut transaction,
                AuditEntry {
                    tenant_id: token_tenant,
                    actor: "anonymous".to_owned(),
                    action: "session.revoke",
                    target: format!("sessions/{}", token.session_id),
                    details: serde_json::json!({"reason": "refresh token reuse", "ip_address": caller.context.client_ip}),
                    request_id: &caller.context.request_id,
                },
            )
            .await?;
            transaction.commit().await?;
            self.announce_revoked(&[token.session_id]).await;
            tracing::warn!(session_id = %token.session_id, "refresh token reused: session revoked");
            return Err(Error::Unauthenticated(
                "refresh token reuse detected; the session is revoked",
            ));
        }
        if token.session_revoked_at.is_some() || token.expires_at <= Utc::now() {
            return Err(REFUSED);
        }
        let user = UserId::from(token.user_id);
        let subject = match token_tenant {
            Some(tenant) => match store::get_member(&mut transaction, tenant, user, false).await? {
                Some(member) => SessionSubject::Member {
                    tenant,
                    role: member.role(),
                },
                None => {
                    // Removed from the tenant since: the session ends with the membership.
                    store::revoke_session(&mut transaction, token.session_id, "membership removed")
                        .await?;
                    transaction.commit().await?;
                    self.announce_revoked(&[token.session_id]).await;
                    return Err(REFUSED);
                }
            },
            None => SessionSubject::PlatformAdmin,
        };
        let tokens = self
            .issue_tokens(
                &mut transaction,
                user,
                subject,
                token.session_id,
                Utc::now() + self.settings.tokens.refresh_token_ttl,
            )
            .await?;
        transaction.commit().await?;
        Ok(tokens)
    }

    /// Revokes the caller's session.
    pub async fn logout(&self, caller: Caller<'_>) -> Result<(), Error> {
        let (user, tenant, session) = self.session_of(caller)?;
        let mut transaction = self.transaction_for(tenant).await?;
        if store::revoke_session(&mut transaction, session, "logout").await? {
            self.audit_session(&mut transaction, caller, user, tenant, session, "logout")
                .await?;
        }
        transaction.commit().await?;
        self.announce_revoked(&[session]).await;
        Ok(())
    }

    /// Revokes every session of the calling user, in every tenant.
    pub async fn logout_all(&self, caller: Caller<'_>) -> Result<usize, Error> {
        let (user, tenant, session) = self.session_of(caller)?;
        self.require_live_session(session).await?;
        // The user acts on their own sessions, which span tenants.
        let mut transaction = self.db.platform_tx().await?;
        let revoked =
            store::revoke_user_sessions(&mut transaction, user, None, "logout everywhere").await?;
        self.audit_session(
            &mut transaction,
            caller,
            user,
            tenant,
            session,
            "logout everywhere",
        )
        .await?;
        transaction.commit().await?;
        self.announce_revoked(&revoked).await;
        Ok(revoked.len())
    }

    /// The calling user's id, token tenant and session.
    pub(crate) fn session_of(
        &self,
        caller: Caller<'_>,
    ) -> Result<(UserId, Option<TenantId>, Uuid), Error> {
        let (user, tenant) = match caller.principal()? {
            Principal::User {
                user_id, tenant_id, ..
            } => (*user_id, Some(*tenant_id)),
            Principal::PlatformAdmin { user_id } => (*user_id, None),
            Principal::Service { .. } | Principal::ApiKey { .. } => {
                return Err(Error::FailedPrecondition("only users have sessions"));
            }
        };
        let session = caller
            .session_id()
            .ok_or(Error::FailedPrecondition("the token names no session"))?;
        Ok((user, tenant, session))
    }

    /// Refuses tokens of sessions revoked since they were issued (svc-auth checks its own
    /// database; the gateway checks the Redis list).
    pub(crate) async fn require_live_session(&self, session: Uuid) -> Result<(), Error> {
        let mut transaction = self.db.platform_tx().await?;
        let row = store::get_session(&mut transaction, session).await?;
        transaction.commit().await?;
        match row {
            Some(row) if row.revoked_at.is_none() && row.expires_at > Utc::now() => Ok(()),
            _ => Err(Error::Unauthenticated("the session has ended")),
        }
    }

    async fn audit_session(
        &self,
        connection: &mut PgConnection,
        caller: Caller<'_>,
        user: UserId,
        tenant: Option<TenantId>,
        session: Uuid,
        reason: &str,
    ) -> Result<(), Error> {
        store::insert_audit(
            connection,
            AuditEntry {
                tenant_id: tenant,
                actor: format!("user:{user}"),
                action: "session.revoke",
                target: format!("sessions/{session}"),
                details: serde_json::json!({"reason": reason}),
                request_id: &caller.context.request_id,
            },
        )
        .await?;
        Ok(())
    }

    /// Puts revoked sessions on the list the gateway checks. The database already refuses
    /// them; if Redis is down, their access tokens live until they expire.
    pub(crate) async fn announce_revoked(&self, sessions: &[Uuid]) {
        if let Err(error) = self.revocations.revoke(sessions).await {
            tracing::error!(
                error = format!("{error:#}"),
                "cannot publish revoked sessions to Redis"
            );
        }
    }
}
