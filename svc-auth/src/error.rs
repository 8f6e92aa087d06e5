//! Errors of identity operations, and how each reaches a gRPC client: every outcome of its own
//! has a stable reason (`ErrorInfo.reason`); the rest is the platform's [`CommonError`].
//!
//! Refused credentials answer UNAUTHENTICATED with one reason per kind of secret, never one
//! that tells an unknown email from a wrong password.

use chrono::{DateTime, SecondsFormat, Utc};
use platform::context::{ApiKeyId, UserId};
use platform::error::{CommonError, status_with_info, status_with_reason};
use tonic::{Code, Status};

use crate::domain::InvitationId;

/// What can go wrong in an identity operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// What every service's operations can fail with.
    #[error(transparent)]
    Common(#[from] CommonError),
    /// Login refused: unknown email, wrong password or not a member, told apart by nobody.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// The second login step was refused: unknown, used or expired challenge, or wrong code.
    #[error("invalid or expired challenge or code")]
    InvalidSecondFactor,
    /// The refresh token is unknown, expired, or its session ended.
    #[error("invalid or expired refresh token")]
    InvalidRefreshToken,
    /// A refresh token was used twice: its session is revoked.
    #[error("refresh token reuse detected; the session is revoked")]
    RefreshTokenReused,
    /// The password reset token is unknown, used or expired.
    #[error("invalid or expired reset token")]
    InvalidResetToken,
    /// The invitation token is unknown, or the invitation is no longer pending.
    #[error("invalid or expired invitation")]
    InvalidInvitation,
    /// The API key secret is unknown, or the key is revoked or expired.
    #[error("invalid, revoked or expired API key")]
    InvalidApiKey,
    /// A service asked for a token with a wrong client id or secret.
    #[error("invalid client credentials")]
    InvalidClientCredentials,
    /// The caller's session was revoked or expired since its token was issued.
    #[error("the session has ended")]
    SessionEnded,
    /// The calling user's account is gone.
    #[error("the user no longer exists")]
    AccountGone,
    /// The calling user was removed from the tenant of their token.
    #[error("no longer a member of this tenant")]
    MembershipEnded,
    /// Too many failed logins: the account is locked until the given time.
    #[error("the account is locked after repeated failed logins")]
    AccountLocked(DateTime<Utc>),
    /// Too many failed logins from one address.
    #[error("too many failed logins from this address; try again later")]
    TooManyAttempts,
    /// The caller's token names no session: only signed-in users have one.
    #[error("only users signed in with a session can do this")]
    NoSession,
    /// Only people (users and platform administrators) may do this, not API keys or services.
    #[error("only people, not API keys or services, can do this")]
    PeopleOnly,
    /// Only owners grant, change or remove the owner role.
    #[error("only owners grant, change or remove the owner role")]
    OwnersOnly,
    /// Only platform administrators may do this.
    #[error("only platform administrators rotate signing keys")]
    PlatformAdminsOnly,
    /// No such member in the caller's tenant.
    #[error("member {0} not found")]
    MemberNotFound(UserId),
    /// No such invitation in the caller's tenant.
    #[error("invitation {0} not found")]
    InvitationNotFound(InvitationId),
    /// No such API key in the caller's tenant.
    #[error("API key {0} not found")]
    ApiKeyNotFound(ApiKeyId),
    /// The email is a member of the tenant already.
    #[error("already a member of this tenant")]
    AlreadyMember,
    /// The email has a pending invitation to the tenant.
    #[error("this email has a pending invitation: revoke it first")]
    InvitationPending,
    /// Sign-up with the email of an account, but not its password.
    #[error("an account with this email exists: sign up with its password, or log in")]
    AccountExists,
    /// An account with the email was created by a concurrent request.
    #[error("an account with this email was just created; try again with its password")]
    AccountCreatedMeanwhile,
    /// Demoting or removing the tenant's last owner.
    #[error("a tenant keeps at least one owner: make another member owner first")]
    LastOwner,
    /// The invitation was accepted, revoked or expired already.
    #[error("the invitation is no longer pending")]
    InvitationClosed,
    /// Enrolling in two-factor authentication while it is on.
    #[error("two-factor authentication is already on")]
    TwoFactorEnabled,
    /// Changing two-factor authentication while it is off.
    #[error("two-factor authentication is off")]
    TwoFactorDisabled,
    /// Confirming an enrolment that was never started.
    #[error("no enrolment is in progress: call EnrolTotp first")]
    NoTotpEnrolment,
    /// Confirming an enrolment too late.
    #[error("the enrolment expired: call EnrolTotp again")]
    TotpEnrolmentExpired,
    /// svc-tenant's answer about the request, passed on as it is (a taken slug during sign-up,
    /// a tenant that does not exist).
    #[error("svc-tenant refused: {}", .0.message())]
    TenantRefused(Status),
}

