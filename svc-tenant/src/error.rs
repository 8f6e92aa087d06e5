//! Errors of tenant operations, and how each reaches a gRPC client.

use platform::error::{FieldViolations, status_with_reason};
use tonic::{Code, Status};

use crate::domain::{DomainName, Slug};

/// What can go wrong in a tenant operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed.
    #[error(transparent)]
    InvalidArgument(#[from] FieldViolations),
    /// No such tenant (or it is deleted and the caller may not see deleted tenants).
    #[error("tenant {0} not found")]
    TenantNotFound(String),
    /// The caller may not do this.
    #[error("{0}")]
    PermissionDenied(&'static str),
    /// Another tenant has the slug (slugs stay taken after deletion).
    #[error("slug {0} is already taken")]
    SlugTaken(Slug),
    /// Another tenant has the domain.
    #[error("domain {0} already belongs to a tenant")]
    DomainTaken(DomainName),
    /// The tenant is not in a state that allows the operation.
    #[error("{0}")]
    WrongStatus(&'static str),
    /// The etag sent with an update is not the current one.
    #[error("the tenant changed since it was read (etag mismatch); read it again")]
    EtagMismatch,
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
            Error::TenantNotFound(_) => {
                status_with_reason(Code::NotFound, "TENANT_NOT_FOUND", message)
            }
            Error::PermissionDenied(_) => Status::permission_denied(message),
            Error::SlugTaken(_) => status_with_reason(Code::AlreadyExists, "SLUG_TAKEN", message),
            Error::DomainTaken(_) => {
                status_with_reason(Code::AlreadyExists, "DOMAIN_TAKEN", message)
            }
            Error::WrongStatus(_) => {
                status_with_reason(Code::FailedPrecondition, "TENANT_STATUS", message)
            }
            Error::EtagMismatch => Status::aborted(message),
            Error::Unexpected(cause) => platform::error::internal(cause),
        }
    }
}
