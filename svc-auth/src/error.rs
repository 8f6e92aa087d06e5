//! Errors of identity operations, and how each reaches a gRPC client. Messages never say
//! whether an email is known.

use chrono::{DateTime, Utc};
use platform::error::{ERROR_DOMAIN, FieldViolations, status_with_reason};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// What can go wrong in an identity operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed.
    #[error(transparent)]
    InvalidArgument(#[from] FieldViolations),
    /// Wrong, unknown, expired or revoked credentials (password, token, code, secret).
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Too many failed logins: the account is locked until the given time.
    #[error("the account is locked after repeated failed logins")]
    AccountLocked(DateTime<Utc>),
    /// Too many failed logins from one address.
    #[error("too many failed logins from this address; try again later")]
    TooManyAttempts,
    /// The caller may not do this.
    #[error("{0}")]
    PermissionDenied(&'static str),
    /// The named resource does not exist (in the caller's tenant).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The resource exists already.
    #[error("{0}")]
    AlreadyExists(&'static str),
    /// The operation does not fit the current state.
    #[error("{0}")]
    FailedPrecondition(&'static str),
    /// The etag sent with an update is not the current one.
    #[error("the resource changed since it was read (etag mismatch); read it again")]
    EtagMismatch,
    /// A refusal already phrased as a gRPC status: another service's answer the caller should
    /// see, or the platform's tenant and permission checks.
    #[error(transparent)]
    Status(Status),
    /// Anything else: a bug or an infrastructure failure.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        Error::Unexpected(error.into())
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::InvalidArgument(violations) => violations.into(),
            Error::Unauthenticated(_) => Status::unauthenticated(message),
            Error::AccountLocked(until) => {
                let metadata = std::collections::HashMap::from([(
                    "locked_until".to_owned(),
                    until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                )]);
                Status::with_error_details(
                    Code::PermissionDenied,
                    format!(
                        "{message} until {}",
                        until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    ),
                    ErrorDetails::with_error_info("ACCOUNT_LOCKED", ERROR_DOMAIN, metadata),
                )
            }
            Error::TooManyAttempts => {
                status_with_reason(Code::ResourceExhausted, "TOO_MANY_ATTEMPTS", message)
            }
            Error::PermissionDenied(_) => Status::permission_denied(message),
            Error::NotFound(_) => Status::not_found(message),
            Error::AlreadyExists(_) => Status::already_exists(message),
            Error::FailedPrecondition(_) => Status::failed_precondition(message),
            Error::EtagMismatch => Status::aborted(message),
            Error::Status(status) => status,
            Error::Unexpected(cause) => platform::error::internal(cause),
        }
    }
}
