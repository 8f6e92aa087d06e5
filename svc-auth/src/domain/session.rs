//! Sessions and the one-time secrets around them: refresh tokens, two-factor challenges and
//! password resets.

use chrono::{DateTime, Utc};
use platform::context::{SessionId, TenantId, UserId};

platform::id!(
    /// Id of a refresh token.
    RefreshTokenId,
    "refresh token id"
);
platform::id!(
    /// Id of a two-factor login challenge.
    ChallengeId,
    "challenge id"
);

/// A session: a login and the refresh tokens it rotates through.
#[derive(Debug, Clone)]
pub struct Session {
    /// Id (the `sid` of its access tokens).
    pub id: SessionId,
    /// Its tenant; `None` for platform administrators.
    pub tenant_id: Option<TenantId>,
    /// Its user.
    pub user_id: UserId,
    /// When its refresh token expires unless refreshed.
    pub expires_at: DateTime<Utc>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Session {
    /// Whether it is neither revoked nor expired at `now`.
    pub fn is_live_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

/// A refresh token, with what its session says.
#[derive(Debug, Clone)]
pub struct RefreshToken {
    /// Id.
    pub id: RefreshTokenId,
    /// Its session's tenant.
    pub tenant_id: Option<TenantId>,
    /// Its session.
    pub session_id: SessionId,
    /// Its session's user.
    pub user_id: UserId,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// When it was exchanged for the next one.
    pub used_at: Option<DateTime<Utc>>,
    /// When its session was revoked.
    pub session_revoked_at: Option<DateTime<Utc>>,
}

/// The second step of a login, waiting for a TOTP or recovery code.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// Id.
    pub id: ChallengeId,
    /// The tenant logged in to; `None` for platform administrators.
    pub tenant_id: Option<TenantId>,
    /// The user who passed the first factor.
    pub user_id: UserId,
    /// Where the first factor came from.
    pub ip_address: String,
    /// The client's user agent.
    pub user_agent: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// When it was used.
    pub used_at: Option<DateTime<Utc>>,
}

impl Challenge {
    /// Whether it can still complete a login at `now`.
    pub fn is_open_at(&self, now: DateTime<Utc>) -> bool {
        self.used_at.is_none() && self.expires_at > now
    }
}

/// A password reset requested by email.
#[derive(Debug, Clone)]
pub struct PasswordReset {
    /// The tenant it was requested through.
    pub tenant_id: TenantId,
    /// Whose password it resets.
    pub user_id: UserId,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// When it (or another reset of the user) was used.
    pub used_at: Option<DateTime<Utc>>,
}

impl PasswordReset {
    /// Whether it can still be used at `now`.
    pub fn is_open_at(&self, now: DateTime<Utc>) -> bool {
        self.used_at.is_none() && self.expires_at > now
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    #[test]
    fn sessions_end_when_revoked_or_expired() {
        let now = Utc::now();
        let mut session = Session {
            id: SessionId::generate(),
            tenant_id: None,
            user_id: UserId::generate(),
            expires_at: now + Duration::seconds(1),
            revoked_at: None,
        };
        assert!(session.is_live_at(now));
        assert!(!session.is_live_at(session.expires_at));
        session.revoked_at = Some(now);
        assert!(!session.is_live_at(now));
    }

    #[test]
    fn one_time_secrets_close_when_used_or_expired() {
        let now = Utc::now();
        let mut reset = PasswordReset {
            tenant_id: TenantId::generate(),
            user_id: UserId::generate(),
            expires_at: now + Duration::hours(1),
            used_at: None,
        };
        assert!(reset.is_open_at(now));
        assert!(!reset.is_open_at(reset.expires_at));
        reset.used_at = Some(now);
        assert!(!reset.is_open_at(now));
    }
}
