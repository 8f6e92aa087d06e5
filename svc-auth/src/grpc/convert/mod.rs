//! Conversions between the wire and the domain. Requests are validated into domain types
//! ([`requests`] for accounts and sessions, [`membership`] for invitations and members,
//! [`api_keys`]); [`responses`] builds what clients get back. The wire forms events share
//! (users, members, invitations) are built in `events`.
//!
//! Page tokens carry the filter they were issued for, so a token used with another filter is
//! refused rather than misread.

pub mod api_keys;
pub mod membership;
pub mod requests;
pub mod responses;

pub use api_keys::*;
pub use membership::*;
pub use requests::*;
pub use responses::*;

use platform::context::Role;

use crate::domain::{ApiKeyState, InvitationState};

/// The filter invitation page tokens are bound to.
fn invitation_filter(state: Option<InvitationState>) -> &'static str {
    state.map_or("any", InvitationState::as_str)
}

/// The filter API key page tokens are bound to.
fn api_key_filter(state: Option<ApiKeyState>) -> &'static str {
    state.map_or("any", ApiKeyState::as_str)
}

/// The filter member page tokens are bound to.
fn member_filter(role: Option<Role>) -> &'static str {
    role.map_or("any", Role::as_str)
}
