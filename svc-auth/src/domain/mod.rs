//! Identity rules with no IO: emails, names and the password policy; users, members,
//! invitations, API keys and sessions as the operations see them (the store builds them from
//! its rows and refuses corrupt ones); lockout escalation and the API-key role ceiling.
//!
//! - [`account`]: emails, names, users and memberships.
//! - [`password`]: the password policy.
//! - [`lockout`]: login failures, and when and how long they lock an account.
//! - [`invitation`]: invitations, their states and lifetimes.
//! - [`api_key`]: API keys, their states, and what a key may be granted.
//! - [`session`]: sessions, refresh tokens, two-factor challenges, password resets.

pub mod account;
pub mod api_key;
pub mod invitation;
pub mod lockout;
pub mod password;
pub mod session;

pub use account::{Email, InvalidEmail, InvalidName, Member, PendingTotp, PersonName, User};
pub use api_key::{
    ApiKey, ApiKeyName, ApiKeyState, KeyRoleError, MAX_SCOPES, ScopeBeyondRole, check_key_role,
    check_key_scopes,
};
pub use invitation::{
    DEFAULT_INVITATION_TTL, InvalidInvitationTtl, Invitation, InvitationId, InvitationState,
    invitation_ttl,
};
pub use lockout::{FailureOutcome, LockoutPolicy, LockoutState, LoginFailure, MemberStanding};
pub use password::{EnteredPasswordError, PasswordError, PasswordPolicy, check_entered_password};
pub use session::{Challenge, ChallengeId, PasswordReset, RefreshToken, RefreshTokenId, Session};
