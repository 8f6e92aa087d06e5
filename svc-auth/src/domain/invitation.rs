//! Invitations: an email invited to a tenant with a role, their states and lifetimes.

use chrono::{DateTime, Duration, Utc};
use platform::context::{Role, TenantId, UserId};

use super::account::Email;

platform::id!(
    /// Id of an invitation.
    InvitationId,
    "invitation id"
);

/// How long an invitation lives unless the request says otherwise.
pub const DEFAULT_INVITATION_TTL: Duration = Duration::days(7);

/// Where an invitation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvitationState {
    /// Waiting to be accepted.
    Pending,
    /// Accepted: the invitee is a member.
    Accepted,
    /// Revoked by an admin.
    Revoked,
    /// Past its expiry, never accepted.
    Expired,
}

impl InvitationState {
    /// The name stored and used in list filters.
    pub fn as_str(self) -> &'static str {
        match self {
            InvitationState::Pending => "pending",
            InvitationState::Accepted => "accepted",
            InvitationState::Revoked => "revoked",
            InvitationState::Expired => "expired",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<InvitationState> {
        match text {
            "pending" => Some(InvitationState::Pending),
            "accepted" => Some(InvitationState::Accepted),
            "revoked" => Some(InvitationState::Revoked),
            "expired" => Some(InvitationState::Expired),
            _ => None,
        }
    }
}

/// An invitation (its token exists only as a digest in the store).
#[derive(Debug, Clone)]
pub struct Invitation {
    /// Id.
    pub id: InvitationId,
    /// The tenant invited to.
    pub tenant_id: TenantId,
    /// Who is invited.
    pub email: Email,
    /// The role they get.
    pub role: Role,
    /// Note for the email.
    pub message: String,
    /// Who invited.
    pub inviter_id: UserId,
    /// The state as stored; a pending invitation past its expiry is stored as pending until
    /// the tenant's invitations are next listed or added to ([`Invitation::state_at`]).
    pub state: InvitationState,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Accepted, revoked or expired at.
    pub closed_at: Option<DateTime<Utc>>,
    /// Who accepted it.
    pub accepted_by: Option<UserId>,
}

impl Invitation {
    /// Its state at `now`: a pending invitation past its expiry is expired.
    pub fn state_at(&self, now: DateTime<Utc>) -> InvitationState {
        if self.state == InvitationState::Pending && self.expires_at <= now {
            InvitationState::Expired
        } else {
            self.state
        }
    }

    /// Whether it can still be accepted or revoked at `now`.
    pub fn is_pending_at(&self, now: DateTime<Utc>) -> bool {
        self.state_at(now) == InvitationState::Pending
    }
}

/// Why an invitation's lifetime was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be between 1 hour and 30 days")]
pub struct InvalidInvitationTtl;

/// The lifetime of a new invitation: `requested`, or seven days; between an hour and 30 days.
pub fn invitation_ttl(requested: Option<Duration>) -> Result<Duration, InvalidInvitationTtl> {
    let ttl = requested.unwrap_or(DEFAULT_INVITATION_TTL);
    if ttl < Duration::hours(1) || ttl > Duration::days(30) {
        return Err(InvalidInvitationTtl);
    }
    Ok(ttl)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn invitation(state: InvitationState, expires_at: DateTime<Utc>) -> Invitation {
        Invitation {
            id: InvitationId::generate(),
            tenant_id: TenantId::generate(),
            email: Email::parse("linus@example.com").unwrap(),
            role: Role::Viewer,
            message: String::new(),
            inviter_id: UserId::generate(),
            state,
            expires_at,
            created_at: expires_at - Duration::days(7),
            closed_at: None,
            accepted_by: None,
        }
    }

    #[test]
    fn pending_invitations_past_their_expiry_are_expired() {
        let now = Utc::now();
        let live = invitation(InvitationState::Pending, now + Duration::seconds(1));
        assert_eq!(live.state_at(now), InvitationState::Pending);
        assert!(live.is_pending_at(now));
        let lapsed = invitation(InvitationState::Pending, now);
        assert_eq!(lapsed.state_at(now), InvitationState::Expired);
        assert!(!lapsed.is_pending_at(now));
        let accepted = invitation(InvitationState::Accepted, now - Duration::days(1));
        assert_eq!(accepted.state_at(now), InvitationState::Accepted);
    }

    #[test]
    fn states_round_trip_through_their_stored_names() {
        for state in [
            InvitationState::Pending,
            InvitationState::Accepted,
            InvitationState::Revoked,
            InvitationState::Expired,
        ] {
            assert_eq!(InvitationState::parse(state.as_str()), Some(state));
        }
        assert_eq!(InvitationState::parse("lost"), None);
    }

    #[test]
    fn lifetimes_default_to_a_week_and_stay_between_an_hour_and_thirty_days() {
        assert_eq!(invitation_ttl(None), Ok(Duration::days(7)));
        assert_eq!(
            invitation_ttl(Some(Duration::hours(1))),
            Ok(Duration::hours(1))
        );
        assert_eq!(
            invitation_ttl(Some(Duration::days(30))),
            Ok(Duration::days(30))
        );
        assert_eq!(
            invitation_ttl(Some(Duration::minutes(59))),
            Err(InvalidInvitationTtl)
        );
        assert_eq!(
            invitation_ttl(Some(Duration::days(31))),
            Err(InvalidInvitationTtl)
        );
    }

    proptest! {
        #[test]
        fn accepted_lifetimes_are_within_bounds(seconds in -(1_i64 << 40)..(1_i64 << 40)) {
            if let Ok(ttl) = invitation_ttl(Some(Duration::seconds(seconds))) {
                prop_assert!(ttl >= Duration::hours(1) && ttl <= Duration::days(30));
            }
        }
    }
}