platform::common_error_conversions!(Error);

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        let unauthenticated = |reason| status_with_reason(Code::Unauthenticated, reason, &message);
        match error {
            Error::InvalidCredentials => unauthenticated("INVALID_CREDENTIALS"),
            Error::InvalidSecondFactor => unauthenticated("INVALID_SECOND_FACTOR"),
            Error::InvalidRefreshToken => unauthenticated("INVALID_REFRESH_TOKEN"),
            Error::RefreshTokenReused => unauthenticated("REFRESH_TOKEN_REUSED"),
            Error::InvalidResetToken => unauthenticated("INVALID_RESET_TOKEN"),
            Error::InvalidInvitation => unauthenticated("INVALID_INVITATION"),
            Error::InvalidApiKey => unauthenticated("INVALID_API_KEY"),
            Error::InvalidClientCredentials => unauthenticated("INVALID_CLIENT_CREDENTIALS"),
            Error::SessionEnded => unauthenticated("SESSION_ENDED"),
            Error::AccountGone => unauthenticated("ACCOUNT_GONE"),
            Error::MembershipEnded => unauthenticated("MEMBERSHIP_ENDED"),
            Error::AccountLocked(until) => {
                let until = until.to_rfc3339_opts(SecondsFormat::Millis, true);
                status_with_info(
                    Code::PermissionDenied,
                    "ACCOUNT_LOCKED",
                    format!("{message} until {until}"),
                    [("locked_until", until.as_str())],
                )
            }
            Error::TooManyAttempts => {
                status_with_reason(Code::ResourceExhausted, "TOO_MANY_ATTEMPTS", message)
            }
            Error::NoSession => status_with_reason(Code::FailedPrecondition, "NO_SESSION", message),
            Error::PeopleOnly => {
                status_with_reason(Code::FailedPrecondition, "PEOPLE_ONLY", message)
            }
            Error::OwnersOnly => status_with_reason(Code::PermissionDenied, "OWNERS_ONLY", message),
            Error::PlatformAdminsOnly => {
                status_with_reason(Code::PermissionDenied, "PLATFORM_ADMINS_ONLY", message)
            }
            Error::MemberNotFound(_) => {
                status_with_reason(Code::NotFound, "MEMBER_NOT_FOUND", message)
            }
            Error::InvitationNotFound(_) => {
                status_with_reason(Code::NotFound, "INVITATION_NOT_FOUND", message)
            }
            Error::ApiKeyNotFound(_) => {
                status_with_reason(Code::NotFound, "API_KEY_NOT_FOUND", message)
            }
            Error::AlreadyMember => {
                status_with_reason(Code::AlreadyExists, "ALREADY_MEMBER", message)
            }
            Error::InvitationPending => {
                status_with_reason(Code::AlreadyExists, "INVITATION_PENDING", message)
            }
            Error::AccountExists | Error::AccountCreatedMeanwhile => {
                status_with_reason(Code::AlreadyExists, "ACCOUNT_EXISTS", message)
            }
            Error::LastOwner => status_with_reason(Code::FailedPrecondition, "LAST_OWNER", message),
            Error::InvitationClosed => {
                status_with_reason(Code::FailedPrecondition, "INVITATION_CLOSED", message)
            }
            Error::TwoFactorEnabled => {
                status_with_reason(Code::FailedPrecondition, "TWO_FACTOR_ENABLED", message)
            }
            Error::TwoFactorDisabled => {
                status_with_reason(Code::FailedPrecondition, "TWO_FACTOR_DISABLED", message)
            }
            Error::NoTotpEnrolment => {
                status_with_reason(Code::FailedPrecondition, "NO_TOTP_ENROLMENT", message)
            }
            Error::TotpEnrolmentExpired => {
                status_with_reason(Code::FailedPrecondition, "TOTP_ENROLMENT_EXPIRED", message)
            }
            Error::TenantRefused(status) => status,
            Error::Common(common) => common.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use platform::error::AccessError;
    use tonic_types::StatusExt;

    use super::*;

    fn reason(status: &Status) -> Option<String> {
        status.get_details_error_info().map(|info| info.reason)
    }

    #[test]
    fn login_failures_do_not_tell_unknown_emails_from_wrong_passwords() {
        let status = Status::from(Error::InvalidCredentials);
        assert_eq!(status.code(), Code::Unauthenticated);
        assert_eq!(status.message(), "invalid email or password");
        assert_eq!(reason(&status).as_deref(), Some("INVALID_CREDENTIALS"));
    }

    #[test]
    fn locked_accounts_say_until_when() {
        let until = DateTime::from_timestamp(1_764_921_600, 0).unwrap();
        let status = Status::from(Error::AccountLocked(until));
        assert_eq!(status.code(), Code::PermissionDenied);
        let info = status.get_details_error_info().unwrap();
        assert_eq!(info.reason, "ACCOUNT_LOCKED");
        assert_eq!(info.metadata["locked_until"], "2025-12-05T08:00:00.000Z");
        assert!(status.message().ends_with("until 2025-12-05T08:00:00.000Z"));
    }

    #[test]
    fn svc_tenants_answers_pass_through_unchanged() {
        let refusal = status_with_reason(Code::AlreadyExists, "SLUG_TAKEN", "slug acme is taken");
        let status = Status::from(Error::TenantRefused(refusal));
        assert_eq!(status.code(), Code::AlreadyExists);
        assert_eq!(status.message(), "slug acme is taken");
        assert_eq!(reason(&status).as_deref(), Some("SLUG_TAKEN"));
    }

    #[test]
    fn common_errors_keep_the_platforms_mapping() {
        let status = Status::from(Error::from(AccessError::Unauthenticated));
        assert_eq!(status.code(), Code::Unauthenticated);
        let status = Status::from(Error::from(anyhow::anyhow!("password=hunter2")));
        assert_eq!(
            (status.code(), status.message()),
            (Code::Internal, "internal error")
        );
    }
}
