//! Sessions and their tokens: start, refresh with rotation and reuse detection, logout.

use chrono::{DateTime, Utc};
use platform::audit::AuditEntry;
use platform::context::{Permission, Principal, RequestContext, Role, SessionId, TenantId, UserId};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgConnection;

use super::{Identity, audit_as_user};
use crate::crypto::{new_token, token_digest};
use crate::error::Error;
use crate::store::{self, NewSession};

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
    pub session_id: SessionId,
}

/// Who a session is for: a member of a tenant with a role, or a platform administrator.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SessionSubject {
    Member { tenant: TenantId, role: Role },
    PlatformAdmin,
}

impl SessionSubject {
    /// The session's tenant; none for platform administrators.
    pub(crate) fn tenant(self) -> Option<TenantId> {
        match self {
            SessionSubject::Member { tenant, .. } => Some(tenant),
            SessionSubject::PlatformAdmin => None,
        }
    }
}

impl Identity {
    /// Starts a session of `user` inside the caller's transaction, from the client of
    /// `context`, and issues its tokens.
    pub(crate) async fn start_session(
        &self,
        connection: &mut PgConnection,
        context: &RequestContext,
        user: UserId,
        subject: SessionSubject,
    ) -> Result<SessionTokens, Error> {
        let session_id = SessionId::generate();
        let refresh_expires_at = Utc::now() + self.settings.tokens.refresh_token_ttl;
        store::insert_session(
            connection,
            &NewSession {
                id: session_id,
                tenant_id: subject.tenant(),
                user_id: user,
                ip_address: &context.client_ip,
                user_agent: &context.user_agent,
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
        session_id: SessionId,
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
    #[tracing::instrument(skip_all)]
    pub async fn refresh(
        &self,
        context: &RequestContext,
        refresh_token: &SecretString,
    ) -> Result<SessionTokens, Error> {
        let digest = token_digest(refresh_token.expose_secret());
        // The token's tenant is unknown until it is found, so the lookup is platform-wide.
        let mut transaction = self.db.platform_tx().await?;
        let Some(token) = store::find_refresh_token(&mut transaction, &digest).await? else {
            return Err(Error::InvalidRefreshToken);
        };
        if context.tenant_id.is_some() && context.tenant_id != token.tenant_id {
            return Err(Error::InvalidRefreshToken);
        }
        if !store::consume_refresh_token(&mut transaction, token.id).await? {
            store::revoke_session(&mut transaction, token.session_id, "refresh token reuse")
                .await?;
            let entry = AuditEntry::by(
                context,
                token.tenant_id,
                "session.revoke",
                platform::wire::resource_name("sessions", token.session_id),
                serde_json::json!({"reason": "refresh token reuse", "ip_address": context.client_ip}),
            );
            self.audit(&mut transaction, entry).await?;
            transaction.commit().await?;
            self.announce_revoked(&[token.session_id]).await;
            tracing::warn!(session_id = %token.session_id, "refresh token reused: session revoked");
            return Err(Error::RefreshTokenReused);
        }
        if token.session_revoked_at.is_some() || token.expires_at <= Utc::now() {
            return Err(Error::InvalidRefreshToken);
        }
        let subject = match token.tenant_id {
            Some(tenant) => {
                match store::get_member(&mut transaction, tenant, token.user_id, false).await? {
                    Some(member) => SessionSubject::Member {
                        tenant,
                        role: member.role,
                    },
                    None => {
                        // Removed from the tenant since: the session ends with the membership.
                        store::revoke_session(
                            &mut transaction,
                            token.session_id,
                            "membership removed",
                        )
                        .await?;
                        transaction.commit().await?;
                        self.announce_revoked(&[token.session_id]).await;
                        return Err(Error::InvalidRefreshToken);
                    }
                }
            }
            None => SessionSubject::PlatformAdmin,
        };
        let tokens = self
            .issue_tokens(
                &mut transaction,
                token.user_id,
                subject,
                token.session_id,
                Utc::now() + self.settings.tokens.refresh_token_ttl,
            )
            .await?;
        transaction.commit().await?;
        Ok(tokens)
    }

    /// Revokes the caller's session.
    #[tracing::instrument(skip_all)]
    pub async fn logout(&self, context: &RequestContext) -> Result<(), Error> {
        let (user, tenant, session) = session_of(context)?;
        let mut transaction = self.transaction_for(tenant).await?;
        if store::revoke_session(&mut transaction, session, "logout").await? {
            let entry = session_revoked(context, user, tenant, session, "logout");
            self.audit(&mut transaction, entry).await?;
        }
        transaction.commit().await?;
        self.announce_revoked(&[session]).await;
        Ok(())
    }

    /// Revokes every session of the calling user, in every tenant; answers how many.
    #[tracing::instrument(skip_all)]
    pub async fn logout_all(&self, context: &RequestContext) -> Result<usize, Error> {
        let (user, tenant, session) = session_of(context)?;
        self.require_live_session(session).await?;
        // The user acts on their own sessions, which span tenants.
        let mut transaction = self.db.platform_tx().await?;
        let revoked =
            store::revoke_user_sessions(&mut transaction, user, None, "logout everywhere").await?;
        let entry = session_revoked(context, user, tenant, session, "logout everywhere");
        self.audit(&mut transaction, entry).await?;
        transaction.commit().await?;
        self.announce_revoked(&revoked).await;
        Ok(revoked.len())
    }

    /// Refuses tokens of sessions revoked since they were issued (svc-auth checks its own
    /// database; the gateway checks the Redis list).
    pub(crate) async fn require_live_session(&self, session: SessionId) -> Result<(), Error> {
        let mut transaction = self.db.platform_tx().await?;
        let found = store::get_session(&mut transaction, session).await?;
        transaction.commit().await?;
        match found {
            Some(found) if found.is_live_at(Utc::now()) => Ok(()),
            _ => Err(Error::SessionEnded),
        }
    }

    /// Authorizes `permission` in the caller's tenant from the role their token carries, and
    /// for a user, checks in the database that the token's session is still live: a demoted
    /// or removed member's token may still be unexpired, and a failed Redis may have hidden
    /// its revocation from the gateway and the context layer. Used by the RPCs that grant
    /// access to others (members, invitations, API keys).
    pub(crate) async fn authorize_live(
        &self,
        context: &RequestContext,
        permission: Permission,
    ) -> Result<TenantId, Error> {
        let tenant = context.authorize(permission)?;
        if let (Principal::User { .. }, Some(session)) = (context.principal()?, context.session_id)
        {
            self.require_live_session(session).await?;
        }
        Ok(tenant)
    }

    /// Puts revoked sessions on the list the gateway checks. The database already refuses
    /// them; if Redis is down, their access tokens live until they expire.
    pub(crate) async fn announce_revoked(&self, sessions: &[SessionId]) {
        let sessions: Vec<uuid::Uuid> = sessions.iter().map(SessionId::as_uuid).collect();
        if let Err(error) = self.revocations.revoke(&sessions).await {
            tracing::error!(
                error = format!("{error:#}"),
                "cannot publish revoked sessions to Redis"
            );
        }
    }
}

/// The calling user's id, token tenant and session; refused for callers without one.
pub(crate) fn session_of(
    context: &RequestContext,
) -> Result<(UserId, Option<TenantId>, SessionId), Error> {
    let (user, tenant) = match context.principal()? {
        Principal::User {
            user_id, tenant_id, ..
        } => (*user_id, Some(*tenant_id)),
        Principal::PlatformAdmin { user_id } => (*user_id, None),
        Principal::Service { .. } | Principal::ApiKey { .. } => return Err(Error::NoSession),
    };
    let session = context.session_id.ok_or(Error::NoSession)?;
    Ok((user, tenant, session))
}

/// The audit entry of the calling `user` ending their `session` for `reason`.
fn session_revoked(
    context: &RequestContext,
    user: UserId,
    tenant: Option<TenantId>,
    session: SessionId,
    reason: &str,
) -> AuditEntry {
    audit_as_user(
        context,
        user,
        tenant,
        "session.revoke",
        platform::wire::resource_name("sessions", session),
        serde_json::json!({"reason": reason}),
    )
}
