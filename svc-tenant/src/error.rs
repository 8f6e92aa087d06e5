//! Errors of tenant operations, and how each reaches a gRPC client: every outcome of its own
//! has a stable reason; the rest is the platform's [`CommonError`].

use platform::error::{CommonError, status_with_reason};
use tonic::{Code, Status};

use crate::domain::{DomainName, Slug};

/// What can go wrong in a tenant operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// What every service's operations can fail with.
    #[error(transparent)]
    Common(#[from] CommonError),
    /// No such tenant (or it is deleted and the caller may not see deleted tenants).
    #[error("tenant {0} not found")]
    TenantNotFound(String),
    /// A tenant's admin asked for what only platform operators change.
    #[error("only platform administrators change a tenant's plan or rate limits")]
    PlanChangeDenied,
    /// Another tenant has the slug (slugs stay taken after deletion).
    #[error("slug {0} is already taken")]
    SlugTaken(Slug),
    /// Another tenant has the domain.
    #[error("domain {0} already belongs to a tenant")]
    DomainTaken(DomainName),
    /// The tenant is not in a state that allows the operation.
    #[error("{0}")]
    WrongStatus(&'static str),
}

platform::common_error_conversions!(Error);

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match error {
            Error::TenantNotFound(_) => {
                status_with_reason(Code::NotFound, "TENANT_NOT_FOUND", message)
            }
            Error::PlanChangeDenied => {
                status_with_reason(Code::PermissionDenied, "PLATFORM_ONLY", message)
            }
            Error::SlugTaken(_) => status_with_reason(Code::AlreadyExists, "SLUG_TAKEN", message),
            Error::DomainTaken(_) => {
                status_with_reason(Code::AlreadyExists, "DOMAIN_TAKEN", message)
            }
            Error::WrongStatus(_) => {
                status_with_reason(Code::FailedPrecondition, "TENANT_STATUS", message)
            }
            Error::Common(common) => common.into(),
        }
    }
}
