//! The `auth.*` events, built from domain types and enqueued in the outbox by the operations;
//! and the wire forms of users, members, invitations and roles, which events and responses
//! share. An event carries what its consumers need (svc-notify mails tokens from it), so they
//! never call back.

use chrono::{DateTime, Utc};
use platform::context::{RequestContext, Role, UserId};
use proto::formflow::auth::v1 as wire;
use proto::formflow::events::v1 as events;
use proto::formflow::tenant::v1::ResolvedTenant;
use secrecy::{ExposeSecret, SecretString};

use crate::domain::{Email, Invitation, InvitationState, LoginFailure, Member, User};

/// The wire form of a role.
pub fn role_to_proto(role: Role) -> wire::Role {
    match role {
        Role::Owner => wire::Role::Owner,
        Role::Admin => wire::Role::Admin,
        Role::Member => wire::Role::Member,
        Role::Viewer => wire::Role::Viewer,
    }
}

/// The wire form of a user.
pub fn user_to_proto(user: &User) -> wire::User {
    wire::User {
        name: platform::wire::resource_name("users", user.id),
        id: user.id.to_string(),
        email: user.email.to_string(),
        display_name: user.display_name.as_str().to_owned(),
        two_factor_enabled: user.two_factor_enabled(),
        platform_admin: user.platform_admin,
        last_login_time: user.last_login_at.map(platform::wire::timestamp),
        create_time: Some(platform::wire::timestamp(user.created_at)),
        update_time: Some(platform::wire::timestamp(user.updated_at)),
    }
}

/// The wire form of a membership.
pub fn member_to_proto(member: &Member) -> wire::Member {
    wire::Member {
        name: platform::wire::resource_name("members", member.user_id),
        user: platform::wire::resource_name("users", member.user_id),
        email: member.email.to_string(),
        display_name: member.display_name.as_str().to_owned(),
        role: role_to_proto(member.role) as i32,
        create_time: Some(platform::wire::timestamp(member.created_at)),
        update_time: Some(platform::wire::timestamp(member.updated_at)),
        etag: platform::wire::etag(member.version),
    }
}

/// The wire form of an invitation state.
pub fn invitation_state_to_proto(state: InvitationState) -> wire::InvitationState {
    match state {
        InvitationState::Pending => wire::InvitationState::Pending,
        InvitationState::Accepted => wire::InvitationState::Accepted,
        InvitationState::Revoked => wire::InvitationState::Revoked,
        InvitationState::Expired => wire::InvitationState::Expired,
    }
}

/// The wire form of an invitation as it stands now (never its token).
pub fn invitation_to_proto(invitation: &Invitation) -> wire::Invitation {
    wire::Invitation {
        name: platform::wire::resource_name("invitations", invitation.id),
        id: invitation.id.to_string(),
        email: invitation.email.to_string(),
        role: role_to_proto(invitation.role) as i32,
        message: invitation.message.clone(),
        state: invitation_state_to_proto(invitation.state_at(Utc::now())) as i32,
        inviter: platform::wire::resource_name("users", invitation.inviter_id),
        ttl: None,
        expire_time: Some(platform::wire::timestamp(invitation.expires_at)),
        create_time: Some(platform::wire::timestamp(invitation.created_at)),
        close_time: invitation.closed_at.map(platform::wire::timestamp),
        accepted_by: invitation
            .accepted_by
            .map(|user| platform::wire::resource_name("users", user))
            .unwrap_or_default(),
    }
}

/// The wire form of a login failure; its name (`LOGIN_FAILURE_REASON_WRONG_PASSWORD`) is
/// also what the login log and metrics record.
pub fn login_failure_reason(failure: LoginFailure) -> events::LoginFailureReason {
    match failure {
        LoginFailure::UnknownEmail => events::LoginFailureReason::UnknownEmail,
        LoginFailure::WrongPassword => events::LoginFailureReason::WrongPassword,
        LoginFailure::NotAMember => events::LoginFailureReason::NotAMember,
        LoginFailure::AccountLocked => events::LoginFailureReason::AccountLocked,
        LoginFailure::WrongCode => events::LoginFailureReason::WrongCode,
        LoginFailure::InvalidChallenge => events::LoginFailureReason::InvalidChallenge,
    }
}

/// How a user joined a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Signed up: they created the tenant and own it.
    SignUp,
    /// Accepted an invitation.
    Invitation,
}

/// `auth.user.registered`: `user` joined a tenant as `member`.
pub fn user_registered(
    user: &User,
    member: &Member,
    registration: Registration,
    new_user: bool,
) -> events::UserRegistered {
    let method = match registration {
        Registration::SignUp => events::RegistrationMethod::SignUp,
        Registration::Invitation => events::RegistrationMethod::Invitation,
    };
    events::UserRegistered {
        user: Some(user_to_proto(user)),
        member: Some(member_to_proto(member)),
        method: method as i32,
        new_user,
    }
}

/// A failed login, as `auth.login.failed` tells it.
#[derive(Debug, Clone, Copy)]
pub struct FailedLogin<'a> {
    /// The email typed.
    pub email: &'a Email,
    /// The user with that email, if any.
    pub user: Option<UserId>,
    /// What failed.
    pub failure: LoginFailure,
    /// The account's consecutive failures, this one included; 0 if it does not count.
    pub failed_attempts: u32,
    /// Until when the account is locked, if it is.
    pub locked_until: Option<DateTime<Utc>>,
}

/// `auth.login.failed`, with the client's address and agent from `context`.
pub fn login_failed(context: &RequestContext, failed: FailedLogin<'_>) -> events::LoginFailed {
    events::LoginFailed {
        email: failed.email.to_string(),
        user_id: failed.user.map(|user| user.to_string()).unwrap_or_default(),
        reason: login_failure_reason(failed.failure) as i32,
        ip_address: context.client_ip.clone(),
        user_agent: context.user_agent.clone(),
        failed_attempts: i32::try_from(failed.failed_attempts).unwrap_or(i32::MAX),
        locked_until: failed.locked_until.map(platform::wire::timestamp),
    }
}

/// `auth.invitation.created`, with the token svc-notify mails.
pub fn invitation_created(
    invitation: &Invitation,
    token: &SecretString,
    tenant: &ResolvedTenant,
    inviter_display_name: &str,
) -> events::InvitationCreated {
    events::InvitationCreated {
        invitation: Some(invitation_to_proto(invitation)),
        token: token.expose_secret().to_owned(),
        tenant_slug: tenant.slug.clone(),
        tenant_display_name: tenant.display_name.clone(),
        inviter_display_name: inviter_display_name.to_owned(),
    }
}

/// `auth.password_reset.requested`, with the token svc-notify mails, asked for from
/// `client_ip`.
pub fn password_reset_requested(
    user: &User,
    token: &SecretString,
    expires_at: DateTime<Utc>,
    tenant: &ResolvedTenant,
    client_ip: &str,
) -> events::PasswordResetRequested {
    events::PasswordResetRequested {
        user_id: user.id.to_string(),
        email: user.email.to_string(),
        display_name: user.display_name.as_str().to_owned(),
        token: token.expose_secret().to_owned(),
        expire_time: Some(platform::wire::timestamp(expires_at)),
        tenant_slug: tenant.slug.clone(),
        tenant_display_name: tenant.display_name.clone(),
        ip_address: client_ip.to_owned(),
    }
}
